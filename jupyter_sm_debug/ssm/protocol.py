"""The Session Manager data-channel wire format, as pure functions (no I/O).

Written from the open-source session-manager-plugin (github.com/aws/session-manager-plugin,
``src/message``, ``src/datachannel``, ``src/config``) and the matching agent
(github.com/aws/amazon-ssm-agent, ``agent/session/datachannel``), read as the specification.

Implemented:

- the binary AgentMessage ("ClientMessage" in the plugin): a 4-byte HeaderLength (always 116),
  then MessageType (32 bytes, space padded), SchemaVersion (u32), CreatedDate (u64 epoch ms),
  SequenceNumber (i64), Flags (u64, bit 0 SYN, bit 1 FIN), MessageId (UUID with its two
  8-byte halves swapped on the wire), PayloadDigest (SHA-256 of the payload), PayloadType
  (u32) and PayloadLength (u32), big endian; the payload follows at byte 120;
- parsing as lenient as the plugin's: fields at their fixed offsets, the payload from
  HeaderLength + 4 to the end of the frame whatever HeaderLength says, PayloadLength only
  deciding whether the digest is checked; validation as the plugin does it (non-zero
  HeaderLength, a MessageType, a CreatedDate, the digest when PayloadLength is not 0;
  start/pause_publication are exempt), plus one check it leaves out: a message type that
  is not printable ASCII;
- message types input_stream_data, output_stream_data, acknowledge, channel_closed,
  start_publication, pause_publication; all twelve payload types;
- the JSON payloads: acknowledge content, channel_closed, terminal size and the
  OpenDataChannel token message sent as the first text frame; the handshake's payloads
  (HandshakeRequest with SessionType and KMSEncryption actions, HandshakeResponse,
  HandshakeComplete) are in ``handshake.py``.

- the KMS payloads (``handshake.py``): the KMSEncryption action's result (KMSCipherTextKey)
  and the encryption challenge both ways (EncChallengeRequest/Response); the AES-GCM
  itself is in ``encryption.py``.

Not implemented (and why):

- the Flag payload's DisconnectToPort handling beyond parsing (port sessions: ``smux.py``,
  ``muxchannel.py``, ``portforward.py``);
- the agent-only message types (agent_session_state, interactive_shell, ...): a client
  never receives them, the stand-in never needs them.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

HEADER_LENGTH = 116  # value of the HeaderLength field: the offset of PayloadLength
PAYLOAD_OFFSET = HEADER_LENGTH + 4
MESSAGE_TYPE_LENGTH = 32
SCHEMA_VERSION = 1
MESSAGE_SCHEMA_VERSION = "1.0"  # of the OpenDataChannel token message

# HL, MessageType, SchemaVersion, CreatedDate, SequenceNumber, Flags, MessageId,
# PayloadDigest, PayloadType, PayloadLength
_HEADER = struct.Struct(">I32sIQqQ16s32sII")
assert _HEADER.size == PAYLOAD_OFFSET

FLAG_SYN = 1  # first message of a stream
FLAG_FIN = 2  # last message of a stream
ACK_FLAGS = FLAG_SYN | FLAG_FIN  # what both Go sides put on acknowledge messages


class MessageType:
    INPUT_STREAM = "input_stream_data"
    OUTPUT_STREAM = "output_stream_data"
    ACKNOWLEDGE = "acknowledge"
    CHANNEL_CLOSED = "channel_closed"
    START_PUBLICATION = "start_publication"
    PAUSE_PUBLICATION = "pause_publication"


KNOWN_MESSAGE_TYPES = frozenset(
    v for k, v in vars(MessageType).items() if not k.startswith("_") and isinstance(v, str)
)
STREAM_MESSAGE_TYPES = frozenset((MessageType.INPUT_STREAM, MessageType.OUTPUT_STREAM))


class PayloadType(enum.IntEnum):
    UNDEFINED = 0  # acknowledge and channel_closed carry no payload type
    OUTPUT = 1  # terminal bytes, in both directions
    ERROR = 2
    SIZE = 3
    PARAMETER = 4
    HANDSHAKE_REQUEST = 5
    HANDSHAKE_RESPONSE = 6
    HANDSHAKE_COMPLETE = 7
    ENC_CHALLENGE_REQUEST = 8
    ENC_CHALLENGE_RESPONSE = 9
    FLAG = 10
    STDERR = 11
    EXIT_CODE = 12


class PayloadTypeFlag(enum.IntEnum):
    DISCONNECT_TO_PORT = 1
    TERMINATE_SESSION = 2
    CONNECT_TO_PORT_ERROR = 3


class ActionType:
    KMS_ENCRYPTION = "KMSEncryption"
    SESSION_TYPE = "SessionType"


class ActionStatus(enum.IntEnum):
    SUCCESS = 1
    FAILED = 2
    UNSUPPORTED = 3


# Session types an agent may announce in the SessionType action; the plugin runs the first
# three with its shell handler.
SHELL_SESSION_TYPES = ("Standard_Stream", "InteractiveCommands", "NonInteractiveCommands")
PORT_SESSION_TYPE = "Port"

# ---------------------------------------------------------------------------- constants
# Defined here once; the clients, the channel and the stand-in's agents import them.

# Bytes of stream data per message: the plugin's config.StreamDataPayloadSize and the
# agent's mgsConfig.StreamDataPayloadSize.
STREAM_DATA_PAYLOAD_SIZE = 1024
# Messages each side keeps until acknowledged (the plugin's OutgoingMessageBufferCapacity,
# the agent's mgsConfig.OutgoingMessageBufferCapacity): where the Go code would drop
# messages, ours stop reading their source instead (the send window).
OUTGOING_BUFFER_CAPACITY = 10000
SEND_WINDOW = OUTGOING_BUFFER_CAPACITY
INCOMING_BUFFER_CAPACITY = 10000
# Session documents: the shell (also where the account's Session Manager preferences live)
# and port forwarding.
SHELL_DOCUMENT = "SSM-SessionManagerRunShell"
PORT_DOCUMENT = "AWS-StartPortForwardingSession"
# Agents newer than this multiplex port sessions with smux (the plugin's
# DoesAgentSupportTCPMultiplexing: TCPMultiplexingSupportedAfterThisAgentVersion, compared
# strictly greater).
MUX_AFTER = (3, 0, 196, 0)


class ProtocolError(ValueError):
    """A frame or payload that does not follow the protocol. A frame that fails the
    header's validation (:func:`decode`) raises this class itself: the Go code logs and
    drops such frames, and so do ours."""


class MalformedPayload(ProtocolError):
    """A payload that does not parse: not JSON, JSON nested too deep (Python's
    RecursionError), bad UTF-8, wrong types, a payload that does not decrypt. Whatever the
    parser's own exception was, it comes out as this one. Its frame was already
    acknowledged and counted, so it cannot be dropped and resent: the session ends, with a
    message that says why."""


# What a parser may raise on hostile input, whatever it is: json's ValueError (bad UTF-8's
# UnicodeDecodeError included), RecursionError for deep nesting, TypeError and
# AttributeError for wrong types, OverflowError and struct.error for numbers.
PARSER_ERRORS = (ValueError, TypeError, AttributeError, KeyError, RecursionError,
                 OverflowError, struct.error)  # fmt: skip


def _parser(func: F) -> F:
    """Any failure of ``func`` on a payload becomes a MalformedPayload naming what failed."""

    @functools.wraps(func)
    def parse(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MalformedPayload:
            raise
        except PARSER_ERRORS as exc:
            if isinstance(exc, ProtocolError):
                raise MalformedPayload(str(exc)) from None
            what = func.__name__.replace("parse_", "").replace("_", " ")
            raise MalformedPayload(
                f"{what} payload does not parse ({type(exc).__name__})"
            ) from None

    return parse  # type: ignore[return-value]


def unreadable(why: object) -> str:
    """What a client says when a MalformedPayload from the agent ended its session."""
    return f"The agent sent a message that could not be read ({why}); the session was ended."


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class AgentMessage:
    message_type: str
    payload: bytes = b""
    payload_type: int = PayloadType.UNDEFINED
    sequence_number: int = 0
    flags: int = 0
    message_id: uuid.UUID = field(default_factory=uuid.uuid4)
    created_date: int = field(default_factory=now_ms)
    schema_version: int = SCHEMA_VERSION


def uuid_to_wire(value: uuid.UUID) -> bytes:
    """The plugin writes the UUID's low 8 bytes first, then its high 8 bytes."""
    raw = value.bytes
    return raw[8:] + raw[:8]


