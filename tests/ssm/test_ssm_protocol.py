"""The Session Manager wire format and data-channel state, without any I/O."""

from __future__ import annotations

import hashlib
import json
import struct
import uuid

import pytest

from jupyter_sm_debug.ssm import handshake as hs
from jupyter_sm_debug.ssm import protocol as p
from jupyter_sm_debug.ssm.channel import (
    AGENT,
    CLIENT,
    MAX_RETRANSMISSION_TIMEOUT,
    ChannelClosedEvent,
    DataChannel,
    HandshakeAnswered,
    HandshakeCompleted,
    HandshakeRequested,
    PublicationChanged,
    ResendTimeout,
    StreamData,
)

# ---------------------------------------------------------------------------- wire format


def test_header_layout_is_the_plugins_116_byte_header():
    msg_id = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    payload = b"hello"
    frame = p.encode(
        p.AgentMessage(
            p.MessageType.INPUT_STREAM,
            payload,
            payload_type=p.PayloadType.OUTPUT,
            sequence_number=7,
            flags=1,
            message_id=msg_id,
            created_date=1_700_000_000_123,
            schema_version=1,
        )
    )
    assert len(frame) == 120 + len(payload)
    assert struct.unpack(">I", frame[0:4])[0] == 116
    assert frame[4:36] == b"input_stream_data".ljust(32, b" ")
    assert struct.unpack(">I", frame[36:40])[0] == 1
    assert struct.unpack(">Q", frame[40:48])[0] == 1_700_000_000_123
    assert struct.unpack(">q", frame[48:56])[0] == 7
    assert struct.unpack(">Q", frame[56:64])[0] == 1
    # The UUID's least significant half comes first on the wire.
    assert frame[64:80] == bytes.fromhex("8899aabbccddeeff0011223344556677")
    assert frame[80:112] == hashlib.sha256(payload).digest()
    assert struct.unpack(">I", frame[112:116])[0] == p.PayloadType.OUTPUT
    assert struct.unpack(">I", frame[116:120])[0] == len(payload)
    assert frame[120:] == payload


def test_uuid_byte_order_round_trips():
    value = uuid.uuid4()
    wire = p.uuid_to_wire(value)
    assert wire == value.bytes[8:] + value.bytes[:8]
    assert p.uuid_from_wire(wire) == value
    decoded = p.decode(p.encode(p.AgentMessage(p.MessageType.ACKNOWLEDGE, message_id=value)))
    assert decoded.message_id == value


@pytest.mark.parametrize(
    "message_type", sorted(p.KNOWN_MESSAGE_TYPES), ids=sorted(p.KNOWN_MESSAGE_TYPES)
)
@pytest.mark.parametrize("payload_type", list(p.PayloadType), ids=[t.name for t in p.PayloadType])
def test_every_message_and_payload_type_round_trips(message_type, payload_type):
    msg = p.AgentMessage(
        message_type,
        b"\x00\xffpayload" * 3,
        payload_type=payload_type,
        sequence_number=2**40,
        flags=p.FLAG_FIN,
    )
    assert p.decode(p.encode(msg)) == msg


def test_negative_sequence_and_empty_payload_round_trip():
    msg = p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"", sequence_number=-1)
    assert p.decode(p.encode(msg)) == msg


def _tamper(frame: bytes, offset: int, data: bytes) -> bytes:
    return frame[:offset] + data + frame[offset + len(data) :]


def test_digest_mismatch_is_rejected():
    frame = p.encode(p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"ls -l\r"))
    with pytest.raises(p.ProtocolError, match="digest"):
        p.decode(frame[:-1] + b"X")
    with pytest.raises(p.ProtocolError, match="digest"):
        p.decode(_tamper(frame, 80, b"\0" * 32))


def test_an_empty_payloads_digest_is_not_checked_like_the_plugin():
    frame = p.encode(p.AgentMessage(p.MessageType.ACKNOWLEDGE, b""))
    assert p.decode(_tamper(frame, 80, b"\0" * 32)).payload == b""


