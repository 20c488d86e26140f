"""SSM's entry in the router: StartSession, TerminateSession and ResumeSession go to
backend.py's ``handle``; the rest of SSM is moto's."""

from __future__ import annotations

from ..service import Call, Service

ACTIONS = ("StartSession", "TerminateSession", "ResumeSession")


def dispatch(standin, call: Call) -> dict:
    from .backend import handle  # the gateway and agents load on the first session call

    return handle(call.action, call.params, standin) or {}


SERVICE = Service("ssm", ACTIONS, dispatch, prefix="AmazonSSM", model="ssm")
