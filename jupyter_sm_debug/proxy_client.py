"""One HTTP/1.1 exchange over a byte stream the proxy opened (`connect.open_stream`).

The framing is h11's (Content-Length, chunked and close-delimited bodies, HEAD, 1xx):
this module only moves its bytes, awaiting every write, so a request body is sent as it
arrives and a response body is read only as fast as the caller takes it. Nothing here
keeps a body: memory stays at one read (`READ_SIZE`) per exchange whatever its length.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import h11

READ_SIZE = 65536
MAX_HEAD = 64 * 1024  # bytes of status line and headers the app may send


class UpstreamError(Exception):
    """The app's side broke the exchange: closed, reset, or sent something that is not
    HTTP/1.1."""


class Exchange:
    """`send_head`, `send_body`* and `end` the request, then `response` and `body`*."""

    def __init__(self, reader: Any, writer: Any):
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)

    async def _send(self, event) -> None:
        try:
            data = self.conn.send(event)
            if data:
                self.writer.write(data)
                await self.writer.drain()
        except (OSError, h11.ProtocolError) as error:
            raise UpstreamError(str(error)) from error

    async def send_head(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        request = h11.Request(method=method, target=target, headers=headers)
        await self._send(request)

    async def send_body(self, data: bytes) -> None:
        if data:
            await self._send(h11.Data(data=data))

    async def end(self) -> None:
        await self._send(h11.EndOfMessage())

    async def _next(self):
        while True:
            try:
                event = self.conn.next_event()
            except h11.ProtocolError as error:
                raise UpstreamError(str(error)) from error
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.reader.read(READ_SIZE)
            except (OSError, asyncio.IncompleteReadError) as error:
                raise UpstreamError(str(error)) from error
            self.conn.receive_data(data)  # b"" is the end of the stream, h11 decides

    async def response(self) -> h11.Response:
        """The final answer's head (informational 1xx answers are skipped)."""
        while True:
            event = await self._next()
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise UpstreamError("closed before answering")
            # h11.InformationalResponse (100 Continue, 103 Early Hints): not passed on

    async def body(self) -> bytes | None:
        """The next piece of the response body, or None at its end."""
        event = await self._next()
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return None
        raise UpstreamError(f"unexpected {type(event).__name__}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def header_items(response: h11.Response) -> list[tuple[str, str]]:
    """The answer's headers as the app spelled them."""
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in response.headers.raw_items()
    ]
