"""An open kernel keeps a held container held (a person's session), and shutting it down
counts like closing a terminal: the hold ends when it was the last session."""

from __future__ import annotations

import asyncio

import pytest
from held_jobs import FAILING, FAILS_AFTER, WRAPPED, hold_env
from support import unique

from jupyter_sm_debug.standin import hosts

from .conftest import run_cell


def phase(sm, name: str) -> tuple[str, str]:
    job = sm.describe_training_job(TrainingJobName=name)
    return job["TrainingJobStatus"], job["SecondaryStatus"]


def messages(standin, job: str, host: str) -> list[str]:
    import boto3

    events = boto3.client("logs").get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=standin.log_stream(job, host),
        startFromHead=True,
    )["events"]
    return [event["message"] for event in events]


@pytest.fixture
def sm(standin):
    import boto3

    return boto3.client("sagemaker")


async def test_a_kernel_keeps_a_held_host_held_until_it_is_shut_down(
    standin, sm, jp_fetch, jp_serverapp, kernel_of
):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = unique("kernhold")
    standin.create_job(name, schedule=FAILING, environment=hold_env(600), remote_debug=True,
                       started_ago=FAILS_AFTER + 30, **WRAPPED)  # fmt: skip
    live = standin.backends.hosts.get(standin.region, name, "algo-1")
    # A held job's SSH address is configured, not read from its log (issue 22, finding 10).
    addr, port = standin.host_address(name, "algo-1")
    key = " ".join(standin.backends.hosts.ssh.host_key.with_suffix(".pub").read_text().split()[:2])
    config = jp_serverapp.web_app.settings["sm_debug"].config
    config.ssh_addresses = {name: {"algo-1": {"address": f"{addr}:{port}", "host_key": key}}}

    def sessions() -> int:
        return hosts._ssh_sessions([live]).get(live.token, 0)

    async def until(condition, what: str) -> None:
        for _ in range(300):
            if condition():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(what)

    standin.reconcile()
    assert phase(sm, name) == ("InProgress", "Training")
    answer, client = await kernel_of(name, "algo-1", "ssh")
    assert (await run_cell(client, "1 + 1")).results[0]["text/plain"] == "2"
    await until(lambda: sessions() == 1, "the kernel's session never showed")
    standin.reconcile()
    assert phase(sm, name) == ("InProgress", "Training")

    await jp_fetch("api", "kernels", answer["kernel"]["id"], method="DELETE")
    await until(lambda: sessions() == 0, "the kernel's session outlived it")
    for _ in range(100):
        standin.reconcile()
        if phase(sm, name) == ("Failed", "Failed"):
            break
        await asyncio.sleep(0.1)
    assert phase(sm, name) == ("Failed", "Failed")
    assert "[sm-debug] hold ended (last session closed); exiting with 1" in messages(
        standin, name, "algo-1"
    )
