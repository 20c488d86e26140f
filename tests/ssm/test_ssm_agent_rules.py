"""The stand-in's SSM agent follows amazon-ssm-agent on the points a client can trip over
(issue 25, finding 6): each test names the Go function the rule comes from.

The channel-level rules are checked with a hand-driven clock; the port agent's rules
(smux keep-alive by client version, ConnectToPortError) against the stand-in itself.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid

import pytest
from forward_apps import HostApp
from test_ssm_protocol import Clock, ToyKms, Wire, pump

from jupyter_sm_debug.ssm import protocol as p
from jupyter_sm_debug.ssm.channel import AGENT, CLIENT, HANDSHAKE_TIMEOUT, DataChannel
from jupyter_sm_debug.ssm.portforward import PortForwardClient
from jupyter_sm_debug.standin import ssm as standin_ssm
from jupyter_sm_debug.standin.ssm.shell import utf8_complete

# ------------------------------------------------------------------ the data channel


def test_output_never_ends_inside_a_utf8_character():
    """processStdoutData: an incomplete character at the end is held for the next read; an
    invalid byte further in goes out as it is."""
    text = "aé€😀".encode()
    assert [utf8_complete(text[:k]) for k in range(len(text) + 1)] == [
        0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10,
    ]  # fmt: skip
    assert utf8_complete(b"x" * 1023 + "é".encode()) == 1025  # a whole character may exceed 1 KiB
    assert utf8_complete(b"\xffabcd") == 5
    assert utf8_complete(b"ab\xff") == 2  # within utf8.UTFMax of the end: held


def test_the_agent_checks_no_payload_digest_on_client_frames():
    """AgentMessage.Validate checks HeaderLength, MessageType and CreatedDate only."""
    agent = DataChannel(AGENT, Wire())
    agent.skip_handshake()
    frame = bytearray(
        p.encode(p.AgentMessage(p.MessageType.INPUT_STREAM, b"keys", sequence_number=0))
    )
    frame[80:112] = b"\0" * 32  # PayloadDigest's offset
    (data,) = agent.receive(bytes(frame))
    assert data.payload == b"keys"
    client = DataChannel(CLIENT, Wire())
    bad = bytearray(p.encode(p.AgentMessage(p.MessageType.OUTPUT_STREAM, b"x")))
    bad[80:112] = b"\0" * 32
    with pytest.raises(p.ProtocolError):
        client.receive(bytes(bad))  # the plugin does check it


def test_the_agent_never_gives_up_resending():
    """ResendStreamDataMessageScheduler resends the oldest message for as long as it lives."""
    clock = Clock()
    wire = Wire()
    agent = DataChannel(AGENT, wire, clock=clock)
    agent.send_data(b"out")
    for _ in range(5000):
        clock.now += 2.0
        assert agent.tick() == 1
    assert agent.unacked == 1


def test_handshake_timeouts_are_15_seconds_for_the_response_then_the_challenge():
    """PerformHandshake: handshakeTimeout (15 s) for the response, then for the challenge."""
    assert HANDSHAKE_TIMEOUT == 15.0
    clock = Clock()
    agent = DataChannel(AGENT, Wire(), clock=clock)
    agent.request_handshake()
    clock.now += 14.9
    assert agent.handshake_expired() == ""
    clock.now += 0.2
    assert "Handshake timed out" in agent.handshake_expired()

    kms = ToyKms()
    client_wire, agent_wire = Wire(), Wire()
    client = DataChannel(CLIENT, client_wire, generate_data_key=kms.generate, session_id="s")
    agent = DataChannel(AGENT, agent_wire, decrypt_data_key=kms.decrypt, session_id="s",
                        clock=clock)  # fmt: skip
    agent.request_handshake(kms_key_id="alias/k")
    pump(agent_wire, client)
    (answered,) = pump(client_wire, agent)
    assert answered.challenged
    agent_wire.frames.clear()  # the challenge never reaches the client
    clock.now += 15.1
    assert agent.handshake_expired() == "Timed out waiting for encryption challenge."


def test_kms_action_carries_a_challenge_and_completion_says_the_session_is_encrypted():
    """buildHandshakeRequestPayload (KMSKeyId and Challenge: base64 of 16 random bytes) and
    buildHandshakeCompletePayload ("This session is encrypted using AWS KMS.")."""
    kms = ToyKms()
    client_wire, agent_wire = Wire(), Wire()
    client = DataChannel(CLIENT, client_wire, generate_data_key=kms.generate, session_id="s")
    agent = DataChannel(AGENT, agent_wire, decrypt_data_key=kms.decrypt, session_id="s")
    agent.request_handshake(kms_key_id="alias/k")
    (requested,) = pump(agent_wire, client)
    (kms_action,) = [a for a in requested.request.actions if a.action_type == "KMSEncryption"]
    assert kms_action.parameters["KMSKeyId"] == "alias/k"
    assert len(base64.b64decode(kms_action.parameters["Challenge"])) == 16
    pump(client_wire, agent)
    pump(agent_wire, client)
    (confirmed,) = pump(client_wire, agent)
    assert confirmed.ok
    agent.complete_handshake()
    (completed,) = pump(agent_wire, client)
    assert completed.complete.customer_message == "This session is encrypted using AWS KMS."


def test_duplicates_are_acknowledged_again():
    """handleStreamDataMessage re-acknowledges an already processed message."""
    wire = Wire()
    agent = DataChannel(AGENT, wire)
    agent.skip_handshake()
    frame = p.encode(p.AgentMessage(p.MessageType.INPUT_STREAM, b"k", sequence_number=0))
    assert len(agent.receive(frame)) == 1
    assert agent.receive(frame) == []
    acks = [m for m in wire.take() if m.message_type == p.MessageType.ACKNOWLEDGE]
    assert len(acks) == 2


# ------------------------------------------------------------------ the port agent


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"rules-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


@pytest.fixture(scope="module")
def app(standin, job):
    running = HostApp(standin, job, "algo-1", big_bytes=1 << 16)
    yield running
    running.stop()


@pytest.fixture
def keepalive(standin):
    """The stand-in's smux keep-alive shrunk: a NOP every 0.5 s, a check every 1.5 s."""
    registry = standin_ssm.registry(standin)
    saved = registry.smux_keepalive_interval, registry.smux_keepalive_timeout
    registry.smux_keepalive_interval, registry.smux_keepalive_timeout = 0.5, 1.5
    yield registry
    registry.smux_keepalive_interval, registry.smux_keepalive_timeout = saved


