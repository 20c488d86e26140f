"""One command on many hosts of a job at once, over the transport the targets name, within one
output budget.

Features (stacks, host state, run on all hosts) call `run_on_hosts` with a HostTarget per
host; none of them knows which transport carries the command. At most
`c.SMDebug.max_concurrency` hosts run at once, and a host that does not answer within the
timeout is reported as such without holding up the others.

Output budget: a whole /run answer (every host, both streams, after JSON encoding) is at
most ANSWER_BUDGET bytes. Each stream of each host gets an equal share, and the transport is
asked (`target.options["output_limit"]`) to keep no more than that share of each stream
while it reads, so the server's memory stays bounded too. Output that is not UTF-8, or that
JSON would blow up (NUL bytes are six bytes each as "\\u0000"), is sent as base64.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import replace
from typing import Optional

from .connect import HostTarget, RunResult
from .connect.registry import get_transport
from .errors import SMDebugError
from .hold import tool_argv

# The most a /run answer may hold, all hosts and streams together, as sent (documented in
# openapi.yaml). 8 MiB: a page of text per host on a 64-host job, and no more than a
# browser tab shows comfortably.
ANSWER_BUDGET = 8 * 1024 * 1024
PER_HOST_OVERHEAD = 1024  # exit code, flags, an error's message and hint
ANSWER_OVERHEAD = 4096
MIN_SHARE = 4096
OUTPUT_LIMIT = "output_limit"  # the HostTarget option a transport's run must honour


def stream_share(hosts: int, reserved: int = 0, budget: int = ANSWER_BUDGET) -> int:
    """Bytes each stream of each of `hosts` hosts may take in an answer of `budget`."""
    hosts = max(1, hosts)
    room = budget - ANSWER_OVERHEAD - reserved - PER_HOST_OVERHEAD * hosts
    return max(MIN_SHARE, room // (2 * hosts))


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def encode_output(data: bytes, share: int) -> tuple[str, str, bool]:
    """(text, encoding, cut): the bytes as UTF-8 text, or as base64 when they are not UTF-8
    or JSON would more than double them; cut to at most `share` bytes once encoded."""
    try:
        text: Optional[str] = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _json_size(text) <= 2 * max(1, len(data)):
        size, cut = _json_size(text), False
        while size > share:
            keep = max(0, min(len(data) - 1, len(data) * share // size))
            data, cut = data[:keep], True
            text = data.decode("utf-8", errors="ignore")  # only a split last char is lost
            size = _json_size(text)
        return text, "utf-8", cut
    keep = share // 4 * 3
    return base64.b64encode(data[:keep]).decode(), "base64", len(data) > keep


def result_json(result: RunResult, share: int) -> dict:
    """One host's result in a /run answer, each stream within `share` bytes."""
    stdout, out_encoding, out_cut = encode_output(result.stdout, share)
    stderr, err_encoding, err_cut = encode_output(result.stderr, share)
    return {
        "exit_code": result.exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "stdout_encoding": out_encoding,
        "stderr_encoding": err_encoding,
        "timed_out": result.timed_out,
        "error": result.error,
        "truncated": result.truncated or out_cut or err_cut,
        "seconds": round(result.seconds, 3),
    }


def answer_json(answer: dict) -> str:
    """A /run answer as sent (UTF-8 text stays as is, so its size is its share)."""
    return json.dumps(answer, ensure_ascii=False)


async def run_on_hosts(
    targets: list[HostTarget],
    argv: list[str],
    timeout: float,
    stdin: bytes = b"",
    output_limit: Optional[int] = None,
    concurrency: Optional[int] = None,
) -> dict[str, RunResult]:
    """`argv` on every target's host at once; each stream of each host kept to
    `output_limit` bytes (default: the host's share of ANSWER_BUDGET)."""
    if not targets:
        return {}
    limit = output_limit or stream_share(len(targets))
    runner = get_transport(targets[0].transport, "run")
    gate = asyncio.Semaphore(max(1, concurrency or targets[0].config.max_concurrency))

    async def one(target: HostTarget) -> RunResult:
        target = replace(target, options={**target.options, OUTPUT_LIMIT: limit})
        async with gate:
            return await run_on_host(runner, target, argv, timeout, stdin, limit)

    results = await asyncio.gather(*(one(target) for target in targets))
    return {target.host: result for target, result in zip(targets, results)}


async def run_on_host(runner, target: HostTarget, argv, timeout, stdin, limit) -> RunResult:
    started = time.monotonic()
    try:
        # The transport keeps to the timeout itself; this bounds what it cannot (e.g. a
        # connection attempt that hangs) with a little slack for its clean-up.
        # Marked as the extension's own (hold.tool_argv): a hold never ends when it closes.
        marked = tool_argv(argv)
        result = await asyncio.wait_for(runner.run(target, marked, timeout, stdin), timeout + 5)
    except asyncio.TimeoutError:
        return RunResult(None, timed_out=True, seconds=time.monotonic() - started)
    except SMDebugError as error:
        return RunResult(None, error=error.as_dict(), seconds=time.monotonic() - started)
    # A transport that kept more than asked is cut here (the memory was spent, the answer
    # stays within its budget).
    if len(result.stdout) > limit or len(result.stderr) > limit:
        result.stdout, result.stderr = result.stdout[:limit], result.stderr[:limit]
        result.truncated = True
    return result
