"""The stand-in's SSM agent for port-forwarding sessions (AWS-StartPortForwardingSession).

Like amazon-ssm-agent 3.0.222.0 and later: a handshake whose SessionType action is "Port"
with the session's properties (portNumber, type LocalPortForwarding), then smux v1 inside
the data channel's Output payloads; each stream the client opens is connected to
127.0.0.1:portNumber in the host (the hosts' network is this machine's loopback), and a
port nothing listens on closes that stream at once. Outgoing data goes in messages of the
agent's StreamDataPayloadSize (1 KiB), as the agent reads it from its smux connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Optional

import tornado.ioloop

from ..ssm import protocol as p
from ..ssm import smux
from ..ssm.channel import (
    AGENT,
    RESEND_INTERVAL,
    DataChannel,
    HandshakeAnswered,
    ResendTimeout,
    StreamData,
)

PORT_DOCUMENT = "AWS-StartPortForwardingSession"
STREAM_DATA_PAYLOAD_SIZE = 1024
SEND_WINDOW = 10000  # unacknowledged messages before the agent stops reading its streams
RESUME_WINDOW = 120.0


class PortAgent:
    """One port session's agent: outlives a dropped websocket (ResumeSession), as Agent."""

    def __init__(self, standin: Any, session: Any, loop: Any) -> None:
        from .ssm import registry

        self.standin = standin
        self.session = session
        self.registry = registry(standin)
        self.loop = loop
        self.channel = DataChannel(
            AGENT, self._send_frame, session_id=session.session_id, target_id=session.target
        )
        self.mux = smux.Session(self._send_mux, client=False, on_stream=self._serve_stream)
        self.handler: Any = None
        self._started = False
        self._ended = False
        self._timer: Optional[tornado.ioloop.PeriodicCallback] = None
        self._detached_since: Optional[float] = None
        self._pending = bytearray()  # smux bytes not yet sent as messages
        self._room = asyncio.Event()
        self._room.set()
        self._batch: Optional[list[bytes]] = None  # frames of one read, written together

    # -- connections, as Agent ----------------------------------------------------------------

    def attach(self, handler: Any) -> None:
        previous, self.handler = self.handler, handler
        self._detached_since = None
        if previous is not None and previous is not handler:
            previous.agent = None
            previous.drop()
        if not self._started:
            self._started = True
            self._timer = tornado.ioloop.PeriodicCallback(self._tick, RESEND_INTERVAL * 1000)
            self._timer.start()
            # The document's properties with the session's parameters, as the agent sends them.
            properties = {"portNumber": str(self.session.port), "type": "LocalPortForwarding"}
            if self.session.local_port:
                properties["localPortNumber"] = self.session.local_port
            self.channel.request_handshake("Port", properties=properties)
        else:
            self.channel.resend_all()

    def detach(self, handler: Any) -> None:
        if self.handler is handler:
            self.handler = None
            if not self._ended:
                self._detached_since = time.monotonic()

    def drop_connection(self) -> bool:
        if self.handler is None or self._ended:
            return False
        self.handler.drop()
        return True

    def _send_frame(self, frame: bytes) -> None:
        if self._batch is not None:
            self._batch.append(frame)
        elif self.handler is not None:
            self.handler.write_frames([frame])

    # -- frames in ------------------------------------------------------------------------------

    def receive(self, frame: bytes) -> None:
        if self._ended:
            return
        try:
            events = self.channel.receive(frame)
        except p.ProtocolError:
            return
        for event in events:
            if isinstance(event, HandshakeAnswered):
                if event.ok:
                    self.channel.complete_handshake()
                else:
                    self.end("Handshake failed: the client refused the port session")
            elif isinstance(event, StreamData):
                if event.payload_type == p.PayloadType.OUTPUT:
                    try:
                        self.mux.feed(event.payload)
                    except smux.SmuxError:
                        self.end("The client sent a malformed smux frame.")
                elif event.payload_type == p.PayloadType.FLAG:
                    with contextlib.suppress(p.ProtocolError):
                        if p.parse_flag(event.payload) == p.PayloadTypeFlag.TERMINATE_SESSION:
                            self.end("")
        self._update_room()

    # -- smux streams to the host's port ---------------------------------------------------------

    def _send_mux(self, data: bytes) -> None:
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        self._batch = []
        try:
            while self._pending and not self._ended:
                chunk = bytes(self._pending[:STREAM_DATA_PAYLOAD_SIZE])
                del self._pending[:STREAM_DATA_PAYLOAD_SIZE]
                self.channel.send_data(chunk)
        finally:
            frames, self._batch = self._batch, None
            if frames and self.handler is not None:
                self.handler.write_frames(frames)
        self._update_room()

    def _update_room(self) -> None:
        if self.channel.unacked < SEND_WINDOW:
            self._room.set()
        else:
            self._room.clear()

    async def _serve_stream(self, stream: smux.Stream) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.session.port)
        except OSError:
            stream.close()  # nothing listens: the client sees the connection end
            return
        await smux.splice(stream, _Paced(reader, self._room), writer)

    # -- timers and ending --------------------------------------------------------------------

    def _tick(self) -> None:
        if self._ended:
            return
        if self.handler is None:
            if (
                self._detached_since is not None
                and time.monotonic() - self._detached_since > RESUME_WINDOW
            ):
                self.end("")
            return
        try:
            self.channel.tick()
        except ResendTimeout:
            self.end("The client stopped acknowledging output.")
        self._update_room()

    def end(self, output: str = "") -> None:
        if self._ended:
            return
        self.channel.close(output)
        self._ended = True
        if self._timer is not None:
            self._timer.stop()
        self.mux.close()
        with self.registry.lock:
            self.session.status = "Terminated"
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.finish_later(2.0)


class _Paced:
    """A reader that waits while the data channel's send window is full."""

    def __init__(self, reader: asyncio.StreamReader, room: asyncio.Event):
        self.reader = reader
        self.room = room

    async def read(self, n: int) -> bytes:
        await self.room.wait()
        return await self.reader.read(n)
