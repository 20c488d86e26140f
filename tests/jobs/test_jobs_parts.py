"""The parts of JobsService without AWS: the one log reader's stream rule, decisions made by
AWS's error code (never by the message's words), and the SSH trust store forgotten with the
job. A fake `aws.call` answers; every real round trip is in test_round_trips and the API
tests."""

from __future__ import annotations

import logging

import pytest

from jupyter_sm_debug import logs
from jupyter_sm_debug.config import SMDebug
from jupyter_sm_debug.connect.ssh_trust import SSHTrust
from jupyter_sm_debug.errors import SMDebugError
from jupyter_sm_debug.jobs import JobsService

JOB = "train-1"


def stream(name: str, created: int) -> dict:
    return {"logStreamName": f"{JOB}/{name}", "creationTime": created}


def test_the_current_stream_is_the_newest_by_creation_time_not_by_the_name():
    """A stream named with a forged future epoch stops being current once the host's real
    container starts again (by name it would stay current for good)."""
    streams = [
        stream("algo-1-1700000000", 1_000),
        stream("algo-1-99999999999", 2_000),  # made by someone with CreateLogStream
        stream("algo-1-1700000500", 3_000),  # the container's restart
        stream("algo-1-1700000500/ssm", 3_100),
        stream("algo-1-spoofed", 9_000),
        stream("algo-2-1700000000", 1_000),
        stream("algo-2-1700000001", 1_000),  # the same millisecond: the epoch decides
        {"logStreamName": "other-job/algo-1-1800000000", "creationTime": 9_999},
    ]
    assert logs.newest_streams(streams, JOB) == {
        ("algo-1", "training"): f"{JOB}/algo-1-1700000500",
        ("algo-1", "ssm"): f"{JOB}/algo-1-1700000500/ssm",
        ("algo-2", "training"): f"{JOB}/algo-2-1700000001",
    }


