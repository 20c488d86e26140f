"""The run-a-command primitive of each transport, through the extension's own services
against the stand-in's hosts (real sshd, real SSM sessions)."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import uuid

import pytest
from hardening_helpers import JupyterServer

from jupyter_sm_debug.connect import HostTarget
from jupyter_sm_debug.hostrun import run_on_hosts
from jupyter_sm_debug.standin import ssm as standin_ssm

pytestmark = pytest.mark.usefixtures("standin")


@pytest.fixture
def run_job(standin):
    name = f"run-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=3, remote_debug=True, started_ago=600)
    return name


async def run(services, job, argv, transport, timeout=20.0, hosts=None, stdin=b""):
    description = await services.jobs.describe(job, fresh=True)
    targets = [
        HostTarget(job, host, description, services.config, services.jobs, transport=transport)
        for host in hosts or ["algo-1", "algo-2", "algo-3"]
    ]
    return await run_on_hosts(targets, argv, timeout, stdin)


def sessions_of(standin, job) -> dict:
    """The stand-in's SSM sessions to this job's hosts: {session id: status}."""
    found = standin_ssm.registry(standin).sessions
    return {sid: s.status for sid, s in list(found.items()) if job in str(getattr(s, "target", ""))}


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_exit_code_stdout_and_stderr_come_apart(services, run_job, transport):
    script = 'echo "out on $SM_CURRENT_HOST"; echo "err $1" >&2; exit 3'
    results = await run(services, run_job, ["sh", "-c", script, "sh", "a b;$(x)"], transport)
    for host, result in results.items():
        assert result.error is None and not result.timed_out, result
        assert result.exit_code == 3
        assert result.stdout == f"out on {host}\n".encode()
        # The argument arrives as one word, never run by a shell; no PTY echo, no prompt.
        assert result.stderr == b"err a b;$(x)\n"


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_stdin_and_more_than_a_mib_of_output_arrive_intact(services, run_job, transport):
    data = os.urandom(300 * 1024)
    results = await run(
        services, run_job, ["sh", "-c", "cat; head -c 1200000 /dev/zero | tr '\\0' x"],
        transport, timeout=60, hosts=["algo-2"], stdin=data,
    )  # fmt: skip
    result = results["algo-2"]
    assert result.exit_code == 0, result
    assert result.stdout[: len(data)] == data
    assert result.stdout[len(data) :] == b"x" * 1200000


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_a_command_past_its_timeout_is_reported_and_does_not_hold_the_others(
    services, run_job, transport
):
    script = '[ "$SM_CURRENT_HOST" = algo-2 ] && sleep 60; echo done'
    started = time.monotonic()
    # Long enough for the healthy hosts on a loaded machine; far below the sleep.
    results = await run(services, run_job, ["sh", "-c", script], transport, timeout=12)
    assert time.monotonic() - started < 45
    assert results["algo-2"].timed_out and results["algo-2"].exit_code is None
    for host in ("algo-1", "algo-3"):
        assert results[host].exit_code == 0 and results[host].stdout == b"done\n"


async def test_every_ssm_session_is_terminated(services, run_job, standin):
    await run(services, run_job, ["true"], "ssm")
    await run(services, run_job, ["sleep", "30"], "ssm", timeout=2, hosts=["algo-1"])
    statuses = sessions_of(standin, run_job)
    assert len(statuses) == 4
    assert set(statuses.values()) == {"Terminated"}


async def test_a_dead_host_is_reported_while_the_others_answer(services, run_job, standin):
    host = standin.backends.hosts.get(standin.region, run_job, "algo-3")
    os.kill(host.sshd.pid, signal.SIGSTOP)  # accepts nothing: the connection never answers
    try:
        started = time.monotonic()
        results = await run(services, run_job, ["echo", "hi"], "ssh", timeout=12)
        assert time.monotonic() - started < 45
    finally:
        os.kill(host.sshd.pid, signal.SIGCONT)
    assert results["algo-1"].stdout == b"hi\n" and results["algo-2"].stdout == b"hi\n"
    dead = results["algo-3"]
    assert dead.exit_code is None and (dead.timed_out or dead.error), dead


# -- one budget for a whole /run answer ---------------------------------------------------------

MIB = 1024 * 1024


def test_output_is_text_when_it_is_text_and_base64_when_json_would_blow_it_up():
    from jupyter_sm_debug.hostrun import encode_output

    assert encode_output("héllo\n\tdone\n".encode(), 1000) == ("héllo\n\tdone\n", "utf-8", False)
    text, encoding, cut = encode_output(b"\xff\xfe ok", 1000)
    assert (encoding, cut) == ("base64", False) and base64.b64decode(text) == b"\xff\xfe ok"
    text, encoding, cut = encode_output(b"\0" * 10000, 1000)  # 6 bytes each as JSON text
    assert encoding == "base64" and cut and len(text) <= 1000
    assert set(base64.b64decode(text)) == {0}
    text, encoding, cut = encode_output("ü".encode() * 5000, 999)  # cut on a character
    assert encoding == "utf-8" and cut and set(text) == {"ü"}
    assert len(json.dumps(text, ensure_ascii=False).encode()) - 2 <= 999


@pytest.fixture(scope="module")
def server(standin, tmp_path_factory):
    """A real `jupyter server` process: its memory is the server's alone (the stand-in,
    with its SSM agents, runs in this test process)."""
    with JupyterServer(standin, tmp_path_factory.mktemp("flood-server")) as live:
        yield live


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in bytes: now and at its peak."""
    with open(f"/proc/{pid}/status") as handle:
        fields = dict(line.split(":", 1) for line in handle if ":" in line)
    return tuple(int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM"))


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
def test_a_flood_of_nuls_on_four_hosts_stays_within_the_answer_budget(server, standin, transport):
    from jupyter_sm_debug.hostrun import ANSWER_BUDGET

    job = f"flood-{uuid.uuid4().hex[:8]}"
    standin.create_job(job, instance_count=4, remote_debug=True, started_ago=600)
    server.request("GET", f"/sm-debug/jobs/{job}")  # the server's clients are warm
    before, _ = memory(server.proc.pid)
    flood = "head -c 20000000 /dev/zero; head -c 20000000 /dev/zero >&2"
    status, answer, headers = server.request(
        "POST", f"/sm-debug/jobs/{job}/run",
        {"shell": flood, "transport": transport, "timeout": 120}, timeout=300,
    )  # fmt: skip
    _, peak = memory(server.proc.pid)
    assert status == 200, answer
    assert int(headers["Content-Length"]) <= ANSWER_BUDGET, headers["Content-Length"]
    assert sorted(answer["hosts"]) == ["algo-1", "algo-2", "algo-3", "algo-4"]
    for host, result in answer["hosts"].items():
        assert result["exit_code"] == 0 and result["truncated"], (host, result["error"])
        for stream in ("stdout", "stderr"):
            assert result[f"{stream}_encoding"] == "base64"
            data = base64.b64decode(result[stream])
            assert len(data) > 256 * 1024 and set(data) == {0}
    # 4 hosts x 2 streams x 20 MB read: the server keeps its shares, never the flood.
    if transport == "ssm" and peak - before >= 100 * MIB:
        pytest.xfail(
            f"server RSS peaked {(peak - before) / MIB:.0f} MiB up: ssm/run.py's _Capture keeps "
            "every byte the session shows and copies it on each wake-up (issue 22 finding 6)"
        )
    assert peak - before < 100 * MIB, f"server RSS peaked {(peak - before) / MIB:.0f} MiB up"
