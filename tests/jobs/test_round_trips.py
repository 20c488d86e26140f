"""AWS round trips the extension makes: first rows from ListTrainingJobs alone, the page's
descriptions in one request, and attaches that reuse what the list already knows."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

pytestmark = pytest.mark.usefixtures("standin")


@pytest.fixture
def aws_calls(jp_serverapp, monkeypatch):
    """Every AWS operation the server's JobsService makes, in order (every part of it, and
    the transports, call AWS through its one `aws.call`)."""
    aws = jp_serverapp.web_app.settings["sm_debug"].jobs.aws
    seen: list[str] = []
    real = aws.call

    async def counted(service, operation, **params):
        seen.append(operation)
        return await real(service, operation, **params)

    monkeypatch.setattr(aws, "call", counted)
    return seen


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**8}"


TRAINING = {"starting": 20, "downloading": 20, "training": 600, "uploading": 20}


async def test_first_rows_need_only_list_training_jobs(api, standin, aws_calls):
    prefix = unique("rows")
    standin.create_job(f"{prefix}-run", instance_count=3, started_ago=60, schedule=TRAINING)
    done = {"starting": 1, "downloading": 1, "training": 1, "uploading": 1}
    standin.create_job(f"{prefix}-done", instance_count=2, started_ago=10, schedule=done)
    status, page = await api("GET", "jobs", name_contains=prefix, describe="false")
    assert status == 200, page
    assert aws_calls[0] == "list_training_jobs"
    rows = {row["name"]: row for row in page["jobs"]}
    assert set(rows) == {f"{prefix}-run", f"{prefix}-done"}
    run = rows[f"{prefix}-run"]
    assert run["described"] is False
    assert run["status"] == "InProgress" and run["secondary_status"] == "Training"
    assert run["created"] and run["instances"] is None and run["remote_debug"] is None

    # The rows' descriptions, in one request: it joins the describes the list started,
    # so each job is described once in all.
    status, filled = await api("GET", "descriptions", names=",".join(rows))
    assert status == 200, filled
    assert sorted(aws_calls) == ["describe_training_job"] * 2 + ["list_training_jobs"]
    described = {row["name"]: row for row in filled["jobs"]}
    assert described[f"{prefix}-run"]["instance_count"] == 3
    assert described[f"{prefix}-run"]["instances"][0]["count"] == 3
    assert described[f"{prefix}-run"]["described"] is True
    assert filled["errors"] == []

    # Now the list knows them: whole rows, still one call.
    aws_calls.clear()
    status, page = await api("GET", "jobs", name_contains=prefix, describe="false")
    assert aws_calls == ["list_training_jobs"]
    assert all(row["described"] for row in page["jobs"])
    assert {row["name"]: row["instance_count"] for row in page["jobs"]} == {
        f"{prefix}-run": 3,
        f"{prefix}-done": 2,
    }


async def test_descriptions_route_reports_unknown_jobs_and_refuses_bad_input(api):
    status, body = await api("GET", "descriptions", names="no-such-job-anywhere")
    assert status == 200, body
    assert body["jobs"] == []
    assert body["errors"][0]["name"] == "no-such-job-anywhere"
    assert body["errors"][0]["error"]["code"] == "job_not_found"
    for query in ({}, {"names": ""}, {"names": "a;b"}, {"names": ",".join(["a"] * 101)},
                  {"names": "a", "other": "1"}):  # fmt: skip
        status, body = await api("GET", "descriptions", **query)
        assert 400 <= status < 500, (query, body)
        assert set(body["error"]) == {"code", "message", "hint"}


async def test_list_refuses_a_describe_that_is_not_a_boolean(api):
    status, body = await api("GET", "jobs", describe="maybe")
    assert status == 400 and body["error"]["code"] == "invalid_query"


async def test_ssm_attach_after_the_list_makes_one_aws_call(api, standin, aws_calls):
    name = unique("one-call")
    standin.create_job(name, instance_count=2, remote_debug=True, started_ago=600)
    status, page = await api("GET", "jobs", name_contains=name)  # the sidebar's list
    assert status == 200 and page["jobs"][0]["remote_debug"] == {"enabled": True}
    aws_calls.clear()
    status, body = await api(
        "POST", "jobs", name, "hosts", "algo-2", "terminals", body={"transport": "ssm"}
    )
    assert status == 201, body
    assert aws_calls == ["start_session"]


async def test_the_list_readies_the_client_attach_calls_first(jp_serverapp, api):
    """The first Attach of a server's life need not load a boto3 model: the list has the
    SSM client (the default transport's) created on a worker thread."""
    aws = jp_serverapp.web_app.settings["sm_debug"].jobs.aws
    aws._clients.pop("ssm", None)
    aws._warmed = False
    status, _ = await api("GET", "jobs", name_contains=unique("warm"), describe="false")
    assert status == 200
    for _ in range(200):
        if "ssm" in aws._clients:
            break
        await asyncio.sleep(0.05)
    assert "ssm" in aws._clients


async def test_ssh_attach_with_a_known_announcement_makes_no_aws_call(
    api, standin, aws_calls, terminal_manager
):
    name = unique("zero-calls")
    standin.create_job(name, instance_count=1, started_ago=600)
    await api("GET", "jobs", name_contains=name)
    aws_calls.clear()
    path = ("POST", "jobs", name, "hosts", "algo-1", "terminals")
    status, body = await api(*path, body={"transport": "ssh"})
    assert status == 201, body
    assert "describe_training_job" not in aws_calls  # the list's description served
    assert "get_log_events" in aws_calls  # the first attach reads the announcement
    aws_calls.clear()
    status, body = await api(*path, body={"transport": "ssh"})
    assert status in (200, 201), body
    assert aws_calls == []


async def test_a_stale_cache_never_attaches_to_a_finished_job(api, standin, aws_calls):
    name = unique("stale")
    phases = {"starting": 20, "downloading": 20, "training": 60, "uploading": 20}
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=60,
                       schedule=phases)  # fmt: skip
    status, page = await api("GET", "jobs", name_contains=name)
    assert page["jobs"][0]["status"] == "InProgress"
    standin.advance(120)  # the job completes; the server's cache still says Training
    for transport in ("ssm", "ssh"):
        status, body = await api(
            "POST", "jobs", name, "hosts", "algo-1", "terminals", body={"transport": transport}
        )
        assert status == 409, body
        assert body["error"]["code"] == "not_attachable"
        assert "Completed" in body["error"]["message"], body


