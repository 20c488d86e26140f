"""A small standard-library program pushed into a host and reached through a forward: the
files agent, the kernel's interpreter. One way for both transports, using only their
existing verbs (`launch` with a transport object; connect/pushed.py's `push` finds the
transport by name, and a transport's own verbs call `launch`, which imports no registry):

1. `run` (marked as the extension's own, `hold.tool_argv`) starts BOOTSTRAP in the host's
   Python. It reads a token line and the program from stdin (never from argv: `ps` in the
   container would show it), binds 127.0.0.1:0, detaches (setsid, stdio to /dev/null) and
   calls the program's ``serve(listener, token, idle_seconds)``. The run prints one line,
   ``SMDEBUG-AGENT <port> <pid>``, and ends.
2. `forward` opens a tunnel to that port (SSH: a Unix socket in a 0700 directory; SSM: smux
   streams of one port session). Nothing listens on a TCP port of the Jupyter machine.
3. Every stream starts with the token line; the program answers ``OK\\n`` or closes. The
   token keeps other accounts in the container (a non-root training user) off a program
   that runs as the session's user (root over SSM).

The host's answers are untrusted: the ready line is matched whole, and the program's own
protocol is bounded by its client. Programs must run on Python 3.6+ with the standard
library only, and exit by themselves after `idle_seconds` with no open stream.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import SMDebugError
from ..hold import tool_argv
from .types import CannotAttach, HostTarget, Tunnel, open_stream

# Where the training's Python is, in the order the Training Toolkit's images have it.
PYTHONS = ("/opt/conda/bin/python3", "/opt/conda/bin/python", "python3", "python")
NO_PYTHON_EXIT = 3

BOOTSTRAP = r"""
import os, socket, sys
data = sys.stdin.buffer.read()
token, _, source = data.partition(b"\n")
idle = int(sys.argv[1])
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork():
        os._exit(0)
    os.close(r)
    os.write(w, str(os.getpid()).encode())
    os.close(w)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.chdir("/")
    scope = {"__name__": "__sm_debug_pushed__"}
    try:
        exec(compile(source, "sm-debug-pushed", "exec"), scope)
        scope["serve"](listener, token.decode(), idle)
    finally:
        os._exit(0)
os.close(w)
pid = b""
while True:
    part = os.read(r, 64)
    if not part:
        break
    pid += part
os.wait()
print("SMDEBUG-AGENT %d %s" % (listener.getsockname()[1], pid.decode()))
"""

LAUNCH = (
    'for p in "$@"; do if command -v "$p" >/dev/null 2>&1; then'
    ' exec "$p" -c "$SM_DEBUG_BOOTSTRAP" "$SM_DEBUG_IDLE"; fi; done;'
    f' echo "no python in this host" >&2; exit {NO_PYTHON_EXIT}'
)
READY = re.compile(rb"SMDEBUG-AGENT (\d{1,5}) (\d{1,9})")


def launch_argv(idle_seconds: int) -> list[str]:
    """The marked command that starts BOOTSTRAP in the host's first Python of PYTHONS."""
    return tool_argv(
        [
            "env", f"SM_DEBUG_BOOTSTRAP={BOOTSTRAP}", f"SM_DEBUG_IDLE={int(idle_seconds)}",
            "sh", "-c", LAUNCH, "sm-debug-push", *PYTHONS,
        ]
    )  # fmt: skip


class NoPython(CannotAttach):
    def __init__(self, host: str):
        super().__init__(
            "no_python",
            f"{host} has no Python (looked for {', '.join(PYTHONS)}).",
            "This needs Python 3 in the container; use a terminal instead.",
        )


@dataclass
class Pushed:
    """A program running in a host, and the tunnel that reaches it."""

    target: HostTarget
    port: int
    pid: int
    token: str
    tunnel: Tunnel
    info: dict[str, Any] = field(default_factory=dict)
    closed: bool = False

    def alive(self) -> bool:
        return not self.closed and self.tunnel.alive()

    async def open(self, timeout: float = 30.0) -> tuple[asyncio.StreamReader, Any]:
        """A new authenticated byte stream to the program."""
        reader, writer = await asyncio.wait_for(open_stream(self.tunnel), timeout)
        try:
            writer.write(self.token.encode() + b"\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), timeout)
        except BaseException:
            writer.close()
            raise
        if answer != b"OK\n":
            writer.close()
            raise ConnectionError(f"the program in {self.target.host} did not answer")
        return reader, writer

    async def close(self) -> None:
        """Close the tunnel. The program ends by its own protocol's shutdown or its idle
        rule (never by a pid from here: the number may name another process by then)."""
        if not self.closed:
            self.closed = True
            await self.tunnel.close()


async def launch(
    target: HostTarget,
    source: bytes,
    transport: Any,
    *,
    idle_seconds: int = 600,
    timeout: float = 60.0,
) -> Pushed:
    """Start `source` (a program defining ``serve(listener, token, idle_seconds)``) in the
    host with `transport`'s run and open a tunnel to it with its forward. Raises NoPython,
    or SMDebugError with what went wrong."""
    token = secrets.token_hex(32)
    result = await transport.run(
        target, launch_argv(idle_seconds), timeout, stdin=token.encode() + b"\n" + source
    )
    if result.error:
        raise SMDebugError(502, result.error["code"], result.error["message"], result.error["hint"])
    if result.timed_out:
        raise SMDebugError(
            504, "host_timeout", f"{target.host} did not start the program in {timeout:.0f} s.",
            "The host may be overloaded; try again.",
        )  # fmt: skip
    if result.exit_code == NO_PYTHON_EXIT:
        raise NoPython(target.host)
    ready = _ready_line(result.stdout)
    if result.exit_code != 0 or ready is None:
        said = result.stderr.decode(errors="replace").strip()[-300:]
        raise SMDebugError(
            502, "push_failed",
            f"{target.host} could not start the program (exit {result.exit_code}): {said}",
            "Check that the container's Python 3 runs and /tmp is writable; try again.",
        )  # fmt: skip
    port, pid = ready
    tunnel = await transport.forward(target, port)
    return Pushed(target, port, pid, token, tunnel, info=dict(tunnel.info))


def _ready_line(stdout: bytes) -> Optional[tuple[int, int]]:
    """The one ready line, whole; anything else (a login banner) is ignored."""
    for line in stdout.splitlines():
        match = READY.fullmatch(line.strip())
        if match and 0 < int(match[1]) < 65536:
            return int(match[1]), int(match[2])
    return None
