"""The notebook helper's checks that need no SDK (tests/sdk runs it against the real SDKs):
remote debug alone (hold_on_failure=0) on objects shaped like the SDK's, refused input, the
SDK version floor, and that the server never imports the SDK."""

import json
import os
import subprocess
import sys

import pytest

from jupyter_sm_debug.sdk import HOLD_VARIABLE, debuggable


class EstimatorLike:
    """The parts of sagemaker.estimator.EstimatorBase (v2) the helper relies on."""

    def __init__(self, environment=None):
        self.environment = environment
        self._enable_remote_debug = None

    def get_remote_debug_config(self):
        if self._enable_remote_debug is None:
            return None
        return {"EnableRemoteDebug": self._enable_remote_debug}


class ModelTrainerLike:
    """The parts of sagemaker.train.ModelTrainer (v3) the helper relies on."""

    def __init__(self):
        self.environment = {"EPOCHS": "3"}
        self.remote_debug = None

    def with_remote_debug_config(self, config):
        self.remote_debug = config or {"enable_remote_debug": True}
        return self


def test_estimator_gets_remote_debug():
    estimator = debuggable(EstimatorLike(), hold_on_failure=0)
    assert estimator.get_remote_debug_config() == {"EnableRemoteDebug": True}
    assert estimator.environment == {HOLD_VARIABLE: "0"}


def test_model_trainer_keeps_its_environment():
    trainer = debuggable(ModelTrainerLike(), hold_on_failure=0)
    assert trainer.remote_debug == {"enable_remote_debug": True}
    assert trainer.environment == {"EPOCHS": "3", HOLD_VARIABLE: "0"}


def test_an_sdk_without_remote_debug_is_refused_clearly(tmp_path):
    """sagemaker 2.200.0's metadata on the path: the helper names the floor."""
    info = tmp_path / "sagemaker-2.200.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sagemaker\nVersion: 2.200.0\n")
    code = (
        "from jupyter_sm_debug.sdk import debuggable\n"
        "class E:\n"
        "    def get_remote_debug_config(self): return None\n"
        "try:\n"
        "    debuggable(E(), 0)\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    path = os.pathsep.join([str(tmp_path), *sys.path])
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    assert "sagemaker 2.200.0 has no remote debug" in result.stdout, result.stderr
    assert "2.202.1" in result.stdout


@pytest.mark.parametrize("hold", [-1, 86401, "60", True])
def test_bad_hold_windows_are_refused(hold):
    with pytest.raises((TypeError, ValueError)):
        debuggable(EstimatorLike(), hold_on_failure=hold)


def test_other_objects_are_refused():
    with pytest.raises(TypeError):
        debuggable(object())


def test_loading_the_extension_never_imports_the_sdk():
    code = (
        "import sys, jupyter_sm_debug.extension, jupyter_sm_debug.sdk, jupyter_sm_debug.jobs;"
        "print(any(m == 'sagemaker' or m.startswith('sagemaker.') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# -- issue 23: debuggable() changes exactly the job it was given, within AWS's limits ---------

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"
SOURCE_CODE = ["-c", "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && sm_train.sh"]


class Session:
    def __init__(self, boto_session, client):
        self.boto_session = boto_session
        self.sagemaker_client = client


class SourceCodeTrainer(ModelTrainerLike):
    """A ModelTrainer with SourceCode: its train() creates the job through the shared client."""

    def __init__(self, session, environment=None):
        super().__init__()
        self.environment = environment if environment is not None else {"EPOCHS": "3"}
        self.sagemaker_session = session
        self.training_image = IMAGE
        self.source_code = object()
        self.base_job_name = "train"

    def train(self):
        self.sagemaker_session.sagemaker_client.create_training_job(
            TrainingJobName="train-2026-12-07-10-00-00-000",
            AlgorithmSpecification={
                "TrainingImage": IMAGE,
                "TrainingInputMode": "File",
                "ContainerEntrypoint": ["/bin/bash"],
                "ContainerArguments": SOURCE_CODE,
            },  # fmt: skip
            RoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
            OutputDataConfig={"S3OutputPath": "s3://bucket/out"},
            ResourceConfig={
                "InstanceType": "ml.m5.xlarge",
                "InstanceCount": 1,
                "VolumeSizeInGB": 30,
            },  # fmt: skip
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
            Environment=self.environment,
        )


@pytest.fixture
def shared_client():
    """One SageMaker client every trainer uses (as sagemaker-core's cache gives them), whose
    CreateTrainingJob calls are kept instead of sent."""
    import boto3
    from botocore.awsrequest import AWSResponse

    boto_session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x",
                                 region_name="us-east-1")  # fmt: skip
    client = boto_session.client("sagemaker")
    sent = []

    def keep(params, **_):
        sent.append(params)
        return AWSResponse("https://sagemaker", 200, {}, None), {"TrainingJobArn": "arn"}

    client.meta.events.register("before-call.sagemaker.CreateTrainingJob", keep)
    return Session(boto_session, client), sent


def test_debuggable_changes_only_its_own_trainers_job(shared_client):
    """Finding 5: two plain trainers of the same image and base name, on the same client, are
    launched as they are; only the one given to debuggable() is wrapped."""
    from jupyter_sm_debug import hold

    session, sent = shared_client
    plain_before = SourceCodeTrainer(session)
    debugged = debuggable(SourceCodeTrainer(session), hold_on_failure=600)
    plain_after = SourceCodeTrainer(session)
    for trainer in (plain_before, debugged, plain_after):
        trainer.train()
    plain1, wrapped, plain2 = (json.loads(params["body"]) for params in sent)
    for plain in (plain1, plain2):
        assert plain["AlgorithmSpecification"]["ContainerEntrypoint"] == ["/bin/bash"]
        assert plain["AlgorithmSpecification"]["ContainerArguments"] == SOURCE_CODE
        assert HOLD_VARIABLE not in plain["Environment"]
    algorithm = wrapped["AlgorithmSpecification"]
    argv = algorithm["ContainerEntrypoint"] + algorithm.get("ContainerArguments", [])
    assert hold.is_wrapped(argv) and hold.unwrapped(argv) == ["/bin/bash", *SOURCE_CODE]
    assert wrapped["Environment"][HOLD_VARIABLE] == "600"


def test_a_full_environment_is_refused_by_name(shared_client):
    """Finding 4: 100 Environment entries leave no room for the hold's variable."""
    from jupyter_sm_debug.sdk import HoldNotPossible

    session, _ = shared_client
    trainer = SourceCodeTrainer(session, environment={f"VAR_{i}": "x" for i in range(100)})
    with pytest.raises(HoldNotPossible, match=r"Environment already has 100 entries"):
        debuggable(trainer, hold_on_failure=600)
