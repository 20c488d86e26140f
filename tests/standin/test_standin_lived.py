"""Issue 24: a job that brings its own code lives: its hosts run it as PID 1, with its
inputs, and its status, failure reason and log stream come from that process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import time
import uuid

import pytest

from jupyter_sm_debug.standin import StandIn
from jupyter_sm_debug.standin.core import dlc_image

pytestmark = pytest.mark.timeout(180)

BUCKET = "sagemaker-us-east-1-123456789012"


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def source_tar(files: dict) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for name, text in files.items():
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return data.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with StandIn(root=tmp_path_factory.mktemp("lived"), clock="manual") as standin:
        standin.start()
        standin.stop_grace = 3
        yield standin


def s3(server):
    return server.client("s3")


def script_job(server, script: str, *, hyperparameters=None, extra=None, data=None) -> str:
    name = f"lived-{uuid.uuid4().hex[:10]}"
    client = s3(server)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    key = f"{name}/source/sourcedir.tar.gz"
    client.put_object(Bucket=BUCKET, Key=key, Body=source_tar({"train.py": script}))
    for path, text in (data or {}).items():
        client.put_object(Bucket=BUCKET, Key=f"{name}/data/{path}", Body=text.encode())
    hps = {
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/{key}"),
        **(hyperparameters or {}),
    }
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": dlc_image(server.region),
                                   "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/service-role/SageMakerExecutionRole",
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                           "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": hps,
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/data",
            "S3DataDistributionType": "FullyReplicated"}}}],
        **(extra or {}),
    }  # fmt: skip
    server.client("sagemaker").create_training_job(**request)
    server.advance(60)  # past Starting and Downloading: the container starts
    return name


def ended(server, name):
    job = server.client("sagemaker").describe_training_job(TrainingJobName=name)
    return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None


def stream_text(server, name) -> str:
    logs = server.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name + "/"
    )["logStreams"]
    return "\n".join(
        event["message"]
        for stream in streams
        for event in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"]
        )["events"]
    )


FAILING = """
import os, sys
print("MARKER-24 pid", os.getpid(), "args", sys.argv[1:], flush=True)
print(open("/opt/ml/input/data/training/rows.csv").read().strip(), flush=True)
sys.exit(3)
"""


def test_a_failing_script_fails_the_job_with_the_toolkits_reason(server):
    name = script_job(server, FAILING, hyperparameters={"epochs": "2"},
                      data={"rows.csv": "a,b"})  # fmt: skip
    job = wait_for(lambda: ended(server, name), what="the job to end")
    assert job["TrainingJobStatus"] == "Failed", job
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 3\n"), reason
    assert reason.endswith(", exit code: 1"), reason
    text = wait_for(lambda: (lambda t: t if "Reporting training FAILURE" in t else "")(
        stream_text(server, name)), what="the log")  # fmt: skip
    assert "MARKER-24" in text and "['--epochs', '2']" in text
    assert "a,b" in text  # the channel came from S3
    assert "step 50 loss" not in text  # no stand-in program in its place


def test_the_same_script_exiting_zero_completes(server):
    name = script_job(server, "print('MARKER-OK', flush=True)\n")
    server.advance(0)
    wait_for(lambda: "Uploading" in [t["Status"] for t in server.client(
        "sagemaker").describe_training_job(TrainingJobName=name)["SecondaryStatusTransitions"]],
        what="uploading")  # fmt: skip
    server.advance(60)
    job = wait_for(lambda: ended(server, name), what="the job to end")
    assert job["TrainingJobStatus"] == "Completed", job
    assert "MARKER-OK" in stream_text(server, name)


SLEEPER = """
import signal, sys, time
def bye(*_):
    print("MARKER-TERM", flush=True)
    sys.exit(0)
if "--handle" in sys.argv:
    signal.signal(signal.SIGTERM, bye)