def uuid_from_wire(raw: bytes) -> uuid.UUID:
    if len(raw) != 16:
        raise ProtocolError("a MessageId is 16 bytes")
    return uuid.UUID(bytes=raw[8:] + raw[:8])


def encode(msg: AgentMessage) -> bytes:
    mtype = msg.message_type.encode("ascii")
    if not mtype or len(mtype) > MESSAGE_TYPE_LENGTH:
        raise ProtocolError(f"message type must be 1..32 ASCII bytes: {msg.message_type!r}")
    payload = bytes(msg.payload)
    header = _HEADER.pack(
        HEADER_LENGTH,
        mtype.ljust(MESSAGE_TYPE_LENGTH, b" "),
        msg.schema_version,
        msg.created_date,
        msg.sequence_number,
        msg.flags,
        uuid_to_wire(msg.message_id),
        hashlib.sha256(payload).digest(),
        int(msg.payload_type),
        len(payload),
    )
    return header + payload


def decode(frame: bytes, validate: bool = True, check_digest: bool = True) -> AgentMessage:
    """Parse one binary websocket frame; with ``validate``, reject what the plugin rejects.
    ``check_digest=False``: the agent's checks (its ``AgentMessage.Validate`` looks at
    HeaderLength, MessageType and CreatedDate, never at the payload digest)."""
    if len(frame) < PAYLOAD_OFFSET:
        raise ProtocolError(f"frame of {len(frame)} bytes is shorter than the 120-byte header")
    (
        header_length,
        raw_type,
        schema_version,
        created_date,
        sequence_number,
        flags,
        raw_id,
        digest,
        payload_type,
        payload_length,
    ) = _HEADER.unpack_from(frame)
    try:
        message_type = raw_type.strip(b"\x00").decode("ascii").strip()
    except UnicodeDecodeError:
        raise ProtocolError("message type is not ASCII") from None
    if not message_type.isprintable():
        raise ProtocolError("message type is not printable")
    # Like the plugin: the payload starts after the header the frame says it has.
    if header_length + 4 > len(frame):
        raise ProtocolError(f"HeaderLength {header_length} runs past the {len(frame)}-byte frame")
    payload = bytes(frame[header_length + 4 :])
    msg = AgentMessage(
        message_type=message_type,
        payload=payload,
        payload_type=payload_type,
        sequence_number=sequence_number,
        flags=flags,
        message_id=uuid_from_wire(raw_id),
        created_date=created_date,
        schema_version=schema_version,
    )
    if validate:
        _validate(msg, header_length, payload_length, digest if check_digest else None)
    return msg


