"""Notebook helper for the SageMaker Python SDK (optional extra: pip install jupyter-sm-debug[sdk]).

    from jupyter_sm_debug.sdk import debuggable
    debuggable(estimator, hold_on_failure=1800).fit(inputs)     # SDK v2 Estimator
    debuggable(trainer, hold_on_failure=1800).train()           # SDK v3 ModelTrainer

turns on SageMaker remote debug for the job the estimator or trainer launches and makes its
failed containers stay up ``hold_on_failure`` seconds to be inspected: the job's own command
(its ContainerEntrypoint/Arguments, else the image's ENTRYPOINT + ``train``, read from ECR)
runs under the hold wrapper of ``jupyter_sm_debug.hold``, so no image change is needed.
:func:`hold_plan` says what would be wrapped, before launching.

Remote debug first shipped in sagemaker 2.202.1; older SDKs get a clear error. Nothing here
imports the SDK at module import: the server extension never loads it.
"""

from __future__ import annotations

import contextlib
import re
import sys
import uuid
from typing import Any

from . import hold

HOLD_VARIABLE = hold.HOLD_VARIABLE
MINIMUM_SDK = (2, 202, 1)


class HoldNotPossible(RuntimeError):
    """The job's command cannot be wrapped (the message says why and what to grant)."""


def sdk_version() -> tuple[int, ...] | None:
    """The installed sagemaker package's version, None when it is not installed."""
    from importlib import metadata

    try:
        text = metadata.version("sagemaker")
    except metadata.PackageNotFoundError:
        return None
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_sdk() -> None:
    version = sdk_version()
    if version is not None and version < MINIMUM_SDK:
        raise RuntimeError(
            f"sagemaker {'.'.join(map(str, version))} has no remote debug: it first shipped in "
            f"{'.'.join(map(str, MINIMUM_SDK))}. Upgrade with: pip install 'sagemaker>=2.202.1'"
        )


def debuggable(trainer: Any, hold_on_failure: int = 1800) -> Any:
    """Configure `trainer` in place to launch with remote debug and the hold; returns it.

    Raises HoldNotPossible (with the reason) when the job's command cannot be wrapped, e.g.
    the image's ENTRYPOINT cannot be read from ECR; ``hold_on_failure=0`` turns on remote
    debug alone."""
    if isinstance(hold_on_failure, bool) or not isinstance(hold_on_failure, int):
        raise TypeError("hold_on_failure is a whole number of seconds")
    if not 0 <= hold_on_failure <= hold.MAX_HOLD_SECONDS:
        raise ValueError(f"hold_on_failure must be between 0 and {hold.MAX_HOLD_SECONDS} seconds")
    check_sdk()
    if hasattr(trainer, "with_remote_debug_config"):
        _model_trainer(trainer, hold_on_failure)
    elif hasattr(trainer, "get_remote_debug_config"):
        _estimator(trainer, hold_on_failure)
    else:
        raise TypeError(
            f"{type(trainer).__name__} is neither a SageMaker SDK Estimator nor a ModelTrainer"
        )
    return trainer


def hold_plan(algorithm: dict, boto_session: Any) -> dict:
    """How a job with this AlgorithmSpecification would hold (hold.plan), reading the image
    from ECR with the SDK's own boto3 session."""
    return hold.plan(algorithm, hold.read_image_config(boto_session.client("ecr")))


def _with_hold_variable(environment: Any, seconds: int) -> dict:
    """The environment with the hold window; HoldNotPossible when AWS's Environment limit
    leaves no room for it."""
    room = hold.environment_room(dict(environment or {}))
    if room:
        raise HoldNotPossible(f"No hold is possible for this job: {room}")
    return {**dict(environment or {}), HOLD_VARIABLE: str(seconds)}


def _within_limits(params: dict) -> None:
    """HoldNotPossible naming the limit when the request, as the hold made it, breaks one of
    AWS's documented limits (botocore's model): better than AWS's ValidationException."""
    problems = hold.limit_problems(params)
    if problems:
        raise HoldNotPossible(
            f"No hold is possible for this job: it would break AWS's limits: {'; '.join(problems)}."
            " Use hold_on_failure=0 for remote debug alone."
        )


