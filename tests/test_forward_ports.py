"""Port forwarding: POST/DELETE /sm-debug/jobs/{job}/hosts/{host}/ports, GET /sm-debug/forwards,
and the authenticated proxy /sm-debug/proxy/{job}/{host}/{port}/ to apps in stand-in hosts,
over SSH and SSM."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid

import pytest
from forward_apps import BIG_SAMPLE, HostApp, free_port
from ssm_judge import SKIP_REASON, real_plugin
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

TRANSPORTS = ["ssh", "ssm"]
PLUGIN = real_plugin()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"ports-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=2, remote_debug=True, started_ago=600)
    return name


@pytest.fixture(scope="module")
def app(standin, job):
    running = HostApp(standin, job, "algo-1")
    yield running
    running.stop()


@pytest.fixture
def proxy(jp_fetch, jp_base_url, jp_http_port, jp_auth_header):
    """GET a proxied URL with Jupyter's auth; (status, headers, body)."""

    async def get(url: str, method="GET", body=None, headers=None, auth=True):
        request = HTTPRequest(
            f"http://localhost:{jp_http_port}{url}", method=method, body=body,
            headers={**(jp_auth_header if auth else {}), **(headers or {})},
            follow_redirects=False, request_timeout=120,
        )  # fmt: skip
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        return response.code, response.headers, response.body

    return get


@pytest.fixture
def close_port(jp_fetch):
    async def delete(job, host, port):
        try:
            response = await jp_fetch("sm-debug", "jobs", job, "hosts", host, "ports", str(port),
                                      method="DELETE")  # fmt: skip
        except HTTPClientError as error:
            return error.code, json.loads(error.response.body)
        return response.code, None

    return delete


