"""The stand-in's containers run as under sm-debug-entrypoint: a failed job with a hold window
stays Training (and attachable) until the window ends, it is released, or its last debug
session closes; a "Debug a copy" job fails the way its original did, then holds."""

from __future__ import annotations

import subprocess
import time

import pytest
from held_jobs import FAILING, FAILS_AFTER, REASON, WRAPPED, hold_env
from support import unique
from test_standin import SSH_OPTIONS, client

from jupyter_sm_debug import hold
from jupyter_sm_debug.connect.ssh import first_announcement
from jupyter_sm_debug.jobs import debug_copy_request
from jupyter_sm_debug.standin import StandIn, hosts
from jupyter_sm_debug.standin.core import byoc_image
from jupyter_sm_debug.standin.sagemaker import (
    COPY_MAX_DOWNLOADING,
    COPY_MAX_STARTING,
    COPY_MAX_TRAINING_UNTIL_FAILURE,
)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def ssh(standin: StandIn, job: str, host: str, command: str) -> subprocess.CompletedProcess:
    addr, port = standin.host_address(job, host)
    argv = ["ssh", "-i", standin.client_key_path, "-p", str(port), *SSH_OPTIONS,
            f"{standin.ssh_user}@{addr}", command]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def messages(standin: StandIn, job: str, host: str) -> list[str]:
    stream = standin.log_stream(job, host)
    assert stream, (job, host)
    events = client(standin, "logs").get_log_events(
        logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True
    )["events"]
    return [event["message"] for event in events]


def phase(sm, name: str) -> tuple[str, str]:
    """(status, secondary) from Describe, checked against List's summary."""
    job = sm.describe_training_job(TrainingJobName=name)
    listed = sm.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [(s["TrainingJobStatus"], s["SecondaryStatus"]) for s in listed] == [
        (job["TrainingJobStatus"], job["SecondaryStatus"])
    ]
    return job["TrainingJobStatus"], job["SecondaryStatus"]


def needs_sshd(standin: StandIn) -> None:
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    server = StandIn(root=tmp_path_factory.mktemp("standin-hold"), clock="manual")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sm(standin):
    return client(standin)


def held_job(standin: StandIn, prefix: str, hold: float = 600, into_hold: float = 30, **kw):
    """A job whose training command failed ``into_hold`` seconds ago, held ``hold`` s."""
    name = unique(prefix)
    standin.create_job(name, schedule=FAILING, environment=hold_env(hold),
                       started_ago=FAILS_AFTER + into_hold, **{**WRAPPED, **kw})  # fmt: skip
    return name


# -- the timeline ----------------------------------------------------------------------------


def test_a_failed_job_stays_training_for_its_hold_window_then_fails(standin, sm):
    name = unique("hold")
    standin.create_job(name, schedule=FAILING, environment=hold_env(300), **WRAPPED)
    created = sm.describe_training_job(TrainingJobName=name)["CreationTime"].timestamp()
    walk = [
        (25, ("InProgress", "Downloading")),
        (40, ("InProgress", "Training")),
        (30, ("InProgress", "Training")),  # the command failed 5 s ago: held
        (290, ("InProgress", "Training")),  # 5 s of the hold left
        (10, ("Failed", "Failed")),
    ]
    for seconds, expected in walk:
        standin.advance(seconds)
        assert phase(sm, name) == expected, seconds
        job = sm.describe_training_job(TrainingJobName=name)
        assert ("FailureReason" in job) == (expected[0] == "Failed")
    assert job["FailureReason"] == REASON
    assert job["TrainingEndTime"].timestamp() == pytest.approx(created + FAILS_AFTER + 300)
    transitions = job["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Failed"]
    assert transitions[2]["EndTime"].timestamp() == pytest.approx(created + FAILS_AFTER + 300)
    assert standin.host_address(name, "algo-1") is None  # the containers are gone
    lines = messages(standin, name, "algo-1")
    assert "[sm-debug] hold ended (hold window over); exiting with 1" in lines