async def http_get(reader, writer, path: str) -> tuple[bytes, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    body = await reader.read()
    writer.close()
    return head.split(b"\r\n", 1)[0], body


def start_forward(standin, job, port: int) -> tuple[dict, str]:
    target = f"sagemaker-training-job:{job}_algo-1"
    answer = standin.client("ssm").start_session(
        Target=target,
        DocumentName="AWS-StartPortForwardingSession",
        Parameters={"portNumber": [str(port)]},
    )
    os.environ.setdefault("AWS_CA_BUNDLE", standin.client_env()["AWS_CA_BUNDLE"])
    return answer, target


async def idle_then_get(client: PortForwardClient, agent_checks: int, registry) -> tuple:
    """One request, then idle until the agent's keep-alive made ``agent_checks`` checks
    (or the session ended), then one more request."""
    first = await http_get(*await client.open_stream(), "/first")
    idle = registry.smux_keepalive_timeout * agent_checks + registry.smux_keepalive_interval
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.closed.wait(), idle)  # the idle time is the test
    return first, await http_get(*await client.open_stream(), "/second")


def test_the_port_agent_closes_an_idle_session_of_an_old_client(standin, job, app, keepalive):
    """MuxPortSession.initialize keeps smux keep-alive on for a client at or below
    1.2.331.0; smux's keepalive closes a session that received nothing for a tick."""
    answer, target = start_forward(standin, job, app.port)

    async def run() -> str:
        client = PortForwardClient(answer, target=target)
        client.channel.version = "1.2.0.0"  # what a plugin built from source reports
        client.keepalive = False  # and no smux NOPs from us
        await client.connect()
        await http_get(*await client.open_stream(), "/first")
        await asyncio.wait_for(client.closed.wait(), keepalive.smux_keepalive_timeout * 10)
        return client.close_reason

    asyncio.run(run())
    session = standin_ssm.registry(standin).get(answer["SessionId"])
    assert session.status == "Terminated"


