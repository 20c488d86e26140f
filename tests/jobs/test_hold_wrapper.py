"""The hold wrapper (jupyter_sm_debug.hold) run by a real POSIX sh (dash), as a container runs
it: exit codes, forwarded signals, the hold and each way it ends, AWS's argument limits.

Each wrapper runs in a PID namespace of its own with its own /proc (as in a container), so
the sessions it counts are only the ones a test makes."""

from __future__ import annotations

import json
import os
import shlex
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


def start(
    tmp_path: Path, command: list[str], seconds: int = 0, prelude: str = ""
) -> subprocess.Popen:
    argv = hold.wrapped_argv(command)
    argv[0] = DASH  # /bin/sh is dash on Debian too; be explicit about the shell under test
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "SM_DEBUG_RELEASE_FILE": str(tmp_path / "rel")}
    if "SAGEMAKER_BASE_DIR" in os.environ:  # the training toolkit's /opt/ml
        env["SAGEMAKER_BASE_DIR"] = os.environ["SAGEMAKER_BASE_DIR"]
    if seconds:
        env[hold.HOLD_VARIABLE] = str(seconds)
    # A mark directory of its own, as each container has its own /tmp.
    private = f"mkdir -p {hold.MARK_DIR} && mount -t tmpfs tmpfs {hold.MARK_DIR} && "
    private += prelude + 'exec "$@"'
    return subprocess.Popen(
        [UNSHARE, "--pid", "--fork", "--mount-proc", "--", DASH, "-c", private, "sh", *argv],
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
    # 95 items fit once the rest goes to ContainerArguments (issue 23, finding 6); 200 don't.
    fields = hold.container_fields(["x"] * 95, ["train"])
    assert len(fields["ContainerEntrypoint"]) == hold.MAX_ITEMS
    assert fields["ContainerEntrypoint"] + fields["ContainerArguments"] == hold.wrapped_argv(
        ["x"] * 95 + ["train"]
    )
    with pytest.raises(ValueError):
        hold.container_fields(["x"] * 95, ["train"] * 100)


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


# -- finding 1: the extension's own sessions never end a hold -------------------------------


def tool(argv: list[str]) -> str:
    """A shell command line running argv as the extension runs every command on a host."""
    return " ".join(shlex.quote(a) for a in hold.tool_argv(argv))


def test_an_ssm_run_session_never_ends_the_hold(tmp_path):
    worker = named(tmp_path, "ssm-session-worker")
    # An SSM shell session is unmarked until the command is typed into it (2 s here, so the
    # hold sees it unmarked first), then the extension's command runs and the session ends.
    typed = f"sleep 2; {tool(['sh', '-c', 'sleep 1; exit 0'])}; :"
    script = f"{worker} -c {shlex.quote(typed)} & exit 3"
    process = start(tmp_path, ["sh", "-c", script], seconds=6)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process)
    assert returncode == 3 and "hold ended (hold window over)" in err, err


def test_an_ssh_run_session_never_ends_the_hold(tmp_path):
    sshd = named(tmp_path, "sshd")
    # sshd runs the client's command through the user's shell: `sh -c "env SM_DEBUG_...`.
    command = tool(["sh", "-c", "sleep 2; exit 0"])
    script = f"{sshd} -c {shlex.quote(f'{sshd} -c {shlex.quote(command)}; :')} & exit 4"
    process = start(tmp_path, ["sh", "-c", script], seconds=5)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process)
    assert returncode == 4 and "hold ended (hold window over)" in err, err


def test_a_port_forward_session_never_counts(tmp_path):
    worker = named(tmp_path, "ssm-session-worker", shutil.which("sleep"))  # runs nothing
    process = start(tmp_path, ["sh", "-c", f"{worker} 2 & exit 5"], seconds=4)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process)
    assert returncode == 5 and "hold ended (hold window over)" in err, err


def test_a_person_leaving_ends_the_hold_while_a_run_goes_on(tmp_path):
    worker = named(tmp_path, "ssm-session-worker")
    person = f"{worker} -c 'sleep 2; :'"
    run = f"{worker} -c {shlex.quote(tool(['sh', '-c', 'sleep 30']) + '; :')}"
    process = start(tmp_path, ["sh", "-c", f"{person} & {run} & exit 6"], seconds=60)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process, timeout=30)
    assert returncode == 6 and "hold ended (last session closed)" in err, err


