"""What the panel shows beyond the job list (issue 11): instance types, elapsed and billable
time, the console link, a held job, Stop, and a host's logs page by page."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from held_jobs import FAILING, WRAPPED
from support import assert_error, failed_job, unique

from jupyter_sm_debug.jobs import console_url

# FAILING: fails 90 s after creation, then sm-debug-entrypoint holds it for an hour.


async def finished_job(api, status="Completed") -> dict:
    if status == "Failed":
        return await failed_job(api)
    _, page = await api("GET", "jobs", status=status)
    return page["jobs"][0]


# -- job rows ----------------------------------------------------------------------------


async def test_rows_carry_instance_types_times_and_a_console_link(api, demo_jobs, standin):
    async def row(name):
        _, page = await api("GET", "jobs", name_contains=name)
        return next(job for job in page["jobs"] if job["name"] == name)

    resnet = await row(demo_jobs["resnet50-ddp-4node"])
    assert resnet["instances"] == [{"type": "ml.p4d.24xlarge", "count": 4, "group": None}]
    assert resnet["billable_seconds"] is None  # still running
    region = standin.region
    assert resnet["console_url"] == (
        f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
        f"#/jobs/{resnet['name']}"
    )
    hetero = await row(demo_jobs["hetero-preprocess-train"])
    assert [(i["type"], i["count"], i["group"]) for i in hetero["instances"]] == [
        ("ml.c5.4xlarge", 1, "preproc"),
        ("ml.g5.12xlarge", 2, "train"),
    ]
    done = await finished_job(api)
    assert done["billable_seconds"] > 0 and done["training_seconds"] >= done["billable_seconds"]


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:training-job/a-1",
            "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/a-1",
        ),
        (
            "arn:aws-cn:sagemaker:cn-north-1:123456789012:training-job/a-1",
            "https://cn-north-1.console.amazonaws.cn/sagemaker/home?region=cn-north-1#/jobs/a-1",
        ),
        (
            "arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:training-job/a-1",
            "https://console.amazonaws-us-gov.com/sagemaker/home?region=us-gov-west-1#/jobs/a-1",
        ),
        ("arn:aws-iso:sagemaker:us-iso-east-1:123456789012:training-job/a-1", None),
        ("not an arn", None),
    ],
)
def test_console_url_follows_the_partition_and_region(arn, url):
    assert console_url({"TrainingJobArn": arn, "TrainingJobName": "a-1"}) == url


async def test_remote_debug_change_says_why_not(api, standin, demo_jobs):
    done = await finished_job(api)
    _, job = await api("GET", "jobs", done["name"])
    assert job["remote_debug_change"]["ok"] is False
    assert "Completed" in job["remote_debug_change"]["reason"]
    _, job = await api("GET", "jobs", demo_jobs["llama-finetune"])
    assert job["remote_debug_change"] == {"ok": True, "reason": ""}
    starting = unique("starting")
    standin.create_job(starting, started_ago=0)
    _, job = await api("GET", "jobs", starting)
    assert "Starting" in job["remote_debug_change"]["reason"]
    isolated = unique("isolated")
    standin.create_job(isolated, network_isolation=True, started_ago=120)
    _, job = await api("GET", "jobs", isolated)
    assert "network isolation" in job["remote_debug_change"]["reason"]


# -- a held job ----------------------------------------------------------------------------


async def test_a_held_job_says_since_when_until_when_and_why(api, standin):
    name = unique("held")
    standin.create_job(
        name,
        instance_count=2,
        schedule=FAILING,
        started_ago=90 + 60,  # failed a minute ago
        environment={"SM_DEBUG_HOLD_ON_FAILURE": "1800"},
        **WRAPPED,  # only a container that runs something that holds holds
    )
    standin.reconcile()
    status, job = await api("GET", "jobs", name)
    assert status == 200, job
    assert (job["status"], job["secondary_status"]) == ("InProgress", "Training")
    hold = job["hold"]
    assert hold is not None, job
    assert hold["hosts"] == ["algo-1", "algo-2"]
    assert hold["seconds"] == 1800
    from datetime import datetime

    since, until = datetime.fromisoformat(hold["since"]), datetime.fromisoformat(hold["until"])
    assert (until - since).total_seconds() == 1800
    assert abs(since.timestamp() - (standin.now() - 60)) < 5
    assert any("ZeroDivisionError" in line for line in hold["last_lines"]), hold
    assert not any(line.startswith("SM_DEBUG_HOLD") for line in hold["last_lines"])

    # The list does not read logs: only the expanded job (detail) has the hold.
    _, page = await api("GET", "jobs", name_contains=name)
    assert "hold" not in page["jobs"][0]


@pytest.mark.parametrize("describe", ["true", "false"])
async def test_the_failed_filter_shows_held_jobs_marked_held(api, standin, describe):
    """A held job failed but is InProgress on AWS: the Failed filter's first page lists it
    (marked held); a running job with a hold window that has not failed is not listed."""
    name = unique("heldfilter")
    standin.create_job(f"{name}-held", schedule=FAILING, started_ago=90 + 60,
                       environment={"SM_DEBUG_HOLD_ON_FAILURE": "1800"}, **WRAPPED)  # fmt: skip
    standin.create_job(f"{name}-running", schedule=FAILING, started_ago=30,
                       environment={"SM_DEBUG_HOLD_ON_FAILURE": "1800"}, **WRAPPED)  # fmt: skip
    standin.reconcile()
    status, page = await api("GET", "jobs", status="Failed", name_contains=name,
                             describe=describe)  # fmt: skip
    assert status == 200, page
    rows = {row["name"]: row for row in page["jobs"]}
    assert set(rows) == {f"{name}-held"}, page
    held = rows[f"{name}-held"]
    assert (held["status"], held["held"]) == ("InProgress", True)
    # The other filters are ListTrainingJobs' own.
    _, running = await api("GET", "jobs", status="InProgress", name_contains=name)
    assert {row["name"] for row in running["jobs"]} == {f"{name}-held", f"{name}-running"}
    assert not any(row.get("held") for row in running["jobs"])


async def test_a_running_or_finished_job_has_no_hold(api, demo_jobs):
    _, job = await api("GET", "jobs", demo_jobs["llama-finetune"])
    assert job["hold"] is None
    done = await finished_job(api, "Failed")
    _, job = await api("GET", "jobs", done["name"])
    assert job["hold"] is None


# -- stop --------------------------------------------------------------------------------


async def test_stop_a_running_job_then_again(api, standin):
    name = unique("stop")
    standin.create_job(name, started_ago=120)
    status, job = await api("POST", "jobs", name, "stop")
    assert status == 200, job
    assert (job["status"], job["secondary_status"]) == ("Stopping", "Stopping")
    status, body = await api("POST", "jobs", name, "stop")
    assert_error(status, body, 409, "wrong_state")
    assert "already stopping" in body["error"]["message"]
    standin.advance(30)
    _, job = await api("GET", "jobs", name)
    assert job["status"] == "Stopped"


async def test_stop_ends_a_hold(api, standin):
    name = unique("stopheld")
    standin.create_job(name, schedule=FAILING, started_ago=100,
                       environment={"SM_DEBUG_HOLD_ON_FAILURE": "1800"}, **WRAPPED)  # fmt: skip
    standin.reconcile()
    _, job = await api("GET", "jobs", name)
    assert job["hold"] is not None
    status, job = await api("POST", "jobs", name, "stop")
    assert status == 200 and job["status"] == "Stopping" and job["hold"] is None


async def test_stop_on_a_finished_job_is_409_with_the_reason(api):
    for state in ("Completed", "Failed", "Stopped"):
        done = await finished_job(api, state)
        status, body = await api("POST", "jobs", done["name"], "stop")
        assert_error(status, body, 409, "wrong_state")
        assert state in body["error"]["message"] and body["error"]["hint"]


async def test_stop_unknown_or_invalid_job(api):
    status, body = await api("POST", "jobs", "ghost-job", "stop")
    assert_error(status, body, 404, "job_not_found")
    status, body = await api("POST", "jobs", "bad_name!", "stop")
    assert_error(status, body, 400, "invalid_job_name")
    status, body = await api("GET", "jobs", "ghost-job", "stop")
    assert status in (404, 405) and "error" in body


def test_standin_stop_follows_aws_state_rules(standin, demo_jobs):
    """StopTrainingJob as AWS answers it: a finished job is a ValidationException, an
    unknown one ResourceNotFound."""
    client = boto3.client("sagemaker")
    done = next(
        job for job in client.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    )
    with pytest.raises(ClientError) as error:
        client.stop_training_job(TrainingJobName=done["TrainingJobName"])
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "Completed" in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:
        client.stop_training_job(TrainingJobName="ghost-job")
    assert error.value.response["Error"]["Code"] == "ResourceNotFound"


# -- logs ---------------------------------------------------------------------------------


async def read_all(api, job, host, stream="training", limit=5):
    """Every page from the start; returns (messages, last token)."""
    messages, token = [], None
    for _ in range(200):
        status, page = await api("GET", "jobs", job, "hosts", host, "logs",
                                 stream=stream, limit=limit, next_token=token)  # fmt: skip
        assert status == 200, page
        assert len(page["events"]) <= limit
        messages += [event["message"] for event in page["events"]]
        if not page["events"]:
            return messages, page["next_token"] or token
        token = page["next_token"]
    raise AssertionError("the log never ended")


async def test_logs_page_through_a_host_stream_and_follow_new_lines(api, standin):
    name = unique("logs")
    standin.create_job(name, instance_count=2, started_ago=300)
    standin.reconcile()
    messages, token = await read_all(api, name, "algo-2")
    assert any("Current host: algo-2" in m for m in messages), messages
    assert len(messages) > 5  # more than one page
    status, page = await api("GET", "jobs", name, "hosts", "algo-2", "logs")
    assert page["stream"] == standin.log_stream(name, "algo-2")
    assert [e["message"] for e in page["events"]] == messages
    assert all(isinstance(e["timestamp"], int) for e in page["events"])

    standin.put_log_lines(name, "algo-2", ["a new line"])
    status, page = await api("GET", "jobs", name, "hosts", "algo-2", "logs", next_token=token)
    assert [e["message"] for e in page["events"]] == ["a new line"]


async def test_logs_of_the_ssm_stream_and_of_a_host_without_logs(api, standin):
    name = unique("ssmlogs")
    standin.create_job(name, started_ago=300)
    standin.reconcile()
    status, page = await api("GET", "jobs", name, "hosts", "algo-1", "logs", stream="ssm")
    assert status == 200 and page == {"events": [], "next_token": None, "stream": None}
    standin.put_log_lines(name, "algo-1", ["Session started"], suffix="/ssm")
    status, page = await api("GET", "jobs", name, "hosts", "algo-1", "logs", stream="ssm")
    assert [e["message"] for e in page["events"]] == ["Session started"]
    assert page["stream"].endswith("/ssm")

    starting = unique("nologs")
    standin.create_job(starting, started_ago=0)
    status, page = await api("GET", "jobs", starting, "hosts", "algo-1", "logs")
    assert status == 200 and page["events"] == [] and page["next_token"] is None


async def test_logs_of_a_finished_job(api):
    done = await finished_job(api)
    messages, _ = await read_all(api, done["name"], "algo-1", limit=100)
    assert any("Reporting training SUCCESS" in m for m in messages), messages


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"stream": "kernel"}, "invalid_stream"),
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "10001"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"next_token": "f/123"}, "invalid_next_token"),
        ({"next_token": "12:../../other-job"}, "invalid_next_token"),
        ({"next_token": ""}, None),
        ({"follow": "1"}, "invalid_query"),
    ],
)
async def test_logs_reject_bad_queries(api, demo_jobs, query, code):
    status, body = await api("GET", "jobs", demo_jobs["llama-finetune"], "hosts", "algo-1",
                             "logs", **query)  # fmt: skip
    if code is None:
        assert status == 200, body  # an empty token is no token
    else:
        assert_error(status, body, 400, code)


async def test_logs_of_unknown_jobs_hosts_and_streams(api, demo_jobs):
    job = demo_jobs["llama-finetune"]
    status, body = await api("GET", "jobs", "ghost-job", "hosts", "algo-1", "logs")
    assert_error(status, body, 404, "job_not_found")
    status, body = await api("GET", "jobs", job, "hosts", "algo-2", "logs")
    assert_error(status, body, 404, "host_not_found")
    status, body = await api("GET", "jobs", job, "hosts", "algo-0", "logs")
    assert_error(status, body, 400, "invalid_host_name")
    token = "1:f/" + "0" * 56  # a stream epoch no container of this host had
    status, body = await api("GET", "jobs", job, "hosts", "algo-1", "logs", next_token=token)
    assert_error(status, body, 404, "log_stream_not_found")


async def test_logs_token_that_cloudwatch_does_not_know_is_400(api, demo_jobs, standin):
    job = demo_jobs["llama-finetune"]
    epoch = standin.log_stream(job, "algo-1").rsplit("-", 1)[1]
    for junk in ("abc", "f/99999999999999999999999999999999999999999999999999999999"):
        status, body = await api("GET", "jobs", job, "hosts", "algo-1", "logs",
                                 next_token=f"{epoch}:{junk}")  # fmt: skip
        assert status in (200, 400), body
        if status == 400:
            assert_error(status, body, 400, "invalid_next_token")


async def test_a_refusal_names_the_status_once(api):
    done = await finished_job(api)
    flip = {"enabled": not done["remote_debug"]["enabled"]}  # a change, not a no-op
    status, body = await api("PUT", "jobs", done["name"], "remote-debug", body=flip)
    assert_error(status, body, 409, "wrong_state")
    assert "Completed (Completed)" not in body["error"]["message"]
    assert body["error"]["message"].endswith("is Completed.")
