"""Nothing left behind: deleting a terminal ends its session process, that process's
children and the shell on the host within seconds; fifty attach/detach cycles over SSH and
SSM leave exactly the processes there were before."""

from __future__ import annotations

import asyncio

import pytest
from forward_apps import HostApp
from hardening_helpers import (
    JupyterServer,
    alive,
    async_wait_until,
    cmdline,
    descendants,
    describe_processes,
    end_created_jobs,  # noqa: F401 - module fixture: stops the jobs made here
    other_jobs_processes,
    running_job,
    session_clients,
    wait_until,
    zombie,
)
from terminal_io import open_terminal

from jupyter_sm_debug.standin.container import outside_pid
from jupyter_sm_debug.standin.ssm import registry

CYCLES = 50
REPORT: dict = {}


@pytest.fixture(scope="module")
def job(standin) -> str:
    return running_job(standin, "cleanup", hosts=3)


async def attach(api, job, host, transport):
    status, body = await api("POST", "jobs", job, "hosts", host, "terminals",
                             body={"transport": transport})  # fmt: skip
    assert status == 201, body
    return body["terminal"]["name"]


async def detach(jp_fetch, name):
    response = await jp_fetch("api", "terminals", name, method="DELETE")
    assert response.code == 204


def on_this_machine(standin, job: str, host: str, pid: int) -> int:
    """A host's pid as this machine numbers it (a host in namespaces has its own)."""
    live = standin.backends.hosts.get(standin.region, job, host)
    if live.init is None:
        return pid
    found = outside_pid(live.init, pid)
    assert found is not None, f"no process {pid} in {host}"
    return found


def tree(pid: int) -> set:
    return {pid} | descendants(pid)


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_deleting_a_terminal_ends_the_session_within_two_seconds(
    api, jp_fetch, jp_ws_fetch, job, standin, terminal_manager, transport
):
    host = "algo-1" if transport == "ssh" else "algo-2"
    name = await attach(api, job, host, transport)
    pid = terminal_manager.terminals[name].ptyproc.pid
    terminal = await open_terminal(jp_ws_fetch, name)
    # A child of the session's shell on the host, and that shell's own pid.
    await terminal.send('sleep 300 & echo "shell=$$ child=$!"\r')
    match = await terminal.expect(r"shell=(\d+) child=(\d+)", timeout=30)
    remote = {on_this_machine(standin, job, host, int(match.group(i))) for i in (1, 2)}
    local = tree(pid)
    assert all(alive(p) for p in local | remote)

    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    await detach(jp_fetch, name)
    assert await async_wait_until(lambda: not any(alive(p) for p in local), timeout=2), (
        describe_processes(p for p in local if alive(p))
    )
    REPORT[f"{transport} session gone after DELETE (s)"] = round(loop_time() - started, 2)
    assert not any(zombie(p) for p in local)  # reaped, not just dead
    # The host's side ends too: the shell, and what it started in the background.
    assert await async_wait_until(lambda: not any(alive(p) for p in remote), timeout=5), (
        describe_processes(remote)
    )
    assert name not in terminal_manager.terminals
    terminal.ws.close()


def snapshot(standin, job: str) -> dict:
    ours = descendants() - other_jobs_processes(standin, job)
    return {
        "descendants": {p for p in ours if alive(p)},
        "zombies": {p for p in ours if zombie(p)},
        "clients": session_clients(standin),
    }