async def test_max_attempts_counts_the_first_attempt(api, standin, demo_jobs, jp_serverapp):
    attempts = jp_serverapp.web_app.settings["sm_debug"].jobs.config.max_attempts
    job = demo_jobs["llama-finetune"]
    standin.set_faults(throttle=attempts, throttle_action="DescribeTrainingJob")
    try:
        status, body = await api("GET", "jobs", job)
    finally:
        standin.set_faults(throttle=0, throttle_action=None)
    assert status == 429, body  # every attempt throttled: one more would have succeeded
    status, body = await api("GET", "jobs", job)
    assert status == 200, body


async def test_browsing_many_finished_jobs_keeps_their_rows_not_descriptions(
    api, standin, aws_calls, monkeypatch, jp_serverapp
):
    """Paging through an account describes every job once; the server then keeps each
    finished job's sidebar row (about 1.5 KiB), not its whole description (13 KiB here,
    more on AWS): the memory a server keeps grows by rows, and paging again costs the
    ListTrainingJobs calls alone."""
    import gc
    import tracemalloc

    from jupyter_sm_debug.jobs import cache

    monkeypatch.setattr(cache, "FINISHED_DESCRIPTIONS", 20)
    prefix = unique("browse")
    done = {"starting": 1, "downloading": 1, "training": 1, "uploading": 1}
    count = 600
    OLD = 400 * 86400  # the oldest jobs of the session's account: other tests list the newest
    standin.create_jobs(
        [{"name": f"{prefix}-{i:03d}", "started_ago": OLD + i, "schedule": done}
         for i in range(count)]
    )  # fmt: skip
    await api("GET", "jobs", name_contains="nothing-matches")  # the boto3 client exists
    service = jp_serverapp.web_app.settings["sm_debug"].jobs
    for _ in range(200):  # and the one the list readies for Attach, outside the measure
        if "ssm" in service.aws._clients:
            break
        await asyncio.sleep(0.05)

    async def browse() -> int:
        token, rows = None, 0
        while True:
            status, page = await api(
                "GET", "jobs", name_contains=prefix, max_results=100, describe="false",
                next_token=token,
            )  # fmt: skip
            assert status == 200, page
            names = [row["name"] for row in page["jobs"]]
            status, filled = await api("GET", "descriptions", names=",".join(names))
            assert status == 200 and not filled["errors"], filled
            rows += len(filled["jobs"])
            token = page["next_token"]
            if not token:
                return rows

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert await browse() == count
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert aws_calls.count("describe_training_job") == count
    assert kept < count * 4096, f"{kept / count:.0f} bytes kept per job"

    aws_calls.clear()
    assert await browse() == count
    assert set(aws_calls) == {"list_training_jobs"}
