"""SageMaker's API: the actions the stand-in answers itself, dispatched to its backend."""

from __future__ import annotations

from typing import Optional

from ..service import Call, Service
from .backend import TrainingJobs

ACTIONS = (
    "CreateTrainingJob",
    "DescribeTrainingJob",
    "ListTrainingJobs",
    "UpdateTrainingJob",
    "StopTrainingJob",
    "ListTags",
)


def handle(backend: TrainingJobs, action: str, params: dict, region: str) -> Optional[dict]:
    """Answer one action; None means "not ours" (the caller passes it on to moto)."""
    if action == "ListTags":
        return backend.list_tags(params, region)
    handler = {
        "CreateTrainingJob": backend.create,
        "DescribeTrainingJob": backend.describe,
        "ListTrainingJobs": backend.list,
        "UpdateTrainingJob": backend.update,
        "StopTrainingJob": backend.stop,
    }[action]
    with backend.lock:
        return handler(params, region)


def dispatch(standin, call: Call) -> Optional[dict]:
    return standin.sagemaker_call(call.action, call.params, call.region)


SERVICE = Service("sagemaker", ACTIONS, dispatch, prefix="SageMaker", model="sagemaker")
