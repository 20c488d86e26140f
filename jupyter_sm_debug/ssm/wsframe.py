"""RFC 6455 websocket framing for the built-in clients, as pure functions (no I/O): every
frame both clients read or write on a data channel goes through here. The console client
(``session.py``, blocking socket, reader thread) and the port-forward client
(``portforward.py``, asyncio) do their own I/O around it.

Why our own: a data channel carries a stream of small (1 KiB) messages each owing an
acknowledgement, and the libraries read a frame in three small reads and send each
message with its own syscall, which capped throughput; with one codec we read and write in
bulk, and both clients follow the same rules. What is not ours: the stand-in (AWS's side)
reads our frames with tornado and writes its own with websocket-client's encoder, and the
real plugin's conformance tests speak gorilla/websocket, so no frame has this module at
both ends (tests/test_ssm_wsframe.py checks it against websocket-client too).

The opening handshake (HTTP Upgrade, ``Sec-WebSocket-Accept``) is here as well, as a
request to send and a check of the answer.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from typing import List, Tuple
from urllib.parse import urlsplit

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
DATA_OPCODES = (OP_TEXT, OP_BINARY)
CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)
MAX_MESSAGE = 16 * 1024 * 1024  # far above any data-channel message; stops a runaway
MAX_HEAD = 16 * 1024  # bytes of a handshake answer's status line and headers
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketError(ConnectionError):
    """The peer broke the websocket protocol: the connection cannot go on."""


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode(opcode: int, payload: bytes = b"", mask: bool = True) -> bytes:
    """One final frame. Clients mask (RFC 6455 5.3, a fresh random key per frame)."""
    payload = bytes(payload)
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, bit | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, bit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _mask(payload, key)


def close_payload(code: int = 1000, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:123]


class FrameParser:
    """Messages out of bytes in any chunking: ``feed`` returns the complete ones as
    (opcode, payload), fragments joined, control frames as they come (between fragments
    too). ``from_server``: frames must be unmasked (a client's view); else masked."""

    def __init__(self, from_server: bool = True, max_message: int = MAX_MESSAGE):
        self.from_server = from_server
        self.max_message = max_message
        self.buffer = bytearray()
        self._fragments: List[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0

    def feed(self, data: bytes = b"") -> List[Tuple[int, bytes]]:
        if data:
            self.buffer += data
        buf = self.buffer
        pos = 0
        messages: List[Tuple[int, bytes]] = []
        while len(buf) - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            if first & 0x70:
                raise WebSocketError("a websocket frame with reserved bits set")
            masked = bool(second & 0x80)
            if masked == self.from_server:
                raise WebSocketError(
                    "the server sent a masked frame" if masked else "a client frame is unmasked"
                )
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, start)[0]
                start += 2
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, start)[0]
                start += 8
            if length > self.max_message:
                raise WebSocketError(f"a {length}-byte websocket frame is not a session message")
            key = b""
            if masked:
                if len(buf) - start < 4:
                    break
                key = bytes(buf[start : start + 4])
                start += 4
            if len(buf) - start < length:
                break
            payload = bytes(buf[start : start + length])
            if masked:
                payload = _mask(payload, key)
            pos = start + length
            messages.extend(self._frame(first & 0x0F, bool(first & 0x80), payload))
        del buf[:pos]
        return messages

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> List[Tuple[int, bytes]]:
        if opcode in CONTROL_OPCODES:
            if not fin or len(payload) > 125:
                raise WebSocketError("a fragmented or long websocket control frame")
            return [(opcode, payload)]
        if opcode == OP_CONT:
            if not self._fragments:
                raise WebSocketError("a websocket continuation frame with nothing to continue")
        elif opcode in DATA_OPCODES:
            if self._fragments:
                raise WebSocketError("a new websocket message inside a fragmented one")
            if fin:
                return [(opcode, payload)]
            self._fragment_opcode = opcode
        else:
            raise WebSocketError(f"websocket opcode {opcode} is reserved")
        self._fragment_size += len(payload)
        if self._fragment_size > self.max_message:
            raise WebSocketError("a fragmented websocket message is too large")
        self._fragments.append(payload)
        if not fin:
            return []
        message = (self._fragment_opcode, b"".join(self._fragments))
        self._fragments, self._fragment_size = [], 0
        return [message]


# ---------------------------------------------------------------------------- handshake


def handshake_request(url: str, key: str) -> bytes:
    """The client's opening handshake (RFC 6455 4.1) for a ws:// or wss:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise WebSocketError(f"not a websocket URL: {url!r}")
    default = 443 if parts.scheme == "wss" else 80
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port and parts.port != default:
        host += f":{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def check_handshake_response(head: bytes, key: str) -> None:
    """The server's answer up to its blank line: 101 with the right Sec-WebSocket-Accept."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        raise WebSocketError(f"Handshake status {' '.join(status[1:]) or lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    want = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()  # noqa: S324 - RFC 6455
    if headers.get("sec-websocket-accept") != want:
        raise WebSocketError("the server's Sec-WebSocket-Accept does not match")
    if headers.get("upgrade", "").lower() != "websocket":
        raise WebSocketError("the server did not upgrade to websocket")
