"""connect/pushed.py: a standard-library program started in a stand-in host over each
transport (a marked run), reached only through the transport's forward, and only with the
token."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from support import host_target

from jupyter_sm_debug.connect.pushed import _ready_line, push
from jupyter_sm_debug.connect.registry import get_transport

pytestmark = pytest.mark.usefixtures("standin")

# Echoes each line back with the host's name, on any number of streams; ends when asked or
# after idle_seconds with no stream open.
ECHO = b"""
import hmac, os, socket, threading, time
def serve(listener, token, idle):
    state = {"open": 0, "last": time.time()}
    def one(conn):
        f = conn.makefile("rwb")
        if not hmac.compare_digest(f.readline().strip(), token.encode()):
            conn.close(); return
        f.write(b"OK\\n"); f.flush()
        for line in f:
            if line == b"quit\\n":
                os._exit(0)
            f.write(socket.gethostname().encode() + b" " + line); f.flush()
        state["open"] -= 1; state["last"] = time.time(); conn.close()
    listener.settimeout(0.2)
    while state["open"] or time.time() - state["last"] < idle:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        state["open"] += 1
        threading.Thread(target=one, args=(conn,), daemon=True).start()
"""


@pytest.fixture
def job(standin):
    name = f"push-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=2, remote_debug=True, started_ago=600)
    return name


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_a_pushed_program_answers_on_many_streams_and_only_with_the_token(
    services, job, transport
):
    target = await host_target(services, job, "algo-2", transport)
    pushed = await push(target, ECHO, idle_seconds=30)
    try:
        streams = [await pushed.open() for _ in range(3)]
        for i, (reader, writer) in enumerate(streams):
            writer.write(f"hello {i}\n".encode())
            await writer.drain()
            assert await reader.readline() == f"algo-2 hello {i}\n".encode()
        # A stream without the token is closed unanswered.
        reader, writer = await pushed.tunnel.connect()
        writer.write(b"0" * 64 + b"\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        for _, writer in streams:
            writer.close()
        reader, writer = await pushed.open()
        writer.write(b"quit\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        await pushed.close()
    runner = get_transport(transport, "run")
    alive = await runner.run(target, ["sh", "-c", f"kill -0 {pushed.pid} && echo alive"], 20)
    assert alive.stdout == b"", "the program is still running in the host"


def test_only_a_whole_ready_line_counts():
    assert _ready_line(b"banner SMDEBUG-AGENT 1 2\nSMDEBUG-AGENT 4242 77\n") == (4242, 77)
    assert _ready_line(b"SMDEBUG-AGENT 70000 1\n") is None
    assert _ready_line(b"SMDEBUG-AGENT 0 1\nnothing\n") is None
