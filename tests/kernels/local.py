"""The kernel without a stand-in: the agent started on this machine by connect/pushed.py's
own BOOTSTRAP under a given Python, a relay like service.py's, and the kernel process
started by jupyter_client's kernel manager."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from jupyter_sm_debug.connect.pushed import BOOTSTRAP
from jupyter_sm_debug.kernels import LABEL_VARIABLE, RELAY_VARIABLE, agent

TOKEN = "t0ken"  # noqa: S105 - a local test agent's


def start_agent(python: str, token: str = TOKEN, idle: int = 60) -> tuple[int, int]:
    """(port, pid) of the agent started as push() starts it, in this machine."""
    done = subprocess.run(
        [python, "-c", BOOTSTRAP, str(idle)], input=token.encode() + b"\n" + agent.program(),
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    _, port, pid = done.stdout.split()
    return int(port), int(pid)


@contextlib.asynccontextmanager
async def local_kernel(python: str):
    """A started kernel client whose cells run in an agent under `python`."""
    token = TOKEN
    port, pid = start_agent(python, token)
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "relay.sock")

    async def relay(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        up_writer.write(token.encode() + b"\n")
        assert await up_reader.readline() == b"OK\n"

        async def copy(source, sink):
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    server = await asyncio.start_unix_server(relay, path)
    manager = AsyncKernelManager()
    manager._kernel_spec = KernelSpec(
        argv=[sys.executable, "-m", "jupyter_sm_debug.kernels.kernel", "-f", "{connection_file}"],
        display_name="local", language="python", interrupt_mode="message",
        env={RELAY_VARIABLE: path, LABEL_VARIABLE: "this machine"},
    )  # fmt: skip
    await manager.start_kernel(env={**os.environ, RELAY_VARIABLE: path})
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        yield manager, client, pid
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
        server.close()
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