def _validate(
    msg: AgentMessage, header_length: int, payload_length: int, digest: Optional[bytes]
) -> None:
    # The plugin trusts these two publication messages without any check.
    if msg.message_type in (MessageType.START_PUBLICATION, MessageType.PAUSE_PUBLICATION):
        return
    if header_length == 0:
        raise ProtocolError("HeaderLength cannot be zero")
    if not msg.message_type:
        raise ProtocolError("MessageType is missing")
    if msg.created_date == 0:
        raise ProtocolError("CreatedDate is missing")
    # Like the plugin: PayloadLength 0 skips the digest (some senders leave it zero), and
    # any other value only asks for the check, whatever length the payload really has.
    if digest is not None and payload_length and hashlib.sha256(msg.payload).digest() != digest:
        raise ProtocolError("payload digest does not match the payload")


# ---------------------------------------------------------------------------- payloads


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _load(payload: bytes, what: str) -> Dict[str, Any]:
    try:
        obj = json.loads(payload)
    except RecursionError:
        raise MalformedPayload(f"{what} payload is JSON nested too deep") from None
    except ValueError:  # bad UTF-8 included (UnicodeDecodeError)
        raise MalformedPayload(f"{what} payload is not JSON") from None
    if not isinstance(obj, dict):
        raise MalformedPayload(f"{what} payload is not a JSON object")
    return obj


@dataclass
class Acknowledgement:
    message_type: str
    message_id: str
    sequence_number: int
    is_sequential: bool = True


def acknowledge(msg: AgentMessage) -> AgentMessage:
    """The acknowledge message for a received stream message."""
    content = {
        "AcknowledgedMessageType": msg.message_type,
        "AcknowledgedMessageId": str(msg.message_id),
        "AcknowledgedMessageSequenceNumber": msg.sequence_number,
        "IsSequentialMessage": True,
    }
    return AgentMessage(MessageType.ACKNOWLEDGE, _json(content), flags=ACK_FLAGS)


