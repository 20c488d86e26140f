"""A Jupyter server subprocess with the extension, an HTTP client for it, and the session
client processes it starts."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from .procs import Cleanup, children_of, die_with_us, free_port, rss_kib, stop_process


class JupyterServer:
    """`jupyter server` on a free loopback port, with a token, in its own directories."""

    def __init__(
        self,
        stack: Cleanup,
        env: dict,
        extension: bool = True,
        args: Optional[list[str]] = None,
    ):
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sm-bench-")))
        (self.dir / "root").mkdir()
        env = dict(env)
        env["JUPYTER_RUNTIME_DIR"] = str(self.dir / "runtime")
        env["HOME"] = env.get("HOME", str(self.dir))
        argv = [
            *die_with_us(), sys.executable, "-m", "jupyter_server",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.dir / 'root'}",
            f"--ServerApp.jpserver_extensions=jupyter_sm_debug={extension}",
            "--ServerApp.jpserver_extensions=jupyter_server_terminals=True",
            *(args or []),
        ]  # fmt: skip
        self.log_path = self.dir / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed by cleanup
        stack.callback(self._log.close)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.dir,
        )  # fmt: skip
        stack.callback(stop_process, self.proc)
        self.ready_after: Optional[float] = None

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Poll /api/status until it answers; returns seconds since the process started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(  # noqa: S310 - loopback http
                    f"{self.url}/api/status?token={self.token}", timeout=1
                ) as response:
                    if response.status == 200:
                        self.ready_after = time.perf_counter() - self.started
                        return self.ready_after
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.005)
        raise RuntimeError(f"jupyter server did not answer in {timeout} s: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def http(self) -> Http:
        return Http(self.url, self.token)


def attach_args(standin) -> list[str]:
    """The server options every attaching benchmark runs with: the stand-in's SSH user and
    key, and the built-in SSM client (the extension's own, measured everywhere)."""
    return [f"--SMDebug.ssh_key={standin.client_key_path}",
            f"--SMDebug.ssh_user={standin.ssh_user}", "--SMDebug.ssm_client=builtin"]  # fmt: skip


# What a session client's command line holds, per transport.
CLIENT_HINTS = {"ssh": "ssh -t", "ssm": "jupyter_sm_debug.ssm.client"}


def clients_rss(server, hint: str) -> tuple[int, int]:
    """(count, total RSS KiB) of the session client processes under the server."""
    count = total = 0
    for pid in children_of(server.proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().replace(b"\0", b" ").decode()
            if hint in argv:
                count += 1
                total += rss_kib(pid)
        except OSError:
            continue
    return count, total


class Http:
    """A keep-alive HTTP client for one Jupyter server (token auth, JSON)."""

    def __init__(self, url: str, token: str):
        import requests

        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.token = token

    def request(self, method: str, path: str, body: Any = None, **params) -> tuple[int, Any]:
        response = self.session.request(
            method,
            f"{self.url}/{path.lstrip('/')}",
            params={k: v for k, v in params.items() if v is not None},
            data=None if body is None else json.dumps(body),
            timeout=120,
        )
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        return response.status_code, payload

    def get(self, path: str, **params) -> tuple[int, Any]:
        return self.request("GET", path, **params)

    def ok(self, method: str, path: str, body: Any = None, **params) -> Any:
        status, payload = self.request(method, path, body, **params)
        if status >= 400:
            raise RuntimeError(f"{method} {path} -> {status}: {payload}")
        return payload


def session_process(server: JupyterServer, name_hint: str) -> tuple[list[str], dict, int]:
    """argv, environment and pid of the session client the server started (newest match)."""
    for pid in sorted(children_of(server.proc.pid), reverse=True):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = [part.decode() for part in handle.read().split(b"\0") if part]
            with open(f"/proc/{pid}/environ", "rb") as handle:
                pairs = [item.split(b"=", 1) for item in handle.read().split(b"\0") if item]
        except OSError:
            continue
        if argv and name_hint in " ".join(argv):
            env = {item[0].decode(): item[1].decode() for item in pairs if len(item) == 2}
            return argv, env, pid
    raise RuntimeError(f"no session process matching {name_hint!r} under the server")


def attaching_server(stack: Cleanup, standin, env: Optional[dict] = None) -> tuple:
    """A Jupyter server on the stand-in, with the options every attaching benchmark runs
    with (attach_args), ready: (server, http). `env` defaults to server_environment."""
    from .standin import server_environment

    server = JupyterServer(stack, env or server_environment(standin), args=attach_args(standin))
    server.wait_ready()
    return server, server.http()


def attach_terminal(
    http: Http, job: str, host: str, transport: str, body: Optional[dict] = None
) -> str:
    """POST .../terminals (attach, with more of the body if given); the terminal's name, or
    RuntimeError with the answer. Blocking: from a coroutine, use asyncio.to_thread."""
    status, answer = http.request(
        "POST",
        f"sm-debug/jobs/{job}/hosts/{host}/terminals",
        {"transport": transport, **(body or {})},
    )
    if status not in (200, 201):
        raise RuntimeError(f"attach {host} over {transport}: {status} {answer}")
    return answer["terminal"]["name"]
