"""Issue 24: `jupyter-sm-debug standin` prints every variable a client needs.

As a user does it: start the stand-in's console command, copy the lines it prints into a
shell that has nothing else of AWS (a clean PATH, HOME and LANG; HOME is empty, so no
~/.aws is read), and start JupyterLab from there. That JupyterLab lists the jobs and attaches
over SSM with the built-in client and with AWS's own session-manager-plugin, and its own
terminal websocket shows a shell in algo-1. At the end the stand-in and JupyterLab stop and
leave no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ssm_judge import SKIP_REASON, real_plugin
from support import free_port
from terminal_io import TerminalClient
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

pytestmark = pytest.mark.timeout(900)

HEADER = "Use it from boto3 or the AWS CLI with:"
# What a client of the stand-in needs, by the printed lines alone.
NEEDED = (
    "AWS_ENDPOINT_URL",  # SageMaker, SSM, CloudWatch Logs, KMS: all on the stand-in
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",  # the CA of the wss:// data channel, for botocore and the built-in client
    "SSL_CERT_FILE",  # the same CA for the plugin's websocket (Go reads only this)
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_PROFILE",
)
# A shell started with `bash -c` adds these to what it passes on.
SHELL_OWN = {"PWD", "SHLVL", "_", "OLDPWD"}
STARTUP_SECONDS = 240  # the stand-in and JupyterLab on a loaded 2-core machine
ATTACH_SECONDS = 240


# ---------------------------------------------------------------------------- processes


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), fields[19]


def descendants(root: int) -> set[tuple[int, str]]:
    """Every live process under ``root`` as (pid, start time), so a reused pid is not
    taken for a survivor."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = _stat(int(name))
            if found:
                parents.setdefault(found[0], []).append((int(name), found[1]))
    seen: set[tuple[int, str]] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child[0])
    return seen


def survivors(processes: set[tuple[int, str]], timeout: float) -> list[str]:
    """The processes still alive after ``timeout`` seconds, with their command lines."""
    deadline = time.monotonic() + timeout
    while True:
        left = [(pid, start) for pid, start in processes if (_stat(pid) or (0, ""))[1] == start]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    described = []
    for pid, _ in left:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            described.append(f"{pid}: {argv.decode(errors='replace')[:200]}")
    return described


def stop(process: subprocess.Popen, seconds: float) -> None:
    """SIGTERM, as a user's Ctrl-C or systemd would; SIGKILL only after ``seconds``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
            raise AssertionError(f"{process.args[:3]} ignored SIGTERM for {seconds} s") from None


def clean_environment(home: Path, extra_path: list[str] = ()) -> dict[str, str]:
    """A login with nothing of this test's AWS setup: PATH (this Python's bin first), HOME
    (empty: no ~/.aws, no ~/.jupyter), LANG. PYTHONPATH only where the tests run from a
    worktree whose code must be the one imported (CI installs the package itself)."""
    path = [*extra_path, str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    env = {"PATH": os.pathsep.join(path), "HOME": str(home), "LANG": "C.UTF-8"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


# ---------------------------------------------------------------------------- the stand-in


class StandInCommand:
    """`jupyter-sm-debug standin` as a user runs it, and the lines it printed."""

    def __init__(self, tmp: Path):
        self.log = tmp / "standin.log"
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_sm_debug.cli", "standin", "--port", "0"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        self.lines = self._printed_lines()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _printed_lines(self) -> list[str]:
        """The indented lines under the header, as a user copies them (indent dropped)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            text = self.output()
            if HEADER in text:
                complete = text.split(HEADER, 1)[1].split("\n")[1:-1]  # whole lines only
                block = []
                for line in complete:
                    if not line.startswith("  "):
                        break
                    block.append(line.strip())
                # Whole once a line that is not part of it follows, or the unset that ends it.
                if block and (len(block) < len(complete) or block[-1].startswith("unset ")):
                    return block
            assert self.process.poll() is None, text
            assert time.monotonic() < deadline, f"no variables printed:\n{text}"
            time.sleep(0.2)

    def exported(self) -> dict[str, str]:
        """What the printed lines set, read as a shell reads them (export, then unset)."""
        values: dict[str, str] = {}
        for line in self.lines:
            words = shlex.split(line)
            if words[0] == "export":
                for word in words[1:]:
                    name, _, value = word.partition("=")
                    values[name] = value
            elif words[0] == "unset":
                for name in words[1:]:
                    values.pop(name, None)
            else:
                raise AssertionError(f"not a line a shell user can paste: {line!r}")
        return values


