"""Data-channel state for one Session Manager session, without any I/O.

Either end of the channel: the ``client`` role sends ``input_stream_data`` and receives
``output_stream_data`` (the plugin's side); the ``agent`` role does the opposite (the SSM
agent's side, used by the local stand-in). Frames go out through the ``send`` callable given
at construction; frames come in through :meth:`DataChannel.receive`, which returns events.
Time comes from ``clock`` so tests can drive retransmission by hand. Not thread-safe: the
caller serialises calls (one lock, or one event loop).

Behaviour follows the plugin's ``src/datachannel/streaming.go`` and the agent's
``agent/session/datachannel/datachannel.go``:

- each direction numbers its stream messages 0, 1, 2, ...; every stream message is kept in
  the outgoing buffer until acknowledged; every ``tick`` (call it every
  :data:`RESEND_INTERVAL`) resends the oldest unacknowledged message once it is older than
  the retransmission timeout, which adapts to the measured round trip (RFC 6298 constants
  from the plugin's config);
- received stream messages are acknowledged, delivered in sequence order exactly once, and
  held in a bounded reorder buffer when they arrive early;
- the handshake: the agent asks (HandshakeRequest), the client answers
  (HandshakeResponse), the agent confirms (HandshakeComplete).

Deliberate differences from the Go code:

- a duplicate of an already delivered message is acknowledged again (both Go ends drop it
  silently, so a lost acknowledgement there means retransmitting until the session dies);
- the resend time of a retransmitted message is updated (the plugin updates a copy), and
  round trips are only sampled from messages sent once (Karn's rule);
- a full outgoing buffer never drops a message (the plugin drops the oldest): callers look
  at :attr:`DataChannel.unacked` and stop reading their source, which is how the stand-in
  and the client apply backpressure;
- after ``pause_publication`` nothing is sent until ``start_publication``, then everything
  held back goes at once (the plugin ignores both messages; the agent waits for its resend
  timer to send them one by one).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import protocol as p

# From the plugin's src/config/config.go (seconds).
DEFAULT_RETRANSMISSION_TIMEOUT = 0.2
DEFAULT_ROUND_TRIP_TIME = 0.1
RESEND_INTERVAL = 0.1
RESEND_MAX_ATTEMPTS = 3000  # 5 minutes of resending at RESEND_INTERVAL
OUTGOING_BUFFER_CAPACITY = 10000
INCOMING_BUFFER_CAPACITY = 10000
RTT_CONSTANT = 1.0 / 8.0
RTTV_CONSTANT = 1.0 / 4.0
CLOCK_GRANULARITY = 0.01
MAX_RETRANSMISSION_TIMEOUT = 1.0

# What a session-manager-plugin built from source reports. Agents and the service compare
# this number to switch features on; we implement that level of the protocol for shells.
CLIENT_VERSION = "1.2.0.0"
AGENT_VERSION = "3.3.0.0"

CLIENT = "client"
AGENT = "agent"


# ---------------------------------------------------------------------------- events


@dataclass
class StreamData:
    """An in-order payload of the peer's stream (terminal bytes, a size, a flag, ...)."""

    payload_type: int
    payload: bytes
    sequence_number: int


@dataclass
class HandshakeRequested:
    """Client side: the agent's request, and the response already sent for it."""

    request: p.HandshakeRequest
    response: p.HandshakeResponse

    @property
    def kms_requested(self) -> bool:
        return any(a.action_type == p.ActionType.KMS_ENCRYPTION for a in self.request.actions)


@dataclass
class HandshakeCompleted:
    complete: p.HandshakeComplete


@dataclass
class HandshakeAnswered:
    """Agent side: the client's response; ``ok`` when every action succeeded."""

    response: p.HandshakeResponse
    ok: bool


@dataclass
class ChannelClosedEvent:
    closed: p.ChannelClosed


@dataclass
class PublicationChanged:
    paused: bool


class ResendTimeout(Exception):
    """A message went unacknowledged through every resend attempt: the peer is gone."""


@dataclass
class _Outgoing:
    frame: bytes
    sequence_number: int
    last_sent: Optional[float]  # None: held back by pause_publication, never sent
    attempts: int = 0


