"""Stand-in hosts look like training containers: their own hostname, processes and /opt/ml
(Linux namespaces), over SSH and over the SSM path alike; without namespaces they still work
and say what is not isolated."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from ptyprocess import PtyProcess
from support import REPO
from test_standin import SSH_OPTIONS
from test_standin_hold import held_job, messages

from jupyter_sm_debug.standin import StandIn, container, procs

# What an ML engineer types first in a container, between markers to cut the answers apart.
PROBE = (
    "echo '<<host'; hostname; echo '<<ls'; ls /opt/ml; echo '<<config'; "
    "cat /opt/ml/input/config/resourceconfig.json; echo; echo '<<ps'; ps -ef; "
    "echo '<<env'; printf '%s\\n' \"$SM_TRAINING_ENV\"; echo '<<end'"
)

needs_namespaces = pytest.mark.skipif(
    container.unavailable() is not None,
    reason=f"no namespaces here: {container.unavailable()}",
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    server = StandIn(root=tmp_path_factory.mktemp("standin-container"), clock="manual")
    server.start()
    yield server
    server.stop()


def ssh(standin: StandIn, job: str, host: str, command: str) -> subprocess.CompletedProcess:
    addr, port = standin.host_address(job, host)
    argv = ["ssh", "-i", standin.client_key_path, "-p", str(port), *SSH_OPTIONS,
            f"{standin.ssh_user}@{addr}", command]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def sections(text: str) -> dict[str, str]:
    """The probe's answers by marker."""
    parts = re.split(r"^<<(\w+)\r?$", text.replace("\r\n", "\n"), flags=re.M)
    return {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}


def check_looks_like_a_container(answers: dict[str, str], host: str, hosts: list[str]) -> None:
    assert answers["host"] == host
    assert {"code", "input", "model", "output", "checkpoints"} <= set(answers["ls"].split())
    assert json.loads(answers["config"])["current_host"] == host
    rows = answers["ps"].splitlines()[1:]
    commands = [row.split(None, 7)[7] for row in rows]
    # Only the host's own processes: its init, the training, this shell and ps.
    assert commands[0] == "/bin/bash /opt/sm-debug/bin/init", commands
    assert any(c.startswith("python train.py") for c in commands), commands
    assert len(rows) <= 6, rows
    assert all(int(row.split()[1]) < 200 for row in rows), rows  # small pids: a PID namespace
    training = json.loads(answers["env"])
    assert training["current_host"] == host and training["hosts"] == hosts
    assert training["model_dir"] == "/opt/ml/model"
    assert training["input_config_dir"] == "/opt/ml/input/config"
    assert training["user_entry_point"] == "train.py"


def read_until(term: PtyProcess, needle: bytes, timeout: float = 30.0) -> bytes:
    output = b""
    deadline = time.monotonic() + timeout
    while needle not in output.replace(b"\r", b""):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} not seen in {output[-2000:]!r}"
        if select.select([term.fd], [], [], remaining)[0]:
            output += os.read(term.fd, 65536)
    return output


def namespace_members(init: int) -> set[int]:
    """Every process of this machine in the PID namespace of ``init``."""
    try:
        wanted = os.readlink(f"/proc/{init}/ns/pid")
    except OSError:
        return set()
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == wanted:
                    found.add(int(name))
            except OSError:
                continue
    return found


# -- with namespaces ---------------------------------------------------------------------------


@needs_namespaces
def test_over_ssh_a_host_looks_like_a_container(standin):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = unique("ctr-ssh")
    standin.create_job(name, instance_count=2, started_ago=60)
    result = ssh(standin, name, "algo-2", PROBE)
    assert result.returncode == 0, result.stderr
    check_looks_like_a_container(sections(result.stdout), "algo-2", ["algo-1", "algo-2"])
    # The other host is another container: its own name, its own init.
    other = ssh(standin, name, "algo-1", "hostname; echo $SM_CURRENT_HOST $SM_MODEL_DIR")
    assert other.stdout.split() == ["algo-1", "algo-1", "/opt/ml/model"]
    one, two = (standin.backends.hosts.get(standin.region, name, h) for h in ("algo-1", "algo-2"))
    assert os.readlink(f"/proc/{one.init}/ns/pid") != os.readlink(f"/proc/{two.init}/ns/pid")
    assert socket.gethostname() not in ("algo-1", "algo-2")


