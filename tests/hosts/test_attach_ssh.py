"""Attach over SSH: a JupyterLab terminal whose process is ssh into a stand-in host."""

from __future__ import annotations

import os
import time

import pytest
from support import alive, attach, wait_gone
from terminal_io import open_terminal

pytestmark = pytest.mark.usefixtures("standin")


async def test_attach_opens_a_shell_on_the_chosen_host(api, jp_ws_fetch, demo_jobs):
    job = demo_jobs["resnet50-ddp-4node"]
    status, body = await attach(api, job, "algo-2", transport="ssh")
    assert status == 201, body
    assert body["transport"] == "ssh"
    assert body["reused"] is False
    name = body["terminal"]["name"]
    assert name.startswith("smdebug_") and name.replace("_", "").isalnum()
    terminal = await open_terminal(jp_ws_fetch, name)
    await terminal.send("echo host=$SM_CURRENT_HOST\r")
    await terminal.expect(r"host=algo-2")
    await terminal.send("cat $SM_INPUT_CONFIG_DIR/resourceconfig.json; echo\r")
    await terminal.expect(r'"current_host": *"algo-2"')
    terminal.ws.close()


async def test_a_second_attach_returns_the_live_terminal(api, demo_jobs, terminal_manager):
    job = demo_jobs["resnet50-ddp-4node"]
    status, first = await attach(api, job, "algo-3", transport="ssh")
    assert status == 201, first
    name = first["terminal"]["name"]
    pid = terminal_manager.terminals[name].ptyproc.pid
    status, second = await attach(api, job, "algo-3", transport="ssh")
    assert status == 200 and second["reused"] is True
    assert second["terminal"]["name"] == name
    assert terminal_manager.terminals[name].ptyproc.pid == pid
    assert [n for n in terminal_manager.terminals if n == name] == [name]


async def test_deleting_the_terminal_ends_the_ssh_process(
    api, jp_fetch, demo_jobs, terminal_manager
):
    job = demo_jobs["resnet50-ddp-4node"]
    status, body = await attach(api, job, "algo-4", transport="ssh")
    assert status == 201, body
    name = body["terminal"]["name"]
    pid = terminal_manager.terminals[name].ptyproc.pid
    assert alive(pid)
    response = await jp_fetch("api", "terminals", name, method="DELETE")
    assert response.code == 204
    assert wait_gone(pid)


async def test_session_argv_and_environment_hold_only_validated_parts(
    api, demo_jobs, terminal_manager, standin
):
    job = demo_jobs["resnet50-ddp-4node"]
    status, body = await attach(api, job, "algo-1", transport="ssh")
    assert status in (200, 201), body
    term = terminal_manager.terminals[body["terminal"]["name"]]
    argv = term.ptyproc.argv
    assert os.path.basename(argv[0]) == "ssh"
    assert argv[-2] == "--" and argv[-1] == "127.0.0.1"
    assert str(standin.client_key_path) in argv
    assert job not in " ".join(argv)  # the job name never reaches the argv
    with open(f"/proc/{term.ptyproc.pid}/environ", "rb") as handle:
        names = {item.split(b"=", 1)[0].decode() for item in handle.read().split(b"\0") if item}
    assert not {name for name in names if name.startswith("AWS_")}
    assert "JUPYTER_TOKEN" not in names


async def test_attach_to_a_finished_job_is_409(api):
    status, page = await api("GET", "jobs", status="Completed")
    name = page["jobs"][0]["name"]
    status, body = await attach(api, name, "algo-1", transport="ssh")
    assert status == 409, body
    assert body["error"]["code"] == "not_attachable"
    assert "Completed" in body["error"]["message"]


async def test_host_out_of_range_is_404(api, demo_jobs, terminal_manager):
    before = set(terminal_manager.terminals)
    status, body = await attach(api, demo_jobs["resnet50-ddp-4node"], "algo-5", transport="ssh")
    assert status == 404 and body["error"]["code"] == "host_not_found", body
    assert "algo-4" in body["error"]["hint"]
    assert set(terminal_manager.terminals) == before


