"""Terminals: JupyterLab's terminal websocket, and a PTY for the baselines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import JupyterServer

PROMPT = re.compile(r"[\w.-]+@algo-\d+:")  # the stand-in hosts' PS1: user@algo-N:/path#


async def terminal_websocket(server: JupyterServer, name: str):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = f"ws://127.0.0.1:{server.port}/terminals/websocket/{name}"
    request = HTTPRequest(url, headers={"Authorization": f"token {server.token}"})
    return await websocket_connect(request, max_message_size=256 * 1024 * 1024)


async def read_until(ws, pattern: re.Pattern, timeout: float = 30.0) -> tuple[float, str]:
    """Read stdout messages until the text matches; returns (perf_counter at the message
    holding the match's first character, text)."""
    text, deadline = "", time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{pattern.pattern!r} not seen; got {text[-500:]!r}")
        message = await asyncio.wait_for(ws.read_message(), remaining)
        now = time.perf_counter()
        if message is None:
            raise EOFError(f"terminal closed before {pattern.pattern!r}: {text[-500:]!r}")
        kind, *payload = json.loads(message)
        if kind != "stdout":
            continue
        before = len(text)
        text += payload[0]
        match = pattern.search(text, max(0, before - 200))
        if match:
            return now, text


def pty_until(
    argv: list[str], env: dict, pattern: re.Pattern, timeout: float = 30.0, cwd=None
) -> tuple[float, Any]:
    """Spawn argv in a PTY; seconds until output matches `pattern` (at the read holding the
    match). Returns (seconds, ptyprocess); the caller ends the process with end_pty()."""
    import select

    from ptyprocess import PtyProcess

    started = time.perf_counter()
    proc = PtyProcess.spawn(argv, env=env, cwd=cwd, dimensions=(24, 80))
    text, deadline = "", time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{pattern.pattern!r} not seen; got {text[-500:]!r}")
            readable, _, _ = select.select([proc.fd], [], [], remaining)
            if not readable:
                continue
            try:
                data = os.read(proc.fd, 65536)
            except OSError:
                data = b""
            now = time.perf_counter()
            if not data:
                raise EOFError(f"{argv[0]} ended before {pattern.pattern!r}: {text[-500:]!r}")
            before = len(text)
            text += data.decode("utf-8", "replace")
            if pattern.search(text, max(0, before - 200)):
                return now - started, proc
    except BaseException:
        end_pty(proc)
        raise


def end_pty(proc) -> None:
    with contextlib.suppress(Exception):
        proc.terminate(force=True)
    with contextlib.suppress(Exception):
        proc.close(force=True)


async def quiet(ws, seconds: float = 0.3) -> None:
    """Drain output until nothing arrives for `seconds` (the prompt has been drawn)."""
    while True:
        try:
            message = await asyncio.wait_for(ws.read_message(), seconds)
        except asyncio.TimeoutError:
            return
        if message is None:
            raise EOFError("the terminal closed")


def cat_command(path) -> str:
    """`cat path` then an end marker (END); the quotes keep the echoed command line from
    containing the marker."""
    return f'cat {path}; echo END-""MARK\r'


END = "END-MARK"


async def read_through(ws, marker: str = END, timeout: float = 600) -> tuple[int, int]:
    """Read stdout messages until `marker` has arrived: (characters, messages) read."""
    received, tail, messages = 0, "", 0
    while True:
        message = await asyncio.wait_for(ws.read_message(), timeout)
        if message is None:
            raise EOFError("the terminal closed during the transfer")
        kind, *payload = json.loads(message)
        if kind != "stdout":
            continue
        messages += 1
        received += len(payload[0])
        window = tail + payload[0]
        if marker in window:
            return received, messages
        tail = window[-len(marker) :]