@needs_namespaces
def test_over_the_ssm_path_a_host_looks_like_a_container(standin):
    name = unique("ctr-ssm")
    standin.create_job(name, started_ago=60, remote_debug=True)
    env = dict(os.environ, **standin.client_env(), PYTHONPATH=str(REPO), TERM="xterm")
    argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client",
            "--target", f"sagemaker-training-job:{name}_algo-1"]  # fmt: skip
    term = PtyProcess.spawn(argv, env=env, cwd=str(REPO), dimensions=(50, 200))
    try:
        output = read_until(term, b"@algo-1:/opt/ml# ")
        assert b"not isolated" not in output
        term.write((PROBE + "\r").encode())
        text = read_until(term, b"\n<<end").decode(errors="replace")
        answers = sections(text[text.rindex("<<host\r\n") :])
        check_looks_like_a_container(answers, "algo-1", ["algo-1"])
        term.write(b"exit\r")
    finally:
        term.terminate(force=True)


@needs_namespaces
def test_the_release_file_is_the_containers_own_tmp(standin):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = unique("ctr-release")
    standin.create_job(name, started_ago=60)
    result = ssh(standin, name, "algo-1", "sm-debug-entrypoint --release; ls /tmp")
    assert result.returncode == 0, result.stderr
    assert "sm-debug-release" in result.stdout.split()
    # Outside, the stand-in finds it in the host's sandbox, and only there.
    live = standin.backends.hosts.get(standin.region, name, "algo-1")
    assert live.release_file.exists()
    assert not Path(container.INSIDE_RELEASE_FILE).exists() or (
        Path(container.INSIDE_RELEASE_FILE).stat().st_ino != live.release_file.stat().st_ino
    )


@needs_namespaces
def test_a_held_host_is_released_from_inside_through_its_own_tmp(standin):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = held_job(standin, "ctr-held")
    standin.reconcile()
    assert standin.job(name)["TrainingJobStatus"] == "InProgress"
    hold_line = next(m for m in messages(standin, name, "algo-1") if "holding this" in m)
    assert "(touches /tmp/sm-debug-release)" in hold_line  # the container's path
    result = ssh(standin, name, "algo-1", "sm-debug-entrypoint --release")
    assert result.returncode == 0, result.stderr
    standin.reconcile()
    assert standin.job(name)["TrainingJobStatus"] == "Failed"
    assert "[sm-debug] hold ended (released); exiting with 1" in messages(standin, name, "algo-1")


