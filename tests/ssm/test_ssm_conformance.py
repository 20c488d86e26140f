"""Conformance: AWS's session-manager-plugin and the built-in client pass the same checks
against the stand-in's SSM gateway (wss://): prompt, resize, a 4 MiB cat intact, exit —
plain and KMS-encrypted, run directly and through the REST attach. The plugin's tests are
skipped, with the reason, where the plugin is not installed beside the clone."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest
from ssm_judge import SKIP_REASON, ConnectProxy, kms_proxy_env, real_plugin, tls_address
from support import attach
from terminal_io import open_terminal
from test_ssm_session import Terminal, client_env, kms_document, sessions

from jupyter_sm_debug.standin import ssm as standin_ssm

PLUGIN = real_plugin()
CLIENTS = [
    "builtin",
    pytest.param("plugin", marks=pytest.mark.skipif(PLUGIN is None, reason=SKIP_REASON)),
]
KMS_DOCUMENT = "SMDebug-Conformance-KMS"
PAYLOAD_BYTES = 4 * 1024 * 1024
PROMPT = rb"@algo-1:[^\r\n]*[#$] "


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"conform-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


@pytest.fixture(scope="module")
def payload(standin, job):
    # In the host's /opt/ml, where its shells start: a container does not see this
    # machine's /tmp.
    _, ml = standin.host_env(job, "algo-1")
    path = Path(ml) / "conformance-payload.txt"
    lines = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(PAYLOAD_BYTES // 65)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def kms_proxy(standin):
    proxy = ConnectProxy(tls_address(standin))
    yield proxy
    proxy.close()


@pytest.fixture(params=["plain", "kms"])
def mode(request, standin):
    if request.param == "kms":
        kms_document(standin, KMS_DOCUMENT)
    return request.param


def client_argv(kind: str, standin, target: str, document: str | None) -> tuple[list, dict]:
    """The argv and environment that run one client on a session it starts itself."""
    env = client_env(standin)
    params = {"Target": target, **({"DocumentName": document} if document else {})}
    if kind == "builtin":
        argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client", "--target", target]
        if document:
            argv += ["--document-name", document]
        return argv, env
    # The plugin's own convention, the response in a variable as the extension passes it.
    answer = standin.client("ssm").start_session(**params)
    answer.pop("ResponseMetadata", None)
    env["AWS_SSM_START_SESSION_RESPONSE"] = json.dumps(answer)
    argv = [PLUGIN, "AWS_SSM_START_SESSION_RESPONSE", standin.region, "StartSession", "",
            json.dumps(params), standin.url]  # fmt: skip
    return argv, env


def check_payload(received: bytes, payload) -> None:
    # The plugin leaves the local terminal's output processing on (cbreak, not raw), so
    # the remote PTY's CR LF arrives as CR CR LF: the same text on a screen.
    received = re.sub(rb"\r+\n", b"\n", received)
    assert len(received) == payload.stat().st_size
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_shell_through_the_gateway(kind, mode, standin, job, payload, kms_proxy):
    target = f"sagemaker-training-job:{job}_algo-1"
    argv, env = client_argv(kind, standin, target, KMS_DOCUMENT if mode == "kms" else None)
    if kind == "plugin" and mode == "kms":
        env.update(kms_proxy_env(standin, kms_proxy))
    term = Terminal(argv, env, rows=24, cols=80)
    try:
        session_id = term.expect(rb"Starting session with SessionId: (\S+)", 30).group(1).decode()
        if mode == "kms":  # the agent's HandshakeComplete CustomerMessage, as both print it
            term.expect(rb"This session is encrypted using AWS KMS\.", timeout=30)
        term.expect(PROMPT, timeout=30)
        session = sessions(standin)[session_id]
        assert session.stream_url.startswith("wss://")
        assert (session.agent.channel.cipher is not None) == (mode == "kms")
        if kind == "plugin" and mode == "kms":
            assert f"kms.{standin.region}.amazonaws.com:443" in kms_proxy.tunnels
        # Resize: the plugin polls the size every 500 ms, ours follows SIGWINCH.
        term.proc.setwinsize(37, 111)
        term.send("sleep 1; stty size\r")
        term.expect(rb"37 111", timeout=15)
        term.send(f'echo BEGIN-""PAYLOAD; cat {payload.name}; echo END-""PAYLOAD\r')
        term.expect(rb"BEGIN-PAYLOAD\r+\n", timeout=30)
        check_payload(term.read_until(b"END-PAYLOAD", timeout=120), payload)
        term.send("exit\r")
        term.expect(f"Exiting session with sessionId: {session_id}".encode(), timeout=20)
        assert term.wait(timeout=20) == 0
        assert session.status == "Terminated"
    finally:
        term.close()


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_dropped_data_channel_resumes_the_same_shell(kind, standin, job):
    """ResumeSession after the stand-in cuts the websocket: the same shell, every line once."""
    target = f"sagemaker-training-job:{job}_algo-1"
    argv, env = client_argv(kind, standin, target, None)
    term = Terminal(argv, env)
    try:
        session_id = term.expect(rb"Starting session with SessionId: (\S+)", 30).group(1).decode()
        term.expect(PROMPT, timeout=30)
        term.send("export KEPT=yes\r")
        term.expect(PROMPT)
        term.send('for i in $(seq 1 40); do echo "line-$i"; sleep 0.05; done; echo DONE-""X\r')
        term.expect(rb"line-3\r+\n")
        assert standin_ssm.drop_connections(standin, session_id) == [session_id]
        rest = term.read_until(b"DONE-X", timeout=60)
        assert [int(n) for n in re.findall(rb"line-(\d+)", rest)] == list(range(4, 41))
        term.send("echo kept=$KEPT\r")
        term.expect(rb"kept=yes")
        term.send("exit\r")
        assert term.wait(timeout=20) == 0
    finally:
        term.close()


# -- through the extension's REST attach ---------------------------------------------------


async def read_until(terminal, marker: str, timeout: float) -> str:
    """The terminal's output up to ``marker``, searched only in what is new (a regex over
    the whole 4 MiB after every message is quadratic)."""
    deadline = time.monotonic() + timeout
    parts, tail = [terminal.output], terminal.output[-len(marker) :]
    while True:
        if marker in tail:
            text = "".join(parts)
            at = text.index(marker)
            terminal.output = text[at + len(marker) :]
            return text[:at]
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{marker!r} not seen after {sum(map(len, parts))} characters"
        try:
            message = await asyncio.wait_for(terminal.ws.read_message(), remaining)
        except asyncio.TimeoutError:
            continue
        assert message is not None, f"terminal closed before {marker!r}"
        kind, *data = json.loads(message)
        if kind == "stdout":
            parts.append(data[0])
            tail = tail[-len(marker) :] + data[0]


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_shell_through_the_rest_attach(
    kind, mode, standin, job, payload, kms_proxy, api, jp_ws_fetch, jp_serverapp,
    terminal_manager, monkeypatch, tmp_path,
):  # fmt: skip
    config = jp_serverapp.web_app.settings["sm_debug"].config
    monkeypatch.setattr(config, "ssm_client", kind)
    monkeypatch.setattr(config, "ssm_document", KMS_DOCUMENT if mode == "kms" else None)
    if kind == "plugin":
        shutil.copy(PLUGIN, tmp_path / "session-manager-plugin")
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
        if mode == "kms":
            for name, value in kms_proxy_env(standin, kms_proxy).items():
                monkeypatch.setenv(name, value)
    status, body = await attach(api, job, "algo-1", transport="ssm")
    assert status == 201, body
    assert body["target"].endswith(f"({kind})")
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    match = await terminal.expect(r"Starting session with SessionId: (\S+)", timeout=30)
    session = sessions(standin)[match.group(1)]
    await terminal.expect(r"@algo-1:[^\r\n]*[#$] ", timeout=30)
    assert (session.agent.channel.cipher is not None) == (mode == "kms")
    await terminal.resize(41, 123)
    await terminal.send("sleep 1; stty size\r")
    await terminal.expect(r"41 123", timeout=15)
    await terminal.send(f'echo BEGIN-""PAYLOAD; cat {payload.name}; echo END-""PAYLOAD\r')
    await terminal.expect(r"BEGIN-PAYLOAD\r+\n", timeout=30)
    check_payload((await read_until(terminal, "END-PAYLOAD", timeout=120)).encode(), payload)
    await terminal.send("exit\r")
    assert await terminal.closed(timeout=20)
    assert session.status == "Terminated"


def test_the_skip_reason_names_where_the_plugin_is_looked_for():
    assert "../shared/tools/session-manager-plugin/" in SKIP_REASON
    assert standin_ssm.SHELL_DOCUMENT == "SSM-SessionManagerRunShell"
