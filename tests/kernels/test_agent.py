"""The agent and the kernel process on this machine, without a stand-in: a Python without
ipykernel (the system's), the frame protocol's reconnect, and the sanitiser."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest

from jupyter_sm_debug.kernels import agent, sanitize

from .conftest import run_cell
from .local import TOKEN, local_kernel, start_agent

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def without_ipykernel() -> str:
    if SYSTEM_PYTHON is None:
        pytest.skip("no system python3")
    found = subprocess.run([SYSTEM_PYTHON, "-c", "import ipykernel"], capture_output=True)
    if found.returncode == 0:
        pytest.skip("the system python3 has ipykernel")
    return SYSTEM_PYTHON


def test_the_pushed_programs_use_only_the_standard_library():
    here = os.path.dirname(agent.__file__)
    allowed = set(sys.stdlib_module_names)
    for name in ("agent.py", "worker.py"):
        with open(os.path.join(here, name)) as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name} imports from the package"
                names = [node.module or ""]
            for module in names:
                assert module.split(".")[0] in allowed, f"{name} imports {module}"


async def test_a_python_without_ipykernel_runs_cells_and_is_interrupted():
    python = without_ipykernel()
    async with local_kernel(python) as (manager, client, agent_pid):
        cell = await run_cell(client, "import sys, os; x = 1; sys.executable")
        assert cell.results[0]["text/plain"] == repr(python)
        assert (await run_cell(client, "import ipykernel")).errors[0]["ename"] == (
            "ModuleNotFoundError"
        )

        async def interrupt():
            await manager.interrupt_kernel()

        cell = await run_cell(client, "import time; time.sleep(60)", on_busy=interrupt)
        assert cell.errors[0]["ename"] == "KeyboardInterrupt"
        assert (await run_cell(client, "x")).results[0]["text/plain"] == "1"


# -- the frame protocol, spoken by hand -----------------------------------------------------


def connect(port: int, token: str = TOKEN) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(token.encode() + b"\n")
    assert conn.recv(3) == b"OK\n"
    return conn


def send(conn: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    conn.sendall(struct.pack(">I", len(data)) + data)


def receive(conn: socket.socket) -> dict:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = conn.recv(n - len(data))
            assert part, "the agent closed the stream"
            data += part
        return data

    return json.loads(exact(struct.unpack(">I", exact(4))[0]))


def until_done(conn: socket.socket) -> list[dict]:
    messages = []
    while not messages or messages[-1]["op"] != "done":
        messages.append(receive(conn))
    return messages


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(") ")[1].startswith("Z")


def test_a_dropped_stream_comes_back_to_the_same_interpreter_and_shutdown_ends_all():
    port, pid = start_agent(sys.executable)
    conn = connect(port)
    send(conn, {"op": "start"})
    attached = receive(conn)
    started = receive(conn)
    assert attached["op"] == "attached" and started["op"] == "started"
    send(conn, {"op": "execute", "code": "y = 7\nprint('set')", "rid": 1})
    assert until_done(conn)[0] == {"op": "stream", "name": "stdout", "text": "set\n"}
    # A cell that prints after the stream dropped: its output waits for the next stream.
    send(conn, {"op": "execute", "code": "import time; time.sleep(1); print(y)", "rid": 2})
    conn.close()
    again = connect(port)
    send(again, {"op": "attach", "id": attached["id"], "key": "wrong"})
    assert receive(again) == {"op": "gone"}
    again = connect(port)
    send(again, {"op": "attach", "id": attached["id"], "key": attached["key"]})
    assert receive(again)["op"] == "attached"
    assert until_done(again)[0]["text"] == "7\n"
    # Without the token, nothing.
    stranger = socket.create_connection(("127.0.0.1", port), timeout=30)
    stranger.sendall(b"guess\n")
    assert stranger.recv(3) == b""
    # Shutdown: the interpreter and its children end with the agent.
    code = "import subprocess; subprocess.Popen(['sleep', '300']).pid"
    send(again, {"op": "execute", "code": code, "rid": 3})
    child = int(until_done(again)[0]["data"]["text/plain"])
    boss = connect(port)
    send(boss, {"op": "shutdown"})
    assert receive(boss) == {"op": "bye"}
    deadline = time.monotonic() + 30
    while not all(gone(p) for p in (pid, started["pid"], child)):
        assert time.monotonic() < deadline, "a process of the kernel is left"
        time.sleep(0.1)


# -- the sanitiser --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil/x.js></SCRIPT>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<iframe src="https://evil"></iframe>',
        '<object data="x"></object><embed src="x">',
        "<svg><script>alert(1)</script></svg>",
        '<div style="background:url(javascript:alert(1))">x</div>',
        "<style>body{display:none}</style>",
        '<img src="/logout">',
        "<scr<script>ipt>alert(1)</script>",
        '<form action="/api/terminals"><input type=submit></form>',
    ],
)
def test_no_script_or_active_content_survives_the_sanitiser(html):
    clean = sanitize.clean_html(html).lower()
    for bad in ("<script", "onerror", "javascript", "<iframe", "<object", "<embed", "<svg",
                "<style", "/logout", "<form", "<input", "url("):  # fmt: skip
        assert bad not in clean, (html, clean)


def test_a_dataframe_table_keeps_its_shape():
    table = (
        '<table border="1" class="dataframe"><thead><tr style="text-align: right;">'
        "<th></th><th>a</th></tr></thead><tbody><tr><th>0</th><td>1 &lt; 2</td></tr>"
        "</tbody></table>"
    )
    assert sanitize.clean_html(table) == table


def test_bundles_keep_only_inert_types_and_are_bounded():
    data = sanitize.clean_bundle(
        {"application/javascript": "alert(1)", "text/html": "<b>x</b><script>y</script>",
         "application/vnd.jupyter.widget-view+json": {}, "image/svg+xml": "<svg/>",
         "text/markdown": "<img src=x onerror=alert(1)>", "image/png": "iVBORw0KGgo="}
    )  # fmt: skip
    assert set(data) == {"text/html", "image/png", "text/plain"}
    assert data["text/html"] == "<b>x</b>"
    assert "application/javascript" in data["text/plain"]
    huge = sanitize.clean_bundle({"text/plain": "x" * (20 << 20)})
    assert len(json.dumps(huge)) <= sanitize.MAX_MESSAGE + 1024


async def test_outputs_too_big_are_bounded_and_said_so():
    async with local_kernel(sys.executable) as (_, client, _):
        code = (
            "class Big:\n"
            "    def __init__(self, mib): self.mib = mib\n"
            "    def _repr_html_(self): return '<p>' + 'x' * (self.mib << 20) + '</p>'\n"
            "    def __repr__(self): return 'Big(%d)' % self.mib\n"
            "display(Big(10))\nBig(20)"
        )
        cell = await run_cell(client, code)
        assert cell.displays == [{"text/plain": "Big(10)\n[sm-debug: output larger than 8 MiB "
                                                "shortened]"}]  # fmt: skip
        assert cell.results == []
        assert "an output of 20 MiB from this machine was dropped" in cell.stderr
        assert (await run_cell(client, "1 + 1")).results[0]["text/plain"] == "2"
