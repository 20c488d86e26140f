"""Kernels on hosts, registered with the Jupyter server's own kernel manager.

`KernelsService.start(target)`:
1. pushes agent.py into the host (connect/pushed.py: a marked run, then a forward);
2. listens on a Unix socket in a 0700 directory (the relay): each connection is joined to
   a new authenticated stream to the agent (the tunnel is opened again if it dropped);
3. writes a kernel spec of ours (``Python on algo-1 · <job>``, argv
   ``python -m jupyter_sm_debug.kernels.kernel``, the relay's path in its env) under a
   private directory on the kernel spec manager's path, and starts it with the server's
   kernel manager, so /api/kernels, its channels websocket, interrupt, restart and DELETE
   work as for any kernel;
4. keeps an UNMARKED run of a wait loop on the agent's pid open while the kernel lives:
   a person's session, so a held container stays held (hold.py); ending it counts like
   closing a terminal.

A watch notices when the last kernel of a spec is gone (DELETE, or a kernel that died for
good) and ends everything: the agent (its workers' process groups first), the tunnel, the
relay, the spec, the hold's session. `close()` does the same for all when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import uuid
from typing import Any, Optional

from ..connect import HostTarget
from ..connect.pushed import Pushed, push
from ..connect.registry import get_transport
from ..errors import SMDebugError
from . import LABEL_VARIABLE, RELAY_VARIABLE, agent

AGENT_IDLE = 300  # seconds the agent stays without any interpreter (a restart in between)
WATCH_SECONDS = 1.0
HOLD_RUN_SECONDS = 24 * 3600  # one wait loop's run; started again while the kernel lives
HOLD_OUTPUT = 4096
# A person's session while the kernel lives: ends when the agent does. It prints a byte a
# minute (an SSM session with no traffic idles out after 20 minutes by default).
HOLD_LOOP = 'while kill -0 "$1" 2>/dev/null; do sleep 60; printf .; done'
COPY_CHUNK = 1 << 16


@dataclasses.dataclass
class RemotePython:
    """The agent in one host, and what reaches it."""

    name: str  # the kernel spec's name
    target: HostTarget
    pushing: asyncio.Future  # of the first Pushed (the kernel process starts meanwhile)
    directory: str
    pushed: Optional[Pushed] = None
    relay: Optional[asyncio.AbstractServer] = None
    hold: Optional[asyncio.Task] = None
    seen: bool = False  # a kernel of this spec was in the kernel manager
    closed: bool = False
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    @property
    def socket_path(self) -> str:
        return os.path.join(self.directory, "relay.sock")

    async def open(self, again: bool = True) -> tuple[Any, Any]:
        """A new authenticated stream to the agent: the tunnel again if it dropped, and
        the agent again if it is gone (its idle rule, or killed: a fresh interpreter is
        all a kernel can get then)."""
        if self.pushed is None:
            self.pushed = await self.pushing
        async with self.lock:
            if not self.pushed.tunnel.alive() and not self.closed:
                transport = get_transport(self.target.transport, "forward")
                old = self.pushed.tunnel
                self.pushed.tunnel = await transport.forward(self.target, self.pushed.port)
                with contextlib.suppress(Exception):
                    await old.close()
        try:
            return await self.pushed.open()
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            if not again or self.closed:
                raise
        async with self.lock:
            old_pushed = self.pushed
            self.pushed = await push(self.target, agent.program(), idle_seconds=AGENT_IDLE)
            await old_pushed.close()
        return await self.open(again=False)


class KernelsService:
    def __init__(self, kernel_manager: Any, spec_manager: Any, log: logging.Logger):
        self.kernel_manager = kernel_manager
        self.spec_manager = spec_manager
        self.log = log
        self.root = tempfile.mkdtemp(prefix="sm-debug-kernels-")  # 0700
        self.specs = os.path.join(self.root, "kernels")
        os.makedirs(self.specs, mode=0o700)
        if self.specs not in spec_manager.kernel_dirs:
            # The spec manager looks for <dir>/<name>/kernel.json in each of these.
            spec_manager.kernel_dirs = [*spec_manager.kernel_dirs, self.specs]
        self.hosts: dict[str, RemotePython] = {}
        self._watch: Optional[asyncio.Task] = None

    # -- start ------------------------------------------------------------------------------

    async def start(self, target: HostTarget) -> dict:
        """The agent is pushed while the kernel process starts (both take a while); the
        relay holds the kernel's first connection until the agent is there."""
        name = f"sm-debug-{uuid.uuid4().hex[:12]}"
        pushing = asyncio.ensure_future(push(target, agent.program(), idle_seconds=AGENT_IDLE))
        remote = RemotePython(name, target, pushing, tempfile.mkdtemp(dir=self.root))
        starting: Optional[asyncio.Future] = None
        try:
            remote.relay = await asyncio.start_unix_server(
                lambda r, w: self._relay(remote, r, w), remote.socket_path
            )
            self._write_spec(remote)
            self.hosts[name] = remote
            starting = asyncio.ensure_future(self.kernel_manager.start_kernel(kernel_name=name))
            pushed = remote.pushed = await pushing
            kernel_id = await starting
        except BaseException:
            self.hosts.pop(name, None)
            if starting is not None:
                with contextlib.suppress(BaseException):
                    await self.kernel_manager.shutdown_kernel(await starting, now=True)
            await self._end(remote)
            raise
        remote.seen = True
        remote.hold = asyncio.ensure_future(self._hold(remote))
        if self._watch is None or self._watch.done():
            self._watch = asyncio.ensure_future(self._watch_kernels())
        return {
            "kernel": {"id": kernel_id, "name": name},
            "transport": target.transport,
            "target": pushed.tunnel.target,
        }

    def _write_spec(self, remote: RemotePython) -> None:
        target = remote.target
        directory = os.path.join(self.specs, remote.name)
        os.makedirs(directory, mode=0o700)
        spec = {
            "argv": [
                sys.executable,
                "-m",
                "jupyter_sm_debug.kernels.kernel",
                "-f",
                "{connection_file}",
            ],  # fmt: skip
            "display_name": f"Python on {target.host} · {target.job}",
            "language": "python",
            "interrupt_mode": "message",
            "env": {
                RELAY_VARIABLE: remote.socket_path,
                LABEL_VARIABLE: f"{target.host} of {target.job}",
            },
            "metadata": {
                "sm_debug": {
                    "job": target.job,
                    "host": target.host,
                    "transport": target.transport,
                },  # fmt: skip
            },
        }
        with open(os.path.join(directory, "kernel.json"), "w") as handle:
            json.dump(spec, handle)

    # -- the relay ------------------------------------------------------------------------

    async def _relay(self, remote: RemotePython, reader: Any, writer: Any) -> None:
        """One kernel connection joined to one new stream to the agent, bytes as they are
        (the kernel process bounds and checks what comes back)."""
        try:
            up_reader, up_writer = await remote.open()
        except Exception as error:  # noqa: BLE001 - the kernel sees the closed stream
            self.log.info("sm-debug kernel %s: no stream to the agent: %s", remote.name, error)
            writer.close()
            return

        async def copy(source: Any, sink: Any) -> None:
            try:
                while True:
                    data = await source.read(COPY_CHUNK)
                    if not data:
                        break
                    sink.write(data)
                    await sink.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    # -- the hold's session ---------------------------------------------------------------

    async def _hold(self, remote: RemotePython) -> None:
        transport = get_transport(remote.target.transport, "run")
        target = dataclasses.replace(
            remote.target, options={**remote.target.options, "output_limit": HOLD_OUTPUT}
        )
        while not remote.closed:
            argv = ["sh", "-c", HOLD_LOOP, "sm-debug-kernel-hold", str(remote.pushed.pid)]
            try:
                await transport.run(target, argv, HOLD_RUN_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - tried again while the kernel lives
                self.log.info("sm-debug kernel %s: hold session: %s", remote.name, error)
            await asyncio.sleep(5.0)

    # -- the end --------------------------------------------------------------------------

    def _alive(self, name: str) -> bool:
        manager = self.kernel_manager
        for kernel_id in list(manager.list_kernel_ids()):
            with contextlib.suppress(KeyError):
                if manager.get_kernel(kernel_id).kernel_name == name:
                    return True
        return False

    async def _watch_kernels(self) -> None:
        while self.hosts:
            await asyncio.sleep(WATCH_SECONDS)
            for name, remote in list(self.hosts.items()):
                if remote.seen and not self._alive(name):
                    self.hosts.pop(name, None)
                    try:
                        await self._end(remote)
                    except Exception:  # noqa: BLE001 - the watch goes on
                        self.log.warning("sm-debug kernel %s: ending failed", name, exc_info=True)

    async def _end(self, remote: RemotePython) -> None:
        remote.closed = True
        shutil.rmtree(os.path.join(self.specs, remote.name), ignore_errors=True)
        if remote.relay is not None:
            remote.relay.close()
        if remote.pushed is None:
            if not remote.pushing.done():
                remote.pushing.cancel()  # a started agent ends by its idle rule
            with contextlib.suppress(BaseException):
                remote.pushed = await remote.pushing
        if remote.pushed is None:
            shutil.rmtree(remote.directory, ignore_errors=True)
            return
        try:
            reader, writer = await asyncio.wait_for(remote.open(again=False), 15)
            data = json.dumps({"op": "shutdown"}).encode()
            writer.write(struct.pack(">I", len(data)) + data)
            await writer.drain()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.read(), 15)  # the agent ends: EOF
            writer.close()
        except Exception as error:  # noqa: BLE001 - its idle rule ends it then
            self.log.info("sm-debug kernel %s: agent not told to stop: %s", remote.name, error)
        await remote.pushed.close()
        if remote.hold is not None:
            remote.hold.cancel()
            with contextlib.suppress(BaseException):
                await remote.hold
        shutil.rmtree(remote.directory, ignore_errors=True)

    async def close(self) -> None:
        """Everything ended (the server stops)."""
        if self._watch is not None:
            self._watch.cancel()
        hosts, self.hosts = list(self.hosts.values()), {}
        await asyncio.gather(*(self._end(remote) for remote in hosts), return_exceptions=True)
        with contextlib.suppress(ValueError):
            self.spec_manager.kernel_dirs = [
                d for d in self.spec_manager.kernel_dirs if d != self.specs
            ]
        shutil.rmtree(self.root, ignore_errors=True)


def no_kernel_manager() -> SMDebugError:
    return SMDebugError(
        503, "no_kernel_manager", "This Jupyter server has no kernel manager.",
        "Run the extension in a Jupyter server with kernels (JupyterLab).",
    )  # fmt: skip
