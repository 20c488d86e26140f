"""Faults, each answered in the UI's one error shape, and nothing lost or left behind:
throttling (botocore retries, then 429), expired and missing credentials, the endpoint
down, a job that ends or a host that dies under an open session, a session client that is
not installed, and the Jupyter server stopping with sessions open."""

from __future__ import annotations

import signal

import pytest
from hardening_helpers import (
    SHORT,
    JupyterServer,
    SyncTerminal,
    assert_error,
    async_wait_until,
    descendants,
    describe_processes,
    end_created_jobs,  # noqa: F401 - module fixture: stops the jobs made here
    raw_client,
    running_job,
    session_clients,
    unique,
    wait_gone,
    wait_until,
)
from terminal_io import open_terminal

from jupyter_sm_debug.standin.ssm import registry

MAX_ATTEMPTS = 2  # c.SMDebug.max_attempts, for quick faults


def attempts(counted: int) -> bool:
    """botocore's standard mode reads retries={"max_attempts": N} as N retries after the
    first try (N + 1 attempts in all; "total_max_attempts" is the total): either way, the
    call was retried."""
    return counted in (MAX_ATTEMPTS, MAX_ATTEMPTS + 1)


FAULTS: list[str] = []  # faults injected, reported by the last test


@pytest.fixture
def smdebug_config() -> dict:
    """Extra c.SMDebug settings; a test overrides it with @pytest.mark.parametrize."""
    return {}


@pytest.fixture
def jp_server_config(jp_server_config, smdebug_config):
    settings = {**jp_server_config["SMDebug"], "max_attempts": MAX_ATTEMPTS, **smdebug_config}
    return {**jp_server_config, "SMDebug": settings}


@pytest.fixture
def raw(http_server_client, jp_base_url, jp_auth_header):
    return raw_client(http_server_client, jp_base_url, jp_auth_header)


@pytest.fixture
def calls(standin, monkeypatch) -> list:
    """The AWS actions the stand-in is asked for (attempts, retries included)."""
    seen: list = []
    faults = standin.faults
    original = faults.take

    def take(action):
        seen.append(action)
        return original(action)

    monkeypatch.setattr(faults, "take", take)
    return seen


@pytest.fixture
def clean_faults(standin):
    yield
    standin.clear_faults()


def attach_path(job: str, host: str = "algo-1") -> str:
    return f"/sm-debug/jobs/{job}/hosts/{host}/terminals"


# -- the control plane ------------------------------------------------------------------------


async def test_throttling_is_retried_then_429_with_a_hint(raw, standin, calls, clean_faults):
    job = running_job(standin, "throttled")
    standin.set_faults(throttle=50, throttle_action="DescribeTrainingJob")
    status, answer, _ = await raw("GET", f"/sm-debug/jobs/{job}")
    FAULTS.append("throttle (every attempt)")
    assert_error(status, answer, 429, "throttled")
    assert "retries" in answer["error"]["message"]
    assert "refresh" in answer["error"]["hint"].lower()
    assert attempts(calls.count("DescribeTrainingJob")), calls  # botocore retried

    # Throttling that passes within the retries is invisible to the user.
    del calls[:]
    standin.set_faults(throttle=1, throttle_action="DescribeTrainingJob")
    status, answer, _ = await raw("GET", f"/sm-debug/jobs/{job}")
    FAULTS.append("throttle (passes on retry)")
    assert status == 200, answer
    assert calls.count("DescribeTrainingJob") == 2


async def test_expired_credentials_are_403_with_what_to_do(
    raw, standin, calls, clean_faults, terminal_manager
):
    job = running_job(standin, "expired")
    terminals = set(terminal_manager.terminals)
    standin.faults.update(expired=True)
    for method, path, body in (
        ("GET", "/sm-debug/jobs", None),
        ("GET", f"/sm-debug/jobs/{job}", None),
        ("PUT", f"/sm-debug/jobs/{job}/remote-debug", {"enabled": False}),
        ("POST", f"/sm-debug/jobs/{job}/debug-copy", {}),
        ("POST", attach_path(job), {"transport": "ssh"}),
        ("POST", attach_path(job), {"transport": "ssm"}),
    ):
        del calls[:]
        status, answer, _ = await raw(method, path, body)
        FAULTS.append(f"expired credentials: {method} {path}")
        assert_error(status, answer, 403, "credentials_rejected")
        assert "ExpiredToken" in answer["error"]["message"]
        assert "refresh" in answer["error"]["hint"]
        assert len(calls) == 1, calls  # no retry can help: asked once
    status, env, _ = await raw("GET", "/sm-debug/environment")
    assert status == 200
    assert [p["code"] for p in env["problems"]] == ["credentials_rejected"]
    assert set(terminal_manager.terminals) == terminals
    standin.clear_faults()
    status, answer, _ = await raw("GET", f"/sm-debug/jobs/{job}")
    assert status == 200, answer


