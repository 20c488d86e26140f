"""Shared pieces of the benchmarks: the stand-in, Jupyter server subprocesses, API-call
counting, terminal websockets, timing and the tables.

Every process a benchmark starts is registered with `Cleanup` and ended on the way out,
also on Ctrl-C and SIGTERM (turned into KeyboardInterrupt so `finally` blocks run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/x.py` from a checkout without installing
    sys.path.insert(0, str(REPO))

DEFAULT_LATENCY = 0.050
PROMPT = re.compile(r"[\w.-]+@algo-\d+:")  # the stand-in hosts' PS1: user@algo-N:/path#


# -- arguments, machine, output ------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="small sizes: finishes in seconds")
    ap.add_argument(
        "--latency",
        type=float,
        default=DEFAULT_LATENCY * 1000,
        help="milliseconds the stand-in adds to every AWS API call (default 50); keystrokes "
        "and throughput also give it to the SSM data channel and SSH's TCP as a round trip",
    )
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return ap


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor() or "unknown",
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load": load(),
    }


def header(title: str, args, extra: str = "") -> None:
    m = machine()
    print(f"\n== {title} ==")
    print(
        f"{m['date']} | {m['nproc']} x {m['cpu']} | {m['ram_gib']} GiB | Python {m['python']}"
        f" | API latency {args.latency:g} ms{' | quick' if args.quick else ''}{extra}"
    )
    print(f"load average at start: {load()}", flush=True)
    if args.quick:
        print("--quick: smoke-test sizes and single samples; these numbers are no measurement")


def load() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every number."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def footer() -> None:
    print(f"load average at end: {load()}")


def table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(row, widths))))  # fmt: skip
        if n == 0:
            print("  ".join("-" * w for w in widths))


def ms(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def ratio(value: Optional[float], base: Optional[float]) -> str:
    if not value or not base:
        return "-"
    return f"{value / base:.2f}x"


def write_json(args, results: dict) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), **results}, indent=2))


# -- cleanup -------------------------------------------------------------------------------


class Cleanup(contextlib.ExitStack):
    """An ExitStack that also turns SIGTERM/SIGHUP into KeyboardInterrupt while open."""

    def __enter__(self):
        super().__enter__()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                previous = signal.signal(sig, _interrupt)
                self.callback(signal.signal, sig, previous)
        return self


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def children_of(pid: int) -> list[int]:
    """Every live descendant of pid (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def started_at(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot: with the pid, who it is."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL it and whatever it started and left behind."""
    if proc.poll() is None:
        descendants = [(pid, started_at(pid)) for pid in children_of(proc.pid)]
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid, start in descendants:
            if start is not None and started_at(pid) == start:  # still the same process
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def die_with_us() -> list[str]:
    """An argv prefix that sends the child SIGTERM if this process dies without cleaning up
    (even by SIGKILL): util-linux setpriv's parent-death signal, which fires when the thread
    that started the child ends (here always the main thread); nothing where it is absent."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def default_signals() -> None:  # runs in the child, before exec
    """SIGINT, SIGQUIT and SIGHUP back to their defaults. A benchmark started in the
    background (`cmd &` in a script, nohup) runs with them ignored, and ignored signals are
    inherited through exec: the stand-in's host shells would then ignore them too, and ^C
    could not stop `yes` there, as it does in a real container."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- a network with latency -----------------------------------------------------------------


class DelayProxy:
    """A TCP proxy on loopback that delays every byte by `one_way` seconds in each direction,
    in order and without a bandwidth limit (a link with a round trip of 2 x one_way): SSH's
    counterpart of the stand-in's channel_latency fault. Runs its own event loop in a thread;
    `address` is where to connect instead of the target."""

    def __init__(self, stack: Cleanup, target: tuple[str, int], one_way: float):
        self.target, self.one_way = target, one_way
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)
        stack.callback(self.close)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.address = ("127.0.0.1", self.server.sockets[0].getsockname()[1])
            ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        both = (client_writer, server_writer)
        for writer in both:
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            self._pipe(client_reader, server_writer, both),
            self._pipe(server_reader, client_writer, both),
            return_exceptions=True,
        )
        for writer in both:
            writer.close()

    async def _pipe(self, reader, writer, both) -> None:
        """reader -> writer, each chunk `one_way` seconds after it was read; an EOF goes on
        as an EOF (half-close), a reset closes both sides."""
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                if queue.empty():
                    await writer.drain()

        task = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(1 << 16)
                queue.put_nowait((self.loop.time() + self.one_way, data))
                if not data:
                    break
            await task
        except (OSError, ConnectionError):
            for each in both:
                each.close()
        finally:
            task.cancel()

    def close(self) -> None:
        def stop():
            self.server.close()
            self.loop.stop()

        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(stop)
        self.thread.join(5)


# -- the stand-in --------------------------------------------------------------------------


