"""Shared pieces of the hardening tests (issue 7): the error shape, unique jobs on the shared
stand-in, a real `jupyter server` subprocess, and process accounting through /proc."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterable

import pytest
from support import ERROR_KEYS, free_port

from jupyter_sm_debug.standin import procs

# Short phases: the session's shared manual clock must move only a little.
SHORT = {"starting": 20, "downloading": 20, "training": 60, "uploading": 20}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


CREATED: list[str] = []  # jobs made by running_job, stopped at the end of their module


def running_job(standin, prefix: str, hosts: int = 2, remote_debug: bool = True) -> str:
    """A job of our own, Training now (60 s into a 20+20+60+20 s schedule)."""
    name = unique(prefix)
    standin.create_job(
        name, instance_count=hosts, remote_debug=remote_debug, schedule=SHORT, started_ago=60
    )
    CREATED.append(name)
    return name


@pytest.fixture(scope="module", autouse=True)
def end_created_jobs(standin):
    """Import into a test module: at its end, the jobs it made with running_job are stopped,
    so their hosts (an sshd and a sandbox each) do not outlive it on the shared stand-in."""
    first = len(CREATED)
    yield
    sagemaker = standin.client("sagemaker")
    for name in CREATED[first:]:
        with contextlib.suppress(Exception):  # already finished, or failed by a test
            sagemaker.stop_training_job(TrainingJobName=name)


def assert_error(status: int, body: Any, statuses, code: str | None = None) -> None:
    """The one error shape: {"error": {"code", "message", "hint"}}, all strings."""
    statuses = (statuses,) if isinstance(statuses, int) else tuple(statuses)
    assert status in statuses, (status, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, body
    assert all(isinstance(error[key], str) for key in ERROR_KEYS), body
    assert error["code"] and error["message"], body
    if code is not None:
        assert error["code"] == code, body


# -- processes ------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc, or None once gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[0].decode(), int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def zombie(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] == "Z"


def descendants(root: int | None = None) -> set[int]:
    """Every process below `root` (default: this test process), zombies included."""
    return procs.descendants([os.getpid() if root is None else root])


def other_jobs_processes(standin, job: str) -> set[int]:
    """Processes of the stand-in's hosts of jobs other than `job`: the demo's jobs run real
    programs (a hung rank's poll, a held job's wrapper) that start and end processes of
    their own while a test counts its own."""
    pids: set[int] = set()
    for host in list(standin.backends.hosts.live.values()):
        if host.job != job and host.process is not None:
            pids |= {host.process.pid} | descendants(host.process.pid)
    # A host the stand-in is starting right now is not in `live` yet: its processes carry
    # their job's name in their environment, as a container's do.
    for pid in descendants() - pids:
        if environ_of(pid).get("TRAINING_JOB_NAME") not in (None, job):
            pids.add(pid)
    return pids


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def environ_of(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            items = handle.read().split(b"\0")
    except OSError:
        return {}
    pairs = (item.decode("utf-8", "replace").partition("=") for item in items if item)
    return {name: value for name, _, value in pairs}


SSM_CLIENT_MODULE = "jupyter_sm_debug.ssm.client"


def session_clients(standin) -> set[int]:
    """Live session client processes anywhere on the machine: ssh with the stand-in's client
    key, or the built-in SSM client calling this stand-in (others may run on the machine)."""
    key = str(standin.client_key_path)
    found = set()
    for pid in pids():
        if pid == os.getpid():
            continue
        argv = cmdline(pid)
        ours = key in argv or (
            SSM_CLIENT_MODULE in argv and environ_of(pid).get("AWS_ENDPOINT_URL") == standin.url
        )
        if ours and alive(pid):
            found.add(pid)
    return found


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def wait_gone(pids_: Iterable[int], timeout: float = 2.0) -> set[int]:
    """Wait until none of `pids_` runs; returns those still running (empty: all gone)."""
    pids_ = set(pids_)
    wait_until(lambda: not any(alive(pid) for pid in pids_), timeout)
    return {pid for pid in pids_ if alive(pid)}


async def async_wait_until(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:
    """`wait_until` for tests on the server's loop (the server must keep running)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if predicate():
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(interval)


def describe_processes(pids_: Iterable[int]) -> list[str]:
    return [f"{pid} {_stat(pid)} {' '.join(cmdline(pid))[:200]}" for pid in sorted(pids_)]


# -- a real `jupyter server` subprocess ------------------------------------------------------