async def test_missing_credentials_are_503_on_every_route(
    raw, standin, monkeypatch, terminal_manager
):
    job = running_job(standin, "nocreds")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    terminals = set(terminal_manager.terminals)
    for method, path, body in (
        ("GET", "/sm-debug/jobs", None),
        ("GET", f"/sm-debug/jobs/{job}", None),
        ("PUT", f"/sm-debug/jobs/{job}/remote-debug", {"enabled": False}),
        ("POST", f"/sm-debug/jobs/{job}/debug-copy", {}),
        ("POST", attach_path(job), {"transport": "ssm"}),
    ):
        status, answer, _ = await raw(method, path, body)
        FAULTS.append(f"no credentials: {method} {path}")
        assert_error(status, answer, 503, "no_credentials")
        assert "aws configure" in answer["error"]["hint"]
    status, env, _ = await raw("GET", "/sm-debug/environment")
    assert env["credentials"]["found"] is False
    assert "no_credentials" in [p["code"] for p in env["problems"]]
    assert set(terminal_manager.terminals) == terminals


async def test_endpoint_down_is_503_then_recovers(raw, standin, calls, clean_faults):
    job = running_job(standin, "down")
    standin.set_faults(down=True)
    for path in ("/sm-debug/jobs", f"/sm-debug/jobs/{job}"):
        status, answer, _ = await raw("GET", path)
        FAULTS.append(f"endpoint down: GET {path}")
        assert_error(status, answer, 503, "aws_error")
        assert "ServiceUnavailable" in answer["error"]["message"]
        assert answer["error"]["hint"]
    assert attempts(calls.count("DescribeTrainingJob")), calls  # retried: a 503 may pass
    status, answer, _ = await raw("POST", attach_path(job), {"transport": "ssh"})
    assert_error(status, answer, 503)
    standin.set_faults(down=False)
    status, answer, _ = await raw("GET", f"/sm-debug/jobs/{job}")
    assert status == 200, answer


# -- sessions whose other end goes away -------------------------------------------------------


async def open_session(raw, jp_ws_fetch, terminal_manager, job, host, transport):
    status, answer, _ = await raw("POST", attach_path(job, host), {"transport": transport})
    assert status == 201, answer
    name = answer["terminal"]["name"]
    pid = terminal_manager.terminals[name].ptyproc.pid
    terminal = await open_terminal(jp_ws_fetch, name)
    await terminal.send('echo "up-""$SM_CURRENT_HOST"\r')
    await terminal.expect(f"up-{host}", timeout=30)
    return name, pid, terminal


async def test_the_ssm_session_ends_when_the_job_ends(raw, jp_ws_fetch, standin, terminal_manager):
    job = unique("ssm-ends")
    # 5 s of training left, then 20 s of upload: the shared clock moves only 30 s.
    standin.create_job(job, remote_debug=True, schedule=SHORT, started_ago=95)
    name, pid, terminal = await open_session(
        raw, jp_ws_fetch, terminal_manager, job, "algo-1", "ssm"
    )
    standin.advance(30)  # training and upload finish: the container goes away
    FAULTS.append("job ends under an SSM session")
    assert await terminal.closed(timeout=20)
    assert wait_gone([pid], timeout=5) == set()
    assert await async_wait_until(lambda: name not in terminal_manager.terminals, timeout=5)
    status, answer, _ = await raw("POST", attach_path(job), {"transport": "ssm"})
    assert_error(status, answer, 409, "not_attachable")


async def test_a_host_that_dies_ends_its_sessions(raw, jp_ws_fetch, standin, terminal_manager):
    job = running_job(standin, "dies", hosts=2)
    baseline = session_clients(standin)  # other tests' sessions, if any, are not ours
    sessions = [
        await open_session(raw, jp_ws_fetch, terminal_manager, job, host, transport)
        for host, transport in (("algo-1", "ssh"), ("algo-1", "ssm"), ("algo-2", "ssh"))
    ]
    clients = session_clients(standin) - baseline
    assert len(clients) == 3, describe_processes(clients)
    standin.kill_host(job, "algo-1")  # SageMaker fails the job: every host goes
    FAULTS.append("host killed under SSH and SSM sessions")
    for name, pid, terminal in sessions:
        assert await terminal.closed(timeout=20), name
        assert wait_gone([pid], timeout=5) == set(), name
    assert await async_wait_until(
        lambda: not any(name in terminal_manager.terminals for name, _, _ in sessions)
    )
    assert wait_gone(clients, timeout=5) == set()
    status, job_detail, _ = await raw("GET", f"/sm-debug/jobs/{job}")
    assert job_detail["status"] == "Failed" and "algo-1" in job_detail["failure_reason"]
    status, answer, _ = await raw("POST", attach_path(job, "algo-2"), {"transport": "ssh"})
    assert_error(status, answer, 409, "not_attachable")