@pytest.mark.parametrize(
    "offset, data, error",
    [
        (0, struct.pack(">I", 0), "HeaderLength"),
        (0, struct.pack(">I", 120), "HeaderLength"),
        (4, b" " * 32, "MessageType"),
        (4, b"\xff" * 32, "ASCII"),
        (40, b"\0" * 8, "CreatedDate"),
    ],
)
def test_invalid_headers_are_rejected(offset, data, error):
    frame = p.encode(p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"abc"))
    with pytest.raises(p.ProtocolError, match=error):
        p.decode(_tamper(frame, offset, data))


def test_a_longer_header_is_skipped_like_the_plugin_does():
    """The plugin reads the fields at fixed offsets and the payload from HeaderLength + 4."""
    frame = bytearray(p.encode(p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"abc")))
    frame[0:4] = struct.pack(">I", 120)
    extended = bytes(frame[:120]) + b"\0\0\0\0" + bytes(frame[120:])
    assert p.decode(extended).payload == b"abc"


@pytest.mark.parametrize("length", [1, 99, 2**32 - 1])
def test_a_wrong_payload_length_only_asks_for_the_digest_check(length):
    frame = bytearray(p.encode(p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"abc")))
    frame[116:120] = struct.pack(">I", length)
    assert p.decode(bytes(frame)).payload == b"abc"
    frame[-1:] = b"X"  # now the digest is wrong: that still counts
    with pytest.raises(p.ProtocolError, match="digest"):
        p.decode(bytes(frame))


def test_a_zero_payload_length_skips_the_digest_like_the_plugin():
    frame = bytearray(p.encode(p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"abc")))
    frame[116:120] = struct.pack(">I", 0)
    frame[-1:] = b"X"
    assert p.decode(bytes(frame)).payload == b"abX"


def test_a_channel_closed_with_an_odd_header_still_ends_the_client():
    frame = bytearray(p.encode(p.channel_closed("s-1", "bye")))
    frame[116:120] = struct.pack(">I", len(frame))  # PayloadLength counting the header too
    ch = DataChannel(CLIENT, Wire())
    (event,) = ch.receive(bytes(frame))
    assert isinstance(event, ChannelClosedEvent) and ch.closed


def test_short_frames_are_rejected():
    with pytest.raises(p.ProtocolError, match="shorter"):
        p.decode(b"\0" * 119)


def test_publication_messages_skip_validation_like_the_plugin():
    frame = p.encode(p.AgentMessage(p.MessageType.PAUSE_PUBLICATION, b"x"))
    frame = _tamper(_tamper(frame, 0, struct.pack(">I", 0)), 40, b"\0" * 8)
    assert p.decode(frame).message_type == p.MessageType.PAUSE_PUBLICATION


def test_message_types_longer_than_32_bytes_cannot_be_encoded():
    with pytest.raises(p.ProtocolError):
        p.encode(p.AgentMessage("x" * 33))


def test_null_padded_message_type_is_accepted():
    frame = p.encode(p.AgentMessage(p.MessageType.ACKNOWLEDGE, b"{}"))
    frame = _tamper(frame, 4, b"acknowledge".ljust(32, b"\0"))
    assert p.decode(frame).message_type == p.MessageType.ACKNOWLEDGE


# ---------------------------------------------------------------------------- payloads


def test_acknowledge_names_the_message_it_acknowledges():
    data = p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"x", sequence_number=41)
    ack = p.decode(p.encode(p.acknowledge(data)))
    assert ack.message_type == p.MessageType.ACKNOWLEDGE
    assert ack.flags == 3 and ack.sequence_number == 0
    assert json.loads(ack.payload) == {
        "AcknowledgedMessageType": "output_stream_data",
        "AcknowledgedMessageId": str(data.message_id),
        "AcknowledgedMessageSequenceNumber": 41,
        "IsSequentialMessage": True,
    }
    parsed = p.parse_acknowledgement(ack)
    assert (parsed.sequence_number, parsed.message_id) == (41, str(data.message_id))


