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
from pathlib import Path

import pytest
from support import free_port

from jupyter_sm_debug.connect import CannotAttach
from jupyter_sm_debug.connect.ssh import first_announcement

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


def keypair(directory, name):
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def ssh(key, port, command, host_key=None, extra=(), **kwargs):
    """ssh into the entrypoint's sshd; with `host_key`, only if the host holds that key."""
    if host_key is not None:
        known = Path(str(key) + ".known_hosts")
        known.write_text(host_key.known_hosts_line("entrypoint"))
        checking = ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                    "-o", "HostKeyAlias=entrypoint"]  # fmt: skip
    else:
        checking = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes",
         *checking, "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", *extra,
         f"{os.environ.get('USER', 'root')}@127.0.0.1", command],
        capture_output=True, text=True, timeout=20, **kwargs,
    )  # fmt: skip


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
        assert re.fullmatch(
            rf"SM_DEBUG_SSH host=algo-2 addr=127\.0\.0\.1 port={port} "
            r"hostkey=ssh-ed25519:[A-Za-z0-9+/]+={0,2}\n",
            line,
        )
        found = first_announcement([{"message": line}], "algo-2")
        assert (found.addr, found.port) == ("127.0.0.1", port)
        # Announced only once sshd listens: the first try gets in, and the key is the one
        # announced.
        result = ssh(good, port, "echo in:$SM_CURRENT_HOST", host_key=found.host_key)
        assert result.stdout.strip() == "in:algo-2", result.stderr
        refused = ssh(bad, port, "echo in")
        assert refused.returncode != 0 and "in" not in refused.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


# -- issue 12: an sshd the extension can trust, and a container that never crashes --------------

needs_sshd = pytest.mark.skipif(
    not shutil.which("sshd") and not os.path.exists("/usr/sbin/sshd"), reason="needs openssh-server"
)


class Container:
    """sm-debug-entrypoint with --ssh running a command; its stdout lines as they come."""

    def __init__(self, tmp_path, *options, command=("sleep", "60"), env=None):
        self.good = keypair(tmp_path, "good")
        self.port = free_port()
        environment = {
            **os.environ,
            "SM_DEBUG_AUTHORIZED_KEYS": (tmp_path / "good.pub").read_text(),
        }
        environment.update(env or {})
        self.proc = subprocess.Popen(
            [*ENTRYPOINT, "--ssh", "--ssh-port", str(self.port), "--announce-addr", "127.0.0.1",
             *options, "--", *command],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        )  # fmt: skip
        self.announcement = self.proc.stdout.readline()
        try:
            found = first_announcement([{"message": self.announcement}], "algo-2")
        except CannotAttach:
            found = None
        self.host_key = found.host_key if found else None

    def ssh(self, command, key=None, **kwargs):
        return ssh(key or self.good, self.port, command, host_key=self.host_key, **kwargs)

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=15)
        return self.announcement + out, err


@needs_sshd
def test_a_probe_or_a_failed_login_does_not_end_the_hold(ml_root, tmp_path):
    """Finding 4: only an authenticated session that closes ends a hold."""
    bad = keypair(tmp_path, "bad")
    box = Container(tmp_path, "--hold-on-failure", "60", command=("sh", "-c", "exit 4"))
    try:
        line = box.proc.stdout.readline()
        while not line.startswith("SM_DEBUG_HOLD"):  # the sshd announcement comes first
            line = box.proc.stdout.readline()
        deadline = time.monotonic() + 10
        while True:
            try:  # a bare TCP connection
                probe = socket.create_connection(("127.0.0.1", box.port))
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert box.ssh("true", key=bad).returncode != 0  # a failed login
        time.sleep(1.5)
        probe.close()
        time.sleep(1.5)
        assert box.proc.poll() is None, "a connection that never logged in ended the hold"
        assert box.ssh("sleep 1").returncode == 0  # a real session, then it closes
        assert box.proc.wait(timeout=10) == 4
    finally:
        _, err = box.stop()
    assert "hold ended (last session closed)" in err


