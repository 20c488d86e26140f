"""smux over a Session Manager data channel: the one adapter both ends of a port session
use, the built-in client (``portforward.py``) and the stand-in's port agent
(``standin/ssm/port.py``).

smux frames travel as the Output payloads of the data channel's stream messages, cut into
messages of at most :data:`protocol.STREAM_DATA_PAYLOAD_SIZE` bytes (both Go ends read their
smux connection 1 KiB at a time). smux v1 has no flow control of its own, so the only
backpressure is the channel's send window: while :data:`protocol.SEND_WINDOW` messages are
unacknowledged, ``room`` is clear, and whoever feeds streams waits on it (``paced`` readers,
``StreamWriter.drain``).

This is the carrier only; each end's own behaviour (handshake, what a stream connects to,
ending the session) stays with that end, so the stand-in remains a peer of its own. The
real plugin's conformance test (``tests/test_ssm_port_conformance.py``) judges the stand-in's
side with AWS's own smux and chunking.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, Callable, ContextManager, Optional

from . import protocol as p
from . import smux
from .channel import DataChannel


class MuxChannel:
    """One smux session carried by one data channel.

    ``hold`` (optional) returns a context manager inside which the channel's frames are
    collected and written together (the stand-in writes a burst of messages in one go).
    """

    def __init__(
        self,
        channel: DataChannel,
        *,
        client: bool,
        on_stream: Optional[Callable[[smux.Stream], Awaitable[None]]] = None,
        hold: Optional[Callable[[], ContextManager[Any]]] = None,
    ) -> None:
        self.channel = channel
        self.mux = smux.Session(self._send_mux, client=client, on_stream=on_stream)
        self.room = asyncio.Event()
        self.room.set()
        self.closed = False
        self._hold = hold
        self._pending = bytearray()

    # -- out: smux bytes into stream messages ---------------------------------------------------

    def _send_mux(self, data: bytes) -> None:
        self._pending += data
        self.flush()

    def flush(self) -> None:
        size = p.STREAM_DATA_PAYLOAD_SIZE
        with self._hold() if self._hold is not None else contextlib.nullcontext():
            while self._pending and not self.closed:
                chunk = bytes(self._pending[:size])
                del self._pending[:size]
                self.channel.send_data(chunk)
        self.update_room()

    def update_room(self) -> None:
        """Call after anything that changes the number of unacknowledged messages."""
        if self.closed or self.channel.unacked < p.SEND_WINDOW:
            self.room.set()  # closed: wake every waiter, so it sees the end
        else:
            self.room.clear()

    # -- in: Output payloads to smux ------------------------------------------------------------

    def feed(self, payload: bytes) -> None:
        """An Output payload from the peer; raises smux.SmuxError for a malformed frame."""
        self.mux.feed(payload)

    # -- streams --------------------------------------------------------------------------------

    def paced(self, reader: asyncio.StreamReader) -> _Paced:
        """``reader``, read only while the send window has room."""
        return _Paced(reader, self.room)

    async def splice(
        self, stream: smux.Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A TCP connection and a stream, both ways, paced by the send window."""
        await smux.splice(stream, self.paced(reader), writer)

    def open_stream(self) -> tuple[asyncio.StreamReader, StreamWriter]:
        """A new stream to the peer as asyncio streams (raises smux.SmuxError once closed)."""
        stream = self.mux.open_stream()
        return stream.reader, StreamWriter(stream, self)

    def close(self) -> None:
        """The carrier is gone: every stream ends, every waiter wakes."""
        self.closed = True
        self.mux.close()
        self.room.set()


class _Paced:
    def __init__(self, reader: asyncio.StreamReader, room: asyncio.Event):
        self.reader = reader
        self.room = room

    async def read(self, n: int) -> bytes:
        await self.room.wait()
        return await self.reader.read(n)


class StreamWriter:
    """The part of asyncio.StreamWriter a stream's user needs, for one smux stream: write,
    drain (waits for the send window), write_eof (FIN, half close), close."""

    def __init__(self, stream: smux.Stream, carrier: MuxChannel) -> None:
        self.stream = stream
        self.carrier = carrier
        self._closed = False

    @property
    def transport(self) -> None:
        return None

    def write(self, data: bytes) -> None:
        if data:
            self.stream.write(bytes(data))

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.write(chunk)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.stream.close()

    def is_closing(self) -> bool:
        return self._closed or self.stream.closed_by_us or self.carrier.closed

    async def drain(self) -> None:
        if self.carrier.closed or self.stream.closed_by_peer and self.stream.closed_by_us:
            raise ConnectionResetError("the port session ended")
        await self.carrier.room.wait()
        if self.carrier.closed:
            raise ConnectionResetError("the port session ended")

    def close(self) -> None:
        self._closed = True
        self.stream.close()

    async def wait_closed(self) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "smux_stream_id":
            return self.stream.id
        return default
