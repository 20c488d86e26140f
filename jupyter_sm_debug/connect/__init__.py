"""How to reach one host of a training job: one class per transport, one registry.

Every transport implements `Transport`: `attach` (a `Session`, the argv and environment of
the process a terminal runs), `run` (one command, a `RunResult`) and `forward` (a `Tunnel`,
byte streams to a port in the host), or raises `CannotAttach` with what to do. Adding a
transport is adding a module (`ssh/`, `ssm.py`) and a line in `registry.py`; shared process
handling lives in `process.py`. This package module holds only the shared types, so a
transport's modules can import it without a cycle.
"""

from __future__ import annotations

from .types import (
    BASE_ENVIRONMENT,
    RUN_OUTPUT_LIMIT,
    CannotAttach,
    HostTarget,
    RunResult,
    Session,
    Transport,
    Tunnel,
    base_environment,
    open_stream,
)

__all__ = [
    "BASE_ENVIRONMENT",
    "RUN_OUTPUT_LIMIT",
    "CannotAttach",
    "HostTarget",
    "RunResult",
    "Session",
    "Transport",
    "Tunnel",
    "base_environment",
    "open_stream",
]
