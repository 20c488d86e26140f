"""Drive a JupyterLab terminal over its real websocket, as the browser's xterm does."""

from __future__ import annotations

import asyncio
import json
import re
import time


class TerminalClient:
    def __init__(self, websocket):
        self.ws = websocket
        self.output = ""

    async def send(self, text: str) -> None:
        await self.ws.write_message(json.dumps(["stdin", text]))

    async def resize(self, rows: int, cols: int) -> None:
        await self.ws.write_message(json.dumps(["set_size", rows, cols]))

    async def expect(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """Read stdout until `pattern` matches the text after the last expect."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.output)
            if match:
                self.output = self.output[match.end() :]
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{pattern!r} not seen; terminal said: {self.output[-2000:]!r}"
                )
            try:
                message = await asyncio.wait_for(self.ws.read_message(), remaining)
            except asyncio.TimeoutError:
                continue
            if message is None:
                match = regex.search(self.output)
                if match:
                    return match
                raise AssertionError(f"terminal closed before {pattern!r}: {self.output[-2000:]!r}")
            kind, *payload = json.loads(message)
            if kind == "stdout":
                self.output += payload[0]

    async def closed(self, timeout: float = 10.0) -> bool:
        """True once the server closes the websocket (the session process ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(
                    self.ws.read_message(), deadline - time.monotonic()
                )
            except asyncio.TimeoutError:
                return False
            if message is None:
                return True
            kind, *payload = json.loads(message)
            if kind == "stdout":
                self.output += payload[0]
        return False


async def open_terminal(jp_ws_fetch, name: str) -> TerminalClient:
    websocket = await jp_ws_fetch("terminals", "websocket", name)
    return TerminalClient(websocket)
