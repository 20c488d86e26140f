"""debuggable() with the real SageMaker Python SDK, v2 and v3 (one of them per venv): the job
it launches carries remote debug, the hold window and the hold wrapper around the job's own
command, read the way SageMaker would run it."""

from __future__ import annotations

import pytest

sagemaker = pytest.importorskip("sagemaker")

from conftest import ROLE  # noqa: E402

from jupyter_sm_debug import hold  # noqa: E402
from jupyter_sm_debug.sdk import HoldNotPossible, debuggable, sdk_version  # noqa: E402
from jupyter_sm_debug.standin.core import byoc_image, dlc_image  # noqa: E402

V2 = sdk_version() < (3,)
only_v2 = pytest.mark.skipif(not V2, reason="SDK v2 Estimator")
only_v3 = pytest.mark.skipif(V2, reason="SDK v3 ModelTrainer")
SM_TRAIN = "/opt/ml/input/data/sm_drivers/sm_train.sh"


def launched(sm, name: str) -> tuple[dict, list[str], list[str]]:
    job = sm.describe_training_job(TrainingJobName=name)
    algorithm = job["AlgorithmSpecification"]
    argv = algorithm.get("ContainerEntrypoint", []) + algorithm.get("ContainerArguments", [])
    assert hold.is_wrapped(argv), algorithm
    assert job["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
    assert job["Environment"][hold.HOLD_VARIABLE] == "600"
    command = hold.unwrapped(algorithm["ContainerEntrypoint"])
    return job, command, algorithm.get("ContainerArguments", [])


# -- SDK v2 --------------------------------------------------------------------------------


def v2_session(sdk_standin):
    import boto3
    from sagemaker.session import Session

    return Session(boto_session=boto3.Session(region_name=sdk_standin.region))


@only_v2
def test_v2_framework_estimator_in_script_mode(sdk_standin, sm, source_dir):
    from sagemaker.pytorch import PyTorch

    estimator = PyTorch(
        entry_point="train.py", source_dir=source_dir, role=ROLE, instance_count=1,
        instance_type="ml.g5.xlarge", framework_version="2.3", py_version="py311",
        sagemaker_session=v2_session(sdk_standin),
    )  # fmt: skip
    debuggable(estimator, hold_on_failure=600).fit(wait=False, logs=False)
    job, command, arguments = launched(sm, estimator.latest_training_job.name)
    assert (command, arguments) == (["bash", "-m", "start_with_right_hostname.sh"], ["train"])
    assert "sagemaker_program" in job["HyperParameters"]  # still script mode


@only_v2
def test_v2_estimator_of_an_image_with_only_an_entrypoint(sdk_standin, sm):
    from sagemaker.estimator import Estimator

    estimator = Estimator(
        image_uri=byoc_image(sdk_standin.region), role=ROLE, instance_count=1,
        instance_type="ml.m5.xlarge", sagemaker_session=v2_session(sdk_standin),
    )  # fmt: skip
    debuggable(estimator, hold_on_failure=600).fit(wait=False, logs=False)
    _, command, arguments = launched(sm, estimator.latest_training_job.name)
    assert (command, arguments) == (["python", "/opt/sm-debug/bin/byoc_train.py"], ["train"])


@only_v2
def test_v2_estimator_with_its_own_entry_point(sdk_standin, sm):
    from sagemaker.estimator import Estimator

    estimator = Estimator(
        image_uri=dlc_image(sdk_standin.region), role=ROLE, instance_count=1,
        instance_type="ml.m5.xlarge", sagemaker_session=v2_session(sdk_standin),
        container_entry_point=["python", "/opt/ml/code/train.py"],
        container_arguments=["--epochs", "3"],
    )  # fmt: skip
    debuggable(estimator, hold_on_failure=600)
    debuggable(estimator, hold_on_failure=600)  # twice wraps once
    estimator.fit(wait=False, logs=False)
    _, command, arguments = launched(sm, estimator.latest_training_job.name)
    assert (command, arguments) == (["python", "/opt/ml/code/train.py"], ["--epochs", "3"])


@only_v2
def test_v2_unreadable_image_says_why(sdk_standin):
    from sagemaker.estimator import Estimator

    estimator = Estimator(
        image_uri="999999999999.dkr.ecr.us-east-1.amazonaws.com/private:1", role=ROLE,
        instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=v2_session(sdk_standin),
    )  # fmt: skip
    with pytest.raises(HoldNotPossible, match="ecr:BatchGetImage and ecr:GetDownloadUrlForLayer"):
        debuggable(estimator, hold_on_failure=600)


# -- SDK v3 --------------------------------------------------------------------------------


@only_v3
def test_v3_model_trainer_constructs_with_default_settings(sdk_standin):
    from sagemaker.train import ModelTrainer

    ModelTrainer(training_image=dlc_image(sdk_standin.region), role=ROLE)


@only_v3
def test_v3_model_trainer_without_source_code(sdk_standin, sm):
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute

    trainer = ModelTrainer(
        training_image=byoc_image(sdk_standin.region), role=ROLE, base_job_name="byoc-v3",
        compute=Compute(instance_type="ml.m5.xlarge", instance_count=1),
    )  # fmt: skip
    debuggable(trainer, hold_on_failure=600).train(wait=False, logs=False)
    _, command, arguments = launched(sm, trainer._latest_training_job.training_job_name)
    assert (command, arguments) == (["python", "/opt/sm-debug/bin/byoc_train.py"], ["train"])


@only_v3
def test_v3_model_trainer_with_source_code(sdk_standin, sm, source_dir):
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, SourceCode

    trainer = ModelTrainer(
        training_image=dlc_image(sdk_standin.region), role=ROLE, base_job_name="src-v3",
        source_code=SourceCode(source_dir=source_dir, entry_script="train.py"),
        compute=Compute(instance_type="ml.g5.xlarge", instance_count=1),
    )  # fmt: skip
    debuggable(trainer, hold_on_failure=600).train(wait=False, logs=False)
    _, command, arguments = launched(sm, trainer._latest_training_job.training_job_name)
    assert command == ["/bin/bash"]
    assert arguments[0] == "-c" and SM_TRAIN in arguments[1]


@only_v3
def test_v3_unreadable_image_says_why(sdk_standin):
    from sagemaker.train import ModelTrainer

    trainer = ModelTrainer(
        training_image="999999999999.dkr.ecr.us-east-1.amazonaws.com/private:1", role=ROLE
    )
    with pytest.raises(HoldNotPossible, match="ecr:BatchGetImage and ecr:GetDownloadUrlForLayer"):
        debuggable(trainer, hold_on_failure=600)


@only_v3
def test_v3_debuggable_changes_exactly_the_trainer_it_was_given(sdk_standin, sm, source_dir):
    """Issue 23, finding 5: sagemaker-core caches one SageMaker client per session and region,
    and every trainer creates its job through it. Two plain trainers of the same image and
    base name, launched before and after the debuggable one, stay as they are."""
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, SourceCode

    def trainer() -> ModelTrainer:
        return ModelTrainer(
            training_image=dlc_image(sdk_standin.region), role=ROLE, base_job_name="same-v3",
            source_code=SourceCode(source_dir=source_dir, entry_script="train.py"),
            compute=Compute(instance_type="ml.g5.xlarge", instance_count=1),
        )  # fmt: skip

    before = trainer()
    before.train(wait=False, logs=False)
    debugged = debuggable(trainer(), hold_on_failure=600)
    debugged.train(wait=False, logs=False)
    after = trainer()
    after.train(wait=False, logs=False)
    launched(sm, debugged._latest_training_job.training_job_name)
    for plain in (before, after):
        job = sm.describe_training_job(TrainingJobName=plain._latest_training_job.training_job_name)
        algorithm = job["AlgorithmSpecification"]
        argv = algorithm.get("ContainerEntrypoint", []) + algorithm.get("ContainerArguments", [])
        assert not hold.is_wrapped(argv), algorithm
        assert hold.HOLD_VARIABLE not in (job.get("Environment") or {})
        assert (job.get("RemoteDebugConfig") or {}).get("EnableRemoteDebug") is not True
