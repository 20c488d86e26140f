"""When the way to the host drops: the same interpreter again when only the tunnel went;
in words when the interpreter itself is gone, then a fresh one."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from .conftest import run_cell

pytestmark = pytest.mark.usefixtures("standin")


async def test_a_dropped_tunnel_comes_back_to_the_same_namespace(jp_serverapp, job, kernel_of):
    answer, client = await kernel_of(job, "algo-1", "ssh")
    assert (await run_cell(client, "x = 'kept'; x")).results[0]["text/plain"] == "'kept'"
    remote = jp_serverapp.web_app.settings["sm_debug"].kernels.hosts[answer["kernel"]["name"]]
    tunnel = remote.pushed.tunnel
    for pid in tunnel.pids:  # the ssh process that carries the forward
        os.kill(pid, signal.SIGKILL)
    while tunnel.alive():
        await asyncio.sleep(0.05)
    cell = await run_cell(client, "x")
    assert cell.results and cell.results[0]["text/plain"] == "'kept'", (cell.reply, cell.stderr)
    assert remote.pushed.tunnel is not tunnel


async def test_a_lost_interpreter_is_told_in_words_then_restarts_fresh(api, job, kernel_of):
    answer, client = await kernel_of(job, "algo-1", "ssh")
    pid = (await run_cell(client, "import os; x = 1; os.getpid()")).results[0]["text/plain"]

    async def kill():
        status, result = await api(
            "POST", "jobs", job, "run",
            body={"argv": ["kill", "-9", pid], "hosts": ["algo-1"], "transport": "ssh"},
        )  # fmt: skip
        assert status == 200 and result["hosts"]["algo-1"]["exit_code"] == 0, result

    cell = await run_cell(client, "import time; time.sleep(60)", on_busy=kill)
    assert cell.reply["status"] == "error" and cell.reply["ename"] == "KernelLost"
    assert f"The kernel lost its Python on algo-1 of {job}" in cell.stderr
    # The kernel process ends; the server's restarter starts it again: a fresh interpreter.
    for _ in range(120):
        await asyncio.sleep(0.5)
        try:
            cell = await run_cell(client, "x", timeout=10)
        except AssertionError:
            continue
        if cell.errors and cell.errors[0]["ename"] == "NameError":
            break
    assert cell.errors[0]["ename"] == "NameError", (cell.errors, cell.stderr)
