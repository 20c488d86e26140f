"""smux v1, the stream multiplexer that Session Manager port forwarding runs inside its
data channel (SSM agents newer than 3.0.196.0; the plugin's muxportforwarding.go uses
github.com/xtaci/smux). Our own implementation of the wire protocol, for both sides:
the client opens a stream per local TCP connection, the agent connects each stream to the
port in the host.

A frame is an 8-byte header and its data::

    version:u8 (1)  cmd:u8  length:u16 LE  stream id:u32 LE  data[length]

cmd SYN (0) opens a stream, FIN (1) ends the sender's half, PSH (2) carries data, NOP (3)
is a keep-alive (smux v2's UPD window updates are not part of v1). The client's streams
have odd ids (3, 5, ... as smux counts), the server's even ones. v1 has no per-stream flow
control: like smux, a reader that does not keep up holds back the whole session.
Keep-alive (a NOP with stream id 0) is sent by its users, not here: the client for agents
up to 3.1.1511.0 as the plugin does, the stand-in's agent for clients up to 1.2.331.0 as the
agent does (``portforward.py``, ``standin/ssm/port.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Awaitable, Callable, Optional

VERSION = 1
SYN, FIN, PSH, NOP = 0, 1, 2, 3
HEADER = struct.Struct("<BBHI")
MAX_FRAME = 32768  # smux's default MaxFrameSize
STREAM_LIMIT = 1 << 20  # a stream's reader pauses the session above twice this, unread


class SmuxError(ValueError):
    pass


def frame(cmd: int, stream_id: int, data: bytes = b"") -> bytes:
    return HEADER.pack(VERSION, cmd, len(data), stream_id) + data


class Stream:
    """One multiplexed connection: an asyncio.StreamReader for what arrives, write/close
    for what we send."""

    def __init__(self, session: Session, stream_id: int):
        self.session = session
        self.id = stream_id
        self.reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        # Above 2 x STREAM_LIMIT unread bytes the reader pauses its "transport": the session
        # stops taking frames (Session.readable) until the reader is read down, as xtaci/smux
        # stops its recvLoop past MaxReceiveBuffer. A slow reader holds the agent back
        # through the data channel's window instead of filling this server's memory.
        self._valve = _Valve(session)
        self.reader.set_transport(self._valve)
        self.closed_by_us = False
        self.closed_by_peer = False

    def write(self, data: bytes) -> None:
        if self.closed_by_us or self.session.closed:
            return
        for start in range(0, len(data), MAX_FRAME):
            self.session.send(frame(PSH, self.id, data[start : start + MAX_FRAME]))

    def close(self) -> None:
        """FIN: we send no more (the peer may still send until it FINs too)."""
        if not self.closed_by_us:
            self.closed_by_us = True
            if not self.session.closed:
                self.session.send(frame(FIN, self.id))
            self.session._maybe_forget(self)

    def _peer_closed(self) -> None:
        if not self.closed_by_peer:
            self.closed_by_peer = True
            self.reader.feed_eof()
            self.session._maybe_forget(self)


class _Valve:
    """What a stream's StreamReader pauses and resumes: the whole session's intake."""

    def __init__(self, session: Session):
        self.session = session
        self.paused = False

    def pause_reading(self) -> None:
        if not self.paused:
            self.paused = True
            self.session._paused += 1
            self.session.readable.clear()

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self.session._paused -= 1
            if self.session._paused == 0:
                self.session.readable.set()


class Session:
    """`send` takes frame bytes to the peer; `feed` takes bytes from the peer in any
    chunking. A server gets each stream the peer opens through `on_stream`."""

    def __init__(
        self,
        send: Callable[[bytes], None],
        client: bool,
        on_stream: Optional[Callable[[Stream], Awaitable[None]]] = None,
    ):
        self.send = send
        self.client = client
        self.on_stream = on_stream
        self.streams: dict[int, Stream] = {}
        self._next_id = 1 if client else 0
        self._buffer = bytearray()
        self._tasks: set[asyncio.Task] = set()
        self.closed = False
        # Clear while a stream's reader is full: whoever feeds this session waits on it.
        self.readable = asyncio.Event()
        self.readable.set()
        self._paused = 0

    def open_stream(self) -> Stream:
        if self.closed:
            raise SmuxError("the session is closed")
        self._next_id += 2
        stream = Stream(self, self._next_id)
        self.streams[stream.id] = stream
        self.send(frame(SYN, stream.id))
        return stream

    def feed(self, data: bytes) -> None:
        self._buffer += data
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= HEADER.size:
            version, cmd, length, stream_id = HEADER.unpack_from(buf, pos)
            if version != VERSION:
                self.close()
                raise SmuxError(f"smux version {version} is not 1")
            if len(buf) - pos - HEADER.size < length:
                break
            data = bytes(buf[pos + HEADER.size : pos + HEADER.size + length])
            pos += HEADER.size + length
            self._on_frame(cmd, stream_id, data)
        del buf[:pos]

    def _on_frame(self, cmd: int, stream_id: int, data: bytes) -> None:
        stream = self.streams.get(stream_id)
        if cmd == SYN:
            if stream is None and self.on_stream is not None:
                stream = Stream(self, stream_id)
                self.streams[stream_id] = stream
                task = asyncio.ensure_future(self.on_stream(stream))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif cmd == PSH:
            if stream is not None and not stream.closed_by_peer:
                stream.reader.feed_data(data)
        elif cmd == FIN:
            if stream is not None:
                stream._peer_closed()
        elif cmd != NOP:
            raise SmuxError(f"unknown smux command {cmd}")

    def _maybe_forget(self, stream: Stream) -> None:
        if stream.closed_by_us and stream.closed_by_peer:
            self.streams.pop(stream.id, None)
            stream._valve.resume_reading()  # an unread, forgotten stream holds no one back

    def close(self) -> None:
        """The carrier is gone: every stream ends."""
        if self.closed:
            return
        self.closed = True
        for stream in list(self.streams.values()):
            stream.closed_by_us = True
            stream._peer_closed()
        self.streams.clear()
        self._paused = 0
        self.readable.set()  # nothing is fed any more: no one waits on a closed session
        for task in list(self._tasks):
            task.cancel()


async def splice(stream: Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 chunk: int = 32768) -> None:  # fmt: skip
    """A TCP connection and a stream, both ways, each half closed when its source ends
    (as the plugin's handleDataTransfer: copy, then close)."""

    async def to_stream() -> None:
        try:
            while data := await reader.read(chunk):
                stream.write(data)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            stream.close()

    async def to_socket() -> None:
        try:
            while data := await stream.reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    await asyncio.gather(to_stream(), to_socket())
