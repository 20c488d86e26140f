"""The /sm-debug REST API through real HTTP, on the local stand-in."""

from __future__ import annotations

import json

import pytest
from support import assert_error, failed_job, unique
from tornado.httpclient import HTTPClientError

# -- listing -------------------------------------------------------------------------


async def test_list_shows_seeded_jobs_newest_first_with_summaries(api, demo_jobs):
    await failed_job(api)  # the demo's failing job is a real program: it fails a bit later
    jobs, token = [], None
    while True:  # every page: earlier tests' jobs are newer than the demo's
        query = {"max_results": "100", **({"next_token": token} if token else {})}
        status, page = await api("GET", "jobs", **query)
        assert status == 200
        jobs += page["jobs"]
        token = page.get("next_token")
        if not token:
            break
    names = [job["name"] for job in jobs]
    for name in demo_jobs.values():
        assert name in names
    created = [job["created"] for job in jobs]
    assert created == sorted(created, reverse=True)
    four = next(job for job in jobs if job["name"] == demo_jobs["resnet50-ddp-4node"])
    assert four["status"] == "InProgress"
    assert four["secondary_status"] == "Training"
    assert four["instance_count"] == 4
    assert four["remote_debug"] == {"enabled": False}
    statuses = {job["status"] for job in jobs}
    assert {"InProgress", "Completed", "Failed", "Stopped"} <= statuses


async def test_list_filters_by_status_and_name(api, demo_jobs):
    await failed_job(api)
    status, page = await api("GET", "jobs", status="Failed")
    assert status == 200 and page["jobs"]
    # Failed jobs, and held ones (failed, InProgress while held: issue 23).
    assert {job["status"] for job in page["jobs"] if not job.get("held")} == {"Failed"}
    assert all(job["status"] == "InProgress" for job in page["jobs"] if job.get("held"))

    status, page = await api("GET", "jobs", name_contains="resnet50")
    names = [job["name"] for job in page["jobs"]]
    assert demo_jobs["resnet50-ddp-4node"] in names  # debug copies of it may match too
    assert all("resnet50" in name for name in names)


async def test_list_pages_over_250_jobs(api, standin):
    prefix = unique("paging")
    # Finished jobs: a later clock advance must not bring 260 hosts (and sshds) to life.
    done = {"starting": 1, "downloading": 1, "training": 1, "uploading": 1}
    for index in range(260):
        standin.create_job(f"{prefix}-{index:03d}", schedule=done, started_ago=10)
    seen, token, pages = [], None, 0
    while True:
        status, page = await api(
            "GET", "jobs", name_contains=prefix, max_results="100", next_token=token
        )
        assert status == 200, page
        pages += 1
        seen += [job["name"] for job in page["jobs"]]
        token = page["next_token"]
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 260
    assert seen[0] == f"{prefix}-259"  # newest first


@pytest.mark.parametrize(
    "query, code",
    [
        ({"status": "Running"}, "invalid_status"),
        ({"max_results": "0"}, "invalid_max_results"),
        ({"max_results": "101"}, "invalid_max_results"),
        ({"max_results": "ten"}, "invalid_max_results"),
        ({"name_contains": "a;rm -rf /"}, "invalid_name_filter"),
        ({"name_contains": "$(id)"}, "invalid_name_filter"),
        # 8192 of these made a URL longer than tornado reads: the request got no answer
        ({"next_token": "\u0800" * 100}, "invalid_next_token"),
        ({"next_token": "x" * 8193}, "invalid_next_token"),
    ],
)
async def test_list_rejects_bad_queries(api, query, code):
    status, body = await api("GET", "jobs", **query)
    assert_error(status, body, 400, code)


async def test_list_rejects_a_forged_next_token(api):
    status, body = await api("GET", "jobs", next_token="not-a-token")
    assert_error(status, body, 400)


# -- one job ---------------------------------------------------------------------------