def test_a_planted_link_is_no_mark(tmp_path):
    worker = named(tmp_path, "ssm-session-worker")
    # A person's session whose pid someone linked into the mark directory still counts.
    plant = f"ln -s / {hold.MARK_DIR}/$$; sleep 2; :"
    process = start(tmp_path, ["sh", "-c", f"{worker} -c {shlex.quote(plant)} & exit 7"], 60)
    wait_for(process, "SM_DEBUG_HOLD")
    returncode, err = finish(process)
    assert returncode == 7 and "hold ended (last session closed)" in err, err


def test_a_session_is_known_as_the_extensions_from_outside_its_namespaces(tmp_path):
    """subtree_marked, for a host that counts sessions from outside (the stand-in): the
    mark directory is read as the session's processes see it (their /tmp, their pids)."""

    private = f"mkdir -p {hold.MARK_DIR} && mount -t tmpfs tmpfs {hold.MARK_DIR} && "
    # Typed into a shell (no mark in any argv): it marks, then runs unmarked.
    (tmp_path / "typed").write_text(f"sleep 1; {tool(['true'])}; sleep 30\n")
    marked_later = f"{DASH} {tmp_path / 'typed'}"
    plain = "sleep 30"
    shells = {
        name: subprocess.Popen(
            [UNSHARE, "--pid", "--fork", "--mount-proc", "--", DASH, "-c", private + command],
            start_new_session=True,
        )
        for name, command in (("marked", marked_later), ("plain", plain))
    }
    try:
        assert not hold.subtree_marked(shells["marked"].pid)
        deadline = time.monotonic() + 20
        while not hold.subtree_marked(shells["marked"].pid):
            assert time.monotonic() < deadline, "the mark never showed"
            time.sleep(0.1)
        assert not hold.subtree_marked(shells["plain"].pid)
    finally:
        for shell in shells.values():
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()


# -- issue 23, finding 2: Stop under the wrapper is at least as kind as without it -----------

GRACEFUL = """
import os, signal, sys, time
out = sys.argv[1]
def stop(signum, frame):
    time.sleep(2)  # final writes: a checkpoint, the model
    with open(out, "w") as handle:
        handle.write("saved")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("up", flush=True)
while True:
    time.sleep(0.1)
"""


def test_stop_lets_a_byo_entrypoint_with_a_handler_finish(tmp_path):
    """Exec form, the training program itself is the command: SIGTERM reaches its handler,
    the wrapper waits for it and exits with its code (0), not 143."""
    (tmp_path / "train.py").write_text(GRACEFUL)
    saved = tmp_path / "model"
    process = start(tmp_path, ["python3", str(tmp_path / "train.py"), str(saved)], seconds=60)
    wait_for(process, "up")
    os.kill(wrapper_pid(process), signal.SIGTERM)
    returncode, err = finish(process, timeout=30)
    assert returncode == 0, err
    assert saved.read_text() == "saved"
    assert "holding" not in err


def test_stop_reaches_training_under_a_job_control_launcher(tmp_path):
    """DLC script mode's shape: `bash -m <script> train` runs the training in a process group
    of its own. SIGTERM reaches the training (not only bash), the wrapper waits for it, and
    the exit code is the launcher's as the training ended it."""
    (tmp_path / "train.py").write_text(GRACEFUL)
    saved = tmp_path / "model"
    launcher = tmp_path / "start.sh"
    launcher.write_text(f'python3 {tmp_path / "train.py"} "$@"\necho "launcher saw $?"\n')
    bash = shutil.which("bash")
    process = start(tmp_path, [bash, "-m", str(launcher), str(saved)], seconds=60)
    wait_for(process, "up")
    os.kill(wrapper_pid(process), signal.SIGTERM)
    returncode, err = finish(process, timeout=30)
    assert saved.read_text() == "saved", err
    assert returncode == 0, err
    assert "holding" not in err