@needs_sshd
def test_sshd_logs_never_reach_the_training_stream(ml_root, tmp_path):
    """Finding 1: `ssh -l 'x SM_DEBUG_SSH ...'` made sshd (-e) write a valid-looking line."""
    box = Container(tmp_path)
    forged = "x SM_DEBUG_SSH host=algo-2 addr=192.0.2.66 port=22"
    try:
        result = subprocess.run(
            ["ssh", "-F", "/dev/null", "-p", str(box.port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-l", forged, "127.0.0.1", "true"],
            capture_output=True, timeout=20,
        )  # fmt: skip
        assert result.returncode != 0
        time.sleep(0.5)
    finally:
        out, err = box.stop()
    assert "192.0.2.66" not in out + err
    assert [line for line in out.splitlines() if "SM_DEBUG_SSH" in line] == [
        box.announcement.strip()
    ]


@needs_sshd
def test_an_environment_value_sshd_must_escape_reaches_the_shell(ml_root, tmp_path):
    """Finding 6: a value ending in a backslash broke SetEnv, sshd did not start, and the
    entrypoint announced it all the same."""
    values = {"SM_WINDOWS_DIR": "C:\\data\\", "SM_QUOTED": 'say "hi"', "SM_PLAIN": "ok"}
    box = Container(tmp_path, env=values)
    try:
        result = box.ssh('printf "%s|" "$SM_WINDOWS_DIR" "$SM_QUOTED" "$SM_PLAIN"')
    finally:
        box.stop()
    assert result.stdout == 'C:\\data\\|say "hi"|ok|', result.stderr


@needs_sshd
def test_sshd_forwards_no_agent_and_no_remote_ports(ml_root, tmp_path):
    """Finding 6: the entrypoint's sshd had agent, TCP and stream-local forwarding on."""
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True)
    env = dict(re.findall(r"(SSH_AUTH_SOCK|SSH_AGENT_PID)=([^;]+);", agent.stdout))
    box = Container(tmp_path)
    try:
        subprocess.run(["ssh-add", "-q", str(box.good)], env={**os.environ, **env}, check=True)
        inside = box.ssh("echo agent=${SSH_AUTH_SOCK-}", extra=["-A"], env={**os.environ, **env})
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout.strip() == "agent="
        remote = box.ssh("true", extra=["-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9"])
        assert remote.returncode != 0
        sock = box.ssh("true", extra=["-o", "ExitOnForwardFailure=yes",
                                      "-R", f"{tmp_path}/fwd.sock:127.0.0.1:9"])  # fmt: skip
        assert sock.returncode != 0
    finally:
        box.stop()
        os.kill(int(env["SSH_AGENT_PID"]), signal.SIGTERM)


def test_sshd_failures_are_reported_and_training_goes_on(ml_root, tmp_path, monkeypatch):
    """Finding 6: no announcement without a listening sshd, a report instead, and the
    command's own exit code."""
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    result = run("--ssh", "--", "sh", "-c", "exit 3")  # no authorized keys at all
    assert result.returncode == 3
    assert (
        result.stdout.splitlines()[0] == "SM_DEBUG_SSH_FAILED host=algo-2 reason=no_authorized_keys"
    )
    monkeypatch.setenv("SM_DEBUG_AUTHORIZED_KEYS", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKey x")
    monkeypatch.setenv("SM_DEBUG_SSH_PORT", "22abc")
    result = run("--ssh", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    assert "reason=invalid_port" in result.stdout and "Traceback" not in result.stderr
    if shutil.which("sshd") or os.path.exists("/usr/sbin/sshd"):
        with socket.socket() as taken:  # sshd cannot bind: it must not be announced
            taken.bind(("0.0.0.0", 0))  # noqa: S104 - where sshd would listen
            taken.listen()
            port = taken.getsockname()[1]
            result = run("--ssh", "--ssh-port", str(port), "--", "sh", "-c", "exit 3")
        assert result.returncode == 3, result.stderr
        assert not [line for line in result.stdout.splitlines() if line.startswith("SM_DEBUG_SSH ")]
        assert "SM_DEBUG_SSH_FAILED host=algo-2 reason=" in result.stdout


def test_authorized_keys_are_taken_one_per_line_literally(ml_root, monkeypatch):
    """Finding 6: a literal backslash-n in SM_DEBUG_AUTHORIZED_KEYS made a second key line."""
    from jupyter_sm_debug.entrypoint import authorized_keys

    monkeypatch.setenv("SM_DEBUG_AUTHORIZED_KEYS", "ssh-ed25519 AAAA one\\nssh-ed25519 BBBB two")
    assert authorized_keys({}) == "ssh-ed25519 AAAA one\\nssh-ed25519 BBBB two\n"
    monkeypatch.setenv("SM_DEBUG_AUTHORIZED_KEYS", "ssh-ed25519 AAAA one\n\n# c\nssh-ed25519 BB t")
    assert authorized_keys({}) == "ssh-ed25519 AAAA one\nssh-ed25519 BB t\n"


def test_a_directory_at_the_release_path_never_crashes_the_entrypoint(ml_root):
    """Finding 6: IsADirectoryError made the container exit 1 instead of the command's code."""
    release = ml_root / "release"
    release.mkdir()
    result = run("--hold-on-failure", "1", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    assert "hold window over" in result.stderr  # a directory does not release the hold
    refused = run("--release")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "cannot release" in refused.stderr


def test_release_never_writes_through_a_symlink(ml_root, tmp_path):
    victim = tmp_path / "victim"
    (ml_root / "release").symlink_to(victim)
    assert run("--release").returncode == 0
    assert not victim.exists()
    assert (ml_root / "release").is_file() and not (ml_root / "release").is_symlink()


# -- issue 23, finding 1: looking never ends the hold ------------------------------------------


@needs_sshd
def test_the_extensions_own_ssh_sessions_never_end_the_hold(ml_root, tmp_path):
    """Runs as the extension sends them (hold.tool_argv, as host state, stacks and run do)
    open and close; the hold goes on. Then a person's session closes and ends it."""
    import shlex

    from jupyter_sm_debug import hold

    box = Container(tmp_path, "--hold-on-failure", "120", command=("sh", "-c", "exit 4"))
    try:
        line = box.proc.stdout.readline()
        while not line.startswith("SM_DEBUG_HOLD"):
            line = box.proc.stdout.readline()
        for argv in (["cat", "/proc/loadavg"], ["sh", "-c", "sleep 1; echo done"], ["true"]):
            result = box.ssh(shlex.join(hold.tool_argv(argv)))
            assert result.returncode == 0, result.stderr
        # The hold looks every 0.2 s: give it several looks after the last run closed.
        marker = tmp_path / "looked"
        box.ssh(shlex.join(hold.tool_argv(["sh", "-c", f"sleep 1.5; touch {marker}"])))
        assert marker.exists()
        assert box.proc.poll() is None, "one of the extension's own sessions ended the hold"
        assert box.ssh("sleep 1").returncode == 0  # a person's session, then it closes
        assert box.proc.wait(timeout=20) == 4
    finally:
        _, err = box.stop()
    assert "hold ended (last session closed)" in err