def test_a_dial_failure_sends_connect_to_port_error_then_fin(standin, job):
    """handleServerConnections: the ConnectToPortError flag, then the stream closed; the
    session goes on."""
    from forward_apps import free_port

    answer, target = start_forward(standin, job, free_port())
    flags: list = []

    async def run() -> bytes:
        client = PortForwardClient(answer, target=target)
        on_event = client._on_event

        def spy(event):
            if getattr(event, "payload_type", None) == p.PayloadType.FLAG:
                flags.append(p.parse_flag(event.payload))
            on_event(event)

        client._on_event = spy
        await client.connect()
        reader, writer = await client.open_stream()
        data = await asyncio.wait_for(reader.read(), 30)
        assert client.alive
        await client.close()
        return data

    assert asyncio.run(run()) == b""
    assert flags == [p.PayloadTypeFlag.CONNECT_TO_PORT_ERROR]


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ------------------------------------------------------------------ finding 1: idle forwards


def test_an_idle_builtin_forward_still_serves_after_two_keepalive_ticks(
    standin, job, app, keepalive
):
    """The built-in client reports a release version (above 1.2.331.0), so the agent's
    smux keep-alive is off and an idle forward lives on (it died on the old client)."""
    answer, target = start_forward(standin, job, app.port)

    async def run() -> tuple:
        client = PortForwardClient(answer, target=target)
        await client.connect()
        try:
            return await idle_then_get(client, 2, keepalive)
        finally:
            await client.close()

    first, second = asyncio.run(run())
    assert first == (b"HTTP/1.1 200 OK", b"hello from algo-1 /first")
    assert second == (b"HTTP/1.1 200 OK", b"hello from algo-1 /second")


def test_the_client_sends_keepalives_to_an_agent_that_expects_them(standin, job, app, keepalive):
    """An agent up to 3.1.1511.0 keeps smux keep-alive on whatever the client (the plugin's
    TCPMultiplexingWithSmuxKeepAliveDisabledAfterThisAgentVersion): the client sends NOPs
    as the plugin's smux does, and the forward survives the agent's checks."""
    from jupyter_sm_debug.ssm import portforward

    answer, target = start_forward(standin, job, app.port)
    agent = None

    async def run() -> tuple:
        nonlocal agent
        client = PortForwardClient(answer, target=target)
        await client.connect()
        agent = standin_ssm.registry(standin).get(answer["SessionId"]).agent
        agent._start_mux("1.2.0.0")  # keep-alive on, as such an agent has it
        client.keepalive = True
        try:
            return await idle_then_get(client, 2, keepalive)
        finally:
            await client.close()

    saved = portforward.KEEPALIVE_INTERVAL
    portforward.KEEPALIVE_INTERVAL = keepalive.smux_keepalive_interval
    try:
        first, second = asyncio.run(run())
    finally:
        portforward.KEEPALIVE_INTERVAL = saved
    assert agent.keepalive
    assert second == (b"HTTP/1.1 200 OK", b"hello from algo-1 /second")


@pytest.mark.skipif(not os.environ.get("SMD_SLOW"), reason="75 s idle: set SMD_SLOW=1")
def test_an_idle_builtin_forward_serves_after_75_seconds_at_the_agents_defaults(standin, job, app):
    registry = standin_ssm.registry(standin)
    assert (registry.smux_keepalive_interval, registry.smux_keepalive_timeout) == (10.0, 30.0)
    answer, target = start_forward(standin, job, app.port)

    async def run() -> tuple:
        client = PortForwardClient(answer, target=target)
        await client.connect()
        try:
            first = await http_get(*await client.open_stream(), "/first")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.closed.wait(), 75)
            return first, await http_get(*await client.open_stream(), "/second")
        finally:
            await client.close()

    first, second = asyncio.run(run())
    assert second == (b"HTTP/1.1 200 OK", b"hello from algo-1 /second")


