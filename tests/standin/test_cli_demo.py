"""`jupyter-sm-debug demo` as a newcomer runs it: missing extras named in one line, the token
kept out of argv, and Ctrl-C or SIGTERM stopping JupyterLab and the stand-in alike, even
when stdout is a pipe into `tee`."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import free_port

from jupyter_sm_debug import cli

pytestmark = pytest.mark.timeout(240)


def test_a_missing_extra_is_one_line_naming_the_pip_command(monkeypatch, capsys):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(
        cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("moto", "jupyterlab") else real(name, *a),
    )
    assert cli.main(["demo", "--no-browser"]) == 1
    assert cli.main(["standin"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err
    assert "JupyterLab and moto" in err[0]
    assert 'pip install -e ".[demo]"' in err[0]
    assert err[1].startswith("jupyter-sm-debug standin needs moto")
    assert "Traceback" not in "\n".join(err)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in argv:
            found.append(int(name))
    return found


def _wait_for_url(log: Path, process: subprocess.Popen, timeout: float = 150) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"Open JupyterLab: (http://\S+)", log.read_text(errors="replace"))
        if match:
            return match.group(1)
        assert process.poll() is None, log.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"no URL within {timeout} s:\n{log.read_text(errors='replace')}")


def _answers(port: int, token: str, timeout: float = 120) -> dict:
    """Wait until the demo's JupyterLab serves the extension's job list."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/sm-debug/jobs"
    while True:
        request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        time.sleep(0.2)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _demo_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("JUPYTER_TOKEN", None)
    return env


def _lab_pids(port: int) -> list[int]:
    return _processes_mentioning(f"--port={port}")


def test_ctrl_c_through_a_pipe_stops_jupyterlab_and_the_standin(tmp_path):
    """`demo --no-browser | tee log` in a real terminal, then Ctrl-C: the terminal sends
    SIGINT to demo and tee alike, and JupyterLab, on a tty, would ask "Shutdown?"."""
    port = free_port()
    log = tmp_path / "log"
    log.touch()
    command = (
        f"{sys.executable} -m jupyter_sm_debug.cli demo --no-browser --port {port}"
        f" --root-dir {tmp_path} 2>&1 | tee {log}"
    )
    env = _demo_env()
    pid, terminal = pty.fork()  # the child's controlling terminal is a new pty
    if pid == 0:  # pragma: no cover - the child: a login shell that stays, as a user's does
        job = os.fork()
        if job == 0:  # the foreground job, as a shell with job control runs it
            os.setpgid(0, 0)
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(0, os.getpgrp())
            signal.signal(signal.SIGTTOU, signal.SIG_DFL)
            os.execve("/bin/bash", ["bash", "-c", command], env)  # noqa: S606
        os.waitpid(job, 0)
        time.sleep(300)
        os._exit(0)
    output = bytearray()

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([terminal], [], [], 0.1)
            if ready:
                try:
                    output.extend(os.read(terminal, 65536))
                except OSError:
                    return

    try:
        deadline = time.monotonic() + 150
        while b"Open JupyterLab" not in output and time.monotonic() < deadline:
            drain(0.5)
        url = re.search(rb"Open JupyterLab: (http://\S+)", output)
        assert url, output.decode(errors="replace")
        token = url.group(1).decode().split("token=", 1)[1]
        assert _answers(port, token)["jobs"]
        lab = _lab_pids(port)
        assert lab, "JupyterLab is not running"
        # The secret is in no process's argv (readable by every local user).
        assert _processes_mentioning(token) == []
        standin = re.search(r"stand-in on http://127\.0\.0\.1:(\d+)", log.read_text())
        assert standin, log.read_text()
        demo = _processes_mentioning(f"--port {port}")
        assert demo
        os.write(terminal, b"\x03")  # Ctrl-C: SIGINT to the foreground job, demo and tee
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _wait_gone(demo, 0.2):
            drain(0.2)
        assert _wait_gone(demo, 1) == [], "the demo did not stop"
        assert _wait_gone(lab) == [], "JupyterLab survived Ctrl-C"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(standin.group(1))), timeout=1).close()
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
        for stray in _lab_pids(port):
            os.kill(stray, signal.SIGKILL)


def test_sigterm_twice_stops_quietly(tmp_path):
    port = free_port()
    log = tmp_path / "log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "jupyter_sm_debug.cli", "demo", "--no-browser",
             f"--port={port}", f"--root-dir={tmp_path}"],
            stdout=out, stderr=subprocess.PIPE, env=_demo_env(), start_new_session=True,
        )  # fmt: skip
    try:
        url = _wait_for_url(log, demo)
        _answers(port, url.split("token=", 1)[1])
        lab = _lab_pids(port)
        demo.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        demo.send_signal(signal.SIGTERM)
        _, err = demo.communicate(timeout=60)
        assert demo.returncode == 0, err
        assert b"Traceback" not in err, err.decode(errors="replace")
        assert _wait_gone(lab) == []
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in _lab_pids(port):
            os.kill(pid, signal.SIGKILL)


def test_standin_prints_every_client_variable_but_no_secret(tmp_path):
    """Issue 24, finding 4: the printed lines carry the CA of the wss:// data channel."""
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "AKIDSECRET",
        "AWS_SECRET_ACCESS_KEY": "very-secret",
        "AWS_CA_BUNDLE": "/x/ca.pem",
        "SSL_CERT_FILE": "/x/ca.pem",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": "/x/sdk.yaml",
    }
    lines = cli.client_exports(env, tmp_path / "credentials")
    text = "\n".join(lines)
    for name in ("AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "SSL_CERT_FILE",
                 "SAGEMAKER_USER_CONFIG_OVERRIDE"):  # fmt: skip
        assert f"export {name}=" in text
    assert "AKIDSECRET" not in text and "very-secret" not in text
    assert f"export AWS_SHARED_CREDENTIALS_FILE={tmp_path / 'credentials'}" in text


def test_the_demo_keeps_its_lab_settings_out_of_the_users_jupyter(tmp_path):
    """Issue 24, finding 8: settings and workspaces in the demo's own directory."""
    env = cli.demo_environment({"HOME": "/home/u"}, {}, tmp_path / "lab")
    assert env["JUPYTERLAB_SETTINGS_DIR"].startswith(str(tmp_path))
    assert env["JUPYTERLAB_WORKSPACES_DIR"].startswith(str(tmp_path))