@_parser
def parse_acknowledgement(msg: AgentMessage) -> Acknowledgement:
    obj = _load(msg.payload, "acknowledge")
    seq = obj.get("AcknowledgedMessageSequenceNumber")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ProtocolError("acknowledge without AcknowledgedMessageSequenceNumber")
    return Acknowledgement(
        message_type=str(obj.get("AcknowledgedMessageType", "")),
        message_id=str(obj.get("AcknowledgedMessageId", "")),
        sequence_number=seq,
        is_sequential=bool(obj.get("IsSequentialMessage", True)),
    )


@dataclass
class ChannelClosed:
    session_id: str = ""
    output: str = ""
    message_id: str = ""
    destination_id: str = ""


def channel_closed(session_id: str, output: str = "", destination_id: str = "") -> AgentMessage:
    msg_id = uuid.uuid4()
    created = now_ms()
    content = {
        "MessageId": str(msg_id),
        "CreatedDate": str(created),  # a string in this payload, unlike the header field
        "DestinationId": destination_id,
        "SessionId": session_id,
        "MessageType": MessageType.CHANNEL_CLOSED,
        "SchemaVersion": SCHEMA_VERSION,
        "Output": output,
    }
    return AgentMessage(
        MessageType.CHANNEL_CLOSED,
        _json(content),
        message_id=msg_id,
        created_date=created,
        flags=ACK_FLAGS,
    )


def parse_channel_closed(msg: AgentMessage) -> ChannelClosed:
    # The plugin exits even when this payload does not parse; so do we, with what we have.
    # Only strings are taken: anything else (a deep structure too) counts as absent.
    try:
        obj = _load(msg.payload, "channel_closed")
    except ProtocolError:
        obj = {}

    def text(key: str) -> str:
        value = obj.get(key)
        return value if isinstance(value, str) else ""

    return ChannelClosed(
        session_id=text("SessionId"),
        output=text("Output"),
        message_id=text("MessageId"),
        destination_id=text("DestinationId"),
    )


def size_payload(cols: int, rows: int) -> bytes:
    return _json({"cols": int(cols), "rows": int(rows)})


@_parser
def parse_size(payload: bytes) -> tuple[int, int]:
    """(cols, rows) of a Size payload; both must be u32 like the Go struct."""
    obj = _load(payload, "size")
    cols, rows = obj.get("cols"), obj.get("rows")
    for v in (cols, rows):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**32:
            raise ProtocolError("size needs integer cols and rows")
    return cols, rows


def flag_payload(flag: int) -> bytes:
    return struct.pack(">I", int(flag))


@_parser
def parse_flag(payload: bytes) -> int:
    if len(payload) != 4:
        raise ProtocolError("a Flag payload is a 4-byte big-endian integer")
    return struct.unpack(">I", payload)[0]


def version_tuple(text: str) -> tuple:
    """A dotted version's leading numbers, for comparing (an agent's or a client's version
    as its handshake says it: "3.1.1511.0" -> (3, 1, 1511, 0))."""
    parts = []
    for part in (text or "").split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


# ---------------------------------------------------------------------------- token message


def open_data_channel_message(
    token: str, client_id: str, client_version: str, request_id: Optional[str] = None
) -> str:
    """The first, text, frame a client sends on the websocket (OpenDataChannelInput)."""
    return json.dumps(
        {
            "MessageSchemaVersion": MESSAGE_SCHEMA_VERSION,
            "RequestId": request_id or str(uuid.uuid4()),
            "TokenValue": token,
            "ClientId": client_id,
            "ClientVersion": client_version,
        }
    )


@_parser
def parse_open_data_channel(text: str) -> Dict[str, str]:
    obj = _load(text.encode() if isinstance(text, str) else text, "OpenDataChannel")
    if obj.get("MessageSchemaVersion") != MESSAGE_SCHEMA_VERSION:
        raise ProtocolError("unsupported MessageSchemaVersion")
    # Required fields and minimum lengths from the plugin's service model. ClientVersion
    # is optional: plugins before 1.2.677.0 do not send it, and the service takes them.
    for key, minimum in (
        ("RequestId", 16),
        ("TokenValue", 1),
        ("ClientId", 1),
    ):
        value = obj.get(key)
        if not isinstance(value, str) or len(value) < minimum:
            raise ProtocolError(f"OpenDataChannel needs {key}")
    version = obj.get("ClientVersion")
    if version is not None and not isinstance(version, str):
        raise ProtocolError("OpenDataChannel's ClientVersion is not a string")
    return {k: v for k, v in obj.items() if isinstance(v, str)}
