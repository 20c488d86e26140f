"""`push`: connect/launch.py's `launch` with the transport found by the target's name (for
features above connect/; a transport's own verbs call `launch` with themselves, since this
module imports the registry, which imports the transports)."""

from __future__ import annotations

from typing import Any

from .launch import (
    BOOTSTRAP,
    LAUNCH,
    NO_PYTHON_EXIT,
    PYTHONS,
    READY,
    NoPython,
    Pushed,
    _ready_line,
    launch,
    launch_argv,
)
from .types import HostTarget


async def push(
    target: HostTarget,
    source: bytes,
    *,
    idle_seconds: int = 600,
    timeout: float = 60.0,
    transport: Any = None,
) -> Pushed:
    """Start `source` (a program defining ``serve(listener, token, idle_seconds)``) in the
    host and open a tunnel to it. Raises NoPython, or SMDebugError with what went wrong."""
    from .registry import get_transport

    transport = transport or get_transport(target.transport, "forward")
    return await launch(target, source, transport, idle_seconds=idle_seconds, timeout=timeout)


__all__ = [
    "BOOTSTRAP", "LAUNCH", "NO_PYTHON_EXIT", "PYTHONS", "READY", "NoPython", "Pushed",
    "_ready_line", "launch", "launch_argv", "push",
]  # fmt: skip
