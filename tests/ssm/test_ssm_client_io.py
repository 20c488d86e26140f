"""The built-in SSM client's socket discipline: reads never overlap sends on the SSL object,
and a connection it can no longer write to is given up (so the session resumes) instead of
read on without input."""

from __future__ import annotations

import os
import socket
import ssl
import threading

from jupyter_sm_debug.ssm import client


def test_the_reader_does_not_read_while_a_send_holds_the_lock():
    ours, theirs = socket.socketpair()
    try:
        lock = threading.Lock()
        reader = client.FrameReader(ours, lock)
        got: list = []
        with lock:  # a send in progress
            theirs.sendall(bytes([0x82, 3]) + b"abc")  # one binary websocket frame
            thread = threading.Thread(target=lambda: got.append(reader.read()), daemon=True)
            thread.start()
            thread.join(0.5)
            assert got == [], "the reader read while a send held the lock"
        thread.join(5)
        assert got == [[(client.OPCODE_BINARY, b"abc")]]
        # ...and it waits for data without holding the lock.
        thread = threading.Thread(target=lambda: got.append(reader.read()), daemon=True)
        thread.start()
        thread.join(0.3)
        assert lock.acquire(timeout=1), "the reader held the lock while waiting for data"
        lock.release()
        theirs.sendall(bytes([0x82, 1]) + b"d")
        thread.join(5)
        assert got[-1] == [(client.OPCODE_BINARY, b"d")]
    finally:
        ours.close()
        theirs.close()


class UnwritableSocket(socket.socket):
    """A socket whose writes fail (as an SSL write does when something broke it) while it
    still reads."""

    def sendall(self, data, flags=0):
        raise ssl.SSLError("bad write retry")


class UnwritableWs:
    def __init__(self, sock):
        self.sock = UnwritableSocket(fileno=sock.detach())
        self.lock = threading.Lock()


def test_a_connection_that_cannot_send_is_shut_down_so_the_reader_resumes():
    pair, theirs = socket.socketpair()
    ws = UnwritableWs(pair)
    ours = ws.sock
    session = client.Session(ws, {"StreamUrl": "wss://example.invalid/x", "SessionId": "s-1"}, None)
    try:
        with session.lock:
            session.channel.send_data(b"\x03")  # a keystroke that cannot be sent
        assert not session.connected
        ours.settimeout(2)
        # The reader's next read ends at once (it then resumes the session), instead of
        # waiting on a connection that will never carry a keystroke again.
        assert ours.recv(1) == b""
        assert session.channel.unacked == 1  # the keystroke is kept, to send again
    finally:
        for fd in (session._wake_r, session._wake_w):
            os.close(fd)
        ours.close()
        theirs.close()
