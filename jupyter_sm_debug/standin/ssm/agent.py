"""The stand-in's SSM agent: the lifecycle every session kind shares.

One agent per session, on the stand-in's event loop, from the first connection to the
session's end. It outlives any one connection: a client that lost its websocket resumes
(ResumeSession, a new token, a new connection) and finds the same agent, the same sequence
numbers and whatever was not acknowledged sent again. Without a connection it waits
:data:`RESUME_WINDOW` seconds, then ends the session.

What a kind adds, through the hooks below: ``_start`` (first connection: handshake, shell
or port), ``_on_event`` (the channel's events), ``_received`` and ``_after_tick`` (after
frames in and after each resend tick), ``_resumed`` (a new connection), ``_idle_end``
(a reason to end the session now, or ""), ``_release`` (what it holds, at the end). The
kinds: ``shell.Agent`` (a shell in a PTY) and ``port.PortAgent`` (smux streams to a
port). Frames from the client that do not validate or parse are dropped, as the agent
logs and drops them (its ``AgentMessage.Validate`` checks no payload digest, so neither do
we). Unacknowledged output is resent for as long as the session lasts (the agent's
``ResendStreamDataMessageScheduler`` never gives up); a client that answers no handshake
within 15 s ends the session (``PerformHandshake``'s ``handshakeTimeout``).
"""

from __future__ import annotations

import contextlib
import struct
import time
from typing import Any, Iterator, Optional

import tornado.ioloop

from ...ssm import protocol as p
from ...ssm.channel import AGENT, RESEND_INTERVAL, DataChannel, ResendTimeout
from .sessions import SsmSession, registry

RESUME_WINDOW = 120.0  # seconds a session waits for its client to reconnect
FINISH_DELAY = 2.0  # seconds the client has to read channel_closed and close first


class AgentBase:
    def __init__(self, standin: Any, session: SsmSession, loop: Any, **channel_options: Any):
        self.standin = standin
        self.session = session
        self.registry = registry(standin)
        self.loop = loop
        channel_options.setdefault("decrypt_data_key", self._decrypt_data_key)
        self.channel = DataChannel(
            AGENT,
            self._send_frame,
            session_id=session.session_id,
            target_id=session.target,
            **channel_options,
        )
        self.handler: Any = None  # the gateway's connection (gateway.DataChannelHandler)
        self._started = False
        self._ended = False
        self._timer: Optional[tornado.ioloop.PeriodicCallback] = None
        self._detached_since: Optional[float] = None
        self._batch: Optional[list[bytes]] = None  # frames held back to go out together

    def _decrypt_data_key(self, blob: bytes, context: dict) -> bytes:
        """kms:Decrypt of the client's data key, in the stand-in's KMS (moto)."""
        from moto.kms.models import kms_backends

        backend = kms_backends[self.standin.account_id][self.standin.region]
        plain, _arn = backend.decrypt(ciphertext_blob=blob, encryption_context=dict(context))
        return plain

    # -- hooks ---------------------------------------------------------------------------------

    def _start(self) -> None:
        """The first connection is in."""

    def _on_event(self, event: Any) -> None:
        """One event of the channel (StreamData, HandshakeAnswered, ...)."""

    def _received(self) -> None:
        """After the events of a frame."""

    def _resumed(self) -> None:
        """A new connection replaced a lost one."""

    def _idle_end(self) -> str:
        """A reason to end the session now (checked every tick), or ""."""
        return ""

    def _after_tick(self) -> None:
        """After every resend tick of a session that goes on."""

    def _release(self) -> None:
        """At the end: let go of what the session holds."""

    # -- connections ---------------------------------------------------------------------------

    def attach(self, handler: Any) -> None:
        previous, self.handler = self.handler, handler
        self._detached_since = None
        if previous is not None and previous is not handler:
            previous.agent = None
            previous.drop()  # a resumed client replaces a connection it gave up on
        if not self._started:
            self._started = True
            self._timer = tornado.ioloop.PeriodicCallback(self._tick, RESEND_INTERVAL * 1000)
            self._timer.start()
            self._start()
        else:
            # What the client may have missed while it was away, at once (the service
            # kept it for the client; the agent itself never lost its connection).
            self.channel.resend_all()
            self._resumed()

    def detach(self, handler: Any) -> None:
        if self.handler is not handler:
            return
        self.handler = None
        if not self._ended:
            self._detached_since = time.monotonic()

    def drop_connection(self) -> bool:
        handler = self.handler
        if handler is None or self._ended:
            return False
        handler.drop()
        return True

    # -- frames --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Frames sent inside go out in one write (a burst of output messages)."""
        if self._batch is not None:
            yield
            return
        self._batch = []
        try:
            yield
        finally:
            frames, self._batch = self._batch, None
            if frames and self.handler is not None:
                self.handler.write_frames(frames)

    def _send_frame(self, frame: bytes) -> None:
        if self.registry.lose_output and frame[4:22] == b"output_stream_data":
            seq = struct.unpack_from(">q", frame, 48)[0]  # SequenceNumber's offset
            if self.registry.lose("output", seq):
                return
        if self._batch is not None:
            self._batch.append(frame)
        elif self.handler is not None:
            self.handler.write_frames([frame])

    def receive(self, frame: bytes) -> None:
        if self._ended:
            return
        try:
            events = self.channel.receive(frame)
        except p.ProtocolError:
            return  # like the agent: log-and-drop (a payload that does not parse too)
        for event in events:
            self._on_event(event)
        self._received()

    # -- timers and ending ---------------------------------------------------------------------

    def _tick(self) -> None:
        if self._ended:
            return
        reason = self._idle_end() or self.channel.handshake_expired()
        if reason:
            self.end(reason)
            return
        if self.handler is None:
            # No connection: nothing to resend to. The client has a while to come back.
            if (
                self._detached_since is not None
                and time.monotonic() - self._detached_since > RESUME_WINDOW
            ):
                self.end("")
                return
        else:
            try:
                self.channel.tick()
            except ResendTimeout:
                self.end("The client stopped acknowledging output.")
                return
        self._after_tick()

    def end(self, output: str = "") -> None:
        """End the session: channel_closed to the client, the kind's resources released,
        the connection closed after a moment."""
        if self._ended:
            return
        # Terminated before channel_closed leaves: a client that exits on it and asks at
        # once finds the session over (the other order was a race tests could lose).
        with self.registry.lock:
            self.session.status = "Terminated"
        self.channel.close(output)
        self._ended = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._release()
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.finish_later(FINISH_DELAY)
