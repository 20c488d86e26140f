"""The hold wrapper (jupyter_sm_debug.hold) run by a real POSIX sh (dash), as a container runs
it: exit codes, forwarded signals, the hold and each way it ends, AWS's argument limits.

Each wrapper runs in a PID namespace of its own with its own /proc (as in a container), so
the sessions it counts are only the ones a test makes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import botocore.session
import pytest

from jupyter_sm_debug import hold

DASH = shutil.which("dash")
UNSHARE = shutil.which("unshare")
pytestmark = pytest.mark.skipif(
    not DASH or not UNSHARE or os.geteuid() != 0, reason="needs dash, unshare and root"
)


def start(tmp_path: Path, command: list[str], seconds: int = 0) -> subprocess.Popen:
    argv = hold.wrapped_argv(command)
    argv[0] = DASH  # /bin/sh is dash on Debian too; be explicit about the shell under test
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "SM_DEBUG_RELEASE_FILE": str(tmp_path / "rel")}
    if seconds:
        env[hold.HOLD_VARIABLE] = str(seconds)
    return subprocess.Popen(
        [UNSHARE, "--pid", "--fork", "--mount-proc", "--", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip


def wrapper_pid(process: subprocess.Popen) -> int:
    """The wrapper (the namespace's PID 1) as seen from here: unshare's child."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("the wrapper did not start")


def wait_for(process: subprocess.Popen, text: str, timeout: float = 10) -> None:
    """Read stdout until a line holds `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no {text!r} on stdout")


def finish(process: subprocess.Popen, timeout: float = 15) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def test_fits_in_aws_limits():
    model = botocore.session.get_session().get_service_model("sagemaker")
    member = model.shape_for("AlgorithmSpecification").members["ContainerEntrypoint"]
    assert member.metadata["max"] == hold.MAX_ITEMS
    assert member.member.metadata["max"] == hold.MAX_ITEM_LENGTH
    argv = hold.wrapped_argv(["bash", "-m", "start_with_right_hostname.sh"])
    assert len(argv) <= hold.MAX_ITEMS
    assert all(len(item) <= hold.MAX_ITEM_LENGTH and "\n" not in item for item in argv)
    assert hold.is_wrapped(argv) and hold.unwrapped(argv)[0] == "bash"
    forged = list(argv)
    forged[5] = forged[5].replace("hold", "h0ld", 1)
    assert not hold.is_wrapped(forged)
    with pytest.raises(ValueError):
        hold.container_fields(["x"] * 95, ["train"])


def test_the_readable_script_is_the_same_program():
    result = subprocess.run([DASH, "-n", "-c", hold.wrapper_script(one_line=False)])
    assert result.returncode == 0


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_kept_and_no_hold_without_window(tmp_path, code):
    process = start(tmp_path, ["sh", "-c", 'echo "ran $0 $1"; exit "$1"', "x", str(code)])
    returncode, err = finish(process)
    assert returncode == code
    assert "holding" not in err


def test_success_never_holds(tmp_path):
    process = start(tmp_path, ["true"], seconds=60)
    assert finish(process) == (0, "")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_forwarded_and_no_hold_after(tmp_path, signum):
    process = start(
        tmp_path, ["python3", "-c", "import time; print('up', flush=True); time.sleep(60)"], 60
    )
    wait_for(process, "up")
    os.kill(wrapper_pid(process), signum)
    returncode, err = finish(process)
    assert returncode in (128 + signum, 1)  # python ends on SIGINT with KeyboardInterrupt: 1
    assert "holding" not in err


def test_hold_window_then_exit_code(tmp_path):
    started = time.monotonic()
    process = start(tmp_path, ["sh", "-c", "exit 7"], seconds=2)
    wait_for(process, "SM_DEBUG_HOLD host=")
    returncode, err = finish(process)
    assert returncode == 7
    assert time.monotonic() - started >= 1.5
    assert "hold ended (hold window over); exiting with 7" in err


def test_release_file_ends_hold_and_stale_one_is_removed(tmp_path):
    (tmp_path / "rel").write_text("")  # left from before: must not end the hold at once
    process = start(tmp_path, ["sh", "-c", "exit 1"], seconds=60)
    wait_for(process, "SM_DEBUG_HOLD")
    time.sleep(1.5)
    assert process.poll() is None
    (tmp_path / "rel").write_text("")
    returncode, err = finish(process)
    assert returncode == 1 and "hold ended (released)" in err


def test_sigterm_ends_hold(tmp_path):
    process = start(tmp_path, ["sh", "-c", "exit 4"], seconds=60)
    wait_for(process, "SM_DEBUG_HOLD")
    os.kill(wrapper_pid(process), signal.SIGTERM)
    returncode, err = finish(process)
    assert returncode == 4 and "hold ended (stopped)" in err


def named(tmp_path: Path, name: str, program: str = DASH) -> str:
    """A copy of `program` (dash) whose process name (comm) is `name`."""
    (tmp_path / program.rsplit("/", 1)[-1]).mkdir(exist_ok=True)
    path = tmp_path / program.rsplit("/", 1)[-1] / name
    shutil.copy(program, path)
    return str(path)


def test_last_ssm_session_ends_hold(tmp_path):
    worker = named(tmp_path, "ssm-session-worker")
    # The failed command leaves an SSM session worker behind; it lives 3 s.
    process = start(tmp_path, ["sh", "-c", f"{worker} -c 'sleep 3; :' & exit 2"], seconds=60)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process)
    assert returncode == 2 and "hold ended (last session closed)" in err


def test_only_authenticated_ssh_sessions_count(tmp_path):
    sshd = named(tmp_path, "sshd")
    waiting = named(tmp_path, "sshd", shutil.which("sleep"))  # sshd with nothing under it
    # A listener with two connections: one still authenticating (only sshd under it, 4 s),
    # one logged in (a shell under it, 3 s). The hold ends when the shell goes, not before.
    script = f'{sshd} -c "{waiting} 8 & {sshd} -c \'sh -c \\"sleep 3; :\\"; :\' & wait" & exit 5'
    started = time.monotonic()
    process = start(tmp_path, ["sh", "-c", script], seconds=60)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process)
    assert returncode == 5 and "hold ended (last session closed)" in err
    assert 2 <= time.monotonic() - started < 7


def test_probe_alone_never_ends_hold(tmp_path):
    sshd = named(tmp_path, "sshd")
    waiting = named(tmp_path, "sshd", shutil.which("sleep"))
    script = f'{sshd} -c "{waiting} 3 & wait" & exit 6'
    process = start(tmp_path, ["sh", "-c", script], seconds=4)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process)
    assert returncode == 6 and "hold ended (hold window over)" in err


def test_an_image_on_sm_debug_entrypoint_is_not_wrapped_twice():
    config = {"Entrypoint": ["sm-debug-entrypoint", "--ssh", "--", "python", "train.py"]}
    plan = hold.plan({"TrainingImage": "x"}, lambda uri: config)
    assert plan["mechanism"] == "entrypoint" and plan["possible"] and plan["fields"] == {}
    wrapped = hold.plan({"TrainingImage": "x"}, lambda uri: {"Entrypoint": ["python", "t.py"]})
    assert wrapped["mechanism"] == "wrapper"
    assert wrapped["fields"]["ContainerArguments"] == ["train"]
