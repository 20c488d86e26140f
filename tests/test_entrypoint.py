"""sm-debug-entrypoint: exit codes, signal forwarding, hold on failure, sshd with given keys."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from jupyter_sm_debug.connect.ssh import announced_address

ENTRYPOINT = [sys.executable, "-m", "jupyter_sm_debug.entrypoint"]


@pytest.fixture
def ml_root(tmp_path, monkeypatch):
    """A container-shaped /opt/ml for one host."""
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    )
    (config / "hyperparameters.json").write_text(json.dumps({"epochs": '"3"'}))
    monkeypatch.setenv("SM_DEBUG_ML_ROOT", str(tmp_path))
    monkeypatch.setenv("SM_DEBUG_RELEASE_FILE", str(tmp_path / "release"))
    for name in ("SM_DEBUG_SSH", "SM_DEBUG_HOLD_ON_FAILURE", "SM_DEBUG_AUTHORIZED_KEYS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*args, timeout=30, **kwargs):
    return subprocess.run(
        [*ENTRYPOINT, *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


@pytest.mark.parametrize("code", [0, 1, 3, 42])
def test_exits_with_the_commands_exit_code(ml_root, code):
    assert run("--", "sh", "-c", f"exit {code}").returncode == code


def test_a_command_killed_by_a_signal_exits_128_plus_signal(ml_root):
    assert run("--", "sh", "-c", "kill -KILL $$").returncode == 128 + signal.SIGKILL


def test_sigterm_reaches_the_child_within_a_second(ml_root, tmp_path):
    marker = tmp_path / "got-term"
    script = (
        "import signal,sys,time\n"
        f"def bye(*_): open({str(marker)!r},'w').write(str(time.time())); sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [*ENTRYPOINT, "--", sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 7
    assert float(marker.read_text()) - sent < 1.0


def test_holds_after_a_failure_until_the_window_ends(ml_root):
    started = time.monotonic()
    result = run("--hold-on-failure", "1.5", "--", "sh", "-c", "exit 5")
    assert result.returncode == 5
    assert time.monotonic() - started >= 1.5
    assert "SM_DEBUG_HOLD host=algo-2" in result.stdout
    assert "hold window over" in result.stderr


def test_no_hold_after_success(ml_root):
    started = time.monotonic()
    assert run("--hold-on-failure", "30", "--", "true").returncode == 0
    assert time.monotonic() - started < 5


def test_the_release_file_ends_a_hold_early(ml_root):
    proc = subprocess.Popen(
        [*ENTRYPOINT, "--hold-on-failure", "60", "--", "false"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith("SM_DEBUG_HOLD")
    started = time.monotonic()
    assert run("--release").returncode == 0
    assert proc.wait(timeout=10) == 1
    assert time.monotonic() - started < 3
    assert "released" in proc.stderr.read()


def test_hold_can_be_set_by_hyperparameter(ml_root):
    (ml_root / "input/config/hyperparameters.json").write_text(
        json.dumps({"sm_debug_hold_on_failure": '"1"'})
    )
    result = run("--", "false")
    assert result.returncode == 1
    assert "SM_DEBUG_HOLD host=algo-2 seconds=1" in result.stdout


def test_sigterm_during_a_hold_exits_at_once(ml_root):
    proc = subprocess.Popen(
        [*ENTRYPOINT, "--hold-on-failure", "60", "--", "false"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith("SM_DEBUG_HOLD")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keypair(directory, name):
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def ssh(key, port, command):
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-p",
            str(port),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "IdentitiesOnly=yes",
            f"{os.environ.get('USER', 'root')}@127.0.0.1",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.mark.skipif(
    not shutil.which("sshd") and not os.path.exists("/usr/sbin/sshd"), reason="needs openssh-server"
)
def test_sshd_accepts_only_the_given_key_and_announces_itself(ml_root, tmp_path, monkeypatch):
    good, bad = keypair(tmp_path, "good"), keypair(tmp_path, "bad")
    monkeypatch.setenv("SM_DEBUG_AUTHORIZED_KEYS", (tmp_path / "good.pub").read_text())
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    port = free_port()
    proc = subprocess.Popen(
        [
            *ENTRYPOINT,
            "--ssh",
            "--ssh-port",
            str(port),
            "--announce-addr",
            "127.0.0.1",
            "--",
            "sleep",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert re.fullmatch(rf"SM_DEBUG_SSH host=algo-2 addr=127\.0\.0\.1 port={port}\n", line)
        assert announced_address([{"message": line}], "algo-2") == ("127.0.0.1", port)
        deadline = time.monotonic() + 10
        while True:
            result = ssh(good, port, "echo in:$SM_CURRENT_HOST")
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert result.stdout.strip() == "in:algo-2", result.stderr
        refused = ssh(bad, port, "echo in")
        assert refused.returncode != 0 and "in" not in refused.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
