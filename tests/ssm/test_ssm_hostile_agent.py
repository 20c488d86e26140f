"""Issue 22 finding 8: whatever an agent sends, a payload that does not parse (JSON nested
too deep for Python's parser, bad UTF-8, wrong types) ends the session with a clear message
in every read loop: the built-in port forward (no longer alive), the console client and
``run`` over SSM. Before, a RecursionError killed the forward's read task while it still
counted as alive, and sent the console client into resuming for ever."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid

import pytest
from forward_apps import HostApp

from jupyter_sm_debug.ssm import handshake as hs
from jupyter_sm_debug.ssm import protocol as p
from jupyter_sm_debug.ssm.channel import CLIENT, DataChannel
from jupyter_sm_debug.ssm.portforward import PortForwardClient
from jupyter_sm_debug.ssm.run import run_in_session
from jupyter_sm_debug.standin import ssm as standin_ssm

DEEP = b"[" * 200_000 + b"]" * 200_000
BAD_UTF8 = b'{"AgentVersion": "\xff\xfe", "RequestedClientActions": []}'
WRONG_TYPES = json.dumps({"AcknowledgedMessageSequenceNumber": [1]}).encode()

# (what, payload type of an in-sequence stream message, or "ack" for an acknowledge)
HOSTILE = {
    "deep-json": (p.PayloadType.HANDSHAKE_COMPLETE, DEEP),
    "bad-utf8": (p.PayloadType.HANDSHAKE_REQUEST, BAD_UTF8),
    "wrong-types": ("ack", WRONG_TYPES),
    "deep-ack": ("ack", DEEP),
}


# -- the parsers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parse",
    [
        lambda b: p.parse_acknowledgement(p.AgentMessage(p.MessageType.ACKNOWLEDGE, b)),
        hs.parse_handshake_request,
        hs.parse_handshake_response,
        hs.parse_handshake_complete,
        hs.parse_challenge,
        p.parse_size,
    ],
)
@pytest.mark.parametrize(
    "payload",
    [
        DEEP,
        b"\xff\xfe\x00",
        BAD_UTF8,
        b"[1, 2]",
        b'{"RequestedClientActions": 5, "ProcessedClientActions": [{"ActionStatus": "x"}],'
        b' "Errors": 3, "cols": "1", "Challenge": [], "AcknowledgedMessageSequenceNumber": {}}',
        b'{"ProcessedClientActions": 7}',
    ],
)
def test_every_payload_parser_fails_only_with_malformed_payload(parse, payload):
    with contextlib.suppress(p.MalformedPayload):  # anything else fails the test
        parse(payload)


def test_a_deep_payload_is_malformed_and_channel_closed_takes_only_strings():
    with pytest.raises(p.MalformedPayload, match="nested too deep"):
        hs.parse_handshake_complete(DEEP)
    nested = json.dumps({"Output": [[[1]]], "SessionId": "s"}).encode()
    closed = p.parse_channel_closed(p.AgentMessage(p.MessageType.CHANNEL_CLOSED, nested))
    assert closed.output == "" and closed.session_id == "s"


def agent_frame(kind, payload: bytes, seq: int) -> bytes:
    if kind == "ack":
        return p.encode(p.AgentMessage(p.MessageType.ACKNOWLEDGE, payload, flags=p.ACK_FLAGS))
    msg = p.AgentMessage(p.MessageType.OUTPUT_STREAM, payload, payload_type=kind)
    msg.sequence_number = seq
    return p.encode(msg)


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_the_channel_raises_malformed_payload_for_a_hostile_frame(what):
    sent: list = []
    channel = DataChannel(CLIENT, sent.append)
    with pytest.raises(p.MalformedPayload):
        channel.receive(agent_frame(*HOSTILE[what], seq=0))


# -- the read loops, against the stand-in's agents -------------------------------------------------


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    os.environ.setdefault("AWS_CA_BUNDLE", standin.client_env()["AWS_CA_BUNDLE"])
    return name


def connected_agent(standin, session_id: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session = standin_ssm.registry(standin).get(session_id)
        agent = session.agent if session else None
        if agent is not None and agent.handler is not None and agent.channel.handshake_done:
            return agent
        time.sleep(0.05)
    raise AssertionError("the agent never got its client")


def send_hostile(agent, what: str) -> None:
    """The stand-in's agent sends one hostile message, in its own loop, in sequence."""
    kind, payload = HOSTILE[what]
    done = threading.Event()

    def send() -> None:
        try:
            if kind == "ack":
                agent.handler.write_frames([agent_frame(kind, payload, 0)])
            else:
                agent.channel.send_stream(kind, payload)
        finally:
            done.set()

    agent.loop.add_callback(send)
    assert done.wait(10)


def status(standin, session_id: str) -> str:
    return standin_ssm.registry(standin).get(session_id).status


@pytest.fixture(scope="module")
def app(standin, job):
    running = HostApp(standin, job, "algo-1", big_bytes=1 << 16)
    yield running
    running.stop()


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_a_hostile_frame_ends_the_port_forward_which_is_then_not_alive(standin, job, app, what):
    target = f"sagemaker-training-job:{job}_algo-1"
    answer = standin.client("ssm").start_session(
        Target=target,
        DocumentName=p.PORT_DOCUMENT,
        Parameters={"portNumber": [str(app.port)]},
    )

    async def run() -> None:
        client = PortForwardClient(answer, target=target)
        await client.connect()
        assert client.alive
        loop = asyncio.get_running_loop()
        agent = await loop.run_in_executor(None, connected_agent, standin, answer["SessionId"])
        await loop.run_in_executor(None, send_hostile, agent, what)
        await asyncio.wait_for(client.closed.wait(), 30)
        assert not client.alive
        assert "could not be read" in client.close_reason, client.close_reason
        await client.close()

    asyncio.run(run())
    # The client told the agent to end the session, too.
    deadline = time.monotonic() + 10
    while status(standin, answer["SessionId"]) != "Terminated" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status(standin, answer["SessionId"]) == "Terminated"


@pytest.mark.parametrize("what", ["deep-json", "wrong-types"])
def test_a_hostile_frame_ends_a_run_with_a_message_not_a_resume_loop(standin, job, what):
    ssm = standin.client("ssm")
    target = f"sagemaker-training-job:{job}_algo-1"
    answer = ssm.start_session(Target=target)
    info = {k: answer[k] for k in ("SessionId", "TokenValue", "StreamUrl")}

    def resume(session_id: str) -> dict:
        again = ssm.resume_session(SessionId=session_id)
        return {"SessionId": session_id, "TokenValue": again["TokenValue"],
                "StreamUrl": again["StreamUrl"]}  # fmt: skip

    def inject() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            session = standin_ssm.registry(standin).get(answer["SessionId"])
            agent = session.agent if session else None
            if agent is not None and agent.handler is not None and agent.master_fd is not None:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # the shell is up and typing
        send_hostile(agent, what)

    injector = threading.Thread(target=inject, daemon=True)
    injector.start()
    started = time.monotonic()
    result = run_in_session(info, ["sleep", "20"], timeout=40, target=target, resume=resume)
    injector.join(5)
    ssm.terminate_session(SessionId=answer["SessionId"])
    assert not result.timed_out, result
    assert result.error and result.error["code"] == "session_ended", result
    assert "could not be read" in result.error["message"], result.error
    assert time.monotonic() - started < 20