async def open_port(api, job, host, port, transport):
    return await api(
        "POST", "jobs", job, "hosts", host, "ports", body={"port": port, "transport": transport}
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_page_of_the_host_through_the_proxy(
    close_port, api, proxy, job, app, transport, jp_http_port
):
    origin = f"http://localhost:{jp_http_port}"
    status, body = await open_port(api, job, "algo-1", app.port, transport)
    assert status == 201, body
    assert body["transport"] == transport and body["reused"] is False
    assert body["url"].endswith(f"/sm-debug/proxy/{job}/algo-1/{app.port}/")
    code, _, page = await proxy(body["url"] + "some/page?x=1")
    assert code == 200, page
    assert page == b"hello from algo-1 /some/page"
    # the path reaches the app as the browser encoded it
    code, _, page = await proxy(body["url"] + "a%20b/c%3Fd")
    assert (code, page) == (200, b"hello from algo-1 /a%20b/c%3Fd")
    # one per job/host/port: the second POST reuses it
    status, again = await open_port(api, job, "algo-1", app.port, transport)
    assert status == 200 and again["reused"] is True and again["local_port"] == body["local_port"]
    status, listed = await api("GET", "forwards")
    assert [f["port"] for f in listed["forwards"] if f["job"] == job] == [app.port]
    # POST bodies and redirects under the prefix
    code, _, echoed = await proxy(body["url"] + "echo", method="POST", body=b"\x00abc" * 1000,
                                  headers={"Origin": origin})  # fmt: skip
    assert code == 200 and echoed == b"\x00abc" * 1000
    # a cross-site form (cookie, no token) cannot post to the app without Jupyter's xsrf
    code, _, page = await proxy(body["url"] + "echo", method="POST", body=b"x", auth=False,
                                headers={"Origin": "http://evil.example"})  # fmt: skip
    assert code in (403, 404) and page != b"x"  # jupyter_server hides it from strangers
    code, headers, _ = await proxy(body["url"] + "away")
    assert code == 302 and headers["Location"] == body["url"] + "hello/after-redirect"
    status, _ = await close_port(job, "algo-1", app.port)
    assert status == 204


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_concurrent_requests_and_a_large_download_share_one_forward(
    close_port, api, proxy, job, app, transport
):
    status, body = await open_port(api, job, "algo-1", app.port, transport)
    assert status in (200, 201), body
    results = await asyncio.gather(*(proxy(body["url"] + f"n{i}") for i in range(20)))
    assert [(code, page) for code, _, page in results] == [
        (200, f"hello from algo-1 /n{i}".encode()) for i in range(20)
    ]
    code, _, big = await proxy(body["url"] + "big")
    assert code == 200 and len(big) == 32 << 20
    assert hashlib.sha256(big).digest() == hashlib.sha256(BIG_SAMPLE * (len(big) // 256)).digest()
    await close_port(job, "algo-1", app.port)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_websocket_echo_through_the_proxy(
    close_port, api, job, app, transport, jp_http_port, jp_auth_header
):
    status, body = await open_port(api, job, "algo-1", app.port, transport)
    assert status in (200, 201), body
    request = HTTPRequest(
        f"ws://localhost:{jp_http_port}{body['url']}ws",
        headers={**jp_auth_header, "Origin": f"http://localhost:{jp_http_port}"},
    )
    ws = await websocket_connect(request)
    await ws.write_message("text message")
    assert await ws.read_message() == "text message"
    await ws.write_message(b"\x00\xff" * 50000, binary=True)
    assert await ws.read_message() == b"\x00\xff" * 50000
    ws.close()
    # no auth, no websocket
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(f"ws://localhost:{jp_http_port}{body['url']}ws")
    assert refused.value.code in (302, 403)
    await close_port(job, "algo-1", app.port)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_nothing_listening_is_a_502_that_says_so(close_port, api, proxy, job, transport):
    port = free_port()
    status, body = await open_port(api, job, "algo-2", port, transport)
    assert status == 201, body
    started = time.monotonic()
    code, headers, page = await proxy(body["url"], headers={"Accept": "text/html"})
    assert code == 502 and f"nothing listens on {port} in algo-2".encode() in page
    code, _, page = await proxy(body["url"] + "x")
    assert code == 502 and json.loads(page)["error"]["code"] == "nothing_listens"
    assert time.monotonic() - started < 20
    await close_port(job, "algo-2", port)


async def test_the_proxy_requires_jupyter_auth(close_port, api, proxy, job, app):
    status, body = await open_port(api, job, "algo-1", app.port, "ssh")
    assert status in (200, 201), body
    code, headers, page = await proxy(body["url"], auth=False)
    assert code in (302, 403) and b"hello" not in page
    if code == 302:
        assert "login" in headers["Location"]
    await close_port(job, "algo-1", app.port)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_delete_ends_the_tunnel_and_its_processes(
    close_port, api, jp_serverapp, proxy, job, app, transport
):
    status, body = await open_port(api, job, "algo-1", app.port, transport)
    assert status == 201, body
    forward = jp_serverapp.web_app.settings["sm_debug"].forwards.get(job, "algo-1", app.port)
    pids = list(forward.tunnel.pids)
    local = body["local_port"]
    status, _ = await close_port(job, "algo-1", app.port)
    assert status == 204
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", local)
    code, _, page = await proxy(body["url"])
    assert code == 404 and json.loads(page)["error"]["code"] == "forward_not_found"
    status, listed = await api("GET", "forwards")
    assert not [f for f in listed["forwards"] if f["job"] == job]
    status, again = await close_port(job, "algo-1", app.port)
    assert status == 404


async def test_an_idle_forward_ends(close_port, api, jp_serverapp, job, app):
    registry = jp_serverapp.web_app.settings["sm_debug"].forwards
    registry.config.forward_idle_seconds = 0.5
    status, body = await open_port(api, job, "algo-1", app.port, "ssh")
    assert status == 201, body
    deadline = time.monotonic() + 10
    while registry.get(job, "algo-1", app.port) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert registry.get(job, "algo-1", app.port) is None


@pytest.mark.parametrize(
    "body, code",
    [
        ({"port": 0}, "invalid_port"),
        ({"port": 65536}, "invalid_port"),
        ({"port": "6006"}, "invalid_port"),
        ({"port": True}, "invalid_port"),
        ({}, "invalid_port"),
        ({"port": 6006, "transport": ["ssh"]}, "invalid_transport"),
    ],
)
async def test_bad_ports_are_400(close_port, api, job, body, code):
    status, answer = await api("POST", "jobs", job, "hosts", "algo-1", "ports", body=body)
    assert status == 400 and answer["error"]["code"] == code


async def test_bad_names_and_hosts(close_port, api, job, proxy, jp_base_url):
    status, answer = await api(
        "POST", "jobs", "bad_job!", "hosts", "algo-1", "ports", body={"port": 1}
    )
    assert status == 400
    status, answer = await api("POST", "jobs", job, "hosts", "algo-9", "ports", body={"port": 1})
    assert status == 404 and answer["error"]["code"] == "host_not_found"
    status, answer = await api("POST", "jobs", job, "hosts", "algo-x", "ports", body={"port": 1})
    assert status == 400
    code, _, page = await proxy(f"{jp_base_url}sm-debug/proxy/{job}/algo-1/70000/")
    assert code == 400 and json.loads(page)["error"]["code"] == "invalid_port"


async def test_delete_terminates_the_ssm_session(close_port, api, jp_serverapp, standin, job, app):
    from jupyter_sm_debug.standin import ssm as standin_ssm

    status, body = await open_port(api, job, "algo-1", app.port, "ssm")
    assert status == 201, body
    forward = jp_serverapp.web_app.settings["sm_debug"].forwards.get(job, "algo-1", app.port)
    session_id = forward.tunnel.info["session_id"]
    assert standin_ssm.registry(standin).get(session_id).status == "Connected"
    status, _ = await close_port(job, "algo-1", app.port)
    assert status == 204
    assert standin_ssm.registry(standin).get(session_id).status == "Terminated"


@pytest.mark.skipif(PLUGIN is None, reason=SKIP_REASON)
async def test_ssm_through_aws_plugin_when_chosen(
    close_port, api, jp_serverapp, proxy, standin, job, app, monkeypatch
):
    from jupyter_sm_debug.standin import ssm as standin_ssm

    monkeypatch.setenv("PATH", f"{os.path.dirname(PLUGIN)}:{os.environ['PATH']}")
    jp_serverapp.web_app.settings["sm_debug"].config.ssm_client = "plugin"
    status, body = await open_port(api, job, "algo-1", app.port, "ssm")
    assert status == 201, body
    assert "(plugin," in body["target"]
    code, _, page = await proxy(body["url"] + "via-plugin")
    assert (code, page) == (200, b"hello from algo-1 /via-plugin")
    forward = jp_serverapp.web_app.settings["sm_debug"].forwards.get(job, "algo-1", app.port)
    pids, session_id = forward.tunnel.pids, forward.tunnel.info["session_id"]
    assert pids and all(alive(pid) for pid in pids)
    status, _ = await close_port(job, "algo-1", app.port)
    assert status == 204
    assert not any(alive(pid) for pid in pids)
    assert standin_ssm.registry(standin).get(session_id).status == "Terminated"


async def test_a_forward_ends_with_its_job(close_port, api, jp_serverapp, standin, sagemaker):
    name = f"ports-end-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    running = HostApp(standin, name, "algo-1", big_bytes=256)
    try:
        status, body = await open_port(api, name, "algo-1", running.port, "ssh")
        assert status == 201, body
        registry = jp_serverapp.web_app.settings["sm_debug"].forwards
        pids = registry.get(name, "algo-1", running.port).tunnel.pids
        sagemaker.stop_training_job(TrainingJobName=name)
        deadline = time.monotonic() + 30
        while registry.get(name, "algo-1", running.port) and time.monotonic() < deadline:
            await registry.reap()
            await asyncio.sleep(0.5)
        assert registry.get(name, "algo-1", running.port) is None
        assert not any(alive(pid) for pid in pids)
    finally:
        running.stop()


async def test_tunnel_processes_end_with_the_server(close_port, api, jp_serverapp, job, app):
    registry = jp_serverapp.web_app.settings["sm_debug"].forwards
    status, body = await open_port(api, job, "algo-1", app.port, "ssh")
    assert status == 201, body
    pids = registry.get(job, "algo-1", app.port).tunnel.pids
    # What the server runs when it stops: the extension's stop hook.
    await jp_serverapp.extension_manager.extension_apps["jupyter_sm_debug"].pop().stop_extension()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not any(alive(pid) for pid in pids)
    assert registry.get(job, "algo-1", app.port) is None  # a dead tunnel is no forward