@pytest.mark.parametrize(
    "host", ["algo-0", "algo-01", "algo-2;id", "../algo-1", "algo-x", "ALGO-1"]
)
async def test_malformed_host_names_are_400(api, demo_jobs, host, terminal_manager):
    before = set(terminal_manager.terminals)
    status, body = await attach(api, demo_jobs["resnet50-ddp-4node"], host, transport="ssh")
    assert status in (400, 404), body
    assert body["error"]["code"] in ("invalid_host_name", "no_such_route")
    assert set(terminal_manager.terminals) == before


async def test_unreachable_address_is_a_clear_409(api, demo_jobs):
    status, body = await attach(
        api, demo_jobs["resnet50-ddp-4node"], "algo-1", transport="ssh", address="127.0.0.1:9"
    )
    assert status == 409, body
    assert body["error"]["code"] == "host_unreachable"
    assert "127.0.0.1:9" in body["error"]["message"]


@pytest.mark.parametrize("address", ["-oProxyCommand=touch /tmp/x", "a b", "host:99999", "$(id)"])
async def test_hostile_addresses_are_400(api, demo_jobs, address, terminal_manager):
    before = set(terminal_manager.terminals)
    status, body = await attach(
        api, demo_jobs["resnet50-ddp-4node"], "algo-1", transport="ssh", address=address
    )
    assert status == 400 and body["error"]["code"] == "invalid_address", body
    assert set(terminal_manager.terminals) == before


async def test_unknown_transport_is_400(api, demo_jobs):
    status, body = await attach(api, demo_jobs["resnet50-ddp-4node"], "algo-1", transport="telnet")
    assert status == 400 and body["error"]["code"] == "invalid_transport"


async def test_the_session_ends_when_the_job_ends(api, jp_ws_fetch, standin, terminal_manager):
    name = f"ends-{os.getpid()}-{time.monotonic_ns() % 100000}"
    phases = {"starting": 20, "downloading": 20, "training": 60, "uploading": 20}
    standin.create_job(name, instance_count=1, started_ago=60, schedule=phases)
    status, body = await attach(api, name, "algo-1", transport="ssh")
    assert status == 201, body
    pid = terminal_manager.terminals[body["terminal"]["name"]].ptyproc.pid
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    await terminal.send("echo ready-$SM_CURRENT_HOST\r")
    await terminal.expect("ready-algo-1")
    standin.advance(120)  # training and upload finish; the containers go away
    assert await terminal.closed(timeout=15)
    assert wait_gone(pid, timeout=5)


async def test_a_local_shell_under_our_name_is_never_reused(api, demo_jobs, terminal_manager):
    """After a reload JupyterLab may recreate a vanished name as a local shell."""
    job = demo_jobs["hetero-preprocess-train"]
    from jupyter_sm_debug.terminals import terminal_name

    name = terminal_name(job, "algo-1", "ssh")
    terminal_manager.create(name=name)  # what `terminal:open {name}` does for a vanished name
    impostor = terminal_manager.terminals[name].ptyproc.pid
    status, body = await attach(api, job, "algo-1", transport="ssh")
    assert status == 201 and body["reused"] is False, body
    assert body["terminal"]["name"] == name
    term = terminal_manager.terminals[name]
    assert os.path.basename(term.ptyproc.argv[0]) == "ssh"
    assert wait_gone(impostor)