def test_only_what_the_container_runs_holds(standin, sm):
    """sm-debug-entrypoint holds (its hyperparameter too); the wrapper holds; a job that
    runs the image's own command fails and ends, whatever its environment says."""
    by_hyperparameter = unique("hp")
    standin.create_job(by_hyperparameter, schedule=FAILING, started_ago=FAILS_AFTER + 5,
                       container_entrypoint=["sm-debug-entrypoint", "--", "train"],
                       hyperparameters={"sm_debug_hold_on_failure": '"60"'})  # fmt: skip
    wrapped = unique("wrapped")
    standin.create_job(wrapped, schedule=FAILING, started_ago=FAILS_AFTER + 5,
                       environment=hold_env(60), **WRAPPED)  # fmt: skip
    no_hold = unique("nohold")
    standin.create_job(no_hold, schedule=FAILING, started_ago=FAILS_AFTER + 5)
    plain = unique("plain")  # the variable alone: the DLC's command does not hold
    standin.create_job(plain, schedule=FAILING, started_ago=FAILS_AFTER + 5,
                       environment=hold_env(60))  # fmt: skip
    byoc = unique("byoc")
    standin.create_job(byoc, schedule=FAILING, started_ago=FAILS_AFTER + 5,
                       environment=hold_env(60), image=byoc_image(standin.region))  # fmt: skip
    forged = unique("forged")  # something named like the wrapper is not the wrapper
    lookalike = ["/bin/sh", "-c", "exit 1", "sm-debug-hold"]
    standin.create_job(forged, schedule=FAILING, started_ago=FAILS_AFTER + 5,
                       environment=hold_env(60), container_entrypoint=lookalike)  # fmt: skip
    assert phase(sm, by_hyperparameter) == ("InProgress", "Training")
    assert phase(sm, wrapped) == ("InProgress", "Training")
    for ended in (no_hold, plain, byoc, forged):
        assert phase(sm, ended) == ("Failed", "Failed"), ended
    standin.advance(60)
    assert phase(sm, by_hyperparameter) == ("Failed", "Failed")


def test_stopping_a_held_job_stops_it(standin, sm):
    name = held_job(standin, "stophold")
    sm.stop_training_job(TrainingJobName=name)
    assert phase(sm, name) == ("Stopping", "Stopping")
    standin.advance(10)
    assert phase(sm, name) == ("Stopped", "Stopped")
    lines = messages(standin, name, "algo-1")
    assert "[sm-debug] hold ended (stopped); exiting with 1" in lines


# -- attaching to a held host ------------------------------------------------------------------


def test_a_held_host_is_attachable_and_announces_itself_in_its_log(standin, sm):
    needs_sshd(standin)
    name = held_job(standin, "attach", instance_count=2, remote_debug=True)
    assert phase(sm, name) == ("InProgress", "Training")
    result = ssh(standin, name, "algo-2", "echo $SM_CURRENT_HOST $SM_DEBUG_HOLD_ON_FAILURE")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["algo-2", "600"]

    lines = messages(standin, name, "algo-2")
    assert "SM_DEBUG_HOLD host=algo-2 seconds=600 code=1" in lines
    held = next(i for i, line in enumerate(lines) if line.startswith("[sm-debug] training"))
    assert "training command failed with exit code 1; holding" in lines[held]
    assert "Traceback (most recent call last):" in lines[:held]
    assert "ZeroDivisionError: division by zero" in lines[:held]
    # Address discovery finds the host by itself, as the extension does from CloudWatch.
    events = [{"message": line} for line in lines]
    found = first_announcement(events, "algo-2")
    assert (found.addr, found.port) == standin.host_address(name, "algo-2")
    # Remote debug is on: SSM reaches the held container too.
    session = client(standin, "ssm").start_session(Target=f"sagemaker-training-job:{name}_algo-2")
    assert session["SessionId"] and session["StreamUrl"].startswith("ws")


def test_releasing_the_hold_from_inside_the_host_fails_the_job_at_the_next_reconcile(standin, sm):
    needs_sshd(standin)
    name = held_job(standin, "release", instance_count=2)
    result = ssh(standin, name, "algo-1", "sm-debug-entrypoint --release && echo released")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["released"]
    assert phase(sm, name) == ("InProgress", "Training")  # nothing moved yet: manual clock
    standin.reconcile()
    released_at = standin.now()
    assert phase(sm, name) == ("Failed", "Failed")
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["FailureReason"] == REASON
    assert job["TrainingEndTime"].timestamp() == pytest.approx(released_at, abs=0.01)
    for host in ("algo-1", "algo-2"):
        assert standin.host_address(name, host) is None
    assert "[sm-debug] hold ended (released); exiting with 1" in messages(standin, name, "algo-2")


def test_a_release_file_touched_before_the_failure_does_not_count(standin, sm):
    name = unique("stale")
    standin.create_job(name, schedule=FAILING, environment=hold_env(600), **WRAPPED,
                       started_ago=FAILS_AFTER - 10)  # fmt: skip
    env, _ = standin.host_env(name, "algo-1")
    open(env["SM_DEBUG_RELEASE_FILE"], "a").close()  # during training: stale at the failure
    standin.advance(20)
    standin.reconcile()
    assert phase(sm, name) == ("InProgress", "Training")
    open(env["SM_DEBUG_RELEASE_FILE"], "a").close()
    standin.reconcile()
    assert phase(sm, name) == ("Failed", "Failed")


