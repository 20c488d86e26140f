"""Attach over SSM with the built-in Session Manager client, through the extension."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from support import attach, wait_gone
from terminal_io import open_terminal


@pytest.fixture
def ssm_job(standin):
    """A running 4-host job with remote debug on (the shared demo jobs stay untouched)."""
    name = f"ssm-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=4, remote_debug=True, started_ago=600)
    return name


async def test_attach_over_ssm_reaches_the_host(api, jp_ws_fetch, ssm_job, terminal_manager):
    status, body = await attach(api, ssm_job, "algo-3", transport="ssm")
    assert status == 201, body
    assert body["target"].startswith(f"sagemaker-training-job:{ssm_job}_algo-3")
    term = terminal_manager.terminals[body["terminal"]["name"]]
    assert term.ptyproc.argv[1:3] == ["-m", "jupyter_sm_debug.ssm.client"]
    assert not any("Token" in part for part in term.ptyproc.argv)  # the token is no argv
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    await terminal.send("echo host=$SM_CURRENT_HOST\r")
    await terminal.expect("host=algo-3", timeout=30)

    await terminal.resize(37, 111)
    await terminal.send("stty size\r")
    await terminal.expect(r"37 111")

    await terminal.send("exit\r")
    assert await terminal.closed(timeout=15)
    assert wait_gone(term.ptyproc.pid, timeout=5)


async def test_four_mib_arrive_intact(api, jp_ws_fetch, ssm_job, standin):
    # In the host's /opt/ml, where its shell starts: a container does not see this
    # machine's /tmp.
    _, ml = standin.host_env(ssm_job, "algo-1")
    payload = Path(ml) / "payload.txt"
    lines = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4 * 1024 * 1024 // 65)]
    payload.write_text("\n".join(lines) + "\n")
    status, body = await attach(api, ssm_job, "algo-1", transport="ssm")
    assert status == 201, body
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    # The quotes keep the typed command line from matching the markers it prints.
    await terminal.send(f'echo BEGIN-""PAYLOAD; cat {payload.name}; echo END-""PAYLOAD\r')
    match = await terminal.expect(r"(?s)BEGIN-PAYLOAD\r\n(.*?)END-PAYLOAD", timeout=120)
    received = match.group(1).replace("\r\n", "\n")
    assert (
        hashlib.sha256(received.encode()).hexdigest()
        == hashlib.sha256(payload.read_bytes()).hexdigest()
    )
    payload.unlink()


async def test_ssm_without_remote_debug_is_409_with_the_hint(api, demo_jobs, terminal_manager):
    before = set(terminal_manager.terminals)
    status, body = await attach(api, demo_jobs["resnet50-ddp-4node"], "algo-3", transport="ssm")
    assert status == 409, body
    assert body["error"]["code"] == "not_attachable"
    assert "Remote debug" in body["error"]["message"]
    assert "Remote debug" in body["error"]["hint"]
    assert set(terminal_manager.terminals) == before


async def test_session_process_gets_the_session_by_variable_not_argv(
    api, ssm_job, terminal_manager
):
    status, body = await attach(api, ssm_job, "algo-2", transport="ssm")
    assert status == 201, body
    pid = terminal_manager.terminals[body["terminal"]["name"]].ptyproc.pid
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        cmdline = handle.read()
    assert b"TokenValue" not in cmdline and b"StreamUrl" not in cmdline
    # The built-in client drops the variable from its own environment once read.
    assert os.path.exists(f"/proc/{pid}")


def host_target(jp_serverapp, job: str, host: str, description: dict, **options):
    from jupyter_sm_debug.connect import HostTarget

    state = jp_serverapp.web_app.settings["sm_debug"]
    return HostTarget(job=job, host=host, description=description, config=state.config,
                      jobs=state.jobs, options=options, transport="ssm")  # fmt: skip


def sessions_of(standin, job: str, host: str) -> list:
    from jupyter_sm_debug.standin import ssm as standin_ssm

    sessions = standin_ssm.registry(standin).sessions
    return [s for s in list(sessions.values()) if s.target.endswith(f"{job}_{host}")]


async def test_run_starts_its_session_with_the_requests_document_as_attach_does(
    jp_serverapp, ssm_job, sagemaker
):
    """Issue 21: SSM's run ignored the request's `document`; both verbs now build the same
    StartSession."""
    from jupyter_sm_debug.connect import CannotAttach
    from jupyter_sm_debug.connect.registry import get_transport

    description = sagemaker.describe_training_job(TrainingJobName=ssm_job)
    target = host_target(jp_serverapp, ssm_job, "algo-1", description, document="No-Such-Doc")
    transport = get_transport("ssm", "run")
    with pytest.raises(CannotAttach) as refused:
        await transport.run(target, ["true"], 30)
    assert refused.value.code == "invalid_document" and "No-Such-Doc" in refused.value.message
    with pytest.raises(CannotAttach) as refused:
        await transport.attach(target)
    assert refused.value.code == "invalid_document"


async def test_every_ssm_verb_terminates_its_session(jp_serverapp, ssm_job, sagemaker, standin):
    """The one session bracket: run ends its session when the command is done and when the
    client fails; a forward's close ends it too."""
    from jupyter_sm_debug.connect.registry import get_transport

    description = sagemaker.describe_training_job(TrainingJobName=ssm_job)
    target = host_target(jp_serverapp, ssm_job, "algo-4", description)
    transport = get_transport("ssm", "run")
    result = await transport.run(target, ["echo", "bracketed"], 60)
    assert result.exit_code == 0 and result.stdout == b"bracketed\n", result
    cut_short = await transport.run(target, ["sleep", "30"], 0.5)
    assert cut_short.exit_code is None and cut_short.timed_out, cut_short
    tunnel = await transport.forward(target, 9)
    await tunnel.close()
    assert tunnel.alive() is False
    sessions = sessions_of(standin, ssm_job, "algo-4")
    assert [s.status for s in sessions] == ["Terminated"] * 3