# -- a session client that is not there --------------------------------------------------------


@pytest.mark.parametrize("smdebug_config", [{"ssm_client": "plugin"}])
async def test_plugin_required_but_missing_is_a_clear_error(
    raw, standin, terminal_manager, monkeypatch
):
    job = running_job(standin, "noplugin")
    terminals = set(terminal_manager.terminals)
    status, answer, _ = await raw("POST", attach_path(job), {"transport": "ssm"})
    FAULTS.append("session-manager-plugin missing")
    assert_error(status, answer, 503, "plugin_missing")
    assert "session-manager-plugin" in answer["error"]["message"]
    assert "Install" in answer["error"]["hint"]
    status, env, _ = await raw("GET", "/sm-debug/environment")
    assert env["clients"]["ssm"] is None and env["clients"]["session_manager_plugin"] is None
    assert set(terminal_manager.terminals) == terminals
    assert not [s for s in registry(standin).sessions.values() if s.job == job]  # no session


async def test_ssh_missing_is_a_clear_error(raw, standin, terminal_manager, monkeypatch, tmp_path):
    job = running_job(standin, "nossh")
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without ssh
    terminals = set(terminal_manager.terminals)
    status, answer, _ = await raw("POST", attach_path(job), {"transport": "ssh"})
    FAULTS.append("ssh missing")
    assert_error(status, answer, (409, 503), "ssh_client_missing")
    assert "OpenSSH" in answer["error"]["message"] and "apt-get" in answer["error"]["hint"]
    status, env, _ = await raw("GET", "/sm-debug/environment")
    assert env["clients"]["ssh"] is None
    assert set(terminal_manager.terminals) == terminals


# -- the Jupyter server stops with sessions open -----------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_server_stopping_with_sessions_open_leaves_no_process(standin, tmp_path, sig):
    job = running_job(standin, "restart", hosts=2)
    baseline = session_clients(standin)  # other tests' sessions, if any, are not ours
    server = JupyterServer(standin, tmp_path / "server").start()
    terminals = []
    try:
        for host, transport in (("algo-1", "ssh"), ("algo-2", "ssm")):
            status, answer, _ = server.request(
                "POST", attach_path(job, host), {"transport": transport}
            )
            assert status == 201, answer
            terminal = SyncTerminal(server, answer["terminal"]["name"])
            terminal.send('echo "up-""$SM_CURRENT_HOST"\r')
            terminal.expect(f"up-{host}")
            terminals.append(terminal)
        below = descendants(server.proc.pid)
        clients = session_clients(standin) - baseline
        assert len(clients) == 2 and clients <= below, describe_processes(below)
        sessions = [s for s in registry(standin).sessions.values() if s.job == job]
        assert [s.status for s in sessions] == ["Connected"]
        FAULTS.append(f"server {sig.name} with an SSH and an SSM session open")
        server.stop(sig)
    finally:
        for terminal in terminals:
            terminal.close()
        server.stop()
    # The session clients end on their terminal's hangup (SIGHUP when the PTY's master
    # closes with the server); on a loaded machine that took over 5 s once (CI).
    left = wait_gone(below, timeout=20)
    assert left == set(), describe_processes(left)
    assert wait_until(lambda: not session_clients(standin) - baseline, timeout=5)
    # The stand-in's side ends too: the SSM shell and the sshd connection of each host.
    assert wait_until(lambda: sessions[0].status == "Terminated", timeout=10)
    assert wait_until(lambda: standin.host_address(job, "algo-1") is not None)  # host still up

    # A new server attaches afresh.
    again = JupyterServer(standin, tmp_path / "again").start()
    try:
        status, answer, _ = again.request("POST", attach_path(job, "algo-1"), {"transport": "ssh"})
        assert status == 201 and answer["reused"] is False, answer
    finally:
        again.stop()
    assert wait_until(lambda: not session_clients(standin) - baseline, timeout=5)


def test_report_faults(capsys):
    with capsys.disabled():
        print(f"\nfaults injected: {len(FAULTS)}")
