"""End to end: the built-in SSM client in a real PTY, through the stand-in's SSM API and
data-channel websocket, to a real shell in another PTY."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import select
import sys
import time
from pathlib import Path

import pytest
from ptyprocess import PtyProcess
from support import REPO

from jupyter_sm_debug.standin import ssm as standin_ssm
from jupyter_sm_debug.standin.errors import StandInError

PROMPT = rb"@algo-1:[^\r\n]*[#$] "


@pytest.fixture(scope="module")
def job(standin) -> str:
    """A running demo job with remote debug on (the stand-in is conftest's)."""
    name = standin.seeded_jobs["llama-finetune"]
    assert standin.job(name)["RemoteDebugConfig"]["EnableRemoteDebug"]
    return name


@pytest.fixture
def target(job) -> str:
    return f"sagemaker-training-job:{job}_algo-1"


@pytest.fixture
def api_calls(monkeypatch):
    """The TerminateSession calls the stand-in answered during the test for sessions started
    during the test (a session an earlier test's server left may end any time)."""
    calls = []
    started = set()
    real_start, real_terminate = standin_ssm.start_session, standin_ssm.terminate_session

    def start_spy(params, standin):
        answer = real_start(params, standin)
        started.add(answer["SessionId"])
        return answer

    def spy(params, standin):
        if params.get("SessionId") in started:
            calls.append(("TerminateSession", params["SessionId"]))
        return real_terminate(params, standin)

    # Where the API's handle() finds them.
    monkeypatch.setattr(standin_ssm.backend, "start_session", start_spy)
    monkeypatch.setattr(standin_ssm.backend, "terminate_session", spy)
    return calls


def client_env(standin) -> dict:
    env = dict(os.environ)
    env.update(standin.client_env(), PYTHONPATH=str(REPO), TERM="xterm")
    return env


class Terminal:
    """The client program on the far side of a PTY, as a terminal emulator runs it."""

    def __init__(self, argv, env, rows=24, cols=80, pass_fds=()):
        self.proc = PtyProcess.spawn(
            argv, env=env, cwd=str(REPO), dimensions=(rows, cols), pass_fds=pass_fds
        )
        self.buffer = b""

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([self.proc.fd], [], [], remaining)
        if not ready:
            return False
        try:
            chunk = os.read(self.proc.fd, 1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            raise EOFError(self.buffer[-2000:])
        self.buffer += chunk
        return True

    def expect(self, pattern: bytes, timeout: float = 15.0) -> re.Match:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.S)
        while True:
            match = regex.search(self.buffer)
            if match:
                self.buffer = self.buffer[match.end() :]
                return match
            try:
                if not self._fill(deadline):
                    raise AssertionError(f"{pattern!r} not seen in {self.buffer[-2000:]!r}")
            except EOFError:
                raise AssertionError(
                    f"client ended before {pattern!r}: {self.buffer[-2000:]!r}"
                ) from None

    def read_until(self, marker: bytes, timeout: float = 60.0) -> bytes:
        """Everything before ``marker`` (searched incrementally: large outputs)."""
        deadline = time.monotonic() + timeout
        start = 0
        while True:
            found = self.buffer.find(marker, start)
            if found >= 0:
                data, self.buffer = self.buffer[:found], self.buffer[found + len(marker) :]
                return data
            start = max(0, len(self.buffer) - len(marker))
            if not self._fill(deadline):
                raise AssertionError(f"{marker!r} not seen after {len(self.buffer)} bytes")

    def send(self, text: str) -> None:
        os.write(self.proc.fd, text.encode())

    def wait(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.isalive():
            with contextlib.suppress(EOFError):  # output ended; the process ends soon
                self._fill(min(deadline, time.monotonic() + 0.2))
            if time.monotonic() > deadline:
                raise AssertionError(f"client still running: {self.buffer[-2000:]!r}")
        self.proc.wait()
        return self.proc.exitstatus

    def close(self) -> None:
        if self.proc.isalive():
            self.proc.terminate(force=True)


@pytest.fixture
def run_client(standin):
    started = []

    def run(*args: str, rows=24, cols=80, env=None) -> Terminal:
        argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client", *args]
        term = Terminal(argv, env or client_env(standin), rows=rows, cols=cols)
        started.append(term)
        return term

    yield run
    for term in started:
        term.close()


def sessions(standin):
    return standin_ssm.registry(standin).sessions


# ---------------------------------------------------------------------------- tests


def test_echo_round_trip_and_exit_closes_the_channel(standin, run_client, job, target, api_calls):
    term = run_client("--target", target)
    session_id = term.expect(rb"Starting session with SessionId: (\S+)").group(1).decode()
    term.expect(PROMPT)
    term.send('echo "<$SM_CURRENT_HOST:$TRAINING_JOB_NAME>"\r')
    term.expect(f"<algo-1:{job}>".encode())
    term.send("exit\r")
    term.expect(f"Exiting session with sessionId: {session_id}.".encode())
    assert term.wait() == 0
    # The client called TerminateSession on its way out; the shell is gone.
    assert api_calls == [("TerminateSession", session_id)]
    assert sessions(standin)[session_id].status == "Terminated"


def test_a_4_mib_cat_arrives_intact(standin, run_client, job, target):
    blob = os.urandom(3 * 1024 * 1024)
    # base64 lines: printable, so the remote PTY only turns "\n" into "\r\n"
    text = b"\n".join(base64.b64encode(blob[i : i + 57]) for i in range(0, len(blob), 57))
    text = (text + b"\n")[: 4 * 1024 * 1024 - 1] + b"\n"
    assert len(text) == 4 * 1024 * 1024
    # In the host's /opt/ml, where its shell starts: a container does not see this
    # machine's /tmp.
    _, ml = standin.host_env(job, "algo-1")
    path = Path(ml) / f"big-{os.getpid()}.txt"
    path.write_bytes(text)

    term = run_client("--target", target)
    term.expect(PROMPT)
    started = time.monotonic()
    # Markers outside the base64 alphabet, split in the command line so that only the
    # output holds them whole.
    term.send(f"echo '<<BE''GIN>>'; cat {path.name}; echo '<<EN''D>>'\r")
    term.read_until(b"<<BEGIN>>\r\n")
    body = term.read_until(b"<<END>>\r\n")
    elapsed = time.monotonic() - started
    received = body.replace(b"\r\n", b"\n")
    assert len(received) == len(text)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(text).hexdigest()
    print(f"4 MiB in {elapsed:.2f} s")
    term.send("exit\r")
    assert term.wait() == 0
    path.unlink()


def test_lost_messages_and_acknowledgements_are_recovered(standin, run_client, target):
    reg = standin_ssm.registry(standin)
    reg.lose_output, reg.lose_acks = {3, 4, 9}, {6, 7}
    try:
        term = run_client("--target", target)
        term.expect(PROMPT)
        term.send("echo '<<BE''GIN>>'; seq 1 20000; echo '<<EN''D>>'\r")
        term.read_until(b"<<BEGIN>>\r\n")
        body = term.read_until(b"<<END>>\r\n", timeout=30)
        term.send("exit\r")
        assert term.wait() == 0
    finally:
        lost = sorted(reg.lost)
        reg.lose_output, reg.lose_acks, reg.lost = set(), set(), []
    # Each loss was real, and the output still arrived once, whole and in order.
    assert lost == [("ack", 6), ("ack", 7), ("output", 3), ("output", 4), ("output", 9)]
    assert body == "".join(f"{n}\r\n" for n in range(1, 20001)).encode()


def test_terminal_size_reaches_the_remote_pty(run_client, target):
    term = run_client("--target", target, rows=33, cols=101)
    term.expect(PROMPT)
    term.send("stty size\r")
    term.expect(rb"[\r\n]33 101\r\n")
    term.proc.setwinsize(40, 132)  # SIGWINCH to the client, a Size message to the host
    time.sleep(0.2)
    term.send("stty size\r")
    term.expect(rb"[\r\n]40 132\r\n")
    term.send("exit\r")
    assert term.wait() == 0


def test_inherited_session_from_an_environment_variable(standin, run_client, target):
    started = standin_ssm.handle("StartSession", {"Target": target}, standin)
    env = client_env(standin)
    env["SM_DEBUG_SSM_SESSION"] = json.dumps(started)
    term = run_client("--session-env", "SM_DEBUG_SSM_SESSION", env=env)
    term.expect(PROMPT)
    term.send('echo "[$SM_CURRENT_HOST]"\r')
    term.expect(rb"\[algo-1\]")
    term.send("exit\r")
    term.expect(f"Exiting session with sessionId: {started['SessionId']}".encode())
    assert term.wait() == 0


def test_an_inherited_session_holds_no_boto3_while_the_shell_is_up(
    standin, run_client, target, api_calls
):
    """The extension's way (a session it started): boto3 and a client of it are 28 MiB per
    session, loaded only for the TerminateSession at exit, not while the shell runs (it
    was loaded once the shell was up: 32 sessions held 900 MiB more)."""
    started = standin_ssm.handle("StartSession", {"Target": target}, standin)
    env = client_env(standin)
    env["SM_DEBUG_SSM_SESSION"] = json.dumps(started)
    term = run_client("--session-env", "SM_DEBUG_SSM_SESSION", env=env)
    term.expect(PROMPT)
    time.sleep(3)  # what a warm-up in the background would have loaded by now
    with open(f"/proc/{term.proc.pid}/status") as handle:
        rss_kib = int(handle.read().split("VmRSS:")[1].split()[0])
    assert rss_kib < 36 * 1024, f"{rss_kib / 1024:.1f} MiB"
    term.send("exit\r")
    term.expect(f"Exiting session with sessionId: {started['SessionId']}".encode())
    assert term.wait(timeout=30) == 0
    assert api_calls == [("TerminateSession", started["SessionId"])]


@pytest.mark.parametrize("how", ["fd", "plugin-arguments"])
def test_inherited_session_from_an_fd_or_the_plugins_arguments(standin, target, how):
    """The two other ways to hand over a started session: an inherited pipe, and
    session-manager-plugin's positional arguments (as the AWS CLI passes them)."""
    started = standin_ssm.handle("StartSession", {"Target": target}, standin)
    body = json.dumps(started)
    module = [sys.executable, "-m", "jupyter_sm_debug.ssm.client"]
    pass_fds = ()
    if how == "fd":
        read_end, write_end = os.pipe()
        os.write(write_end, body.encode())
        os.close(write_end)
        os.set_inheritable(read_end, True)
        argv, pass_fds = [*module, "--session-fd", str(read_end)], (read_end,)
    else:
        request = json.dumps({"Target": target})
        argv = [*module, body, "us-east-1", "StartSession", "", request, standin.url]
    term = Terminal(argv, client_env(standin), pass_fds=pass_fds)
    try:
        for fd in pass_fds:
            os.close(fd)
        term.expect(PROMPT)
        term.send("exit\r")
        term.expect(f"Exiting session with sessionId: {started['SessionId']}".encode())
        assert term.wait() == 0
    finally:
        term.close()


def test_an_unreachable_data_channel_ends_the_session(standin, run_client, target, api_calls):
    started = standin_ssm.handle("StartSession", {"Target": target}, standin)
    broken = {**started, "StreamUrl": "ws://127.0.0.1:9/v1/data-channel/x"}
    env = client_env(standin)
    env["SESSION"] = json.dumps(broken)
    term = run_client("--session-env", "SESSION", env=env)
    term.expect(rb"Cannot open the session's data channel")
    assert term.wait() == 1
    assert api_calls == [("TerminateSession", started["SessionId"])]


def test_terminate_session_from_the_api_ends_the_client(standin, run_client, target):
    term = run_client("--target", target)
    session_id = term.expect(rb"SessionId: (\S+)").group(1).decode()
    term.expect(PROMPT)
    term.send("sleep 1000 &\r")  # a background job must not keep the session open
    term.expect(PROMPT)
    assert standin_ssm.handle("TerminateSession", {"SessionId": session_id}, standin) == {
        "SessionId": session_id
    }
    term.expect(rb"Exiting session with sessionId")
    assert term.wait() == 0


def test_target_not_connected(standin, run_client, job):
    term = run_client("--target", f"sagemaker-training-job:{job}_algo-9")
    term.expect(rb"TargetNotConnected.*algo-9 is not connected")
    assert term.wait() == 1
    no_debug = standin.seeded_jobs["resnet50-ddp-4node"]
    assert standin.job(no_debug)["TrainingJobStatus"] == "InProgress"
    for bad in (f"sagemaker-training-job:{no_debug}_algo-1", "i-0123456789abcdef0"):
        with pytest.raises(StandInError) as err:
            standin_ssm.handle("StartSession", {"Target": bad}, standin)
        assert err.value.code == "TargetNotConnected"


def kms_document(standin, name: str, **inputs) -> str:
    """A KMS key and a Standard_Stream session document using it, in the stand-in; returns
    the key's ARN."""
    key = standin.client("kms").create_key(Description="session key")["KeyMetadata"]
    content = {
        "schemaVersion": "1.0",
        "description": "Session Manager preferences",
        "sessionType": "Standard_Stream",
        "inputs": {"kmsKeyId": key["Arn"], "s3BucketName": "", **inputs},
    }
    ssm = standin.client("ssm")
    try:
        ssm.create_document(
            Name=name, Content=json.dumps(content), DocumentType="Session", DocumentFormat="JSON"
        )
    except ssm.exceptions.DocumentAlreadyExists:
        ssm.update_document(Name=name, Content=json.dumps(content), DocumentVersion="$LATEST")
        version = ssm.describe_document(Name=name)["Document"]["LatestVersion"]
        ssm.update_document_default_version(Name=name, DocumentVersion=version)
    return key["Arn"]


def test_a_kms_encrypted_session_with_the_builtin_client(standin, run_client, job, target):
    kms_document(standin, "SMDebug-KMS-Shell", shellProfile={"linux": "export PROFILED=yes"})
    term = run_client("--target", target, "--document-name", "SMDebug-KMS-Shell")
    session_id = term.expect(rb"Starting session with SessionId: (\S+)").group(1).decode()
    term.expect(PROMPT)
    agent = sessions(standin)[session_id].agent
    assert agent.channel.cipher is not None  # the agent encrypts with the client's data key
    term.send("echo profiled=$PROFILED sum=$((2+3))\r")
    term.expect(rb"profiled=yes sum=5")
    _, ml = standin.host_env(job, "algo-1")  # the host's /opt/ml: it has its own /tmp
    payload = Path(ml) / f"k-{os.getpid()}.bin"
    payload.write_bytes(os.urandom(300_000))
    term.send(f'echo BEGIN-""B64; base64 -w 76 {payload.name}; echo END-""B64\r')
    term.expect(rb"BEGIN-B64\r\n")
    data = term.read_until(b"END-B64")
    assert base64.b64decode(data.replace(b"\r\n", b"")) == payload.read_bytes()
    term.send("exit\r")
    assert term.wait() == 0


def test_a_kms_key_the_client_cannot_use_fails_with_the_reason(
    standin, run_client, target, api_calls
):
    reg = standin_ssm.registry(standin)
    reg.kms_key_id = "alias/no-such-key"
    try:
        term = run_client("--target", target)
        term.expect(rb"Session handshake failed: Failed to process action KMSEncryption: ")
        term.expect(rb"GenerateDataKey")
        assert term.wait() == 1
    finally:
        reg.kms_key_id = None
    assert [action for action, _ in api_calls] == ["TerminateSession"]


def test_a_wrong_or_used_token_is_refused(standin, target):
    import websocket

    from jupyter_sm_debug.ssm import protocol as p

    started = standin_ssm.handle("StartSession", {"Target": target}, standin)
    url = started["StreamUrl"]
    ws = websocket.create_connection(url, timeout=5)
    ws.send(p.open_data_channel_message("not-the-token", "c-1", "1.2.0.0"))
    opcode, frame = ws.recv_data_frame()
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert frame.data[2:] == b"invalid token"
    ws.shutdown()
    # The session survives a bad attempt: the right token opens it. Like the agent for a
    # plain shell, no handshake: the shell's first output, flagged SYN.
    ws = websocket.create_connection(url, timeout=5)
    ws.send(p.open_data_channel_message(started["TokenValue"], "c-2", "1.2.0.0"))
    opcode, data = ws.recv_data()
    first = p.decode(data)
    assert first.message_type == p.MessageType.OUTPUT_STREAM
    assert first.payload_type == p.PayloadType.OUTPUT and first.sequence_number == 0
    assert first.flags == p.FLAG_SYN
    # A token opens one connection only; unknown sessions have no channel at all.
    for again in (url, standin.url.replace("http", "ws") + "/v1/data-channel/x"):
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(again, timeout=5)
    ws.close()


def test_start_and_resume_session_answer_like_ssm(standin, target):
    import boto3

    ssm = boto3.client("ssm")
    started = ssm.start_session(Target=target)
    port = standin.tls_url.rsplit(":", 1)[1]
    assert re.fullmatch(
        rf"wss://127\.0\.0\.1:{port}/v1/data-channel/{started['SessionId']}"
        r"\?role=publish_subscribe&cell-number=\S+",
        started["StreamUrl"],
    )
    resumed = ssm.resume_session(SessionId=started["SessionId"])
    assert resumed["TokenValue"] != started["TokenValue"]
    assert resumed["StreamUrl"] == started["StreamUrl"]
    with pytest.raises(ssm.exceptions.ClientError) as err:
        ssm.start_session(Target=target, DocumentName="AWS-StartSSHSession")
    assert err.value.response["Error"]["Code"] == "InvalidDocument"
    # Gone or unknown sessions terminate fine, as in SSM; they cannot be resumed.
    assert ssm.terminate_session(SessionId=started["SessionId"])["SessionId"]
    assert ssm.terminate_session(SessionId="nope-123")["SessionId"] == "nope-123"
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.resume_session(SessionId=started["SessionId"])


def test_the_client_waits_on_fds_above_1024():
    """The client's loop also runs inside the Jupyter server (commands over SSM), whose fds
    can be numbered above 1024, where select() raised "filedescriptor out of range"."""
    import resource

    from jupyter_sm_debug.ssm.client import wait_fds

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 2000:
        pytest.skip("this process may not open fds above 2000")
    read, write = os.pipe()
    high_read, high_write = os.dup2(read, 1500), os.dup2(write, 1501)
    os.close(read), os.close(write)
    try:
        assert wait_fds([high_read], 0.05) == []
        assert wait_fds([high_write], 0.05, select.POLLOUT) == [high_write]
        os.write(high_write, b"x")
        assert wait_fds([high_read], 1.0) == [high_read]
    finally:
        os.close(high_read), os.close(high_write)
