"""The one registry of transports: every verb of every feature finds its transport here."""

from __future__ import annotations

from typing import Any

from ..errors import SMDebugError
from .types import Transport

_registry: dict[str, Transport] = {}


def registry() -> dict[str, Transport]:
    """Every transport by name, each one object (made on first use: the transports import
    jobs.py, which must not import this package's modules at its own import)."""
    if not _registry:
        from .ssh import SSHTransport
        from .ssm import SSMTransport

        for transport in (SSHTransport(), SSMTransport()):
            _registry[transport.name] = transport
    return dict(_registry)


def shutdown() -> None:
    """Release what the transports hold for the whole process (the extension's stop hook):
    the session client threads and every SSH session directory still on disk. Live tunnels
    and terminals are their owners' to close first."""
    from . import process

    process.shutdown()


def get_transport(name: Any, verb: str = "attach") -> Transport:
    """The transport called `name` that can do `verb`, or a 400 that lists the choices."""
    available = {n: t for n, t in registry().items() if verb in t.capabilities}
    if not isinstance(name, str) or name not in available:
        raise SMDebugError(
            400,
            "invalid_transport",
            f"Unknown transport {name!r}.",
            f"Use one of: {', '.join(sorted(available))}.",
        )
    return available[name]