async def test_job_detail_has_hosts_and_attach_state(api, demo_jobs):
    status, job = await api("GET", "jobs", demo_jobs["resnet50-ddp-4node"])
    assert status == 200
    assert [host["name"] for host in job["hosts"]] == ["algo-1", "algo-2", "algo-3", "algo-4"]
    assert {host["instance_type"] for host in job["hosts"]} == {"ml.p4d.24xlarge"}
    assert job["remote_debug"] == {"enabled": False}
    assert job["attach"]["ssm"]["ok"] is False
    assert "Remote debug" in job["attach"]["ssm"]["reason"]
    assert job["attach"]["ssh"]["ok"] is True
    assert job["network_isolation"] is False
    assert job["failure_reason"] is None


async def test_heterogeneous_job_lists_every_group_host(api, demo_jobs):
    status, job = await api("GET", "jobs", demo_jobs["hetero-preprocess-train"])
    assert status == 200
    hosts = job["hosts"]
    assert [host["name"] for host in hosts] == [f"algo-{n}" for n in range(1, len(hosts) + 1)]
    assert len({host["group"] for host in hosts}) == 2
    assert job["instance_count"] == len(hosts)


async def test_failed_job_carries_its_failure_reason(api):
    name = (await failed_job(api))["name"]
    status, job = await api("GET", "jobs", name)
    assert status == 200
    assert job["failure_reason"]
    assert job["attach"]["ssh"] == {
        "ok": False,
        "reason": "The job is Failed: its containers are gone.",
    }


async def test_unknown_job_is_404(api):
    status, body = await api("GET", "jobs", "no-such-job-anywhere")
    assert_error(status, body, 404, "job_not_found")


@pytest.mark.parametrize(
    "name",
    ["bad;name", "$(reboot)", "`id`", "has space", "-leading", "x" * 64, "job\nname", "jöb"],
)
async def test_invalid_job_names_are_400(api, name):
    status, body = await api("GET", "jobs", name)
    assert_error(status, body, 400, "invalid_job_name")


# -- remote debug ------------------------------------------------------------------------


async def test_remote_debug_flips_on_a_training_job_and_back(api, standin):
    name = unique("flip")
    standin.create_job(name, instance_count=2, started_ago=120)
    status, job = await api("GET", "jobs", name)
    assert job["secondary_status"] == "Training", job

    status, job = await api("PUT", "jobs", name, "remote-debug", body={"enabled": True})
    assert status == 200, job
    assert job["remote_debug"] == {"enabled": True}
    assert job["attach"]["ssm"]["ok"] is True
    status, job = await api("GET", "jobs", name)
    assert job["remote_debug"] == {"enabled": True}

    status, job = await api("PUT", "jobs", name, "remote-debug", body={"enabled": False})
    assert status == 200 and job["remote_debug"] == {"enabled": False}


async def test_remote_debug_on_a_completed_job_is_409_with_the_reason(api):
    status, page = await api("GET", "jobs", status="Completed")
    name = page["jobs"][0]["name"]
    status, body = await api("PUT", "jobs", name, "remote-debug", body={"enabled": True})
    assert_error(status, body, 409, "wrong_state")
    assert "Downloading or Training" in body["error"]["message"]
    assert "Completed" in body["error"]["message"]
    assert body["error"]["hint"]


async def test_remote_debug_while_starting_says_to_wait(api, standin):
    name = unique("starting")
    standin.create_job(name, started_ago=0)
    status, body = await api("PUT", "jobs", name, "remote-debug", body={"enabled": True})
    assert_error(status, body, 409, "wrong_state")
    assert "Starting" in body["error"]["message"]
    assert "Wait" in body["error"]["hint"]


async def test_remote_debug_follows_the_job_through_its_states(api, standin):
    """Allowed in Downloading and Training only: the AWS rule, walked on the stand-in clock."""
    name = unique("walk")
    # A short schedule: the session's shared clock moves little, so the demo jobs stay put.
    phases = {"starting": 20, "downloading": 20, "training": 20, "uploading": 20}
    standin.create_job(name, started_ago=0, schedule=phases)
    results = {}
    for _ in range(40):
        status, job = await api("GET", "jobs", name)
        state = job["secondary_status"]
        if state not in results:
            code, _ = await api("PUT", "jobs", name, "remote-debug", body={"enabled": True})
            results[state] = code
            if code == 200:
                await api("PUT", "jobs", name, "remote-debug", body={"enabled": False})
        if job["status"] != "InProgress":
            break
        standin.advance(10)
    assert results.get("Starting") == 409
    assert results.get("Training") == 200
    assert results.get("Completed") == 409
    assert all(
        code == (200 if state in ("Downloading", "Training") else 409)
        for state, code in results.items()
    ), results


