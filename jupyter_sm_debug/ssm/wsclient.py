"""A websocket client on asyncio streams, framed by ``wsframe``: the port-forward client's
connection to its data channel (in the Jupyter server's event loop). The console client
does the same over a blocking socket (``session.py``); both use one codec.

TLS trusts AWS_CA_BUNDLE when set (as the AWS CLI and botocore take it), else the system's
store. Pings are answered, a close is answered and ends the reading.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections import deque
from typing import Optional, Union
from urllib.parse import urlsplit

from . import wsframe

RECV_SIZE = 256 * 1024


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = wsframe.FrameParser(from_server=True)
        self._messages: deque = deque()
        self._eof = False

    @classmethod
    async def connect(cls, url: str, timeout: float = 15.0) -> WebSocket:
        """Connect and do the opening handshake; raises OSError or WebSocketError."""
        parts = urlsplit(url)
        context = None
        if parts.scheme == "wss":
            context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        key = wsframe.new_key()
        request = wsframe.handshake_request(url, key)  # checks the URL first

        async def opening() -> WebSocket:
            reader, writer = await asyncio.open_connection(
                parts.hostname, port, ssl=context, limit=wsframe.MAX_HEAD
            )
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                wsframe.check_handshake_response(head, key)
            except BaseException:
                writer.close()
                raise
            sock = writer.get_extra_info("socket")
            if sock is not None:  # small messages (acks) go out at once
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return cls(reader, writer)

        try:
            return await asyncio.wait_for(opening(), timeout)
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError) as exc:
            raise wsframe.WebSocketError(f"no websocket handshake answer ({exc})") from None

    @property
    def closing(self) -> bool:
        return self._eof or self.writer.is_closing()

    def _send(self, opcode: int, payload: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(wsframe.encode(opcode, payload))

    def send_binary(self, data: bytes) -> None:
        self._send(wsframe.OP_BINARY, data)

    def send_text(self, text: str) -> None:
        self._send(wsframe.OP_TEXT, text.encode())

    async def read_message(self) -> Optional[Union[bytes, str]]:
        """The next data message (bytes, or str for a text one); None once the connection
        ended. Raises WebSocketError when the server breaks the protocol."""
        while not self._messages:
            if self._eof:
                return None
            data = await self.reader.read(RECV_SIZE)
            if not data:
                self._eof = True
                return None
            for opcode, payload in self.parser.feed(data):
                if opcode == wsframe.OP_BINARY:
                    self._messages.append(payload)
                elif opcode == wsframe.OP_TEXT:
                    self._messages.append(payload.decode("utf-8", "replace"))
                elif opcode == wsframe.OP_PING:
                    self._send(wsframe.OP_PONG, payload)
                elif opcode == wsframe.OP_CLOSE:
                    self.close()
                    break
        return self._messages.popleft()

    def close(self) -> None:
        """A close frame, then the connection goes (no wait for the server's answer)."""
        if not self.writer.is_closing():
            self._send(wsframe.OP_CLOSE, wsframe.close_payload())
            self.writer.close()
        self._eof = True