class StandInProcess:
    """The local stand-in in a child process (bench/_standin_proc.py): its CPU never shares
    a GIL with the measuring process. Counts the AWS API calls that reach it."""

    def __init__(self, stack: Cleanup, clock: str = "manual", hosts: bool = True):
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by cleanup
        stack.callback(self._stderr.close)
        options = json.dumps({"clock": clock, "hosts": hosts})
        self.proc = subprocess.Popen(
            [*die_with_us(), sys.executable, str(Path(__file__).with_name("_standin_proc.py")),
             options],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            start_new_session=True, preexec_fn=default_signals,
        )  # fmt: skip
        stack.callback(self.close)
        info = self._read()
        self.url = info["url"]
        self.env = info["env"]
        self.ssh_user = info["ssh_user"]
        self.client_key_path = info["ssh_key"]
        self.sshd_missing_hint = info["sshd_missing_hint"]
        self.region = info["region"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"the stand-in process ended: {tail}")
        return json.loads(line)

    def _ask(self, op: str, **command) -> dict:
        with self._lock:
            self.proc.stdin.write(json.dumps({"op": op, **command}) + "\n")
            self.proc.stdin.flush()
            return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)  # it ends its hosts (sshd, shells) first
            except subprocess.TimeoutExpired:
                stop_process(self.proc)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()

    def client_env(self) -> dict:
        return dict(self.env)

    def create_jobs(self, specs: list[dict]) -> dict:
        return self._ask("create_jobs", jobs=specs)

    def seed_jobs(self, specs: list[dict]) -> dict:
        """create_jobs without the API's HTTP round trips (StandIn.create_jobs): for the
        thousands of jobs of an account, which the API would take minutes to make."""
        return self._ask("seed_jobs", jobs=specs)

    def create_job(self, name: str, **kwargs) -> None:
        self.create_jobs([{"name": name, **kwargs}])

    def set_faults(self, **faults) -> dict:
        return self._ask("faults", **faults)

    def host_address(self, job: str, host: str) -> Optional[tuple[str, int]]:
        address = self._ask("host_address", job=job, host=host)["address"]
        return tuple(address) if address else None

    def calls(self) -> Counter:
        return Counter(self._ask("calls")["calls"])

    @contextlib.contextmanager
    def measure(self):
        """with standin.measure() as got: ...; got then holds the API calls made inside."""
        before = self.calls()
        got: Counter = Counter()
        try:
            yield got
        finally:
            after = self.calls()
            got.update({k: after[k] - before.get(k, 0) for k in after if after[k] != before[k]})


def server_environment(standin) -> dict:
    from jupyter_sm_debug.cli import demo_environment

    env = demo_environment(dict(os.environ), standin.client_env() if standin else {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- a Jupyter server subprocess -----------------------------------------------------------


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


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


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


# -- terminals -------------------------------------------------------------------------------


async def terminal_websocket(server: JupyterServer, name: str):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = f"ws://127.0.0.1:{server.port}/terminals/websocket/{name}"
    request = HTTPRequest(url, headers={"Authorization": f"token {server.token}"})
    return await websocket_connect(request, max_message_size=256 * 1024 * 1024)


async def read_until(ws, pattern: re.Pattern, timeout: float = 30.0) -> tuple[float, str]:
    """Read stdout messages until the text matches; returns (perf_counter at the message
    holding the match's first character, text)."""
    text, deadline = "", time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{pattern.pattern!r} not seen; got {text[-500:]!r}")
        message = await asyncio.wait_for(ws.read_message(), remaining)
        now = time.perf_counter()
        if message is None:
            raise EOFError(f"terminal closed before {pattern.pattern!r}: {text[-500:]!r}")
        kind, *payload = json.loads(message)
        if kind != "stdout":
            continue
        before = len(text)
        text += payload[0]
        match = pattern.search(text, max(0, before - 200))
        if match:
            return now, text


def pty_until(
    argv: list[str], env: dict, pattern: re.Pattern, timeout: float = 30.0, cwd=None
) -> tuple[float, Any]:
    """Spawn argv in a PTY; seconds until output matches `pattern` (at the read holding the
    match). Returns (seconds, ptyprocess); the caller ends the process with end_pty()."""
    import select

    from ptyprocess import PtyProcess

    started = time.perf_counter()
    proc = PtyProcess.spawn(argv, env=env, cwd=cwd, dimensions=(24, 80))
    text, deadline = "", time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{pattern.pattern!r} not seen; got {text[-500:]!r}")
            readable, _, _ = select.select([proc.fd], [], [], remaining)
            if not readable:
                continue
            try:
                data = os.read(proc.fd, 65536)
            except OSError:
                data = b""
            now = time.perf_counter()
            if not data:
                raise EOFError(f"{argv[0]} ended before {pattern.pattern!r}: {text[-500:]!r}")
            before = len(text)
            text += data.decode("utf-8", "replace")
            if pattern.search(text, max(0, before - 200)):
                return now - started, proc
    except BaseException:
        end_pty(proc)
        raise


def end_pty(proc) -> None:
    with contextlib.suppress(Exception):
        proc.terminate(force=True)
    with contextlib.suppress(Exception):
        proc.close(force=True)


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


def tree_cpu(pid: int) -> float:
    """CPU time of a process and its live descendants."""
    total = 0.0
    for each in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_seconds(each)
    return total


def fresh_ssm_session(env: dict, ssm, target: str) -> dict:
    """The environment of a built-in SSM client process with a new StartSession answer
    (a session token is good for one client)."""
    from jupyter_sm_debug.connect.ssm import SESSION_VARIABLE

    response = ssm.start_session(Target=target)
    response.pop("ResponseMetadata", None)
    return {**env, SESSION_VARIABLE: json.dumps(response)}


def ssm_client(standin):
    """A plain boto3 SSM client on the stand-in (its calls get the latency, as AWS's)."""
    import boto3

    env = standin.client_env()
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=standin.region,
    ).client("ssm", endpoint_url=standin.url)