def standin_environment(standin) -> dict[str, str]:
    """The demo's environment: the stand-in's client variables and nothing else from AWS."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(standin.client_env())
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


class JupyterServer:
    """`python -m jupyter_server` with this extension on the stand-in, logging at DEBUG into
    a file. Only this extension and the terminals are loaded (fast start)."""

    def __init__(self, standin, directory: Path, config: str = "", env: dict | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.token = uuid.uuid4().hex
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.dir / "server.log"
        self.env = env if env is not None else standin_environment(standin)
        for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                          ("JUPYTER_RUNTIME_DIR", "runtime")):  # fmt: skip
            path = self.dir / sub
            path.mkdir(exist_ok=True)
            self.env[name] = str(path)
        self.env["JUPYTER_PLATFORM_DIRS"] = "1"
        (self.dir / "config" / "jupyter_server_config.py").write_text(
            "c.ServerApp.jpserver_extensions = {'jupyter_sm_debug': True,"
            " 'jupyter_server_terminals': True, 'jupyterlab': False, 'jupyter_lsp': False,"
            " 'notebook_shim': False}\n"
            f"c.SMDebug.ssh_key = {str(standin.client_key_path)!r}\n"
            f"c.SMDebug.ssh_user = {standin.ssh_user!r}\n" + config
        )
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 60.0) -> JupyterServer:
        argv = [
            sys.executable, "-m", "jupyter_server",
            f"--port={self.port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", "--no-browser", "--allow-root",
            f"--ServerApp.root_dir={self.dir}", "--log-level=DEBUG",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, cwd=self.dir,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited: {self.log()[-3000:]}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/api/status")[0] == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server did not start: {self.log()[-3000:]}")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict | None = None,
        auth: bool = True,
        timeout: float = 60,
    ) -> tuple[int, Any, dict]:
        """(status, JSON body or text, headers) of one request to a raw, already-quoted path."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        elif method in ("PUT", "POST", "PATCH"):
            data = b"{}"
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        if auth:
            request.add_header("Authorization", f"token {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                status, raw, got = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, got = error.code, error.read(), dict(error.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return status, parsed, got

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def __enter__(self) -> JupyterServer:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


def terminal_names(server: JupyterServer) -> list[str]:
    status, listing, _ = server.request("GET", "/api/terminals")
    assert status == 200, listing
    return [term["name"] for term in listing]


def delete_terminals(server: JupyterServer, names: Iterable[str]) -> None:
    for name in names:
        server.request("DELETE", f"/api/terminals/{name}")


# -- raw requests to the in-process (pytest-jupyter) server ----------------------------------


def raw_client(http_server_client, jp_base_url: str, jp_auth_header: dict):
    """call(method, path, body=None, headers=None, auth=True) -> (status, JSON or text,
    headers). `path` goes out exactly as given (already percent-encoded), under the base
    URL; `body` is sent as is when bytes/str, else as JSON."""

    async def call(method, path, body=None, headers=None, auth=True):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is None and method in ("PUT", "POST", "PATCH"):
            body = "{}"
        sent = dict(jp_auth_header) if auth else {}
        sent.update(headers or {})
        response = await http_server_client.fetch(
            jp_base_url.rstrip("/") + path,
            method=method,
            body=body,
            headers=sent,
            raise_error=False,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            request_timeout=60,
        )
        try:
            parsed = json.loads(response.body) if response.body else None
        except ValueError:
            parsed = response.body.decode("utf-8", "replace")
        return response.code, parsed, response.headers

    return call


# -- secrets ---------------------------------------------------------------------------------

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def secrets_of(standin) -> dict[str, str]:
    """What must never reach a browser or a log: the credentials the server uses, and the
    TokenValue of every SSM session the stand-in has issued so far. label -> value."""
    from jupyter_sm_debug.standin.ssm import registry

    found = {name: standin.client_env()[name] for name in CREDENTIAL_VARIABLES}
    reg = registry(standin)
    with reg.lock:
        for session in reg.sessions.values():
            found[f"TokenValue of {session.session_id}"] = session.token
    return found


def leaks(secrets: dict[str, str], **places) -> list[str]:
    """(secret label, place) for every secret found in any of the texts of `places`."""
    found = []
    for place, texts in places.items():
        for text in texts:
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            for label, value in secrets.items():
                if value and value in str(text):
                    found.append(f"{label} in {place}: ...{str(text)[:200]!r}")
    return found


# -- a terminal of a subprocess server, over its websocket (sync) ----------------------------


class SyncTerminal:
    def __init__(self, server: JupyterServer, name: str):
        import websocket

        self.output = ""
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/terminals/websocket/{name}",
            header=[f"Authorization: token {server.token}"],
            timeout=30,
        )

    def send(self, text: str) -> None:
        self.ws.send(json.dumps(["stdin", text]))

    def expect(self, marker: str, timeout: float = 30) -> str:
        import websocket

        deadline = time.monotonic() + timeout
        while marker not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"{marker!r} not seen: {self.output[-2000:]!r}")
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                message = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException:
                raise AssertionError(f"closed before {marker!r}: {self.output[-2000:]!r}") from None
            kind, *payload = json.loads(message)
            if kind == "stdout":
                self.output += payload[0]
        return self.output

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