print("MARKER-UP", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("handles", [True, False])
def test_stop_sends_sigterm_to_pid_1_then_sigkill(server, handles):
    hps = {"handle": "1"} if handles else {}
    name = script_job(server, SLEEPER, hyperparameters=hps,
                      extra={"AlgorithmSpecification": {
                          "TrainingImage": dlc_image(server.region), "TrainingInputMode": "File",
                          "ContainerEntrypoint": ["python", "train.py"],
                          "ContainerArguments": ["--handle"] if handles else ["--x"]}})  # fmt: skip
    wait_for(lambda: "MARKER-UP" in stream_text(server, name), what="the script to start")
    server.client("sagemaker").stop_training_job(TrainingJobName=name)
    started = time.monotonic()
    job = wait_for(lambda: ended(server, name), what="the job to stop")
    assert job["TrainingJobStatus"] == "Stopped"
    if handles:  # python as PID 1 with a handler: SIGTERM reaches it
        assert "MARKER-TERM" in stream_text(server, name)
    else:  # no handler: PID 1 ignores SIGTERM, SIGKILL after the grace period
        assert time.monotonic() - started >= server.stop_grace - 0.5
        assert "MARKER-TERM" not in stream_text(server, name)


def test_large_hyperparameters_reach_the_script(server):
    big = {f"h{i}": "x" * 2500 for i in range(98)}  # + the two sagemaker_ ones
    script = "import sys\nprint('MARKER-ARGS', len(sys.argv), flush=True)\n"
    name = script_job(server, script, hyperparameters=big)
    wait_for(lambda: "MARKER-ARGS 197" in stream_text(server, name), what="the script's output")


def test_pid_1_is_the_command(server):
    script = "import os\nprint('MARKER-PID', os.getpid(), os.getppid(), flush=True)\n"
    name = script_job(server, script, extra={"AlgorithmSpecification": {
        "TrainingImage": dlc_image(server.region), "TrainingInputMode": "File",
        "ContainerEntrypoint": ["python", "train.py"]}})  # fmt: skip
    wait_for(lambda: "MARKER-PID 1 0" in stream_text(server, name), what="PID 1")


def test_a_host_has_its_own_terminals(server):
    """Finding 6: a devpts instance of its own, not the machine's /dev/pts."""
    import os

    machine, other = os.openpty()  # a terminal of the machine, /dev/pts/N
    try:
        script = "import os\nprint('MARKER-PTS', sorted(os.listdir('/dev/pts')), flush=True)\n"
        name = script_job(server, script)
        text = wait_for(
            lambda: (lambda t: t if "MARKER-PTS" in t else "")(stream_text(server, name)),
            what="the listing",
        )
        assert "MARKER-PTS ['ptmx']" in text, text
    finally:
        os.close(machine)
        os.close(other)


def test_a_project_under_tmp_stays_visible_in_hosts(server, monkeypatch):
    """Finding 5: the machine's directories the hosts' programs run from, under /tmp, are
    bound back into the host's own /tmp."""
    import tempfile

    from jupyter_sm_debug.standin import container

    where = tempfile.mkdtemp(prefix="standin-visible-", dir="/tmp")  # noqa: S108
    with open(os.path.join(where, "marker.txt"), "w") as marker:
        marker.write("MARKER-VISIBLE")
    monkeypatch.setattr(container, "visible_paths", lambda: [where])
    script = f"print(open({os.path.join(where, 'marker.txt')!r}).read(), flush=True)\n"
    name = script_job(server, script)
    wait_for(lambda: "MARKER-VISIBLE" in stream_text(server, name), what="the marker")


def test_sdk_v3_source_code_channels_reach_the_container(server):
    """Finding 2: SDK v3's ``code`` and ``sm_drivers`` channels are materialised, and its
    command runs them; a failure without a failure file is reported by exit code."""
    name = f"lived-v3-{uuid.uuid4().hex[:8]}"
    client = s3(server)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    driver = "#!/bin/bash\ncd /opt/ml/input/data/code && exec python train.py\n"
    train = "import sys\nprint('MARKER-V3', flush=True)\nsys.exit(3)\n"
    for key, body in (("sm_drivers/sm_train.sh", driver), ("code/train.py", train)):
        client.put_object(Bucket=BUCKET, Key=f"{name}/{key}", Body=body.encode())
    channels = [
        {"ChannelName": channel, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/{channel}",
            "S3DataDistributionType": "FullyReplicated"}}}
        for channel in ("code", "sm_drivers")
    ]  # fmt: skip
    command = "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && " + (
        "/opt/ml/input/data/sm_drivers/sm_train.sh"
    )
    server.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": dlc_image(server.region),
                                "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["/bin/bash"],
                                "ContainerArguments": ["-c", command]},
        RoleArn="arn:aws:iam::123456789012:role/service-role/SageMakerExecutionRole",
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                        "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        InputDataConfig=channels,
    )  # fmt: skip
    server.advance(60)
    job = wait_for(lambda: ended(server, name), what="the job to end")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: , exit code: 3"
    assert "MARKER-V3" in stream_text(server, name)


def test_max_runtime_stops_a_lived_job(server):
    name = script_job(server, SLEEPER, extra={"StoppingCondition": {"MaxRuntimeInSeconds": 90}})
    wait_for(lambda: "MARKER-UP" in stream_text(server, name), what="the script to start")
    server.advance(120)
    job = wait_for(lambda: ended(server, name), what="the job to stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_a_debug_copy_of_a_failed_script_holds_with_the_users_script(server):
    """Done when: Debug a copy of the failed job holds with the user's own script in
    /opt/ml/code (the copy runs the same code, under the hold wrapper, for real)."""
    from jupyter_sm_debug import hold
    from jupyter_sm_debug.jobs import debug_copy_request

    name = script_job(server, FAILING, data={"rows.csv": "a,b"})
    wait_for(lambda: ended(server, name), what="the original to fail")
    sm = server.client("sagemaker")
    description = sm.describe_training_job(TrainingJobName=name)
    plan = hold.plan(description["AlgorithmSpecification"],
                     hold.read_image_config(server.client("ecr")))  # fmt: skip
    assert plan["possible"], plan
    copy = name + "-debug"
    sm.create_training_job(**debug_copy_request(description, copy, hold_seconds=600,
                                                hold_plan=plan))  # fmt: skip
    server.advance(60)
    wait_for(lambda: "SM_DEBUG_HOLD host=algo-1 seconds=600 code=1" in stream_text(server, copy),
             what="the hold")  # fmt: skip
    job = sm.describe_training_job(TrainingJobName=copy)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("InProgress", "Training")
    env, cwd = server.host_env(copy, "algo-1")
    user_script = os.path.join(env["SM_STANDIN_SANDBOX"], "opt", "ml", "code", "train.py")
    with open(user_script) as source:
        assert "MARKER-24" in source.read()
    server._live(copy, "algo-1", None).release_file.touch()
    job = wait_for(lambda: ended(server, copy), what="the released copy to end")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 3")