@pytest.fixture(scope="module")
def standin_command(tmp_path_factory):
    command = StandInCommand(tmp_path_factory.mktemp("standin-cli"))
    try:
        yield command
    finally:
        under = descendants(command.process.pid)  # hosts, sshd, SSM agents
        stop(command.process, 120)
        left = survivors(under, 60)
        assert left == [], "the stand-in left processes behind:\n" + "\n".join(left)
        assert "Traceback" not in command.output(), command.output()


# ---------------------------------------------------------------------------- JupyterLab


class Lab:
    """A JupyterLab started from a shell into which the printed lines were pasted."""

    def __init__(self, tmp: Path, lines: list[str], ssm_client: str, extra_path=()):
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.home = tmp / "home"
        self.home.mkdir()
        self.env = clean_environment(self.home, extra_path)
        argv = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.home}",
            f"--SMDebug.ssm_client={ssm_client}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ]  # fmt: skip
        # The pasted lines, then the command, in one clean shell that becomes JupyterLab.
        script = "\n".join([*lines, 'exec "$@"'])
        self.log = tmp / "lab.log"
        self.seen: set[tuple[int, str]] = set()  # processes it ran, for the end's check
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                ["/bin/bash", "--noprofile", "--norc", "-c", script, "lab", *argv],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.home, start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/sm-debug/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def wait_ready(self) -> dict:
        """The job list, once JupyterLab serves it."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert self.process.poll() is None, self.output()
            try:
                status, body = self.request("GET", "jobs")
            except (OSError, ValueError):
                status, body = 0, {}
            if status == 200:
                return body
            assert time.monotonic() < deadline, f"no job list ({status} {body}):\n{self.output()}"
            time.sleep(1)

    def environment(self) -> dict[str, str]:
        raw = Path(f"/proc/{self.process.pid}/environ").read_bytes()
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)

    def attach(self) -> tuple[str, dict]:
        """POST .../terminals over SSM to algo-1 of a running job with remote debug on,
        once one is attachable (the seeded demo's hosts take a while to come up)."""
        deadline = time.monotonic() + ATTACH_SECONDS
        last = None
        while True:
            assert self.process.poll() is None, self.output()
            _, listing = self.request("GET", "jobs")
            running = [
                job["name"]
                for job in listing.get("jobs", [])
                if job["status"] == "InProgress" and job["remote_debug"]["enabled"]
            ]
            for job in running:
                status, detail = self.request("GET", f"jobs/{job}")
                if status != 200 or not detail.get("attach", {}).get("ssm", {}).get("ok"):
                    last = (job, status, detail.get("attach"))
                    continue
                if "algo-1" not in [host["name"] for host in detail.get("hosts", [])]:
                    continue
                status, answer = self.request(
                    "POST", f"jobs/{job}/hosts/algo-1/terminals", {"transport": "ssm"}
                )
                if status == 201:
                    return job, answer
                last = (job, status, answer)
            assert time.monotonic() < deadline, (
                f"no SSM attach within {ATTACH_SECONDS} s; running with remote debug: "
                f"{running}; last answer: {last}\n{self.output()}"
            )
            time.sleep(2)

    async def shell(self, name: str) -> tuple[str, str]:
        """JupyterLab's own terminal websocket, as its xterm uses it: the host's name from
        its environment and from hostname, then exit. Returns (hostname, what the terminal
        showed)."""
        request = HTTPRequest(
            f"ws://127.0.0.1:{self.port}/terminals/websocket/{name}",
            headers={"Authorization": f"token {self.token}"},
            connect_timeout=60,
        )
        websocket = await websocket_connect(request)
        terminal = TerminalClient(websocket)
        shown = ""
        try:
            await terminal.resize(40, 120)
            # Typed once the session's shell is there, as a person would.
            seen = await terminal.expect(r"Starting session with SessionId: \S+", timeout=120)
            shown += seen.string[: seen.end()]
            seen = await terminal.expect(r"[#$] ", timeout=120)
            shown += seen.string[: seen.end()]
            # Brackets that the typed line's echo cannot show, so only the shell's answer
            # matches (a prompt may name the host too).
            await terminal.send('echo "[$SM_CURRENT_HOST]"; echo "<$(hostname)>"\r')
            seen = await terminal.expect(r"\[algo-1\]", timeout=120)
            shown += seen.string[: seen.end()]
            seen = await terminal.expect(r"<([^>\r\n]*)>", timeout=60)
            shown += seen.string[: seen.end()]
            hostname = seen.group(1)
            self.seen |= descendants(self.process.pid)  # the live session's client
            await terminal.send("exit\r")
            assert await terminal.closed(timeout=90), terminal.output[-2000:]
            return hostname, shown
        finally:
            websocket.close()

    def stop(self) -> None:
        self.seen |= descendants(self.process.pid)
        stop(self.process, 90)
        left = survivors(self.seen, 60)
        assert left == [], "JupyterLab left processes behind:\n" + "\n".join(left)


def plugin_problem() -> str | None:
    """Why AWS's plugin cannot run here, or None."""
    plugin = real_plugin()
    if plugin is None:
        return SKIP_REASON
    try:
        done = subprocess.run(
            [plugin, "--version"], capture_output=True, timeout=60, check=False
        )  # fmt: skip
    except OSError as error:
        return f"{plugin} cannot run here: {error}"
    if done.returncode != 0:
        return f"{plugin} --version failed here ({done.returncode}): {done.stderr[-300:]!r}"
    return None


# ---------------------------------------------------------------------------- tests


def test_the_printed_lines_are_all_a_client_needs_and_no_secret(standin_command):
    exported = standin_command.exported()
    missing = [name for name in NEEDED if not exported.get(name)]
    assert missing == [], f"not printed: {missing}\n{standin_command.output()}"
    assert Path(exported["AWS_CA_BUNDLE"]).is_file()
    assert exported["SSL_CERT_FILE"] == exported["AWS_CA_BUNDLE"]
    # The secrets stay in the credentials file (0600), not on the screen.
    credentials = Path(exported["AWS_SHARED_CREDENTIALS_FILE"])
    assert credentials.stat().st_mode & 0o077 == 0
    secrets = re.findall(r"^\s*aws_(?:secret_access_key|access_key_id)\s*=\s*(\S+)",
                         credentials.read_text(), re.M)  # fmt: skip
    assert len(secrets) == 2, "the credentials file holds no key pair"
    for secret in secrets:
        assert secret not in standin_command.output()


@pytest.mark.parametrize("ssm_client", ["builtin", "plugin"])
def test_jupyterlab_from_the_printed_lines_attaches_over_ssm(ssm_client, standin_command, tmp_path):
    extra_path = []
    if ssm_client == "plugin":
        problem = plugin_problem()
        if problem:
            pytest.skip(problem)
        extra_path = [str(Path(real_plugin()).parent)]  # on PATH, as an installed plugin is
    lab = Lab(tmp_path, standin_command.lines, ssm_client, extra_path)
    try:
        listing = lab.wait_ready()
        assert listing["jobs"], listing
        # JupyterLab's environment is the clean one plus the printed lines, nothing more.
        env = lab.environment()
        expected = {**lab.env, **standin_command.exported()}
        assert {k: v for k, v in env.items() if k not in SHELL_OWN} == expected

        job, answer = lab.attach()
        assert answer["transport"] == "ssm", answer
        assert answer["target"] == f"sagemaker-training-job:{job}_algo-1 ({ssm_client})", answer
        lab.seen |= descendants(lab.process.pid)
        hostname, shown = asyncio.run(lab.shell(answer["terminal"]["name"]))
        # Its own UTS namespace names the host; where the stand-in cannot make one, the
        # host keeps this machine's name and its shell says so first.
        assert hostname == "algo-1" or "is not isolated" in shown, shown
    finally:
        lab.stop()
    assert "Traceback" not in lab.output(), lab.output()
