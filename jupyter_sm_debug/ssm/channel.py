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
  (HandshakeResponse), the agent confirms (HandshakeComplete); with KMS, the client makes a
  data key (``generate_data_key``), the agent opens it (``decrypt_data_key``) and checks
  the client has it with an encryption challenge before confirming, and from then on
  Output payloads are encrypted both ways (``encryption.BlockCipher``).

Deliberate differences from the Go code:

- a duplicate of an already delivered message is acknowledged again (as the agent's
  ``handleStreamDataMessage`` does; the plugin drops it silently);
- the resend time of a retransmitted message is updated (the plugin updates a copy), and
  round trips are only sampled from messages sent once (Karn's rule);
- a full outgoing buffer never drops a message (the plugin's
  ``AddDataToOutgoingMessageBuffer`` drops the oldest, the agent's drops the newest):
  callers look at :attr:`DataChannel.unacked` and stop reading their source, which is how
  the stand-in and the client apply backpressure;
- publication: the client ignores ``pause_publication`` and ``start_publication`` as the
  plugin's ``processOutputMessage`` does (nothing in the service's use of them needs a
  client to hold keystrokes); the agent, as its ``handlePausePublicationMessage``, sends
  nothing after a pause until ``start_publication`` or any incoming stream message or
  acknowledgement, then everything held back goes at once (the agent's resend timer sends
  them one by one);
- :meth:`DataChannel.resend_all` sends every unacknowledged message again at once, for a
  data channel that was just reconnected (ResumeSession).
"""

from __future__ import annotations

import base64
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import encryption
from . import handshake as hs
from . import protocol as p

# From the plugin's src/config/config.go (seconds).
DEFAULT_RETRANSMISSION_TIMEOUT = 0.2
DEFAULT_ROUND_TRIP_TIME = 0.1
RESEND_INTERVAL = 0.1
RESEND_MAX_ATTEMPTS = 3000  # the plugin's ResendMaxAttempt (the agent never gives up)
HANDSHAKE_TIMEOUT = 15.0  # the agent's handshakeTimeout: for the response, then the challenge
KMS_CUSTOMER_MESSAGE = "This session is encrypted using AWS KMS."
RTT_CONSTANT = 1.0 / 8.0
RTTV_CONSTANT = 1.0 / 4.0
CLOCK_GRANULARITY = 0.01
MAX_RETRANSMISSION_TIMEOUT = 1.0

# The plugin release the built-in client follows, as every session kind reports it (a
# plugin built from source says "1.2.0.0"; releases say their own number). Agents compare
# it: above 1.2.331.0 the port agent turns smux keep-alive off (port_mux.go's initialize),
# which an idle forward needs (the agent's smux closes a session that hears nothing for
# 30 s).
CLIENT_VERSION = "1.2.677.0"
AGENT_VERSION = "3.3.0.0"

CLIENT = "client"
AGENT = "agent"
RANDOM_CHALLENGE_BYTES = 16  # the agent's randomChallengeSize (blockcipher.go)


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

    request: hs.HandshakeRequest
    response: hs.HandshakeResponse

    @property
    def kms_requested(self) -> bool:
        return any(a.action_type == p.ActionType.KMS_ENCRYPTION for a in self.request.actions)


@dataclass
class HandshakeCompleted:
    complete: hs.HandshakeComplete


@dataclass
class HandshakeAnswered:
    """Agent side: the client's response; ``ok`` when every action succeeded (and the
    client's data key opened). ``challenged``: the encryption challenge went out, and
    :class:`EncryptionConfirmed` follows."""

    response: hs.HandshakeResponse
    ok: bool
    challenged: bool = False
    problem: str = ""


@dataclass
class EncryptionConfirmed:
    """Agent side: the client answered the encryption challenge (rightly or not)."""

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
        incoming_capacity: int = p.INCOMING_BUFFER_CAPACITY,
        max_resend_attempts: Optional[int] = None,
        target_id: str = "",
        generate_data_key: Optional[encryption.GenerateDataKey] = None,
        decrypt_data_key: Optional[encryption.DecryptDataKey] = None,
        port_forwarding: bool = False,
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
        # None: the role's own rule. The plugin gives up after ResendMaxAttempt; the agent's
        # resend scheduler (ResendStreamDataMessageScheduler) resends for ever.
        if max_resend_attempts is None and role == CLIENT:
            max_resend_attempts = RESEND_MAX_ATTEMPTS
        self.max_resend_attempts = max_resend_attempts
        self.target_id = target_id
        self.generate_data_key = generate_data_key
        self.decrypt_data_key = decrypt_data_key
        # Client side: accept the agent's "Port" session type (ssm/portforward.py).
        self.port_forwarding = port_forwarding
        self.session_properties: Any = None
        self.cipher: Optional[encryption.BlockCipher] = None
        self._kms_key_id: Optional[str] = None
        self._challenge = b""

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
        self._handshake_answered_at: Optional[float] = None
        self._challenge_sent: Optional[float] = None
        self.client_version = ""  # agent side: what the client's HandshakeResponse said

    # ------------------------------------------------------------------ sending

    @property
    def unacked(self) -> int:
        """Stream messages sent (or held back) and not yet acknowledged."""
        return len(self._outgoing)

    def send_stream(self, payload_type: int, payload: bytes) -> int:
        """Send one stream message; returns its sequence number."""
        seq = self.next_sequence_number
        if self.cipher is not None and payload_type == p.PayloadType.OUTPUT:
            payload = self.cipher.encrypt(payload)
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
        if self.max_resend_attempts is not None and entry.attempts >= self.max_resend_attempts:
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

    def resend_all(self) -> int:
        """Send every unacknowledged message again now (after a reconnect); returns how many."""
        if self.paused:
            return 0
        now = self.clock()
        for entry in self._outgoing.values():
            if entry.last_sent is not None:
                entry.attempts += 1  # no round-trip sample from these
            entry.last_sent = now
            self.send(entry.frame)
        return len(self._outgoing)

    def _resume(self) -> None:
        if not self.paused:
            return
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
        code logs and drops those; the caller decides), and its subclass
        :class:`protocol.MalformedPayload` for a payload that does not parse or decrypt,
        whatever the parser raised (a client ends the session on those).
        """
        # The agent checks no payload digest (its AgentMessage.Validate); the plugin does.
        msg = p.decode(frame, check_digest=self.role == CLIENT)
        mtype = msg.message_type
        if mtype == self.incoming_type:
            self._resume()  # data from the peer: the channel is flowing again
            return self._receive_stream(msg)
        if mtype == p.MessageType.ACKNOWLEDGE:
            ack = p.parse_acknowledgement(msg)
            self._resume()
            self._acknowledged(ack.sequence_number)
            return []
        if mtype == p.MessageType.CHANNEL_CLOSED:
            self.closed = True
            return [ChannelClosedEvent(p.parse_channel_closed(msg))]
        publication = (p.MessageType.PAUSE_PUBLICATION, p.MessageType.START_PUBLICATION)
        if self.role == CLIENT and mtype in publication:
            return []  # the plugin's processOutputMessage: "return nil" for both
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
        payload = msg.payload
        if self.role == CLIENT:
            if ptype == p.PayloadType.HANDSHAKE_REQUEST:
                return [self._answer_handshake(hs.parse_handshake_request(payload))]
            if ptype == p.PayloadType.HANDSHAKE_COMPLETE:
                self.handshake_done = True
                return [HandshakeCompleted(hs.parse_handshake_complete(payload))]
            if ptype == p.PayloadType.ENC_CHALLENGE_REQUEST:
                self._answer_challenge(payload)
                return []
            encrypted = (p.PayloadType.OUTPUT, p.PayloadType.STDERR, p.PayloadType.EXIT_CODE)
        else:
            if ptype == p.PayloadType.HANDSHAKE_RESPONSE:
                return [self._handshake_answered(hs.parse_handshake_response(payload))]
            if ptype == p.PayloadType.ENC_CHALLENGE_RESPONSE:
                return [self._challenge_answered(payload)]
            if not self.handshake_done:
                return []  # the agent ignores client data until the handshake completed
            encrypted = (p.PayloadType.OUTPUT,)
        if self.cipher is not None and ptype in encrypted:
            try:
                payload = self.cipher.decrypt(payload)
            except encryption.EncryptionError as exc:
                raise p.MalformedPayload(str(exc)) from None
        return [StreamData(ptype, payload, msg.sequence_number)]

    # ------------------------------------------------------------------ handshake

    def _answer_handshake(self, req: hs.HandshakeRequest) -> HandshakeRequested:
        self.agent_version = req.agent_version
        processed = []
        errors = []
        for action in req.actions:
            status, error, result = self._decide(action)
            processed.append(hs.ProcessedAction(action.action_type, status, result, error))
            if error:
                errors.append(error)
        resp = hs.HandshakeResponse(self.version, processed, errors)
        self.send_stream(p.PayloadType.HANDSHAKE_RESPONSE, hs.handshake_response_payload(resp))
        return HandshakeRequested(req, resp)

    def _decide(self, action: hs.RequestedAction) -> tuple[int, str, Any]:
        kind = action.action_type
        if kind == p.ActionType.SESSION_TYPE:
            params = action.parameters if isinstance(action.parameters, dict) else {}
            stype = params.get("SessionType")
            if stype in p.SHELL_SESSION_TYPES:
                self.session_type = p.SHELL_SESSION_TYPES[0]  # all run as a shell, as in Go
                return p.ActionStatus.SUCCESS, "", None
            if stype == p.PORT_SESSION_TYPE and self.port_forwarding:
                self.session_type = p.PORT_SESSION_TYPE
                self.session_properties = params.get("Properties")
                return p.ActionStatus.SUCCESS, "", None
            if stype == p.PORT_SESSION_TYPE:
                return p.ActionStatus.FAILED, (
                    "Failed to process action SessionType: port forwarding sessions are not "
                    "supported by the built-in client"
                ), None  # fmt: skip
            return p.ActionStatus.FAILED, (
                f"Failed to process action SessionType: Unknown session type {stype}"
            ), None  # fmt: skip
        if kind == p.ActionType.KMS_ENCRYPTION:
            return self._make_data_key(action)
        return p.ActionStatus.UNSUPPORTED, f"Unsupported action {kind}", None

    def _make_data_key(self, action: hs.RequestedAction) -> tuple[int, str, Any]:
        """Client side of the KMSEncryption action: a data key from KMS for this session."""
        params = action.parameters if isinstance(action.parameters, dict) else {}
        key_id = params.get("KMSKeyId")
        if self.generate_data_key is None:
            problem = "this client has no KMS access"
        elif not isinstance(key_id, str) or not key_id:
            problem = "the request names no KMSKeyId"
        else:
            context = encryption.encryption_context(self.session_id, self.target_id)
            try:
                blob, plain = self.generate_data_key(key_id, context)
                self.cipher = encryption.BlockCipher(plain, agent=False)
            except Exception as exc:  # noqa: BLE001 - any KMS failure fails the action
                problem = str(exc) or type(exc).__name__
            else:
                return p.ActionStatus.SUCCESS, "", hs.kms_encryption_result(blob)
        return p.ActionStatus.FAILED, f"Failed to process action KMSEncryption: {problem}", None

    def _answer_challenge(self, payload: bytes) -> None:
        """Client side: decrypt the agent's challenge and send it back under our key."""
        if self.cipher is None:
            return  # no key: the agent times out and says why
        try:
            challenge = self.cipher.decrypt(hs.parse_challenge(payload))
        except (p.ProtocolError, encryption.EncryptionError):
            return
        answer = hs.challenge_payload(self.cipher.encrypt(challenge))
        self.send_stream(p.PayloadType.ENC_CHALLENGE_RESPONSE, answer)

    def _handshake_answered(self, resp: hs.HandshakeResponse) -> HandshakeAnswered:
        """Agent side: with KMS, open the client's data key and challenge it."""
        self.client_version = resp.client_version
        self._handshake_answered_at = self.clock()
        ok = all(a.status == p.ActionStatus.SUCCESS for a in resp.actions)
        if not ok or not self._kms_key_id:
            return HandshakeAnswered(resp, ok)
        results = [a.result for a in resp.actions if a.action_type == p.ActionType.KMS_ENCRYPTION]
        try:
            if not results or self.decrypt_data_key is None:
                raise ValueError("the client did not take part in KMS encryption")
            blob = hs.parse_kms_encryption_result(results[0])
            context = encryption.encryption_context(self.session_id, self.target_id)
            self.cipher = encryption.BlockCipher(self.decrypt_data_key(blob, context), agent=True)
        except Exception as exc:  # noqa: BLE001 - a key that does not open fails the session
            return HandshakeAnswered(resp, False, problem=f"Fetching data key failed: {exc}")
        self._challenge = os.urandom(encryption.CHALLENGE_BYTES)
        challenge = hs.challenge_payload(self.cipher.encrypt(self._challenge))
        self.send_stream(p.PayloadType.ENC_CHALLENGE_REQUEST, challenge)
        self._challenge_sent = self.clock()
        return HandshakeAnswered(resp, True, challenged=True)

    def _challenge_answered(self, payload: bytes) -> EncryptionConfirmed:
        self._challenge_sent = None
        if self.cipher is None or not self._challenge:
            return EncryptionConfirmed(False)
        try:
            answer = self.cipher.decrypt(hs.parse_challenge(payload))
        except (p.ProtocolError, encryption.EncryptionError):
            return EncryptionConfirmed(False)
        return EncryptionConfirmed(answer == self._challenge)

    def request_handshake(
        self,
        session_type: str = "Standard_Stream",
        kms_key_id: Optional[str] = None,
        properties: Any = None,
    ) -> int:
        """Agent side: open the handshake, as the agent does before starting a shell (or a
        port session, whose properties carry portNumber and type)."""
        actions: Sequence[hs.RequestedAction] = [hs.session_type_action(session_type, properties)]
        if kms_key_id:
            # With the block cipher's random challenge (buildHandshakeRequestPayload).
            challenge = base64.b64encode(os.urandom(RANDOM_CHALLENGE_BYTES)).decode()
            actions = [*actions, hs.kms_action(kms_key_id, challenge)]
            self._kms_key_id = kms_key_id
        self._handshake_started = self.clock()
        self._handshake_answered_at = None
        req = hs.HandshakeRequest(self.version, list(actions))
        return self.send_stream(p.PayloadType.HANDSHAKE_REQUEST, hs.handshake_request_payload(req))

    def handshake_expired(self) -> str:
        """Agent side: why the handshake failed for lack of an answer, or "". The agent's
        ``PerformHandshake`` waits :data:`HANDSHAKE_TIMEOUT` for the response, then as
        long again for the encryption challenge's answer."""
        if self.handshake_done or not self._handshake_started:
            return ""
        now = self.clock()
        if self._handshake_answered_at is None:
            if now - self._handshake_started > HANDSHAKE_TIMEOUT:
                return (
                    "Handshake timed out. Please ensure that you have the latest version of "
                    "the session manager plugin."
                )
        elif self._challenge_sent is not None and now - self._challenge_sent > HANDSHAKE_TIMEOUT:
            return "Timed out waiting for encryption challenge."
        return ""

    def skip_handshake(self) -> None:
        """Agent side: no handshake (a plain shell session without KMS), as the agent's
        ``SkipHandshake``: client data is delivered from the start."""
        self.handshake_done = True

    def complete_handshake(self, customer_message: str = "") -> int:
        """Agent side: after a good response; from here on client data is delivered."""
        took = max(0.0, self.clock() - self._handshake_started)
        if self.cipher is not None and not customer_message:
            # buildHandshakeCompletePayload: the line the plugin prints for an encrypted session
            customer_message = KMS_CUSTOMER_MESSAGE
        done = hs.HandshakeComplete(int(took * 1e9), customer_message)
        self.handshake_done = True
        payload = hs.handshake_complete_payload(done)
        return self.send_stream(p.PayloadType.HANDSHAKE_COMPLETE, payload)

    def close(self, output: str = "") -> None:
        """Service side: tell the peer the session is over (channel_closed is not sequenced)."""
        if not self.closed:
            self.closed = True
            self.send(p.encode(p.channel_closed(self.session_id, output)))