def _inside(owner: Any) -> bool:
    """Whether this thread is running a method of `owner` now (its train() builds the
    request): the hook then knows the request is this trainer's and no other's."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_locals.get("self") is owner:
            return True
        frame = frame.f_back
    return False


def _estimator(estimator: Any, seconds: int) -> None:
    """SDK v2 Estimator: the constructor's enable_remote_debug set after construction (its
    public enable_remote_debug() updates an already running job instead), and the wrapper
    through its public container_entry_point/container_arguments."""
    estimator._enable_remote_debug = True
    estimator.environment = _with_hold_variable(getattr(estimator, "environment", None), seconds)
    if seconds == 0:
        return
    algorithm = {
        "TrainingImage": estimator.training_image_uri(),
        "ContainerEntrypoint": getattr(estimator, "container_entry_point", None),
        "ContainerArguments": getattr(estimator, "container_arguments", None),
    }
    plan = _possible(hold_plan(algorithm, estimator.sagemaker_session.boto_session))
    if plan["fields"]:  # none when the image's own sm-debug-entrypoint holds
        _within_limits({"AlgorithmSpecification": {**algorithm, **plan["fields"]}})
        estimator.container_entry_point = plan["fields"]["ContainerEntrypoint"]
        estimator.container_arguments = plan["fields"].get("ContainerArguments")


def _model_trainer(trainer: Any, seconds: int) -> None:
    """SDK v3 ModelTrainer: remote debug and the environment through its public API. It
    has no ContainerEntrypoint of its own (with SourceCode, train() sets ["/bin/bash"] and
    arguments that run its sm_train.sh), so the wrapper goes into the CreateTrainingJob
    request as botocore builds it: a before-parameter-build hook on the SDK's clients that
    acts only on a request built while this trainer's own method runs in this thread (the
    clients are shared: sagemaker-core caches one per session and region, and other
    trainers of the same image and name create their jobs through it too)."""
    trainer.with_remote_debug_config(None)  # None means RemoteDebugConfig(enable...=True)
    trainer.environment = _with_hold_variable(trainer.environment, seconds)
    if seconds == 0:
        return
    boto_session = trainer.sagemaker_session.boto_session
    image = str(trainer.training_image or "")
    if trainer.source_code is None:  # the image's own command: know now whether it holds
        _possible(hold_plan({"TrainingImage": image}, boto_session))

    def wrap(params: dict, **_: Any) -> None:
        algorithm = params.get("AlgorithmSpecification") or {}
        if not _inside(trainer) or algorithm.get("TrainingImage") != image:
            return
        plan = _possible(hold_plan(algorithm, boto_session))
        if not plan["fields"]:
            _within_limits(params)
            return
        wrapped = {
            **{k: v for k, v in algorithm.items() if not k.startswith("Container")},
            **plan["fields"],
        }
        _within_limits({**params, "AlgorithmSpecification": wrapped})
        params["AlgorithmSpecification"] = wrapped

    event = "before-parameter-build.sagemaker.CreateTrainingJob"
    # A fresh id per call (an id() is reused once its trainer is gone); wrapping twice is
    # harmless: the plan unwraps a wrapped command first.
    unique = f"jupyter-sm-debug-hold-{uuid.uuid4().hex}"
    boto_session.events.register(event, wrap, unique_id=unique)  # clients made from now on
    for client in _sagemaker_clients(trainer, boto_session):
        client.meta.events.register(event, wrap, unique_id=unique)


def _sagemaker_clients(trainer: Any, boto_session: Any) -> list:
    """The SageMaker clients the SDK may already have made from this boto3 session: they
    copied the session's hooks when they were made. sagemaker-core caches one per (session,
    region) and creates training jobs through it."""
    clients = [getattr(trainer.sagemaker_session, "sagemaker_client", None)]
    with contextlib.suppress(Exception):  # an SDK without the cache: the session's hook serves
        from sagemaker.core.utils.utils import SageMakerClient

        for region in (None, boto_session.region_name):
            cached = SageMakerClient(session=boto_session, region_name=region)
            clients.append(cached.get_client(service_name="sagemaker"))
    unique = {id(c): c for c in clients if c is not None and hasattr(c, "meta")}
    return list(unique.values())


def _possible(plan: dict) -> dict:
    if not plan["possible"]:
        raise HoldNotPossible(
            f"No hold is possible for this job: {plan['reason']} "
            "Use hold_on_failure=0 for remote debug alone."
        )
    return plan