# ------------------------------------------------------------------ findings 4 and 5


@pytest.mark.parametrize(("agent_version", "mux"), [("3.0.196.0", False), ("3.0.200.0", True)])
def test_mux_forwarding_from_agents_newer_than_3_0_196_0_like_the_plugin(
    standin, job, app, monkeypatch, agent_version, mux
):
    """DoesAgentSupportTCPMultiplexing: agent version > 3.0.196.0. Such an agent (up to
    3.1.1511.0) gets smux NOPs from the client, as the plugin's smux keeps keep-alive on."""
    from jupyter_sm_debug.ssm import channel
    from jupyter_sm_debug.ssm.portforward import PortForwardError

    monkeypatch.setattr(channel, "AGENT_VERSION", agent_version)  # the stand-in's agent
    answer, target = start_forward(standin, job, app.port)

    async def run():
        client = PortForwardClient(answer, target=target)
        try:
            await client.connect()
        except PortForwardError as error:
            return str(error), None
        try:
            return await http_get(*await client.open_stream(), "/first"), client.keepalive
        finally:
            await client.close()

    got, keepalive = asyncio.run(run())
    if mux:
        assert got == (b"HTTP/1.1 200 OK", b"hello from algo-1 /first")
        assert keepalive is True
    else:
        assert "3.0.196.0 or older" in got


def test_the_shell_agent_sends_no_message_that_ends_inside_a_character():
    """The stand-in's shell agent reads its PTY as the agent's writePump does: each
    message is what a read gave, less an incomplete character kept for the next."""
    from types import SimpleNamespace

    from jupyter_sm_debug.standin.ssm.shell import Agent

    sent: list = []
    agent = object.__new__(Agent)
    agent.registry = SimpleNamespace(payload_size=p.STREAM_DATA_PAYLOAD_SIZE, pace=0)
    agent.channel = SimpleNamespace(unacked=0, send_data=sent.append)
    agent._batch, agent.handler, agent._unprocessed = None, None, b""
    agent._shell_done, agent._closing_since = False, None
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    agent.master_fd = read_fd
    text = ("x" + "é€😀" * 300).encode()  # characters of 2, 3 and 4 bytes across 1 KiB
    try:
        os.write(write_fd, text)
        agent._read_output()
        os.close(write_fd)
        write_fd = -1
        agent._read_output()  # end of file: what was held back goes out
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    assert b"".join(sent) == text
    assert len(sent) > 1 and all(len(m) <= p.STREAM_DATA_PAYLOAD_SIZE + 3 for m in sent)
    for message in sent:
        message.decode("utf-8")  # none ends (or starts) inside a character


def test_a_kms_encrypted_port_session_takes_the_same_64_byte_key(standin, job, app):
    """One handshake for every session kind: a port session the agent encrypts gets the
    data key attach and run use (encryption.kms_data_key), the challenge, then smux."""
    from jupyter_sm_debug.ssm.encryption import kms_data_key
    from jupyter_sm_debug.ssm.portforward import PortForwardError

    registry = standin_ssm.registry(standin)
    key = standin.client("kms").create_key(Description="port session key")["KeyMetadata"]
    kms = standin.client("kms")

    async def run(with_key: bool):
        answer, target = start_forward(standin, job, app.port)
        client = PortForwardClient(
            answer,
            target=target,
            generate_data_key=(lambda k, c: kms_data_key(kms, k, c)) if with_key else None,
        )
        try:
            await client.connect()
        except PortForwardError as error:
            return str(error), None
        try:
            got = await http_get(*await client.open_stream(), "/first")
            return got, registry.get(answer["SessionId"]).agent.channel.cipher
        finally:
            await client.close()

    registry.kms_key_id = key["Arn"]
    try:
        got, cipher = asyncio.run(run(True))
        refused, _ = asyncio.run(run(False))
    finally:
        registry.kms_key_id = None
    assert got == (b"HTTP/1.1 200 OK", b"hello from algo-1 /first")
    assert cipher is not None
    assert "no KMS access" in refused
