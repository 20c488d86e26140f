"""A kernel on a stand-in host through the real server, over each transport: the route, the
server's own kernel manager (/api/kernels interrupt, restart, DELETE), the cells' outputs,
and nothing left in the host at the end."""

from __future__ import annotations

import asyncio
import json

import pytest

from .conftest import run_cell

pytestmark = pytest.mark.usefixtures("standin")

SCRIPTED = """
class Page:
    def _repr_html_(self):
        return ('<b onmouseover="alert(1)">bold</b><script>alert(2)</script>'
                '<iframe src="x"></iframe>')
    def _repr_mimebundle_(self, **kw):
        return {"application/javascript": "alert(3)", "text/x-python-script": "x"}
display(Page())
Page()
"""


async def host_processes(api, job: str, transport: str) -> list[str]:
    status, answer = await api(
        "POST", "jobs", job, "run",
        body={"shell": "ps -eo pid=,args=", "hosts": ["algo-1"], "transport": transport},
    )  # fmt: skip
    assert status == 200, answer
    lines = answer["hosts"]["algo-1"]["stdout"].splitlines()
    return [line for line in lines if "ps -eo" not in line]


def ours(lines: list[str]) -> list[str]:
    marks = ("SMDEBUG-AGENT", "exec(sys.stdin.read())", "sm-debug-kernel-hold")
    return [line for line in lines if any(mark in line for mark in marks)]


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_a_kernel_runs_cells_in_the_host_and_leaves_nothing(
    jp_fetch, api, job, kernel_of, transport
):
    answer, client = await kernel_of(job, "algo-1", transport)
    kernel_id = answer["kernel"]["id"]
    assert answer["transport"] == transport
    assert answer["kernel"]["name"].startswith("sm-debug-")
    specs = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert specs[answer["kernel"]["name"]]["spec"]["display_name"] == f"Python on algo-1 · {job}"

    cell = await run_cell(client, "import socket, os; x = 42; socket.gethostname()")
    assert cell.reply["status"] == "ok", cell.errors
    assert cell.results[0]["text/plain"] == "'algo-1'"
    assert (await run_cell(client, "os.getcwd()")).results[0]["text/plain"] == "'/opt/ml/code'"
    training = await run_cell(client, "os.environ.get('SM_CURRENT_HOST')")
    assert training.results[0]["text/plain"] == "'algo-1'"  # the training's environment

    # Output streams while the cell runs, from print and from a subprocess alike.
    loop = asyncio.get_running_loop()
    cell = await run_cell(
        client, "import time, subprocess\nprint('first', flush=True)\ntime.sleep(3)\n"
        "subprocess.run(['echo', 'from a child'])\nprint('last')",
    )  # fmt: skip
    assert cell.stdout == "first\nfrom a child\nlast\n"
    assert cell.first_output_at is not None and loop.time() - cell.first_output_at > 2

    cell = await run_cell(client, "def f():\n    return 1/0\nf()")
    assert cell.reply["status"] == "error"
    assert cell.errors[0]["ename"] == "ZeroDivisionError"
    assert any("return 1/0" in line for line in cell.errors[0]["traceback"])

    cell = await run_cell(client, "name = input('who? '); name", inputs=["bob"])
    assert cell.results[0]["text/plain"] == "'bob'"

    client.complete("import os; os.pa", 16)
    reply = (await client.get_shell_msg(timeout=30))["content"]
    assert "os.path" in reply["matches"] and reply["cursor_start"] == 11
    client.inspect("len", 3)
    reply = (await client.get_shell_msg(timeout=30))["content"]
    assert reply["found"] and "Return the number of items" in reply["data"]["text/plain"]

    # No script from the container reaches the page.
    cell = await run_cell(client, SCRIPTED)
    for data in [*cell.displays, *cell.results]:
        assert set(data) <= {"text/plain", "text/html"}, data
        assert data["text/html"] == "<b>bold</b>"

    # Interrupt through the server's REST API: KeyboardInterrupt, the namespace kept.
    async def interrupt():
        await asyncio.sleep(1.0)
        await jp_fetch("api", "kernels", kernel_id, "interrupt", method="POST", body="")

    started = loop.time()
    cell = await run_cell(client, "import time; time.sleep(60)", on_busy=interrupt)
    assert cell.errors[0]["ename"] == "KeyboardInterrupt"
    assert loop.time() - started < 30
    assert (await run_cell(client, "x")).results[0]["text/plain"] == "42"
    first_pid = (await run_cell(client, "os.getpid()")).results[0]["text/plain"]

    # Restart: a fresh interpreter.
    await jp_fetch("api", "kernels", kernel_id, "restart", method="POST", body="")
    await client.wait_for_ready(timeout=60)
    cell = await run_cell(client, "x")
    assert cell.errors[0]["ename"] == "NameError"
    assert (await run_cell(client, "import os; os.getpid()")).results[0]["text/plain"] != first_pid
    assert ours(await host_processes(api, job, transport))

    # Shutdown: nothing of ours left in the host.
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    for _ in range(60):
        left = ours(await host_processes(api, job, transport))
        if not left:
            break
        await asyncio.sleep(1.0)
    assert not left, left
