"""Issue 24's "Done when", with the real SageMaker Python SDK (v2 or v3, one per venv): a
script-mode job whose script prints a marker and exits 3 ends Failed with the toolkit's
reason and the marker in its stream; under debuggable() it holds with the user's own script
in /opt/ml/code; the same script exiting 0 ends Completed. On a stand-in with hosts."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

sagemaker = pytest.importorskip("sagemaker")

from conftest import ROLE  # noqa: E402

from jupyter_sm_debug.sdk import debuggable, sdk_version  # noqa: E402
from jupyter_sm_debug.standin import StandIn  # noqa: E402
from jupyter_sm_debug.standin.core import dlc_image  # noqa: E402

V2 = sdk_version() < (3,)
GROUP = "/aws/sagemaker/TrainingJobs"
pytestmark = pytest.mark.timeout(600)


def forget_sdk_clients() -> None:
    """SDK v3 keeps the first SageMaker client made in the process (sagemaker-core's
    SageMakerClient cache): after another stand-in's tests it would still sign with that
    stand-in's credentials, so this module's stand-in gets clients made anew (and boto3's
    default session, which the SDK's argument-less Session() starts from)."""
    import boto3

    boto3.DEFAULT_SESSION = None
    try:
        from sagemaker.core.utils.utils import SageMakerClient
    except ImportError:  # SDK v2
        return
    getattr(SageMakerClient, "_instances", {}).pop(SageMakerClient, None)


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    """A stand-in whose hosts run the jobs, with this process's clients pointed at it."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    saved_override = os.environ.get("SAGEMAKER_USER_CONFIG_OVERRIDE")
    server = StandIn(root=tmp_path_factory.mktemp("lived-sdk"), clock="manual")
    server.start()
    for name in saved:
        del os.environ[name]
    os.environ.update(server.client_env())
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
    forget_sdk_clients()
    yield server
    forget_sdk_clients()
    server.stop()
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(saved)
    if saved_override is None:
        os.environ.pop("SAGEMAKER_USER_CONFIG_OVERRIDE", None)
    else:
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = saved_override


def script(tmp_path, code: int) -> str:
    marker = f"MARKER-{uuid.uuid4().hex[:8]}"
    (tmp_path / "train.py").write_text(
        f"import sys\nprint({marker!r}, flush=True)\nsys.exit({code})\n"
    )
    return marker


def launch(server, source_dir: str, hold: int = 0) -> str:
    """Launch train.py of ``source_dir`` in script mode; returns the job's name."""
    if V2:
        import boto3
        from sagemaker.pytorch import PyTorch
        from sagemaker.session import Session

        estimator = PyTorch(
            entry_point="train.py", source_dir=source_dir, role=ROLE, instance_count=1,
            instance_type="ml.m5.xlarge", framework_version="2.3", py_version="py311",
            sagemaker_session=Session(boto_session=boto3.Session(region_name=server.region)),
        )  # fmt: skip
        (debuggable(estimator, hold_on_failure=hold) if hold else estimator).fit(
            wait=False, logs=False
        )
        name = estimator.latest_training_job.name
    else:
        from sagemaker.train import ModelTrainer
        from sagemaker.train.configs import Compute, SourceCode

        trainer = ModelTrainer(
            training_image=dlc_image(server.region), role=ROLE,
            base_job_name=f"lived-{uuid.uuid4().hex[:6]}",
            source_code=SourceCode(source_dir=source_dir, entry_script="train.py"),
            compute=Compute(instance_type="ml.m5.xlarge", instance_count=1),
        )  # fmt: skip
        (debuggable(trainer, hold_on_failure=hold) if hold else trainer).train(
            wait=False, logs=False
        )
        name = trainer._latest_training_job.training_job_name
    server.advance(120)  # past Starting and Downloading: the containers start
    return name


def wait_for(condition, timeout=180.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def describe(server, name) -> dict:
    return server.client("sagemaker").describe_training_job(TrainingJobName=name)


def ended(server, name):
    job = describe(server, name)
    if job["TrainingJobStatus"] == "InProgress" and job["SecondaryStatus"] == "Uploading":
        server.advance(60)
    return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None


def stream(server, name) -> str:
    logs = server.client("logs")
    names = [
        s["logStreamName"]
        for s in logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/")[
            "logStreams"
        ]
    ]
    return "\n".join(
        e["message"]
        for n in names
        for e in logs.get_log_events(logGroupName=GROUP, logStreamName=n, startFromHead=True)[
            "events"
        ]
    )


def test_a_script_exiting_3_fails_with_the_toolkits_reason(lived, tmp_path):
    marker = script(tmp_path, 3)
    name = launch(lived, str(tmp_path))
    job = wait_for(lambda: ended(lived, name), what="the job to end")
    assert job["TrainingJobStatus"] == "Failed", job
    if V2:  # script mode through the image's train: the toolkit's report
        assert job["FailureReason"].startswith(
            "AlgorithmError: ExecuteUserScriptError:\nExitCode 3"
        ), job["FailureReason"]
    else:  # SDK v3's driver reports the script's own code
        assert "exit code" in job["FailureReason"], job["FailureReason"]
    wait_for(lambda: marker in stream(lived, name), what="the marker in the stream")


def test_the_same_script_exiting_0_completes(lived, tmp_path):
    marker = script(tmp_path, 0)
    name = launch(lived, str(tmp_path))
    job = wait_for(lambda: ended(lived, name), what="the job to end")
    assert job["TrainingJobStatus"] == "Completed", job
    assert marker in stream(lived, name)


def test_debuggable_holds_with_the_users_own_script(lived, tmp_path):
    marker = script(tmp_path, 3)
    name = launch(lived, str(tmp_path), hold=600)
    wait_for(lambda: "SM_DEBUG_HOLD host=algo-1" in stream(lived, name), what="the hold")
    job = describe(lived, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("InProgress", "Training")
    env, _ = lived.host_env(name, "algo-1")
    code = os.path.join(env["SM_STANDIN_SANDBOX"], "opt", "ml")
    found = [
        os.path.join(root, f)
        for sub in ("code", "input/data/code")
        for root, _, files in os.walk(os.path.join(code, sub))
        for f in files
        if f == "train.py"
    ]
    assert any(marker in Path(path).read_text() for path in found), found