def test_stop_waits_for_orphans_within_the_grace(tmp_path):
    """The command exits on SIGTERM at once but leaves a worker that needs 2 s to save: the
    container (PID 1, the wrapper) stays up until it did, within SM_DEBUG_STOP_GRACE."""
    (tmp_path / "train.py").write_text(GRACEFUL)
    saved = tmp_path / "model"
    script = f"python3 {tmp_path / 'train.py'} {saved} & sleep 60"
    process = start(tmp_path, ["sh", "-c", script], seconds=60)
    wait_for(process, "up")
    os.kill(wrapper_pid(process), signal.SIGTERM)
    returncode, err = finish(process, timeout=30)
    assert saved.read_text() == "saved", err
    assert returncode == 128 + signal.SIGTERM  # sh itself died of it: its code, as Docker's


# -- issue 23, finding 7: no `env --default-signal` -------------------------------------------


def test_without_env_default_signal_the_command_still_gets_sigint(tmp_path):
    """An env without --default-signal (coreutils < 8.31, BusyBox): SIGINT is not left
    ignored in the command."""
    fake_env = tmp_path / "env"
    fake_env.write_text('#!/bin/sh\necho "env: unrecognized option" >&2\nexit 125\n')
    fake_env.chmod(0o755)
    probe = "grep SigIgn /proc/self/status"
    process = start(tmp_path, ["sh", "-c", probe])
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    ignored = int(out.split()[-1], 16) if out else None
    assert ignored is not None and not ignored & (1 << (signal.SIGINT - 1)), out


TOOLKIT = (
    Path(os.environ.get("SM_DEBUG_TOOLKIT_VENV", Path.home() / ".cache/hold-toolkit/venv"))
    / "bin"
    / "train"
)


@pytest.mark.skipif(
    not TOOLKIT.exists(),
    reason="needs the SageMaker training toolkit in a venv: python3 -m venv ~/.cache/"
    "hold-toolkit/venv && ~/.cache/hold-toolkit/venv/bin/pip install sagemaker-training "
    "(or SM_DEBUG_TOOLKIT_VENV)",
)
@pytest.mark.timeout(400)
def test_stop_with_the_real_training_toolkit_in_script_mode(tmp_path):
    """A DLC in script mode: `bash -m <start script> train` runs the toolkit (sagemaker-
    training), which runs the user's train.py. On Stop the user's SIGTERM handler runs and
    its final write lands in the model directory before the container ends."""
    ml = tmp_path / "ml"
    config = ml / "input" / "config"
    config.mkdir(parents=True)
    (ml / "model").mkdir()
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(
        GRACEFUL.replace(
            "out = sys.argv[1]", 'out = os.environ["SM_MODEL_DIR"] + "/model.txt"'
        ).replace('print("up", flush=True)', f'open("{tmp_path / "up"}", "w").close()')
    )
    (config / "hyperparameters.json").write_text(
        json.dumps({"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{code}"'})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"})
    )
    (config / "inputdataconfig.json").write_text("{}")
    start_script = tmp_path / "start_with_right_hostname.sh"
    start_script.write_text(f'if [ "$1" = train ]; then {TOOLKIT}; else eval "$@"; fi\n')
    bash = shutil.which("bash")
    os.environ["SAGEMAKER_BASE_DIR"] = str(ml)
    try:
        # The toolkit waits until every host's name resolves: algo-1 is this one.
        (tmp_path / "hosts").write_text("127.0.0.1 localhost algo-1\n")
        prelude = f"mount --bind {tmp_path / 'hosts'} /etc/hosts && "
        process = start(tmp_path, [bash, "-m", str(start_script), "train"], 60, prelude)
    finally:
        del os.environ["SAGEMAKER_BASE_DIR"]
    deadline = time.monotonic() + 240  # the toolkit starts slowly on a loaded machine
    while not (tmp_path / "up").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the script never ran"
        time.sleep(0.2)
    os.kill(wrapper_pid(process), signal.SIGTERM)
    returncode, err = finish(process, timeout=60)
    assert (ml / "model" / "model.txt").read_text() == "saved", err[-2000:]
    assert "holding" not in err
    assert returncode in (0, 128 + signal.SIGTERM), err[-2000:]
