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
from support import alive
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

TRANSPORTS = ["ssh", "ssm"]


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
    sockets = unix_sockets(pids)
    assert body["local_port"] == 0
    status, _ = await close_port(job, "algo-1", app.port)
    assert status == 204
    assert not any(alive(pid) for pid in pids)
    for path in sockets:  # the socket and its private directory are gone
        assert not os.path.exists(os.path.dirname(path))
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


async def test_ssm_forwards_never_run_the_plugin(
    close_port, api, jp_serverapp, proxy, standin, job, app, monkeypatch, tmp_path
):
    """Issue 22, finding 2: the plugin can only listen on a TCP port any local user may take
    or reach, so with c.SMDebug.ssm_client = "plugin" a forward still uses the built-in
    client (no listener) and says so."""
    from jupyter_sm_debug.standin import ssm as standin_ssm

    plugin = tmp_path / "session-manager-plugin"
    ran = tmp_path / "ran"
    plugin.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo 1.2.677.0; exit 0; fi\ntouch {ran}\n'
    )
    plugin.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(jp_serverapp.web_app.settings["sm_debug"].config, "ssm_client", "plugin")
    status, body = await open_port(api, job, "algo-1", app.port, "ssm")
    assert status == 201, body
    assert "(builtin," in body["target"]
    code, _, page = await proxy(body["url"] + "builtin")
    assert (code, page) == (200, b"hello from algo-1 /builtin")
    forward = jp_serverapp.web_app.settings["sm_debug"].forwards.get(job, "algo-1", app.port)
    assert forward.tunnel.info["client"] == "builtin" and "TCP" in forward.tunnel.info["note"]
    session_id = forward.tunnel.info["session_id"]
    status, _ = await close_port(job, "algo-1", app.port)
    assert status == 204
    assert not ran.exists()
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
    deadline = time.monotonic() + 30  # a condition, bounded generously for a loaded machine
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not any(alive(pid) for pid in pids)
    # A dead tunnel is no forward, once the event loop has reaped its process.
    while registry.get(job, "algo-1", app.port) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert registry.get(job, "algo-1", app.port) is None


# -- no listener anyone else can use (issue 22, findings 2 and 3) ---------------------------------


def tcp_listeners() -> set[int]:
    """Inodes of the listening TCP sockets of this network namespace."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def unix_sockets(pids: list[int]) -> list[str]:
    """Paths of the listening Unix sockets that these processes hold."""
    owned = set().union(*(socket_inodes(pid) for pid in pids)) if pids else set()
    paths = []
    with open("/proc/net/unix") as lines:
        for line in list(lines)[1:]:
            fields = line.split(None, 7)
            if len(fields) == 8 and int(fields[6]) in owned and int(fields[3], 16) & 0x10000:
                paths.append(fields[7].strip())
    return paths


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_forward_listens_on_no_tcp_port(
    close_port, api, jp_serverapp, proxy, job, app, transport
):
    """No TCP listener of the server or of the tunnel's processes: nothing another local
    account could reach without Jupyter's login. SSH's one listener is a Unix socket in a
    0700 directory of the server's user."""
    ours_before = socket_inodes(os.getpid()) & tcp_listeners()
    status, body = await open_port(api, job, "algo-1", app.port, transport)
    assert status == 201, body
    assert body["local_port"] == 0
    code, _, page = await proxy(body["url"] + "no-listener")
    assert (code, page) == (200, b"hello from algo-1 /no-listener")
    forward = jp_serverapp.web_app.settings["sm_debug"].forwards.get(job, "algo-1", app.port)
    listening = tcp_listeners()
    assert not (socket_inodes(os.getpid()) & listening) - ours_before
    for pid in forward.tunnel.pids:
        assert not socket_inodes(pid) & listening, f"pid {pid} listens on TCP"
    if transport == "ssh":
        (path,) = unix_sockets(forward.tunnel.pids)
        directory = os.stat(os.path.dirname(path))
        assert directory.st_mode & 0o777 == 0o700 and directory.st_uid == os.getuid()
    else:
        assert forward.tunnel.pids == []
    await close_port(job, "algo-1", app.port)