def test_channel_closed_round_trips():
    msg = p.decode(p.encode(p.channel_closed("sess-1", "bye", "target-1")))
    body = json.loads(msg.payload)
    assert body["MessageType"] == "channel_closed" and isinstance(body["CreatedDate"], str)
    closed = p.parse_channel_closed(msg)
    assert (closed.session_id, closed.output) == ("sess-1", "bye")
    assert closed.destination_id == "target-1"


def test_size_payload_matches_the_go_struct():
    assert json.loads(p.size_payload(132, 40)) == {"cols": 132, "rows": 40}
    assert p.parse_size(p.size_payload(132, 40)) == (132, 40)
    with pytest.raises(p.ProtocolError):
        p.parse_size(b'{"cols": -1, "rows": 2}')
    with pytest.raises(p.ProtocolError):
        p.parse_size(b"[]")


def test_flag_payload_is_a_big_endian_u32():
    assert p.flag_payload(p.PayloadTypeFlag.TERMINATE_SESSION) == b"\0\0\0\x02"
    assert p.parse_flag(b"\0\0\0\x02") == p.PayloadTypeFlag.TERMINATE_SESSION


def test_handshake_payloads_round_trip():
    req = hs.HandshakeRequest(
        "3.3.0.0", [hs.session_type_action("Standard_Stream"), hs.kms_action("alias/k")]
    )
    wire = json.loads(hs.handshake_request_payload(req))
    assert wire["RequestedClientActions"][1] == {
        "ActionType": "KMSEncryption",
        "ActionParameters": {"KMSKeyId": "alias/k"},
    }
    assert hs.parse_handshake_request(hs.handshake_request_payload(req)) == req

    resp = hs.HandshakeResponse("1.2.0.0", [hs.ProcessedAction("SessionType", 1)], [])
    assert json.loads(hs.handshake_response_payload(resp))["Errors"] is None
    assert hs.parse_handshake_response(hs.handshake_response_payload(resp)) == resp

    done = hs.HandshakeComplete(1_500_000, "hello")
    assert hs.parse_handshake_complete(hs.handshake_complete_payload(done)) == done


def test_open_data_channel_token_message():
    text = p.open_data_channel_message("tok", "client-1", "1.2.0.0")
    body = json.loads(text)
    assert set(body) == {
        "MessageSchemaVersion",
        "RequestId",
        "TokenValue",
        "ClientId",
        "ClientVersion",
    }
    assert body["MessageSchemaVersion"] == "1.0" and body["TokenValue"] == "tok"
    assert p.parse_open_data_channel(text)["ClientId"] == "client-1"
    for broken in (
        "{}",
        "not json",
        json.dumps({**body, "MessageSchemaVersion": "2.0"}),
        json.dumps({**body, "RequestId": "short"}),
        json.dumps({k: v for k, v in body.items() if k != "TokenValue"}),
    ):
        with pytest.raises(p.ProtocolError):
            p.parse_open_data_channel(broken)