def session_directories() -> set[str]:
    import glob
    import tempfile

    return set(glob.glob(os.path.join(tempfile.gettempdir(), "sm-debug-ssh-*")))


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """This server's temporary directories in a directory of the test's own (other test
    runs on the machine share /tmp)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


async def until(condition, timeout: float = 30.0) -> bool:
    import asyncio

    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return condition()


async def test_the_sessions_directory_goes_with_its_terminal(
    api, jp_fetch, demo_jobs, terminal_manager, own_tmp
):
    """Issue 21: each SSH attach left its /tmp/sm-debug-ssh-* directory (the pinned
    known_hosts) behind. It goes when the terminal ends, and a reuse leaves none either."""
    job = demo_jobs["resnet50-ddp-4node"]
    before = session_directories()
    status, body = await attach(api, job, "algo-2", transport="ssh", replace=True)
    assert status in (200, 201), body
    name = body["terminal"]["name"]
    argv = terminal_manager.terminals[name].ptyproc.argv
    known_hosts = next(a.split("=", 1)[1] for a in argv if a.startswith("UserKnownHostsFile="))
    directory = os.path.dirname(known_hosts)
    assert os.stat(directory).st_mode & 0o777 == 0o700
    status, again = await attach(api, job, "algo-2", transport="ssh")
    assert status == 200 and again["reused"] is True, again
    assert await until(lambda: session_directories() - before <= {directory})
    response = await jp_fetch("api", "terminals", name, method="DELETE")
    assert response.code == 204
    assert await until(lambda: not os.path.exists(directory)), directory
    assert await until(lambda: session_directories() - before == set())


async def test_without_an_ssh_client_ssh_is_unavailable_and_says_so(api, demo_jobs, monkeypatch):
    """Issue 21: with no OpenSSH client on the Jupyter server, SSH is unavailable in the
    job's detail and the environment report, and Attach's error names the missing client
    (not the image), before any AWS or log lookup."""
    monkeypatch.setenv("PATH", "/nonexistent")
    status, body = await attach(api, demo_jobs["resnet50-ddp-4node"], "algo-1", transport="ssh")
    assert status == 503, body
    error = body["error"]
    assert error["code"] == "ssh_client_missing"
    assert "OpenSSH client (ssh)" in error["message"] and "Jupyter server" in error["message"]
    assert "image" not in error["message"] + error["hint"]
    status, detail = await api("GET", "jobs", demo_jobs["resnet50-ddp-4node"])
    assert detail["attach"]["ssh"] == {"ok": False, "reason": error["message"]}
    status, environment = await api("GET", "environment")
    assert "ssh_client_missing" in [problem["code"] for problem in environment["problems"]]


def test_session_directories_go_when_the_server_process_exits(tmp_path):
    """A terminal killed with the server never reports its end: what is left of its
    sessions' directories goes when the server's process exits."""
    import subprocess
    import sys

    script = (
        "from jupyter_sm_debug.connect import process\n"
        "print(process.private_directory('sm-debug-ssh-'), flush=True)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    directory = done.stdout.strip()
    assert directory.startswith(str(tmp_path)) and not os.path.exists(directory)


async def test_hosts_without_sshd_say_so_rather_than_blame_the_image(api, standin, monkeypatch):
    """Issue 21: on a machine without sshd the demo's stand-in hosts run without SSH. They
    report it as sm-debug-entrypoint does, and Attach names the missing server."""
    monkeypatch.setattr(standin.backends.hosts.ssh, "sshd", None)
    name = f"no-sshd-{os.getpid()}-{time.monotonic_ns() % 100000}"
    standin.create_job(name, instance_count=1, started_ago=60)
    status, body = await attach(api, name, "algo-1", transport="ssh")
    assert status == 409, body
    error = body["error"]
    assert error["code"] == "ssh_failed_in_container"
    assert "OpenSSH server (sshd) is not installed" in error["message"]
    assert "openssh-server" in error["hint"] and "sm-debug-entrypoint --ssh" not in error["hint"]


async def test_ssh_run_feeds_stdin_keeps_the_exit_code_and_leaves_no_directory(
    jp_serverapp, demo_jobs, sagemaker, own_tmp
):
    """The run verb through the shared process module: argv quoted for the remote shell,
    stdin fed, exit code kept, and the session's directory gone when it returns."""
    from jupyter_sm_debug.connect import HostTarget
    from jupyter_sm_debug.connect.registry import get_transport

    job = demo_jobs["resnet50-ddp-4node"]
    state = jp_serverapp.web_app.settings["sm_debug"]
    description = sagemaker.describe_training_job(TrainingJobName=job)
    target = HostTarget(
        job=job, host="algo-1", description=description, config=state.config, jobs=state.jobs
    )
    before = session_directories()
    result = await get_transport("ssh", "run").run(
        target, ["sh", "-c", 'cat; echo "$1"; exit 3', "-", "a b;c"], 60, stdin=b"in\n"
    )
    assert (result.exit_code, result.stdout, result.error) == (3, b"in\na b;c\n", None), result
    assert session_directories() - before == set()