async def test_fifty_attach_detach_cycles_leak_nothing(
    api, jp_fetch, jp_ws_fetch, job, standin, terminal_manager
):
    before = snapshot(standin, job)
    sessions_before = set(registry(standin).sessions)
    names = set()
    for cycle in range(CYCLES):
        transport = ("ssh", "ssm")[cycle % 2]
        host = f"algo-{cycle % 3 + 1}"
        name = await attach(api, job, host, transport)
        names.add(name)
        if cycle % 5 == 0:  # every fifth session is used before it is closed
            terminal = await open_terminal(jp_ws_fetch, name)
            await terminal.send(f'echo "cycle-""{cycle}"\r')
            await terminal.expect(f"cycle-{cycle}", timeout=30)
            terminal.ws.close()
        await detach(jp_fetch, name)

    def settled():
        now = snapshot(standin, job)
        return now["descendants"] <= before["descendants"] and now["clients"] <= before["clients"]

    assert await async_wait_until(settled, timeout=10), describe_processes(
        snapshot(standin, job)["descendants"] - before["descendants"]
    )
    after = snapshot(standin, job)
    # The cycles' own processes are reaped. One that ran before them (an earlier test's,
    # e.g. a held job's host ending now) and died meanwhile is not theirs to reap.
    new_zombies = after["zombies"] - before["descendants"]
    assert new_zombies <= before["zombies"], describe_processes(new_zombies)
    assert not names & set(terminal_manager.terminals)
    made = [s for sid, s in registry(standin).sessions.items() if sid not in sessions_before]
    assert len(made) == CYCLES // 2
    assert await async_wait_until(lambda: all(s.status == "Terminated" for s in made), 10), [
        (s.session_id, s.status, s.token_used) for s in made if s.status != "Terminated"
    ]
    # Each host's sshd is back to its listener alone: no connection process is left over.
    for index in (1, 2, 3):
        config = f"{job}/algo-{index}/sshd_config"
        listeners = [p for p in after["descendants"] if config in " ".join(cmdline(p))]
        assert len(listeners) == 1, describe_processes(listeners)
        assert descendants(listeners[0]) == set(), describe_processes(descendants(listeners[0]))
    REPORT["attach/detach cycles"] = CYCLES
    REPORT["processes before/after"] = (len(before["descendants"]), len(after["descendants"]))
    REPORT["leaked"] = len(after["descendants"] - before["descendants"])


def test_report_cleanup(capsys):
    with capsys.disabled():
        print(f"\ncleanup: {REPORT}")


# -- stopping the server releases everything the extension started -----------------------------


def server_tree(pid: int) -> set[int]:
    """The server and every process under it, alive now."""
    return {p for p in {pid} | descendants(pid) if alive(p)}


def test_stopping_the_server_leaves_no_session_client_tunnel_or_session(
    standin, job, tmp_path_factory
):
    """A real server with a live SSH terminal, an SSM terminal and a forward over each
    transport; SIGTERM (the server's own stop path: ExtensionApp.stop_extension) leaves no
    process of its tree, and every SSM session it started is terminated."""
    apps = {"ssh": HostApp(standin, job, "algo-3"), "ssm": HostApp(standin, job, "algo-2")}
    server = JupyterServer(standin, tmp_path_factory.mktemp("stop-server")).start()
    sessions_before = set(registry(standin).sessions)
    try:
        base = f"/sm-debug/jobs/{job}/hosts"
        for host, transport in (("algo-1", "ssh"), ("algo-2", "ssm")):
            body = {"transport": transport}
            status, answer, _ = server.request("POST", f"{base}/{host}/terminals", body)
            assert status == 201, answer
        for transport, app in apps.items():
            body = {"port": app.port, "transport": transport}
            status, answer, _ = server.request("POST", f"{base}/{app.host}/ports", body)
            assert status == 201, answer
        status, answer, _ = server.request("GET", "/sm-debug/forwards")
        assert len(answer["forwards"]) == 2, answer
        tree = server_tree(server.proc.pid)
        made = [s for sid, s in registry(standin).sessions.items() if sid not in sessions_before]
        assert len(tree) >= 3, describe_processes(tree)  # the server, ssh, the SSM client
        assert any(s.status != "Terminated" for s in made)
    finally:
        returncode = server.stop()  # SIGTERM, and wait for the process to end
        for app in apps.values():
            app.stop()
    assert returncode is not None, server.log()[-3000:]
    assert "jupyter_sm_debug: stopped" in server.log(), server.log()[-3000:]
    assert wait_until(lambda: not any(alive(p) for p in tree), timeout=10), describe_processes(
        p for p in tree if alive(p)
    )
    assert wait_until(lambda: all(s.status == "Terminated" for s in made), timeout=10), [
        (s.session_id, s.status) for s in made
    ]