@needs_namespaces
def test_ending_a_host_ends_every_process_in_its_namespaces(standin):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = unique("ctr-end")
    standin.create_job(name, started_ago=60, schedule={"training": 100})
    live = standin.backends.hosts.get(standin.region, name, "algo-1")
    addr, port = standin.host_address(name, "algo-1")
    # A session that leaves a double-forked process behind, and one still open.
    ssh(standin, name, "algo-1", "(setsid sleep 300 >/dev/null 2>&1 &)")
    session = subprocess.Popen(
        ["ssh", "-i", standin.client_key_path, "-p", str(port), *SSH_OPTIONS,
         f"{standin.ssh_user}@{addr}", "sleep 301"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while len(namespace_members(live.init)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = namespace_members(live.init)
    assert len(members) >= 4, members  # init, training, the orphan, the open session
    outside = {live.namespace.pid, live.sshd.pid}
    standin.advance(200)  # Uploading, then Completed: the containers are gone
    assert standin.host_address(name, "algo-1") is None
    assert not any(procs.alive(pid) for pid in members | outside)
    assert not procs.holders(live.token)
    assert session.wait(timeout=10) != 0


# -- without namespaces ------------------------------------------------------------------------


def test_without_namespaces_a_host_still_has_a_shell_that_says_so(tmp_path):
    server = StandIn(root=tmp_path, clock="manual")
    server.backends.hosts.isolate = False  # as where namespaces are not permitted
    server.start()
    try:
        server.create_job("plain", started_ago=60)
        live = server.backends.hosts.get(server.region, "plain", "algo-1")
        assert live.init is None and live.not_isolated
        env, cwd = server.host_env("plain", "algo-1")
        result = subprocess.run(
            server.host_shell_argv("plain", "algo-1"), env=env, cwd=cwd,
            input="echo \"<$SM_CURRENT_HOST>\"; cat $SM_INPUT_CONFIG_DIR/resourceconfig.json\n",
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        banner = [line for line in result.stdout.splitlines() if "not isolated" in line]
        assert len(banner) == 1, result.stdout
        assert "algo-1 is not isolated (namespaces turned off" in banner[0]
        assert "hostname, processes and /opt/ml" in banner[0]
        assert "<algo-1>" in result.stdout
        assert '"current_host": "algo-1"' in result.stdout
        # The training process runs all the same, as a plain process of the host.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            commands = [_cmdline(pid) for pid in procs.holders(live.token)]
            if any(c.startswith("python train.py") for c in commands):
                break
            time.sleep(0.05)
        assert any(c.startswith("python train.py") for c in commands), commands
        training = json.loads(env["SM_TRAINING_ENV"])
        assert training["model_dir"] == env["SM_MODEL_DIR"] == f"{cwd}/model"
        holders = procs.holders(live.token)
    finally:
        server.stop()
    assert not any(procs.alive(pid) for pid in holders)


def test_the_isolation_switch_turns_namespaces_off(monkeypatch):
    monkeypatch.setenv(container.ISOLATION_VARIABLE, "none")
    assert "SM_STANDIN_ISOLATION=none" in container.unavailable()


def test_a_user_without_root_is_told_namespaces_need_root():
    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    if os.geteuid() != 0 or not setpriv or not os.access(python, os.X_OK):
        pytest.skip("needs root, util-linux setpriv and /usr/bin/python3")
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    # unshare really is refused to that user...
    refused = subprocess.run([*nobody, "unshare", *container.NAMESPACES, "--fork", "true"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    assert refused.returncode != 0
    # ...and the probe says why, without trying. container.py is standard library only.
    source = Path(container.__file__).read_text()
    probe = subprocess.run(
        [*nobody, python, "-c", "import sys; ns = {'__name__': 'c'}; exec(sys.stdin.read(), ns); "
         "print(ns['unavailable']())"],
        input=source, capture_output=True, text=True, timeout=20, cwd="/",
    )  # fmt: skip
    assert probe.stdout.strip() == "namespaces need root", probe.stderr


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def ignored_signals(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.M).group(1), 16)


def test_host_processes_take_signals_like_a_containers(standin):
    """A stand-in started in the background (nohup, `cmd &`) has SIGINT, SIGQUIT and SIGHUP
    ignored, and ignored signals survive exec: its hosts' shells ignored ^C."""
    import signal

    wanted = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in wanted}
    try:
        name = unique("signals")
        standin.create_job(name, started_ago=60)
        live = standin.backends.hosts.get(standin.region, name, "algo-1")
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    init = live.init or live.train.pid
    pids = [int(pid) for pid in Path(f"/proc/{init}/task/{init}/children").read_text().split()]
    if live.sshd is not None:
        pids.append(live.sshd.pid)
    assert pids
    for pid in pids:
        mask = ignored_signals(pid)
        assert not [sig for sig in wanted if mask & (1 << (sig - 1))], (pid, hex(mask))
