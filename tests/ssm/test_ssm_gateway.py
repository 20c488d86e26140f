"""The stand-in's SSM gateway behaves like AWS's (wss://, the agent's handshake rule, its
pace, an optional ClientVersion), and the built-in client resumes a dropped connection."""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
import time

import pytest
from test_ssm_session import PROMPT, Terminal, client_env, sessions

from jupyter_sm_debug.ssm import handshake as hs
from jupyter_sm_debug.ssm import protocol as p
from jupyter_sm_debug.standin import ssm as standin_ssm


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = "gateway-job"
    if standin.job(name) is None:
        standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


@pytest.fixture
def target(job) -> str:
    return f"sagemaker-training-job:{job}_algo-1"


@pytest.fixture
def run_client(standin):
    started = []

    def run(*args: str) -> Terminal:
        argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client", *args]
        term = Terminal(argv, client_env(standin))
        started.append(term)
        return term

    yield run
    for term in started:
        term.close()


def test_stream_urls_are_wss_with_a_ca_that_client_env_names(standin, target):
    started = standin_ssm.handle("StartSession", {"Target": target}, standin)
    assert started["StreamUrl"].startswith("wss://127.0.0.1:")
    env = standin.client_env()
    assert env["AWS_CA_BUNDLE"] == env["SSL_CERT_FILE"]
    # The certificate verifies against that bundle for the loopback address.
    context = ssl.create_default_context(cafile=env["AWS_CA_BUNDLE"])
    host, port = started["StreamUrl"][len("wss://") :].split("/")[0].split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.version()
    # ...and not against the system's store alone.
    system = ssl.create_default_context(cafile=certifi_bundle())
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        system.wrap_socket(raw, server_hostname=host)
    standin_ssm.handle("TerminateSession", {"SessionId": started["SessionId"]}, standin)


def certifi_bundle() -> str:
    import certifi

    return certifi.where()


def open_channel(standin, target, client_version="1.2.677.0"):
    import websocket

    started = standin_ssm.handle("StartSession", {"Target": target}, standin)
    ws = websocket.create_connection(
        started["StreamUrl"], timeout=10, sslopt={"ca_certs": standin.client_env()["AWS_CA_BUNDLE"]}
    )
    message = json.loads(p.open_data_channel_message(started["TokenValue"], "c-1", "x"))
    if client_version is None:
        del message["ClientVersion"]  # as plugins before 1.2.677.0 send it
    else:
        message["ClientVersion"] = client_version
    ws.send(json.dumps(message))
    return started, ws


@pytest.mark.parametrize("client_version", [None, "1.2.677.0"])
def test_client_version_is_optional_and_a_plain_shell_has_no_handshake(
    standin, target, client_version
):
    started, ws = open_channel(standin, target, client_version)
    try:
        first = p.decode(ws.recv_data()[1])
        assert first.message_type == p.MessageType.OUTPUT_STREAM
        assert first.payload_type == p.PayloadType.OUTPUT and first.flags == p.FLAG_SYN
    finally:
        ws.close()
        standin_ssm.handle("TerminateSession", {"SessionId": started["SessionId"]}, standin)


def test_kms_or_the_knob_brings_the_handshake_back(standin, target):
    reg = standin_ssm.registry(standin)
    reg.always_handshake = True
    try:
        started, ws = open_channel(standin, target)
        first = p.decode(ws.recv_data()[1])
        assert first.payload_type == p.PayloadType.HANDSHAKE_REQUEST
        request = hs.parse_handshake_request(first.payload)
        assert [a.action_type for a in request.actions] == [p.ActionType.SESSION_TYPE]
        ws.close()
    finally:
        reg.always_handshake = False
        standin_ssm.handle("TerminateSession", {"SessionId": started["SessionId"]}, standin)


def test_output_goes_at_the_agents_pace(standin, run_client, target):
    """1 KiB per millisecond at most, like the agent's writePump: 2 MiB take 2 s or more."""
    term = run_client("--target", target)
    term.expect(PROMPT)
    term.send('echo BEGIN-""X; head -c 2097152 /dev/zero | tr "\\0" a; echo; echo END-""X\r')
    term.expect(rb"BEGIN-X\r\n")
    started = time.monotonic()
    data = term.read_until(b"END-X", timeout=60)
    took = time.monotonic() - started
    assert data.count(b"a") == 2097152
    assert took > 1.8, f"2 MiB in {took:.2f} s is faster than the agent can send"
    term.send("exit\r")
    assert term.wait() == 0