class DataChannel:
    def __init__(
        self,
        role: str,
        send: Callable[[bytes], Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        version: str = "",
        session_id: str = "",
        incoming_capacity: int = INCOMING_BUFFER_CAPACITY,
        max_resend_attempts: int = RESEND_MAX_ATTEMPTS,
    ) -> None:
        if role == CLIENT:
            self.outgoing_type = p.MessageType.INPUT_STREAM
            self.incoming_type = p.MessageType.OUTPUT_STREAM
        elif role == AGENT:
            self.outgoing_type = p.MessageType.OUTPUT_STREAM
            self.incoming_type = p.MessageType.INPUT_STREAM
        else:
            raise ValueError(f"role must be {CLIENT!r} or {AGENT!r}")
        self.role = role
        self.send = send
        self.clock = clock
        self.version = version or (CLIENT_VERSION if role == CLIENT else AGENT_VERSION)
        self.session_id = session_id
        self.incoming_capacity = incoming_capacity
        self.max_resend_attempts = max_resend_attempts

        self.next_sequence_number = 0
        self.expected_sequence_number = 0
        self.round_trip_time = DEFAULT_ROUND_TRIP_TIME
        self.round_trip_time_variation = 0.0
        self.retransmission_timeout = DEFAULT_RETRANSMISSION_TIMEOUT
        self.paused = False
        self.handshake_done = False
        self.session_type = ""
        self.agent_version = ""
        self.closed = False
        self._outgoing: OrderedDict[int, _Outgoing] = OrderedDict()
        self._incoming: Dict[int, p.AgentMessage] = {}
        self._handshake_started = 0.0

    # ------------------------------------------------------------------ sending

    @property
    def unacked(self) -> int:
        """Stream messages sent (or held back) and not yet acknowledged."""
        return len(self._outgoing)

    def send_stream(self, payload_type: int, payload: bytes) -> int:
        """Send one stream message; returns its sequence number."""
        seq = self.next_sequence_number
        # The agent marks the first message of its stream SYN; the plugin never sets flags.
        flags = p.FLAG_SYN if seq == 0 and self.role == AGENT else 0
        frame = p.encode(
            p.AgentMessage(
                self.outgoing_type,
                payload,
                payload_type=payload_type,
                sequence_number=seq,
                flags=flags,
            )
        )
        self.next_sequence_number += 1
        if self.paused:
            self._outgoing[seq] = _Outgoing(frame, seq, None)
        else:
            self._outgoing[seq] = _Outgoing(frame, seq, self.clock())
            self.send(frame)
        return seq

    def send_data(self, data: bytes) -> int:
        """Terminal bytes: keystrokes from the client, shell output from the agent."""
        return self.send_stream(p.PayloadType.OUTPUT, data)

    def send_size(self, cols: int, rows: int) -> int:
        return self.send_stream(p.PayloadType.SIZE, p.size_payload(cols, rows))

    def tick(self) -> int:
        """Resend the oldest unacknowledged message when it is overdue; returns 0 or 1.

        Raises :class:`ResendTimeout` once it has been resent ``max_resend_attempts`` times.
        """
        if self.paused or not self._outgoing:
            return 0
        entry = next(iter(self._outgoing.values()))
        now = self.clock()
        if entry.last_sent is not None and now - entry.last_sent <= self.retransmission_timeout:
            return 0
        if entry.attempts >= self.max_resend_attempts:
            raise ResendTimeout(
                f"stream message {entry.sequence_number} was not acknowledged "
                f"after {entry.attempts} resends"
            )
        if entry.last_sent is not None:
            entry.attempts += 1
        entry.last_sent = now
        self.send(entry.frame)
        return 1

    def _acknowledged(self, seq: int) -> None:
        entry = self._outgoing.pop(seq, None)
        if entry is None or entry.attempts or entry.last_sent is None:
            return  # unknown, duplicate, or resent: no trustworthy round-trip sample
        sample = self.clock() - entry.last_sent
        self.round_trip_time_variation = (
            1 - RTTV_CONSTANT
        ) * self.round_trip_time_variation + RTTV_CONSTANT * abs(self.round_trip_time - sample)
        self.round_trip_time = (1 - RTT_CONSTANT) * self.round_trip_time + RTT_CONSTANT * sample
        self.retransmission_timeout = min(
            MAX_RETRANSMISSION_TIMEOUT,
            self.round_trip_time + max(CLOCK_GRANULARITY, 4 * self.round_trip_time_variation),
        )

    def _resume(self) -> None:
        self.paused = False
        now = self.clock()
        for entry in self._outgoing.values():
            if entry.last_sent is None:
                entry.last_sent = now
                self.send(entry.frame)

    # ------------------------------------------------------------------ receiving

    def receive(self, frame: bytes) -> List[Any]:
        """Process one binary frame from the peer; returns the events it produced.

        Raises :class:`protocol.ProtocolError` for a frame that fails validation (the Go
        code logs and drops those; the caller decides).
        """
        msg = p.decode(frame)
        mtype = msg.message_type
        if mtype == self.incoming_type:
            return self._receive_stream(msg)
        if mtype == p.MessageType.ACKNOWLEDGE:
            self._acknowledged(p.parse_acknowledgement(msg).sequence_number)
            return []
        if mtype == p.MessageType.CHANNEL_CLOSED:
            self.closed = True
            return [ChannelClosedEvent(p.parse_channel_closed(msg))]
        if mtype == p.MessageType.PAUSE_PUBLICATION:
            self.paused = True
            return [PublicationChanged(True)]
        if mtype == p.MessageType.START_PUBLICATION:
            self._resume()
            return [PublicationChanged(False)]
        return []  # our own stream type echoed back, or a type this side never handles

    def _receive_stream(self, msg: p.AgentMessage) -> List[Any]:
        seq = msg.sequence_number
        if seq < self.expected_sequence_number:
            self.send(p.encode(p.acknowledge(msg)))  # our ack was lost: say it again
            return []
        if seq > self.expected_sequence_number:
            if seq in self._incoming or len(self._incoming) < self.incoming_capacity:
                self.send(p.encode(p.acknowledge(msg)))
                self._incoming[seq] = msg
            # else: no ack, so the peer resends once we have room
            return []
        self.send(p.encode(p.acknowledge(msg)))
        events: List[Any] = []
        while True:
            self.expected_sequence_number += 1
            events.extend(self._process(msg))
            nxt = self._incoming.pop(self.expected_sequence_number, None)
            if nxt is None:
                return events
            msg = nxt

    def _process(self, msg: p.AgentMessage) -> List[Any]:
        ptype = msg.payload_type
        if self.role == CLIENT:
            if ptype == p.PayloadType.HANDSHAKE_REQUEST:
                return [self._answer_handshake(p.parse_handshake_request(msg.payload))]
            if ptype == p.PayloadType.HANDSHAKE_COMPLETE:
                self.handshake_done = True
                return [HandshakeCompleted(p.parse_handshake_complete(msg.payload))]
            if ptype == p.PayloadType.ENC_CHALLENGE_REQUEST:
                return []  # only follows a KMS handshake, which we refuse
        else:
            if ptype == p.PayloadType.HANDSHAKE_RESPONSE:
                resp = p.parse_handshake_response(msg.payload)
                ok = all(a.status == p.ActionStatus.SUCCESS for a in resp.actions)
                return [HandshakeAnswered(resp, ok)]
            if not self.handshake_done:
                return []  # the agent ignores client data until the handshake completed
        return [StreamData(ptype, msg.payload, msg.sequence_number)]

    # ------------------------------------------------------------------ handshake

    def _answer_handshake(self, req: p.HandshakeRequest) -> HandshakeRequested:
        self.agent_version = req.agent_version
        processed = []
        errors = []
        for action in req.actions:
            status, error = self._decide(action)
            processed.append(p.ProcessedAction(action.action_type, status, None, error))
            if error:
                errors.append(error)
        resp = p.HandshakeResponse(self.version, processed, errors)
        self.send_stream(p.PayloadType.HANDSHAKE_RESPONSE, p.handshake_response_payload(resp))
        return HandshakeRequested(req, resp)

    def _decide(self, action: p.RequestedAction) -> tuple[int, str]:
        kind = action.action_type
        if kind == p.ActionType.SESSION_TYPE:
            params = action.parameters if isinstance(action.parameters, dict) else {}
            stype = params.get("SessionType")
            if stype in p.SHELL_SESSION_TYPES:
                self.session_type = p.SHELL_SESSION_TYPES[0]  # all run as a shell, as in Go
                return p.ActionStatus.SUCCESS, ""
            if stype == p.PORT_SESSION_TYPE:
                return p.ActionStatus.FAILED, (
                    "Failed to process action SessionType: port forwarding sessions are not "
                    "supported by the built-in client"
                )
            return p.ActionStatus.FAILED, (
                f"Failed to process action SessionType: Unknown session type {stype}"
            )
        if kind == p.ActionType.KMS_ENCRYPTION:
            return p.ActionStatus.FAILED, (
                "Failed to process action KMSEncryption: KMS-encrypted sessions are not "
                "supported by the built-in client; use session-manager-plugin"
            )
        return p.ActionStatus.UNSUPPORTED, f"Unsupported action {kind}"

    def request_handshake(
        self, session_type: str = "Standard_Stream", kms_key_id: Optional[str] = None
    ) -> int:
        """Agent side: open the handshake, as the agent does before starting a shell."""
        actions: Sequence[p.RequestedAction] = [p.session_type_action(session_type)]
        if kms_key_id:
            actions = [*actions, p.kms_action(kms_key_id)]
        self._handshake_started = self.clock()
        req = p.HandshakeRequest(self.version, list(actions))
        return self.send_stream(p.PayloadType.HANDSHAKE_REQUEST, p.handshake_request_payload(req))

    def complete_handshake(self, customer_message: str = "") -> int:
        """Agent side: after a good response; from here on client data is delivered."""
        took = max(0.0, self.clock() - self._handshake_started)
        done = p.HandshakeComplete(int(took * 1e9), customer_message)
        self.handshake_done = True
        payload = p.handshake_complete_payload(done)
        return self.send_stream(p.PayloadType.HANDSHAKE_COMPLETE, payload)

    def close(self, output: str = "") -> None:
        """Service side: tell the peer the session is over (channel_closed is not sequenced)."""
        if not self.closed:
            self.closed = True
            self.send(p.encode(p.channel_closed(self.session_id, output)))
