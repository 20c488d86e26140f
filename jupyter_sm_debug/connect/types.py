"""The values every transport and every caller share: the host a verb is for
(`HostTarget`), what each verb gives back (`Session`, `RunResult`, `Tunnel`), the
`Transport` protocol, and `CannotAttach`. Imports nothing of connect's own modules, so the
transports import it without importing the package that registers them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Protocol

from ..errors import SMDebugError

if TYPE_CHECKING:
    from ..config import SMDebug
    from ..files.base import FileSystem
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
    # Told the session process's exit status (None when unknown) and the end of its output
    # once it has ended: SSH forgets a host it trusted when its ssh refused that host's key.
    on_exit: Optional[Callable[[Optional[int], str], None]] = None
    # Transport-specific fields of the answer (SSH: how the host key was verified).
    info: dict[str, Any] = field(default_factory=dict)
    # What besides `target` tells two sessions' destinations apart (SSH: the pinned host
    # keys): a live terminal is reused only for the same target and pin.
    pin: str = ""


@dataclass
class HostTarget:
    """One host of one job, checked once by the request layer (the job exists and runs the
    host, the transport is known) and handed to every verb of every transport."""

    job: str
    host: str
    description: dict
    config: SMDebug
    jobs: JobsService
    options: dict[str, Any] = field(default_factory=dict)
    transport: str = ""

    @property
    def index(self) -> int:
        return int(self.host.rsplit("-", 1)[1])


class Transport(Protocol):
    """How to reach a host. Every transport has the same verbs; `capabilities` names the
    ones it can do (a registry answers 400 for a verb a transport lacks)."""

    name: str
    capabilities: frozenset[str]  # of "attach", "run", "forward", "files"

    async def attach(self, target: HostTarget) -> Session: ...

    async def run(
        self, target: HostTarget, argv: list[str], timeout: float, stdin: bytes = b""
    ) -> RunResult: ...

    async def forward(self, target: HostTarget, remote_port: int) -> Tunnel: ...

    async def files(self, target: HostTarget) -> FileSystem:
        """The host's files (files/base.py); the caller pools and closes it."""
        ...


def base_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if BASE_ENVIRONMENT.fullmatch(name)}


# -- running one command on a host (stacks, host state, run on all hosts) ----------------------

RUN_OUTPUT_LIMIT = 16 * 1024 * 1024  # bytes kept of each of stdout and stderr


@dataclass
class RunResult:
    """One command on one host. `exit_code` is None when it did not finish: `timed_out`,
    or `error` says why it could not run at all (a host that cannot be reached)."""

    exit_code: Optional[int]
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    error: Optional[dict] = None  # {code, message, hint}
    truncated: bool = False  # more output than RUN_OUTPUT_LIMIT was dropped
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout.decode(errors="replace"),
            "stderr": self.stderr.decode(errors="replace"),
            "timed_out": self.timed_out,
            "error": self.error,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 3),
        }


# -- forward-a-port: the second verb of a transport -------------------------------------------


@dataclass
class Tunnel:
    """Byte streams to 127.0.0.1:`remote_port` inside the host, each opened by `connect`
    (through `open_stream`); no transport listens on a TCP port (`local_port` is 0, kept
    for the answer's shape). `close` ends it and everything it started."""

    local_port: int
    remote_port: int
    target: str
    close: Callable[[], Awaitable[None]]
    alive: Callable[[], bool]
    # A new byte stream to remote_port inside the host; the proxy uses only this (a
    # transport may reach the host with no local listener at all).
    connect: Optional[Callable[[], Awaitable[tuple[Any, Any]]]] = None
    # Process ids the tunnel runs (for tests and the forwards list); may be empty.
    pids: list[int] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


async def open_stream(tunnel: Tunnel) -> tuple[Any, Any]:
    """A new (reader, writer) to the tunnel's remote port."""
    if tunnel.connect is not None:
        return await tunnel.connect()
    import asyncio

    return await asyncio.open_connection("127.0.0.1", tunnel.local_port)
