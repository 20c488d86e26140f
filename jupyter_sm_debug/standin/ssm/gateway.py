"""The stand-in's message gateway: the websocket at ``/v1/data-channel/<SessionId>`` that a
client (our built-in one, or AWS's session-manager-plugin) connects to with the session's
StreamUrl. It checks the token message and hands the connection to the session's agent
(``shell.Agent`` or ``port.PortAgent``), which outlives any one connection.

The network between client and agent is loopback, unless the stand-in's ``channel_latency``
fault (seconds of round trip) is set: then every websocket message, and the close, waits
half of it on its way in and half on its way out, in order (``OneWay``), as over a link with
that round trip and no bandwidth limit.

The websocket is tornado's: its handshake, its reading of the client's frames, its close.
The one thing done here is framing a burst of binary messages for one write, and that
uses websocket-client's frame encoder, not ours (``ssm/wsframe.py``, which the clients
parse with): this side acts as AWS's, so no frame has our codec at both ends.
"""

from __future__ import annotations

import contextlib
import hmac
from collections import deque
from typing import Any, Callable, List, Optional

import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket

from ...ssm import protocol as p
from .agent import AgentBase
from .port import PortAgent
from .sessions import SsmSession, registry
from .shell import Agent

TOKEN_TIMEOUT = 30.0  # seconds a client has to send the token message after connecting


def server_frames(messages: List[bytes]) -> bytes:
    """Unmasked, final, binary websocket frames (RFC 6455 5.2), as a server sends them,
    built by websocket-client (an implementation independent of our clients' parser)."""
    from websocket import ABNF

    # Positional: (fin, rsv1, rsv2, rsv3, opcode, mask, data); the mask's keyword changed
    # name across websocket-client versions.
    return b"".join(ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 0, m).format() for m in messages)


class OneWay:
    """One direction of the data channel's network: what is pushed is delivered after
    ``delay()`` seconds, in order (a lower delay never overtakes), at once when the delay is
    0 and nothing is in flight. Items due together are delivered in one call."""

    def __init__(self, loop: Any, delay: Callable[[], float], deliver: Callable[[list], None]):
        self.loop = loop
        self.delay = delay
        self.deliver = deliver
        self.queue: deque = deque()  # (due, item)
        self._timer: Optional[object] = None

    def push(self, item: Any) -> None:
        delay = self.delay()
        if delay <= 0 and not self.queue:
            self.deliver([item])
            return
        due = self.loop.time() + max(0.0, delay)
        if self.queue:
            due = max(due, self.queue[-1][0])
        self.queue.append((due, item))
        if self._timer is None:
            self._timer = self.loop.call_at(due, self._due)

    def _due(self) -> None:
        self._timer = None
        now = self.loop.time()
        items = [self.queue.popleft()[1]]  # the one this timer was set for
        while self.queue and self.queue[0][0] <= now:
            items.append(self.queue.popleft()[1])
        if self.queue:
            self._timer = self.loop.call_at(self.queue[0][0], self._due)
        self.deliver(items)

    def cancel(self) -> None:
        if self._timer is not None:
            self.loop.remove_timeout(self._timer)
            self._timer = None
        self.queue.clear()