class FakeAWS:
    """Answers `call` from a table of operation -> answer (a dict, or an error to raise)."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[tuple[str, dict]] = []

    async def call(self, service: str, operation: str, **params) -> dict:
        self.calls.append((operation, params))
        answer = self.answers[operation]
        if isinstance(answer, BaseException):
            raise answer
        return answer(params) if callable(answer) else answer


def aws_error(aws_code: str, message: str, status: int = 400) -> SMDebugError:
    return SMDebugError(status, "aws_error", message, "", aws_code=aws_code)


async def test_the_reader_finds_a_hosts_stream_across_pages_and_no_group_is_no_stream():
    pages = {
        None: {"logStreams": [stream("algo-1-1700000000", 1)], "nextToken": "p2"},
        "p2": {"logStreams": [stream("algo-1-1700000100", 2)]},
    }
    fake = FakeAWS({"describe_log_streams": lambda params: pages[params.get("nextToken")]})
    reader = logs.LogReader(fake)
    assert await reader.current(JOB, "algo-1") == f"{JOB}/algo-1-1700000100"
    assert fake.calls[0][1]["logStreamNamePrefix"] == f"{JOB}/algo-1-"
    assert fake.calls[0][1]["logGroupName"] == logs.LOG_GROUP
    gone = FakeAWS({"describe_log_streams": aws_error("ResourceNotFoundException", "x", 404)})
    assert await logs.LogReader(gone).streams(JOB) == {}
    # The words "not found" in another failure are not a missing group.
    denied = FakeAWS({"describe_log_streams": aws_error("AccessDeniedException", "not found")})
    with pytest.raises(SMDebugError) as raised:
        await logs.LogReader(denied).streams(JOB)
    assert raised.value.aws_code == "AccessDeniedException"


@pytest.mark.parametrize(
    ("aws_code", "message", "code"),
    [
        ("InvalidParameterException", "The specified nextToken is invalid.", "invalid_next_token"),
        (
            "ResourceNotFoundException",
            "The specified log stream does not exist.",
            "log_stream_not_found",
        ),  # fmt: skip
        ("ThrottlingException", "InvalidParameterException not found", "aws_error"),
    ],
)
async def test_a_log_page_decides_by_the_aws_code(aws_code, message, code):
    fake = FakeAWS({"get_log_events": aws_error(aws_code, message)})
    with pytest.raises(SMDebugError) as raised:
        await logs.LogReader(fake).page(JOB, "algo-1", "training", "1700000000:f/123", 10)
    assert raised.value.code == code
    assert fake.calls[0][1]["logStreamName"] == f"{JOB}/algo-1-1700000000"


def service(answers: dict) -> JobsService:
    jobs = JobsService(SMDebug(), logging.getLogger("test"))
    jobs.aws.call = FakeAWS(answers).call
    return jobs


@pytest.mark.parametrize(
    ("aws_code", "message", "code"),
    [
        ("ValidationException", "Requested resource not found.", "job_not_found"),
        ("ValidationException", "Something else AWS words differently.", "job_not_found"),
        ("ResourceNotFound", "Could not find it", "job_not_found"),
        ("AccessDeniedException", "not found", "aws_error"),  # words decide nothing
    ],
)
async def test_describe_decides_not_found_by_the_aws_code(aws_code, message, code):
    jobs = service({"describe_training_job": aws_error(aws_code, message)})
    try:
        with pytest.raises(SMDebugError) as raised:
            await jobs.describe(JOB)
        assert raised.value.code == code
    finally:
        jobs.close()


async def test_stop_that_aws_refuses_for_the_state_is_409():
    running = {"TrainingJobName": JOB, "TrainingJobStatus": "InProgress"}
    jobs = service(
        {
            "describe_training_job": running,
            "stop_training_job": aws_error("ValidationException", "The job is Completed."),
        }
    )
    try:
        with pytest.raises(SMDebugError) as raised:
            await jobs.stop_job(JOB)
        assert (raised.value.status, raised.value.code) == (409, "wrong_state")
    finally:
        jobs.close()


def test_the_trust_store_forgets_a_host_a_target_and_a_job():
    trust = SSHTrust()
    trust.remember(JOB, "algo-1", "target-a")
    trust.mark_verified(JOB, "algo-1", "target-a")
    trust.remember("other", "algo-1", "target-b")
    assert trust.target(JOB, "algo-1") == "target-a"
    assert trust.verified(JOB, "algo-1", "target-a")
    trust.forget(JOB, "algo-1", "target-z")  # not the one remembered: kept
    assert trust.target(JOB, "algo-1") == "target-a"
    trust.refused(JOB, "algo-1", "target-a")
    assert trust.target(JOB, "algo-1") is None
    assert not trust.verified(JOB, "algo-1", "target-a")
    trust.remember(JOB, "algo-2", "target-c")
    trust.mark_verified(JOB, "algo-2", "target-c")
    trust.forget_job(JOB)
    assert trust.target(JOB, "algo-2") is None
    assert not trust.verified(JOB, "algo-2", "target-c")
    assert trust.target("other", "algo-1") == "target-b"


async def test_a_job_seen_finished_leaves_no_ssh_trust_behind():
    answers = {"describe_training_job": {"TrainingJobName": JOB, "TrainingJobStatus": "InProgress"}}
    jobs = service(answers)
    try:
        jobs.ssh_trust.remember(JOB, "algo-1", "target")
        jobs.ssh_trust.mark_verified(JOB, "algo-1", "target")
        await jobs.describe(JOB, fresh=True)
        assert jobs.ssh_trust.target(JOB, "algo-1") == "target"
        answers["describe_training_job"] = {"TrainingJobName": JOB, "TrainingJobStatus": "Failed"}
        await jobs.describe(JOB, fresh=True)
        assert jobs.ssh_trust.target(JOB, "algo-1") is None
        assert not jobs.ssh_trust.verified(JOB, "algo-1", "target")
    finally:
        jobs.close()