async def test_remote_debug_refused_with_network_isolation(api, standin):
    name = unique("isolated")
    standin.create_job(name, network_isolation=True, started_ago=120)
    status, body = await api("PUT", "jobs", name, "remote-debug", body={"enabled": True})
    assert_error(status, body, 409, "network_isolation")


@pytest.mark.parametrize(
    "body", ["not json", "[]", '{"enabled": "yes"}', "{}", '{"enabled": 1}', b"\xff\xfe"]
)
async def test_remote_debug_rejects_bad_bodies(api, demo_jobs, body):
    status, error = await api("PUT", "jobs", demo_jobs["llama-finetune"], "remote-debug", body=body)
    assert_error(status, error, 400, "invalid_body")


async def test_remote_debug_on_unknown_job_is_404(api):
    status, body = await api("PUT", "jobs", "ghost-job", "remote-debug", body={"enabled": True})
    assert_error(status, body, 404, "job_not_found")


# -- environment and failures ----------------------------------------------------------------


async def test_environment_reports_region_account_and_clients(api):
    status, env = await api("GET", "environment")
    assert status == 200
    assert env["region"] == "us-east-1"
    assert env["account"] == "123456789012"
    assert env["problems"] == []
    assert env["credentials"]["found"] is True
    assert env["clients"]["builtin_ssm"] is True
    assert env["endpoint_url"].startswith("http://127.0.0.1:")


async def test_environment_without_credentials_or_region_says_how_to_fix(api, monkeypatch):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    status, env = await api("GET", "environment")
    assert status == 200
    codes = {problem["code"] for problem in env["problems"]}
    assert codes == {"no_credentials", "no_region"}
    assert all(problem["hint"] for problem in env["problems"])
    status, body = await api("GET", "jobs")
    assert_error(status, body, 503)


async def test_throttling_after_retries_is_429_with_a_hint(api, standin):
    standin.set_faults(throttle=50, throttle_action="ListTrainingJobs")
    try:
        status, body = await api("GET", "jobs")
    finally:
        standin.set_faults(throttle=0)
    assert_error(status, body, 429, "throttled")
    assert "refresh" in body["error"]["hint"].lower()


async def test_unreachable_endpoint_is_503(api, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    status, body = await api("GET", "jobs")
    assert_error(status, body, 503, "endpoint_unreachable")


async def test_unknown_route_is_a_json_404(api):
    status, body = await api("GET", "no-such-thing")
    assert_error(status, body, 404, "no_such_route")


async def test_requests_without_a_token_are_refused(jp_fetch):
    routes = [("GET", "jobs"), ("GET", "jobs/x"), ("GET", "environment"),
              ("PUT", "jobs/x/remote-debug"), ("POST", "jobs/x/hosts/algo-1/terminals"),
              ("POST", "jobs/x/debug-copy")]  # fmt: skip
    for method, path in routes:
        body = "{}" if method != "GET" else None
        with pytest.raises(HTTPClientError) as error:
            await jp_fetch("sm-debug", path, method=method, body=body,
                           headers={"Authorization": ""})  # fmt: skip
        assert error.value.code == 403, (method, path)
        assert json.loads(error.value.response.body)["error"]["code"] == "forbidden"


async def test_list_rejects_unknown_query_parameters(api):
    for query in ({"": "x"}, {"limit": "5"}):
        status, body = await api("GET", "jobs", **query)
        assert_error(status, body, 400, "invalid_query")
    # JupyterLab's ServerConnection appends a bare timestamp to GETs against caches.
    status, page = await api("GET", "jobs", **{"1795452851927": ""})
    assert status == 200, page
