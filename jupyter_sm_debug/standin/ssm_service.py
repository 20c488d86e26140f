"""SSM's entry in the router: StartSession, TerminateSession and ResumeSession go to
ssm.py's ``handle`` (loaded when first called); the rest of SSM is moto's."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional

from .errors import StandInError
from .service import Call, Service

ACTIONS = ("StartSession", "TerminateSession", "ResumeSession")
_loaded: dict[str, Any] = {}


def _handle() -> Optional[Callable]:
    if "handle" not in _loaded:
        try:
            module = importlib.import_module(f"{__package__}.ssm")
        except ModuleNotFoundError as error:
            if error.name != f"{__package__}.ssm":
                raise  # ssm.py exists but is broken: say so, do not hide it
            module = None
        _loaded["handle"] = getattr(module, "handle", None)
    return _loaded["handle"]


def dispatch(standin, call: Call) -> dict:
    handle = _handle()
    if handle is None:
        raise StandInError(
            "UnknownOperationException",
            f"{call.action} is not available: the stand-in has no SSM module.",
        )
    return handle(call.action, call.params, standin) or {}


SERVICE = Service("ssm", ACTIONS, dispatch, prefix="AmazonSSM", model="ssm")