class DataChannelHandler(tornado.websocket.WebSocketHandler):
    """One client connection of one session: the gateway. It checks the token message,
    then carries frames between the client and the session's agent, each way after half the
    ``channel_latency`` fault."""

    def initialize(self, standin: Any) -> None:
        self.standin = standin
        self.registry = registry(standin)
        self.session: Optional[SsmSession] = None
        self.agent: Optional[AgentBase] = None
        self.loop = tornado.ioloop.IOLoop.current()
        self._token_deadline: Optional[object] = None
        self._ended = False
        self._closed = False  # the client's close (or the connection's loss) has arrived
        self._inbound = OneWay(self.loop, self._one_way, self._arrive)
        self._outbound = OneWay(self.loop, self._one_way, self._depart)

    def _one_way(self) -> float:
        return self.standin._faults.channel_latency / 2

    def check_origin(self, origin: str) -> bool:
        return True  # clients are programs, not browsers; the token is the authentication

    def prepare(self):
        session_id = self.path_args[0] if self.path_args else ""
        session = self.registry.get(session_id)
        if session is None or session.status == "Terminated" or session.token_used:
            raise tornado.web.HTTPError(404, "no such session")
        self.session = session
        return super().prepare()

    # ------------------------------------------------------------ websocket events

    def open(self, session_id: str) -> None:
        self.set_nodelay(True)
        self._token_deadline = self.loop.call_later(
            TOKEN_TIMEOUT, self._refuse, "no token message received"
        )

    def on_message(self, message) -> None:
        self._inbound.push(message)

    def on_close(self) -> None:
        self._inbound.push(None)  # the close travels behind the messages sent before it

    def _arrive(self, messages: list) -> None:
        for message in messages:
            if message is None:
                self._on_close_arrived()
            else:
                self._on_message_arrived(message)

    def _on_message_arrived(self, message) -> None:
        if self._ended:
            return
        if self.agent is None:
            self._accept_token(message)
            return
        if isinstance(message, str):
            return  # only the first message is text
        if self.registry.lose_acks and self._lose_ack(message):
            return
        self.agent.receive(message)

    def _lose_ack(self, frame: bytes) -> bool:
        try:
            msg = p.decode(frame)
            if msg.message_type != p.MessageType.ACKNOWLEDGE:
                return False
            seq = p.parse_acknowledgement(msg).sequence_number
        except p.ProtocolError:
            return False
        return self.registry.lose("ack", seq)

    def _on_close_arrived(self) -> None:
        self._ended = self._closed = True
        self._cancel_deadline()
        self._outbound.cancel()  # nobody to receive it
        if self.agent is not None:
            self.agent.detach(self)

    # ------------------------------------------------------------ token

    def _refuse(self, reason: str) -> None:
        self._ended = True
        self.close(1008, reason)

    def _cancel_deadline(self) -> None:
        if self._token_deadline is not None:
            self.loop.remove_timeout(self._token_deadline)
            self._token_deadline = None

    def _accept_token(self, message) -> None:
        session = self.session
        assert session is not None
        if not isinstance(message, str):
            self._refuse("the first message must be the OpenDataChannel token message")
            return
        try:
            opened = p.parse_open_data_channel(message)
        except p.ProtocolError as exc:
            self._refuse(str(exc))
            return
        with self.registry.lock:
            ok = (
                # bytes: compare_digest raises on a str that is not ASCII
                hmac.compare_digest(opened["TokenValue"].encode(), session.token.encode())
                and not session.token_used
                and session.status != "Terminated"
            )
            if ok:
                session.token_used = True
                session.status = "Connected"
                if session.agent is None and session.port is not None:
                    session.agent = PortAgent(self.standin, session, self.loop)
                elif session.agent is None:
                    session.agent = Agent(self.standin, session, self.loop)
                agent = session.agent
        if not ok:
            self._refuse("invalid token")
            return
        self._cancel_deadline()
        self.agent = agent
        agent.attach(self)

    # ------------------------------------------------------------ frames out

    def write_frames(self, frames: list[bytes]) -> None:
        if frames and not self._closed:
            self._outbound.push(frames)

    def _depart(self, batches: List[list]) -> None:
        frames = [frame for batch in batches for frame in batch]
        # A closed socket is noticed by on_close; the frames have nowhere to go (the agent
        # keeps them until they are acknowledged).
        conn = self.ws_connection
        if self._closed or conn is None or conn.is_closing() or not frames:
            return
        stream = getattr(conn, "stream", None)
        if len(frames) == 1 or stream is None:
            with contextlib.suppress(tornado.websocket.WebSocketClosedError):
                for frame in frames:
                    self.write_message(frame, binary=True)
            return
        # write_message sends each message with its own syscall; shell output comes in
        # runs of 1 KiB messages, so frame them here and write them together. This handler
        # never negotiates compression (get_compression_options is None), so a frame is
        # the plain RFC 6455 server frame that server_frames builds.
        with contextlib.suppress(tornado.iostream.StreamClosedError):
            stream.write(server_frames(frames))

    def drop(self) -> None:
        """Cut the TCP connection without a close frame (the network-failure fault)."""
        self._outbound.cancel()
        conn = self.ws_connection
        stream = getattr(conn, "stream", None)
        if stream is not None:
            stream.close()
        else:
            self.close()

    def finish_later(self, delay: float) -> None:
        self._ended = True
        # After what is still on its way out (channel_closed) has arrived.
        self.loop.call_later(delay + self._one_way(), self.close)
