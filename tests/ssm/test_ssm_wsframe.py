"""The built-in clients' websocket codec (ssm/wsframe.py) against an independent one
(websocket-client's), both ways, at every length class, in any chunking; and what a
client must refuse from a server."""

from __future__ import annotations

import base64
import hashlib

import pytest
from websocket import ABNF

from jupyter_sm_debug.ssm import wsframe

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def theirs(opcode: int, payload: bytes, fin: int = 1, mask: int = 0) -> bytes:
    return ABNF(fin, 0, 0, 0, opcode, mask, payload).format()  # positional across versions


@pytest.mark.parametrize("size", SIZES)
def test_we_parse_what_websocket_client_frames(size):
    payload = bytes(i % 251 for i in range(size))
    stream = theirs(ABNF.OPCODE_BINARY, payload) + theirs(ABNF.OPCODE_PING, b"p")
    for chunk in (1, 3, 4096, len(stream)):
        parser = wsframe.FrameParser()
        got = []
        for i in range(0, len(stream), chunk):
            got += parser.feed(stream[i : i + chunk])
        assert got == [(wsframe.OP_BINARY, payload), (wsframe.OP_PING, b"p")]


@pytest.mark.parametrize("size", SIZES)
def test_websocket_client_parses_what_we_frame_masked(size):
    payload = bytes(i % 253 for i in range(size))
    frame = wsframe.encode(wsframe.OP_BINARY, payload)
    buf = bytearray(frame)

    def recv(n: int) -> bytes:
        out = bytes(buf[:n])
        del buf[:n]
        return out

    from websocket._abnf import frame_buffer

    got = frame_buffer(recv, skip_utf8_validation=True).recv_frame()
    assert got.opcode == ABNF.OPCODE_BINARY and got.mask_value == 1 and got.data == payload
    # ...and a server's view of ours: masked, as RFC 6455 wants from clients.
    assert wsframe.FrameParser(from_server=False).feed(frame) == [(wsframe.OP_BINARY, payload)]


def test_fragments_are_joined_around_control_frames():
    stream = (
        theirs(ABNF.OPCODE_BINARY, b"ab", fin=0)
        + theirs(ABNF.OPCODE_PING, b"!")
        + theirs(ABNF.OPCODE_CONT, b"cd", fin=1)
    )
    assert wsframe.FrameParser().feed(stream) == [
        (wsframe.OP_PING, b"!"),
        (wsframe.OP_BINARY, b"abcd"),
    ]


@pytest.mark.parametrize(
    "frame",
    [
        theirs(ABNF.OPCODE_BINARY, b"x", mask=1),  # a server never masks
        bytes([0x82 | 0x40, 1]) + b"x",  # a reserved bit
        theirs(ABNF.OPCODE_CONT, b"x"),  # nothing to continue
        bytes([0x83, 1]) + b"x",  # a reserved opcode
        bytes([0x82, 127]) + (1 << 40).to_bytes(8, "big"),  # a runaway length
        bytes([0x09, 1]) + b"x",  # a fragmented control frame
    ],
)
def test_a_client_refuses_what_breaks_the_protocol(frame):
    with pytest.raises(wsframe.WebSocketError):
        wsframe.FrameParser().feed(frame)


def test_the_handshake_checks_the_accept_key():
    key = wsframe.new_key()
    request = wsframe.handshake_request("wss://h.example:8443/v1/data-channel/s?role=x", key)
    assert request.startswith(b"GET /v1/data-channel/s?role=x HTTP/1.1\r\nHost: h.example:8443\r\n")
    accept = base64.b64encode(
        hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()  # noqa: S324
    ).decode()
    good = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n"
    ).encode()
    wsframe.check_handshake_response(good, key)
    with pytest.raises(wsframe.WebSocketError):
        wsframe.check_handshake_response(good.replace(accept.encode(), b"AAAA"), key)
    with pytest.raises(wsframe.WebSocketError, match="404"):
        wsframe.check_handshake_response(b"HTTP/1.1 404 Not Found\r\n", key)