# ---------------------------------------------------------------------------- channel


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Wire:
    """Collects what a channel sends, decoded."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __call__(self, frame: bytes) -> None:
        self.frames.append(frame)

    def take(self) -> list[p.AgentMessage]:
        out = [p.decode(f) for f in self.frames]
        self.frames.clear()
        return out


def out_frame(seq: int, data: bytes, payload_type=p.PayloadType.OUTPUT) -> bytes:
    return p.encode(
        p.AgentMessage(
            p.MessageType.OUTPUT_STREAM, data, payload_type=payload_type, sequence_number=seq
        )
    )


def acked(messages) -> list[int]:
    return [
        p.parse_acknowledgement(m).sequence_number
        for m in messages
        if m.message_type == p.MessageType.ACKNOWLEDGE
    ]


def test_out_of_order_and_duplicates_are_delivered_once_in_order():
    wire = Wire()
    ch = DataChannel(CLIENT, wire)
    delivered = []
    for seq in (2, 0, 3, 0, 2, 1, 5, 4, 1, 3):
        delivered += [e.payload for e in ch.receive(out_frame(seq, b"m%d" % seq))]
    assert delivered == [b"m0", b"m1", b"m2", b"m3", b"m4", b"m5"]
    # Every arrival is acknowledged, duplicates again (their first ack may have been lost).
    assert acked(wire.take()) == [2, 0, 3, 0, 2, 1, 5, 4, 1, 3]
    assert ch.expected_sequence_number == 6


def test_a_full_reorder_buffer_drops_without_ack_so_the_peer_resends():
    wire = Wire()
    ch = DataChannel(CLIENT, wire, incoming_capacity=2)
    for seq in (1, 2, 3):
        assert ch.receive(out_frame(seq, b"x")) == []
    assert acked(wire.take()) == [1, 2]
    events = ch.receive(out_frame(0, b"x"))
    assert [e.sequence_number for e in events] == [0, 1, 2]
    assert ch.receive(out_frame(3, b"x"))[0].sequence_number == 3


def test_own_stream_type_and_unknown_types_are_ignored():
    ch = DataChannel(CLIENT, Wire())
    echoed = p.encode(p.AgentMessage(p.MessageType.INPUT_STREAM, b"x"))
    assert ch.receive(echoed) == []
    assert ch.receive(p.encode(p.AgentMessage("agent_session_state", b"{}"))) == []


def test_sent_messages_are_numbered_and_kept_until_acknowledged():
    wire = Wire()
    ch = DataChannel(CLIENT, wire)
    assert [ch.send_data(b"a"), ch.send_data(b"b"), ch.send_size(80, 24)] == [0, 1, 2]
    sent = wire.take()
    assert [m.sequence_number for m in sent] == [0, 1, 2]
    assert {m.message_type for m in sent} == {p.MessageType.INPUT_STREAM}
    assert [m.flags for m in sent] == [0, 0, 0]  # the plugin never sets SYN/FIN
    assert sent[2].payload_type == p.PayloadType.SIZE
    assert json.loads(sent[2].payload) == {"cols": 80, "rows": 24}
    assert ch.unacked == 3
    for m in (sent[1], sent[0]):
        ch.receive(p.encode(p.acknowledge(m)))
    assert ch.unacked == 1


def test_agent_marks_its_first_message_syn():
    wire = Wire()
    ch = DataChannel(AGENT, wire)
    ch.send_data(b"a")
    ch.send_data(b"b")
    first, second = wire.take()
    assert first.message_type == p.MessageType.OUTPUT_STREAM
    assert (first.flags, second.flags) == (p.FLAG_SYN, 0)


def test_retransmission_after_a_dropped_acknowledgement():
    clock = Clock()
    client_wire, agent_wire = Wire(), Wire()
    client = DataChannel(CLIENT, client_wire, clock=clock)
    agent = DataChannel(AGENT, agent_wire, clock=clock)
    agent.handshake_done = True  # deliver data without the handshake

    client.send_data(b"ls\r")
    delivered = []
    for frame in client_wire.frames:
        delivered += agent.receive(frame)
    client_wire.frames.clear()
    agent_wire.frames.clear()  # the acknowledgement is lost
    assert [e.payload for e in delivered] == [b"ls\r"]

    clock.now += 0.1
    assert client.tick() == 0  # not yet overdue (initial timeout 200 ms)
    clock.now += 0.2
    assert client.tick() == 1
    (resent,) = client_wire.take()
    assert resent.sequence_number == 0 and resent.payload == b"ls\r"

    # The agent acknowledges the duplicate but does not deliver it again.
    assert agent.receive(p.encode(resent)) == []
    (ack,) = agent_wire.take()
    client.receive(p.encode(ack))
    assert client.unacked == 0
    clock.now += 5
    assert client.tick() == 0


def test_only_the_oldest_message_is_resent_per_tick_and_then_waits_again():
    clock = Clock()
    wire = Wire()
    ch = DataChannel(CLIENT, wire, clock=clock)
    for data in (b"a", b"b", b"c"):
        ch.send_data(data)
    wire.take()
    clock.now += 0.3
    assert ch.tick() == 1
    assert [m.sequence_number for m in wire.take()] == [0]
    assert ch.tick() == 0  # its resend time was updated


def test_resend_gives_up_after_max_attempts():
    clock = Clock()
    ch = DataChannel(CLIENT, Wire(), clock=clock, max_resend_attempts=3)
    ch.send_data(b"x")
    for _ in range(3):
        clock.now += 2
        assert ch.tick() == 1
    clock.now += 2
    with pytest.raises(ResendTimeout):
        ch.tick()


def test_retransmission_timeout_adapts_to_the_round_trip():
    clock = Clock()
    wire = Wire()
    ch = DataChannel(CLIENT, wire, clock=clock)
    for _ in range(20):
        ch.send_data(b"x")
        (sent,) = wire.take()
        clock.now += 0.02
        ch.receive(p.encode(p.acknowledge(sent)))
    assert 0.02 < ch.retransmission_timeout < 0.1
    for _ in range(40):
        ch.send_data(b"x")
        (sent,) = wire.take()
        clock.now += 5
        ch.receive(p.encode(p.acknowledge(sent)))
    assert ch.retransmission_timeout == MAX_RETRANSMISSION_TIMEOUT


def test_the_client_ignores_publication_messages_like_the_plugin():
    """processOutputMessage returns nil for start_publication and pause_publication."""
    wire = Wire()
    ch = DataChannel(CLIENT, wire)
    assert ch.receive(p.encode(p.AgentMessage(p.MessageType.PAUSE_PUBLICATION))) == []
    assert not ch.paused
    ch.send_data(b"a")
    assert [m.payload for m in wire.take()] == [b"a"]
    assert ch.receive(p.encode(p.AgentMessage(p.MessageType.START_PUBLICATION))) == []


def test_pause_publication_holds_the_agents_messages_until_start_publication():
    wire = Wire()
    ch = DataChannel(AGENT, wire)
    assert ch.receive(p.encode(p.AgentMessage(p.MessageType.PAUSE_PUBLICATION))) == [
        PublicationChanged(True)
    ]
    ch.send_data(b"a")
    ch.send_data(b"b")
    assert wire.frames == [] and ch.tick() == 0
    ch.receive(p.encode(p.AgentMessage(p.MessageType.START_PUBLICATION)))
    assert [m.payload for m in wire.take()] == [b"a", b"b"]


@pytest.mark.parametrize("role", [AGENT])
@pytest.mark.parametrize("wakes", ["data", "ack"])
def test_pause_publication_ends_with_incoming_data_or_acknowledgement_like_the_agent(role, wakes):
    wire = Wire()
    ch = DataChannel(role, wire)
    ch.receive(p.encode(p.AgentMessage(p.MessageType.PAUSE_PUBLICATION)))
    ch.send_data(b"a")
    assert wire.frames == [] and ch.paused
    if wakes == "data":
        incoming = p.AgentMessage(ch.incoming_type, b"x", payload_type=p.PayloadType.OUTPUT)
        if role == AGENT:
            ch.skip_handshake()
    else:
        incoming = p.acknowledge(p.AgentMessage(ch.incoming_type, b"", sequence_number=7))
    ch.receive(p.encode(incoming))
    assert not ch.paused
    assert b"a" in [m.payload for m in wire.take() if m.message_type == ch.outgoing_type]


def test_resend_all_sends_every_unacknowledged_message_at_once():
    wire = Wire()
    ch = DataChannel(CLIENT, wire)
    for data in (b"a", b"b", b"c"):
        ch.send_data(data)
    ch.receive(p.encode(p.acknowledge(p.decode(wire.frames[1]))))
    wire.take()
    assert ch.resend_all() == 2
    assert [m.payload for m in wire.take()] == [b"a", b"c"]


def test_channel_closed_event_carries_the_output():
    ch = DataChannel(CLIENT, Wire())
    (event,) = ch.receive(p.encode(p.channel_closed("s-1", "Session terminated")))
    assert isinstance(event, ChannelClosedEvent)
    assert event.closed.output == "Session terminated"
    assert ch.closed


def test_agent_close_sends_channel_closed_once():
    wire = Wire()
    ch = DataChannel(AGENT, wire, session_id="s-9")
    ch.close("done")
    ch.close("again")
    (msg,) = wire.take()
    assert msg.message_type == p.MessageType.CHANNEL_CLOSED
    assert p.parse_channel_closed(msg).session_id == "s-9"


# ---------------------------------------------------------------------------- handshake


def pump(src: Wire, dst: DataChannel) -> list:
    events = []
    frames, src.frames = src.frames, []
    for frame in frames:
        events += dst.receive(frame)
    return events


def test_handshake_between_agent_and_client():
    client_wire, agent_wire = Wire(), Wire()
    client = DataChannel(CLIENT, client_wire)
    agent = DataChannel(AGENT, agent_wire)

    agent.request_handshake()
    (requested,) = pump(agent_wire, client)
    assert isinstance(requested, HandshakeRequested)
    assert requested.request.agent_version == agent.version
    assert not requested.kms_requested and requested.response.errors == []
    assert client.session_type == "Standard_Stream"

    # The client sent an ack and then its response (input_stream_data, seq 0).
    response = [m for m in map(p.decode, client_wire.frames) if m.payload_type == 6]
    assert [m.sequence_number for m in response] == [0]
    body = json.loads(response[0].payload)
    assert body["ClientVersion"] == client.version
    assert body["ProcessedClientActions"][0]["ActionStatus"] == p.ActionStatus.SUCCESS

    (answered,) = pump(client_wire, agent)
    assert isinstance(answered, HandshakeAnswered) and answered.ok

    agent.complete_handshake("welcome")
    (completed,) = pump(agent_wire, client)
    assert isinstance(completed, HandshakeCompleted)
    assert completed.complete.customer_message == "welcome"
    assert client.handshake_done and agent.handshake_done

    # Only now does client data reach the agent's side, and shell output the client.
    client.send_size(100, 30)
    (size,) = [e for e in pump(client_wire, agent) if isinstance(e, StreamData)]
    assert p.parse_size(size.payload) == (100, 30)
    agent.send_data(b"$ ")
    assert [e.payload for e in pump(agent_wire, client)] == [b"$ "]


def test_the_agent_ignores_client_data_before_the_handshake_completes():
    agent = DataChannel(AGENT, Wire())
    frame = p.encode(p.AgentMessage(p.MessageType.INPUT_STREAM, b"early", payload_type=1))
    assert agent.receive(frame) == []
    assert agent.expected_sequence_number == 1  # acknowledged and consumed, like the agent


def test_client_refuses_port_sessions_and_kms_without_kms_access():
    client_wire, agent_wire = Wire(), Wire()
    client = DataChannel(CLIENT, client_wire)
    agent = DataChannel(AGENT, agent_wire)
    agent.request_handshake(session_type="Port", kms_key_id="alias/key")
    (requested,) = pump(agent_wire, client)
    assert requested.kms_requested
    statuses = {a.action_type: a.status for a in requested.response.actions}
    assert statuses == {"SessionType": p.ActionStatus.FAILED, "KMSEncryption": 2}
    assert any("no KMS access" in e for e in requested.response.errors)
    (answered,) = pump(client_wire, agent)
    assert not answered.ok


class ToyKms:
    """GenerateDataKey/Decrypt with the semantics the channel relies on: the blob opens only
    with the same encryption context. (The session tests use the stand-in's real KMS.)"""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.master = AESGCM(AESGCM.generate_key(256))
        self.calls: list = []

    def generate(self, key_id, context):
        import os

        self.calls.append(("GenerateDataKey", key_id, dict(context)))
        plain, nonce = os.urandom(64), os.urandom(12)
        aad = json.dumps(context, sort_keys=True).encode()
        return nonce + self.master.encrypt(nonce, plain, aad), plain

    def decrypt(self, blob, context):
        self.calls.append(("Decrypt", dict(context)))
        aad = json.dumps(context, sort_keys=True).encode()
        return self.master.decrypt(blob[:12], blob[12:], aad)


def test_kms_handshake_and_encrypted_output_both_ways():
    from jupyter_sm_debug.ssm.channel import EncryptionConfirmed

    kms = ToyKms()
    client_wire, agent_wire = Wire(), Wire()
    common = {"session_id": "s-1", "target_id": "sagemaker-training-job:j_algo-1"}
    client = DataChannel(CLIENT, client_wire, generate_data_key=kms.generate, **common)
    agent = DataChannel(AGENT, agent_wire, decrypt_data_key=kms.decrypt, **common)
    agent.request_handshake(kms_key_id="alias/session")
    (requested,) = pump(agent_wire, client)
    kinds = [a.action_type for a in requested.request.actions]
    assert kinds == ["SessionType", "KMSEncryption"]  # the agent's order
    assert not requested.response.errors
    context = {"aws:ssm:SessionId": "s-1", "aws:ssm:TargetId": "sagemaker-training-job:j_algo-1"}
    assert kms.calls[0] == ("GenerateDataKey", "alias/session", context)
    (answered,) = pump(client_wire, agent)
    assert answered.ok and answered.challenged
    assert kms.calls[1] == ("Decrypt", context)
    # The challenge goes to the client, its answer back; then the agent confirms.
    assert pump(agent_wire, client) == []
    (confirmed,) = pump(client_wire, agent)
    assert confirmed == EncryptionConfirmed(True)
    agent.complete_handshake()
    assert [type(e).__name__ for e in pump(agent_wire, client)] == ["HandshakeCompleted"]
    pump(client_wire, agent)  # acknowledgements

    agent.send_data(b"secret output")
    (frame,) = agent_wire.frames
    on_the_wire = p.decode(frame).payload
    assert b"secret" not in on_the_wire and len(on_the_wire) == 12 + 13 + 16
    (data,) = pump(agent_wire, client)
    assert data.payload == b"secret output"
    pump(client_wire, agent)
    client.send_data(b"typed")
    assert b"typed" not in p.decode(client_wire.frames[0]).payload
    (typed,) = pump(client_wire, agent)
    assert typed.payload == b"typed"
    # Sizes stay in clear, as in the plugin.
    pump(agent_wire, client)
    client.send_size(80, 24)
    assert p.decode(client_wire.frames[0]).payload == p.size_payload(80, 24)


def test_a_wrong_challenge_answer_is_not_confirmed():
    from jupyter_sm_debug.ssm.channel import EncryptionConfirmed

    kms = ToyKms()
    client_wire, agent_wire = Wire(), Wire()
    agent = DataChannel(AGENT, agent_wire, decrypt_data_key=kms.decrypt, session_id="s")
    client = DataChannel(CLIENT, client_wire, generate_data_key=kms.generate, session_id="s")
    agent.request_handshake(kms_key_id="k")
    pump(agent_wire, client)
    (answered,) = pump(client_wire, agent)
    assert answered.challenged
    forged = p.AgentMessage(
        p.MessageType.INPUT_STREAM,
        hs.challenge_payload(b"\0" * 12 + b"x" * 80),
        payload_type=p.PayloadType.ENC_CHALLENGE_RESPONSE,
        sequence_number=1,
    )
    assert agent.receive(p.encode(forged)) == [EncryptionConfirmed(False)]


def test_a_data_key_for_another_session_does_not_open():
    kms = ToyKms()
    client_wire, agent_wire = Wire(), Wire()
    client = DataChannel(CLIENT, client_wire, generate_data_key=kms.generate, session_id="a")
    agent = DataChannel(AGENT, agent_wire, decrypt_data_key=kms.decrypt, session_id="b")
    agent.request_handshake(kms_key_id="k")
    pump(agent_wire, client)
    (answered,) = pump(client_wire, agent)
    assert not answered.ok and "Fetching data key failed" in answered.problem


def test_unknown_handshake_actions_are_unsupported():
    client_wire = Wire()
    client = DataChannel(CLIENT, client_wire)
    req = hs.HandshakeRequest("3", [hs.RequestedAction("Telepathy", {})])
    frame = out_frame(0, hs.handshake_request_payload(req), p.PayloadType.HANDSHAKE_REQUEST)
    (requested,) = client.receive(frame)
    assert requested.response.actions[0].status == p.ActionStatus.UNSUPPORTED
    assert requested.response.errors == ["Unsupported action Telepathy"]
