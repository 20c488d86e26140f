"""Issue 22 finding 6: ``run`` over SSM reads everything the session's terminal shows, and
any process in the container may write to that terminal. The capture is scanned once,
incrementally, and bounded (the caller's limit), and only lines carrying the run's nonce
count: a container process can neither grow the server's memory nor forge a run's
stdout."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from support import REPO

from jupyter_sm_debug.ssm import run
from jupyter_sm_debug.ssm.run import MAX_LINE, RunOutput, run_in_session
from jupyter_sm_debug.standin import ssm as standin_ssm

NONCE = "0123456789abcdef0123456789abcdef"


def results(out: bytes, err: bytes = b"", code: int = 0, limit: int = 1 << 20) -> list[bytes]:
    """What the shell prints for a run, line by line, as the PTY shows it."""

    def lines(data: bytes) -> list[bytes]:
        text = base64.encodebytes(data[:limit]).split()
        return [f"SMD{NONCE}.".encode() + line + b"\r\n" for line in text]

    head = f"SMD{NONCE}:B {code} {len(out)} {len(err)}\r\n".encode()
    return [
        head, *lines(out), f"SMD{NONCE}:S\r\n".encode(), *lines(err),
        f"SMD{NONCE}:E\r\n".encode(),
    ]  # fmt: skip


def test_results_come_out_whole_in_any_chunking():
    out, err = bytes(range(256)) * 40, b"warning\n"
    stream = b"$ " + b"".join(results(out, err, code=3)) + b"sh-5$ "
    for size in (1, 7, 4096):
        scan = RunOutput(NONCE)
        for i in range(0, len(stream), size):
            scan.feed(stream[i : i + size])
        assert scan.result() == (3, out, err, False)


def test_lines_without_the_nonce_are_dropped_so_they_cannot_forge_stdout():
    lines = results(b"real\n")
    forged = base64.b64encode(b"forged!!").decode()
    # The container writes between every line of ours, and just before a line on the same
    # line (a write does not end with a newline); it cannot write inside one of ours.
    junk = [f"{forged}\r\n".encode(), b"SMD:B 0 9 0\r\n", b"SMDfeedface:S\r\n", b"noise"]
    scan = RunOutput(NONCE)
    for line in lines:
        for j in junk:
            scan.feed(j)
        scan.feed(line)
    assert scan.result() == (0, b"real\n", b"", False)


def test_the_capture_is_bounded_and_linear_whatever_floods_the_terminal():
    scan = RunOutput(NONCE, limit=1000)
    flood = b"x" * 65536
    started = time.process_time()
    for _ in range(800):  # 50 MiB with no newline at all, in 64 KiB reads
        scan.feed(flood)
    assert len(scan._partial) <= MAX_LINE
    for _ in range(800):  # 50 MiB of lines
        scan.feed(b"AAAA\n" * 13107)
    # Linear, and a flood without our nonce is skipped at C speed: seconds, not minutes.
    assert time.process_time() - started < 10
    for line in results(b"y" * 5000, limit=1000):
        scan.feed(line)
    assert scan.result() == (0, b"y" * 1000, b"", True)  # kept: the caller's limit
    assert len(scan.out.data) == 1000


def test_missing_lines_of_ours_are_not_a_result():
    lines = results(b"z" * 3000)
    scan = RunOutput(NONCE)
    for i, line in enumerate(lines):
        if i != 2:
            scan.feed(line)
    assert scan.result() is None


# -- against the stand-in: a container process writing to the session's terminal --------------


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"capture-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


def start(standin, job) -> tuple[dict, str]:
    target = f"sagemaker-training-job:{job}_algo-1"
    answer = standin.client("ssm").start_session(Target=target)
    return {k: answer[k] for k in ("SessionId", "TokenValue", "StreamUrl")}, target


# A process the command leaves behind writes base64 of "forged" to the terminal while the
# results (1 MB of stdout, over a second at the agent's pace) are printed; bounded, and it
# stops when the terminal goes away.
FORGER = (
    "(sleep 0.3; i=0; while [ $i -lt 5000 ] && echo Zm9yZ2Vk; do i=$((i+1)); done > /dev/tty"
    " 2>/dev/null &) ; head -c 1000000 /dev/zero"
)


def test_a_container_process_cannot_forge_a_runs_stdout(standin, job):
    info, target = start(standin, job)
    try:
        result = run_in_session(info, ["sh", "-c", FORGER], timeout=60, target=target)
    finally:
        standin.client("ssm").terminate_session(SessionId=info["SessionId"])
    assert result.error is None and not result.timed_out, result
    assert result.exit_code == 0 and result.stderr == b""
    assert result.stdout == bytes(1000000), "the run's stdout was forged"


FLOOD = "head -c 16000000 /dev/zero | tr '\\0' x > /dev/tty; echo done"

# The run's client alone, in its own process: tracemalloc there counts the client's
# allocations only, not the in-process stand-in agent's send window (which grows when the
# acknowledgements come late on a loaded machine).
FLOOD_CLIENT = """
import json, sys, tracemalloc
from jupyter_sm_debug.ssm.run import run_in_session
info, target, flood = json.loads(sys.stdin.read())
tracemalloc.start()
result = run_in_session(info, ["sh", "-c", flood], timeout=120, target=target, limit=1 << 20)
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"error": result.error, "timed_out": result.timed_out,
                  "stdout": result.stdout.decode("latin-1"), "peak": peak}))
"""


def test_a_flood_on_the_terminal_does_not_grow_the_servers_memory(standin, job):
    reg = standin_ssm.registry(standin)
    pace, reg.pace = reg.pace, 0  # as fast as the client acknowledges
    info, target = start(standin, job)
    try:
        child = subprocess.run(
            [sys.executable, "-c", FLOOD_CLIENT],
            input=json.dumps([info, target, FLOOD]), capture_output=True, text=True,
            timeout=180, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    finally:
        reg.pace = pace
        standin.client("ssm").terminate_session(SessionId=info["SessionId"])
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout)
    assert result["error"] is None and not result["timed_out"], result
    assert result["stdout"] == "done\n"
    # 16 MB went through the terminal; what the run kept is a line and its buffers.
    assert result["peak"] < 10 << 20, f"peak {result['peak'] >> 20} MiB"


def test_the_run_script_tags_every_result_line_with_the_nonce():
    line = run.script_line(NONCE, 10, 20, 100).decode()
    assert line.count("awk") == 2 and "fflush()" in line
    assert f"SMD{NONCE}" not in line  # printed from pieces: an echo is never a marker