ATTACKER_USER = "sm-debug-attacker"
# Runs as another, unprivileged local user with the system's Python (stdlib only). It squats
# loopback ports with a fake app (the old attack), then probes every TCP listener and every
# sm-debug Unix socket that appears, until its stdin closes; its report is one JSON line.
ATTACKER = r"""
import json, socket, sys, threading, time

def tcp():
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[1].startswith("0100007F:"):
            found.add(int(f[1].split(":")[1], 16))
    return found

def unix():
    found = set()
    for line in open("/proc/net/unix").read().splitlines()[1:]:
        f = line.split(None, 7)
        if len(f) == 8 and "sm-debug" in f[7]:
            found.add(f[7].strip())
    return found

def squat(server):
    while True:
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nattacker")
        conn.close()

squatted = []
for _ in range(20):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    squatted.append(s.getsockname()[1])
    threading.Thread(target=squat, args=(s,), daemon=True).start()

report = {"squatted": squatted, "wins": [], "refused": [], "tried": []}
def probe(family, address):
    s = socket.socket(family)
    s.settimeout(3)
    try:
        s.connect(address)
        s.sendall(b"GET /attacker HTTP/1.0\r\nHost: x\r\n\r\n")
        if b"hello from" in s.recv(4096):
            report["wins"].append(str(address))
    except OSError as error:
        report["refused"].append(f"{address}: {type(error).__name__}")
    finally:
        s.close()

seen_tcp, seen_unix = tcp(), set()
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print("ready", flush=True)
while not done.is_set():
    for port in sorted(tcp() - seen_tcp):
        seen_tcp.add(port)
        report["tried"].append(port)
        probe(socket.AF_INET, ("127.0.0.1", port))
    for path in sorted(unix() - seen_unix):
        seen_unix.add(path)
        report["tried"].append(path)
        print("tried " + path, flush=True)
        probe(socket.AF_UNIX, path)
    time.sleep(0.02)
print(json.dumps(report), flush=True)
"""


@pytest.fixture(scope="module")
def attacker_user():
    """A second, unprivileged local account (created for these tests, removed after)."""
    import pwd
    import shutil
    import subprocess

    if os.geteuid() != 0 or not (shutil.which("useradd") and shutil.which("setpriv")):
        pytest.skip("needs root with useradd and setpriv to play a second local user")
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("the attacker runs the system's /usr/bin/python3")
    created = False
    try:
        pwd.getpwnam(ATTACKER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        ATTACKER_USER], check=True)  # fmt: skip
        created = True
    entry = pwd.getpwnam(ATTACKER_USER)
    yield entry
    if created:
        subprocess.run(["userdel", ATTACKER_USER], check=False)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_another_local_user_cannot_take_the_forward(
    close_port, api, jp_serverapp, proxy, job, app, transport, attacker_user
):
    """Finding 2, played by a second local user: squatted ports and probes of every new
    listener and socket while the forward opens; the page through the proxy is the host's,
    and the attacker reaches nothing."""
    attacker = await asyncio.create_subprocess_exec(
        "setpriv", f"--reuid={attacker_user.pw_uid}", f"--regid={attacker_user.pw_gid}",
        "--clear-groups", "--", "/usr/bin/python3", "-c", ATTACKER,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd="/",
    )  # fmt: skip
    try:
        assert await asyncio.wait_for(attacker.stdout.readline(), 60) == b"ready\n"
        status, body = await open_port(api, job, "algo-1", app.port, transport)
        assert status == 201, body
        for _ in range(3):
            code, _, page = await proxy(body["url"] + "victim")
            assert (code, page) == (200, b"hello from algo-1 /victim")
        forward = jp_serverapp.web_app.settings["sm_debug"].forwards.get(job, "algo-1", app.port)
        sockets = unix_sockets(forward.tunnel.pids)
        tried = set()
        while not set(sockets) <= tried:  # the attacker found the socket and tried it
            line = await asyncio.wait_for(attacker.stdout.readline(), 60)
            assert line.startswith(b"tried "), line
            tried.add(line[6:].decode().strip())
        attacker.stdin.close()
        report = json.loads(await asyncio.wait_for(attacker.stdout.readline(), 60))
    finally:
        if attacker.returncode is None:
            attacker.kill()
        await attacker.wait()
        await close_port(job, "algo-1", app.port)
    assert report["wins"] == [], report
    for path in sockets:
        assert f"{path}: PermissionError" in report["refused"], report


@pytest.mark.parametrize("proc", [True, False])
async def test_a_unix_socket_counts_as_listening_only_once_it_accepts(tmp_path, monkeypatch, proc):
    """How the SSH forward knows ssh listens: /proc/net/unix on Linux, else one connection
    (a laptop's macOS has no /proc)."""
    from jupyter_sm_debug.connect.ssh import transport

    if not proc:
        real = os.path.exists
        monkeypatch.setattr(
            transport.os.path, "exists", lambda p: p != "/proc/net/unix" and real(p)
        )
    path = str(tmp_path / "forward.sock")
    assert not await transport.accepts(path)
    server = await asyncio.start_unix_server(lambda r, w: w.close(), path)
    try:
        assert await transport.accepts(path)
    finally:
        server.close()
        await server.wait_closed()