# -- reconnect ------------------------------------------------------------------------------


def drop(standin, session_id=None) -> list:
    # Control routes are signed with the stand-in's own credentials.
    return standin.control("ssm-drop", {"session_id": session_id} if session_id else {})["dropped"]


def test_a_dropped_connection_resumes_the_same_shell(standin, run_client, target):
    term = run_client("--target", target)
    session_id = term.expect(rb"Starting session with SessionId: (\S+)").group(1).decode()
    term.expect(PROMPT)
    term.send("export MARK=kept-$((40+2))\r")
    term.expect(PROMPT)
    # Output in flight while the connection drops: 64 numbered lines, then a marker.
    term.send('for i in $(seq 1 64); do echo "line-$i"; sleep 0.02; done; echo DONE-""LINES\r')
    term.expect(rb"line-3\r\n")
    assert drop(standin, session_id) == [session_id]
    term.expect(rb"\[sm-debug\] The session's connection was lost; reconnecting\.\.\.")
    term.expect(rb"\[sm-debug\] Reconnected\.")
    rest = term.read_until(b"DONE-LINES", timeout=30)
    numbers = [int(n) for n in re.findall(rb"line-(\d+)", rest)]
    # Nothing lost, nothing doubled: every line after the 3rd exactly once, in order.
    assert numbers == list(range(4, 65)), numbers
    term.send("echo mark=$MARK\r")
    term.expect(rb"mark=kept-42")  # the same shell, not a new one
    assert sessions(standin)[session_id].status == "Connected"
    term.send("exit\r")
    assert term.wait() == 0


def test_a_session_gone_while_disconnected_ends_the_client_with_the_reason(
    standin, run_client, target
):
    term = run_client("--target", target)
    session_id = term.expect(rb"Starting session with SessionId: (\S+)").group(1).decode()
    term.expect(PROMPT)
    reg = standin_ssm.registry(standin)
    with reg.lock:
        session = reg.sessions[session_id]
    drop(standin, session_id)
    standin_ssm.handle("TerminateSession", {"SessionId": session_id}, standin)
    assert session.status == "Terminated"
    term.expect(rb"reconnecting\.\.\.")
    term.expect(rb"attempts to resume it failed", timeout=30)
    assert term.wait() == 1


# -- the data channel's latency -------------------------------------------------------------


@pytest.fixture
def channel_latency(standin):
    def set_to(seconds: float) -> dict:
        # Through the control route, as benchmarks and the demo's users set faults.
        return standin.control("faults", {"channel_latency": seconds})

    yield set_to
    standin.set_faults(channel_latency=0.0)


def test_channel_latency_delays_every_message_each_way_and_keeps_the_order(
    standin, run_client, target, channel_latency
):
    """A round trip of 0.3 s: an echo takes at least that long (0.15 s out, 0.15 s back),
    and a paste arrives whole and in order."""
    assert channel_latency(0.3)["channel_latency"] == 0.3
    term = run_client("--target", target)
    term.expect(PROMPT)
    term.send("stty -echo; echo READY\r")
    term.expect(rb"READY\r\n")
    term.expect(PROMPT)
    echoes = []
    for word in ("one", "two", "three"):
        started = time.monotonic()
        term.send(f"echo {word.upper()}-X\r")
        term.expect(f"{word.upper()}-X\r\n".encode())
        echoes.append(time.monotonic() - started)
        term.expect(PROMPT)
    assert min(echoes) >= 0.3, f"round trips {echoes} are shorter than the channel's latency"
    text = "".join(f"{n:05d}\n" for n in range(3000))  # 18 KB in many input messages
    term.send(f"head -c {len(text)} | md5sum\r")
    term.send(text)
    import hashlib

    term.expect(hashlib.md5(text.encode()).hexdigest().encode(), timeout=30)  # noqa: S324
    term.send("exit\r")
    assert term.wait() == 0


def test_channel_latency_is_a_fault_like_the_api_latency(standin):
    with pytest.raises(ValueError, match="channel_latency"):
        standin.set_faults(channel_latency=-1)
    assert standin.set_faults(channel_latency=0.05)["channel_latency"] == 0.05
    assert standin.clear_faults()["channel_latency"] == 0.0
