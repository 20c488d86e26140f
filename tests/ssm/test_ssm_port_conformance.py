"""Conformance of SSM port forwarding: AWS's session-manager-plugin (its port mode with
localPortNumber, smux as with agents newer than 3.0.196.0) and the built-in client forward through
the stand-in's gateway to an HTTP server in a stand-in host: a page, 20 concurrent requests
over one session, a large download intact, and the session ends with the client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from forward_apps import BIG_SAMPLE, HostApp, free_port
from ssm_judge import SKIP_REASON, real_plugin
from test_ssm_session import client_env

from jupyter_sm_debug.ssm.portforward import PortForwardClient, PortForwardError
from jupyter_sm_debug.standin import ssm as standin_ssm

PLUGIN = real_plugin()
BIG = 8 << 20


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"portconf-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


@pytest.fixture(scope="module")
def app(standin, job):
    running = HostApp(standin, job, "algo-1", big_bytes=BIG)
    yield running
    running.stop()


def get(url: str, timeout: float = 60) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check_forward(local_port: int) -> None:
    base = f"http://127.0.0.1:{local_port}"
    assert get(base + "/first") == (200, b"hello from algo-1 /first")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        pages = list(pool.map(lambda i: get(f"{base}/n{i}"), range(20)))
    assert pages == [(200, f"hello from algo-1 /n{i}".encode()) for i in range(20)]
    status, body = get(base + "/big")
    assert status == 200 and len(body) == BIG
    assert hashlib.sha256(body).digest() == hashlib.sha256(BIG_SAMPLE * (BIG // 256)).digest()


def session_status(standin, session_id: str) -> str:
    return standin_ssm.registry(standin).get(session_id).status


def wait_status(standin, session_id: str, wanted: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and session_status(standin, session_id) != wanted:
        time.sleep(0.1)
    return session_status(standin, session_id)


@pytest.mark.skipif(PLUGIN is None, reason=SKIP_REASON)
def test_aws_plugin_forwards_a_port_through_the_standin(standin, job, app):
    local_port = free_port()
    params = {
        "Target": f"sagemaker-training-job:{job}_algo-1",
        "DocumentName": "AWS-StartPortForwardingSession",
        "Parameters": {"portNumber": [str(app.port)], "localPortNumber": [str(local_port)]},
    }
    answer = standin.client("ssm").start_session(**params)
    answer.pop("ResponseMetadata", None)
    env = client_env(standin)
    env["AWS_SSM_START_SESSION_RESPONSE"] = json.dumps(answer)
    argv = [PLUGIN, "AWS_SSM_START_SESSION_RESPONSE", standin.region, "StartSession", "",
            json.dumps(params), standin.url]  # fmt: skip
    plugin = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and plugin.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", local_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        assert plugin.poll() is None, plugin.stdout.read().decode(errors="replace")
        check_forward(local_port)
        # a port nothing listens on ends that connection, not the session
        assert session_status(standin, answer["SessionId"]) == "Connected"
    finally:
        plugin.send_signal(signal.SIGINT)  # ^C: the plugin sends the TerminateSession flag
        output = plugin.communicate(timeout=15)[0].decode(errors="replace")
    assert "Waiting for connections" in output, output
    assert wait_status(standin, answer["SessionId"], "Terminated") == "Terminated", output


def test_builtin_client_forwards_a_port_through_the_standin(standin, job, app):
    answer = standin.client("ssm").start_session(
        Target=f"sagemaker-training-job:{job}_algo-1",
        DocumentName="AWS-StartPortForwardingSession",
        Parameters={"portNumber": [str(app.port)]},
    )

    async def run() -> None:
        client = PortForwardClient(answer, target=f"sagemaker-training-job:{job}_algo-1")
        local_port = await client.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, check_forward, local_port)
        await client.close()

    os.environ.setdefault("AWS_CA_BUNDLE", standin.client_env()["AWS_CA_BUNDLE"])
    asyncio.run(run())
    assert wait_status(standin, answer["SessionId"], "Terminated") == "Terminated"


async def http_get(reader, writer, path: str) -> tuple[bytes, bytes]:
    """One HTTP/1.1 request over a (reader, writer) pair; (status line, body)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    body = await reader.read()  # Connection: close: the body ends with the stream
    writer.close()
    return head.split(b"\r\n", 1)[0], body


def test_open_stream_reaches_the_port_with_no_listener(standin, job, app):
    """PortForwardClient.open_stream: each request on a new smux stream as asyncio streams,
    the proxy's way in (no local TCP listener, so no other local user can use it)."""
    target = f"sagemaker-training-job:{job}_algo-1"
    answer = standin.client("ssm").start_session(
        Target=target,
        DocumentName="AWS-StartPortForwardingSession",
        Parameters={"portNumber": [str(app.port)]},
    )

    async def run() -> None:
        client = PortForwardClient(answer, target=target)
        await client.connect()
        assert client.server is None and client.local_port == 0
        first = await http_get(*await client.open_stream(), "/first")
        assert first == (b"HTTP/1.1 200 OK", b"hello from algo-1 /first")
        pages = await asyncio.gather(
            *[http_get(*await client.open_stream(), f"/s{i}") for i in range(10)]
        )
        assert pages == [
            (b"HTTP/1.1 200 OK", f"hello from algo-1 /s{i}".encode()) for i in range(10)
        ]
        status, body = await http_get(*await client.open_stream(), "/big")
        assert status == b"HTTP/1.1 200 OK"
        assert hashlib.sha256(body).digest() == hashlib.sha256(BIG_SAMPLE * (BIG // 256)).digest()
        await client.close()
        with pytest.raises(PortForwardError):
            await client.open_stream()

    os.environ.setdefault("AWS_CA_BUNDLE", standin.client_env()["AWS_CA_BUNDLE"])
    asyncio.run(run())
    assert wait_status(standin, answer["SessionId"], "Terminated") == "Terminated"


def test_a_port_session_needs_a_port_number(standin, job):
    client = standin.client("ssm")
    for parameters in (
        {},
        {"portNumber": ["0"]},
        {"portNumber": ["70000"]},
        {"portNumber": ["1", "2"]},
    ):
        with pytest.raises(client.exceptions.ClientError) as refused:
            client.start_session(
                Target=f"sagemaker-training-job:{job}_algo-1",
                DocumentName="AWS-StartPortForwardingSession",
                Parameters=parameters,
            )
        assert "portNumber" in str(refused.value)