def test_the_hold_ends_when_the_last_debug_session_closes(standin, sm):
    needs_sshd(standin)
    name = held_job(standin, "lastsession")
    live = standin.backends.hosts.get(standin.region, name, "algo-1")

    def sessions() -> int:
        return hosts._ssh_sessions([live]).get(live.token, 0)

    standin.reconcile()
    assert sessions() == 0 and phase(sm, name) == ("InProgress", "Training")
    addr, port = standin.host_address(name, "algo-1")
    session = subprocess.Popen(
        ["ssh", "-i", standin.client_key_path, "-p", str(port), *SSH_OPTIONS,
         f"{standin.ssh_user}@{addr}", "sleep 60"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while sessions() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sessions() == 1
        standin.reconcile()  # sees the session
        assert phase(sm, name) == ("InProgress", "Training")
    finally:
        session.terminate()
        session.wait(timeout=10)
    deadline = time.monotonic() + 10
    while sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    standin.reconcile()  # no session left
    assert phase(sm, name) == ("Failed", "Failed")
    assert "[sm-debug] hold ended (last session closed); exiting with 1" in messages(
        standin, name, "algo-1"
    )


def test_on_the_real_clock_a_release_ends_the_hold_within_a_second(tmp_path):
    server = StandIn(root=tmp_path, clock="real")
    server.start()
    try:
        needs_sshd(server)
        sm = client(server)
        schedule = {"starting": 0.5, "downloading": 0.2, "training": 0.5, "outcome": "Failed"}
        server.create_job("realhold", schedule=schedule, environment=hold_env(120), **WRAPPED)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            stream = server.log_stream("realhold", "algo-1")
            if stream and any(m.startswith("SM_DEBUG_HOLD ") for m in
                              messages(server, "realhold", "algo-1")):  # fmt: skip
                break
            time.sleep(0.1)
        assert phase(sm, "realhold") == ("InProgress", "Training")
        result = ssh(server, "realhold", "algo-1", "sm-debug-entrypoint --release")
        assert result.returncode == 0, result.stderr
        released = time.monotonic()
        while phase(sm, "realhold")[0] != "Failed" and time.monotonic() < released + 5:
            time.sleep(0.05)
        assert phase(sm, "realhold") == ("Failed", "Failed")
        assert time.monotonic() - released < 1.5
    finally:
        server.stop()


# -- debug copies ------------------------------------------------------------------------------


def test_a_debug_copy_fails_like_its_original_and_then_holds(standin, sm):
    needs_sshd(standin)
    original = unique("orig")
    slow = {"starting": 300, "downloading": 200, "training": 1200, "outcome": "Failed",
            "failure_reason": REASON}  # fmt: skip
    standin.create_job(original, schedule=slow, started_ago=2000, remote_debug=False)
    assert phase(sm, original) == ("Failed", "Failed")
    copy = unique("orig-debug")
    # The request the extension's "Debug a copy" sends: the DLC's command, wrapped.
    description = sm.describe_training_job(TrainingJobName=original)
    plan = hold.plan(
        description["AlgorithmSpecification"], hold.read_image_config(client(standin, "ecr"))
    )
    assert plan["possible"] and plan["command"] == "bash -m start_with_right_hostname.sh train"
    request = debug_copy_request(description, copy, hold_seconds=120, hold_plan=plan)
    sm.create_training_job(**request)
    created = sm.describe_training_job(TrainingJobName=copy)
    assert created["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
    start = created["CreationTime"].timestamp()
    # The demo compresses time: Training within 40 s, the failure a minute later.
    assert (COPY_MAX_STARTING, COPY_MAX_DOWNLOADING, COPY_MAX_TRAINING_UNTIL_FAILURE) == (
        20, 20, 60
    )  # fmt: skip
    assert phase(sm, copy) == ("InProgress", "Starting")
    standin.advance(21)
    assert phase(sm, copy) == ("InProgress", "Downloading")
    standin.advance(20)
    assert phase(sm, copy) == ("InProgress", "Training")
    standin.advance(70)  # the command failed 11 s ago: held, attachable
    assert phase(sm, copy) == ("InProgress", "Training")
    assert "SM_DEBUG_HOLD host=algo-1 seconds=120 code=1" in messages(standin, copy, "algo-1")
    result = ssh(standin, copy, "algo-1", "echo $TRAINING_JOB_NAME")
    assert result.returncode == 0 and result.stdout.strip() == copy, result.stderr
    standin.advance(110)
    job = sm.describe_training_job(TrainingJobName=copy)
    assert (job["TrainingJobStatus"], job["FailureReason"]) == ("Failed", REASON)
    assert job["TrainingEndTime"].timestamp() == pytest.approx(start + 40 + 60 + 120)


def test_a_copy_with_its_own_schedule_or_an_unknown_original_does_not_inherit(standin, sm):
    original = unique("orig2")
    standin.create_job(original, schedule=FAILING, started_ago=1000)
    own = unique("own")
    standin.create_job(own, tags=[{"Key": "sm-debug:copy-of", "Value": original}],
                       schedule={"training": 5000})  # fmt: skip
    orphan = unique("orphan")
    standin.create_job(orphan, tags=[{"Key": "sm-debug:copy-of", "Value": "no-such-job"}])
    standin.advance(200)
    assert phase(sm, own) == ("InProgress", "Training")
    assert phase(sm, orphan) == ("InProgress", "Training")


def test_a_copy_of_a_job_that_lost_a_host_loses_it_too(standin, sm):
    original = unique("lostorig")
    standin.create_job(original, started_ago=100)
    standin.kill_host(original, "algo-1")
    reason = sm.describe_training_job(TrainingJobName=original)["FailureReason"]
    copy = unique("lostcopy")
    standin.create_job(copy, tags=[{"Key": "sm-debug:copy-of", "Value": original}],
                       environment=hold_env(30), **WRAPPED)  # fmt: skip
    standin.advance(20 + 10 + 60 + 5)  # lost 70 s into training; a copy fails within 60
    assert phase(sm, copy) == ("InProgress", "Training")  # held
    standin.advance(30)
    job = sm.describe_training_job(TrainingJobName=copy)
    assert (job["TrainingJobStatus"], job["FailureReason"]) == ("Failed", reason)


# -- the demo ------------------------------------------------------------------------------


def test_the_demo_has_a_crashed_job_held_for_attaching(tmp_path):
    server = StandIn(root=tmp_path, clock="manual", seed="demo")
    server.start()
    try:
        sm = client(server)
        name = server.seeded_jobs["gpt2-pretrain-ddp"]
        assert name.startswith("gpt2-pretrain-ddp-")
        # Its program (demo_code.py) fails at its first evaluation; the hold wrapper holds.
        deadline = time.monotonic() + 120
        for host in ("algo-1", "algo-2"):
            while f"SM_DEBUG_HOLD host={host} seconds=3600 code=1" not in messages(
                server, name, host
            ):
                assert time.monotonic() < deadline, messages(server, name, host)
                time.sleep(0.5)
            assert any("FileNotFoundError" in line for line in messages(server, name, host))
        job = sm.describe_training_job(TrainingJobName=name)
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("InProgress", "Training")
        assert job["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
        assert job["ResourceConfig"]["InstanceCount"] == 2
        assert "FailureReason" not in job
        mistral = server.seeded_jobs["mistral-7b-sft"]
        while phase(sm, mistral) != ("Failed", "Failed"):  # out of memory after 3 steps
            assert time.monotonic() < deadline, phase(sm, mistral)
            time.sleep(0.5)
        expected = {
            "bert-base-sentiment": ("Completed", "Completed"),
            "whisper-asr-finetune": ("Stopped", "Stopped"),
            "sdxl-lora-dreambooth": ("InProgress", "Starting"),
            "llama-finetune": ("InProgress", "Training"),
        }
        for prefix, state in expected.items():
            assert phase(sm, server.seeded_jobs[prefix]) == state, prefix
        if not server.sshd_missing_hint:
            result = ssh(server, name, "algo-1", "ls $SM_INPUT_DIR/data; echo $SM_CURRENT_HOST")
            assert result.returncode == 0, result.stderr
            assert result.stdout.split() == ["train", "algo-1"]  # no validation channel
        # The hold is the wrapper's, in real time: released, its containers exit with the
        # command's code and the job fails with the toolkit's reason.
        for host in ("algo-1", "algo-2"):
            server._live(name, host, None).release_file.touch()
        while sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] != "Failed":
            assert time.monotonic() < deadline + 60
            time.sleep(0.5)
        job = sm.describe_training_job(TrainingJobName=name)
        assert "FileNotFoundError" in job["FailureReason"]
        deadline = time.monotonic() + 30
        while server.host_address(name, "algo-1") is not None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        server.stop()
