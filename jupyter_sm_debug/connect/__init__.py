"""How to reach one host of a training job: one module per transport.

A transport turns (job description, host, config, request options) into a `Session` (the
argv and environment of the process that the terminal runs) or raises `CannotAttach` with
what to do. Adding a transport is adding a module and a line in `TRANSPORTS`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Protocol

from ..errors import SMDebugError

if TYPE_CHECKING:
    from ..config import SMDebug
    from ..jobs import JobsService

# Variables a session process may inherit from the server; everything else is dropped so
# no server secret or setting leaks into a remote shell's client by accident.
BASE_ENVIRONMENT = re.compile(r"(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_\w+|TZ|TMPDIR)")


class CannotAttach(SMDebugError):
    """Attaching is impossible right now; the message says why and the hint what to do."""

    def __init__(self, code: str, message: str, hint: str, status: int = 409):
        super().__init__(status, code, message, hint)


@dataclass
class Session:
    argv: list[str]
    target: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    # Run once the session's process has ended, however it ended (e.g. to release what
    # the transport opened for it on the AWS side).
    on_end: Optional[Callable[[], Awaitable[None]]] = None
    # Transport-specific fields of the answer (SSH: how the host key was verified).
    info: dict[str, Any] = field(default_factory=dict)
    # What besides `target` tells two sessions' destinations apart (SSH: the pinned host
    # keys): a live terminal is reused only for the same target and pin.
    pin: str = ""


@dataclass
class AttachRequest:
    job: str
    host: str
    description: dict
    config: SMDebug
    jobs: JobsService
    options: dict[str, Any] = field(default_factory=dict)


class Transport(Protocol):
    name: str

    async def prepare(self, request: AttachRequest) -> Session: ...


def base_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if BASE_ENVIRONMENT.fullmatch(name)}


def transports() -> dict[str, Transport]:
    from . import ssh, ssm

    return {"ssh": ssh.SSHTransport(), "ssm": ssm.SSMTransport()}


# -- forward-a-port: the second verb of a transport -------------------------------------------


@dataclass
class Tunnel:
    """A listener on this server's loopback (`local_port`) whose connections reach
    127.0.0.1:`remote_port` inside the host. `close` ends it and everything it started."""

    local_port: int
    remote_port: int
    target: str
    close: Callable[[], Awaitable[None]]
    alive: Callable[[], bool]
    # Process ids the tunnel runs (for tests and the forwards list); may be empty.
    pids: list[int] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class Forwarder(Protocol):
    name: str

    async def forward(self, request: AttachRequest, remote_port: int) -> Tunnel: ...


def forwarders() -> dict[str, Forwarder]:
    from . import ssh, ssm_forward

    return {"ssh": ssh.SSHForwarder(), "ssm": ssm_forward.SSMForwarder()}
