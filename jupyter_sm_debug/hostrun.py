"""One command on many hosts of a job at once, over whichever transport was asked for.

Features (stacks, host state, run on all hosts) call `run_on_hosts`; none of them knows
which transport carries the command. At most `c.SMDebug.max_concurrency` hosts run at once,
and a host that does not answer within the timeout is reported as such without holding up
the others.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Optional

from .connect import AttachRequest, RunResult, transports
from .errors import SMDebugError
from .jobs import hosts_of
from .names import host_index

if TYPE_CHECKING:
    from .config import SMDebug
    from .jobs import JobsService

MAX_TIMEOUT = 600.0


def choose_transport(name) -> str:
    available = transports()
    if not isinstance(name, str) or name not in available:
        raise SMDebugError(
            400,
            "invalid_transport",
            f"Unknown transport {name!r}.",
            f"Use one of: {', '.join(sorted(available))}.",
        )
    return name


ALL = object()  # no "hosts" given: every host of the job


def choose_hosts(description: dict, requested=ALL) -> list[str]:
    """The job's hosts, or the requested subset (validated names, each in range, no repeats)."""
    count = len(hosts_of(description))
    every = [f"algo-{n}" for n in range(1, count + 1)]
    if requested is ALL:
        return every
    if not isinstance(requested, list) or not requested or len(requested) > count:
        raise SMDebugError(
            400,
            "invalid_hosts",
            '"hosts" must be a non-empty list of the job\'s hosts.',
            f'Send e.g. {{"hosts": ["algo-1"]}}; this job runs algo-1 to algo-{count}.',
        )
    chosen = []
    for host in requested:
        if host_index(host) > count:
            raise SMDebugError(
                404, "host_not_found", f"The job has no host {host}.",
                f"It runs {count} host(s): algo-1 to algo-{count}.",
            )  # fmt: skip
        if host not in chosen:
            chosen.append(host)
    return chosen


def choose_timeout(value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (0 < value <= MAX_TIMEOUT)
    ):
        raise SMDebugError(
            400,
            "invalid_timeout",
            f'"timeout" must be a number of seconds, above 0 and at most {MAX_TIMEOUT:g}.',
            'Send e.g. {"timeout": 30}.',
        )
    return float(value)


async def run_on_hosts(
    jobs: JobsService,
    config: SMDebug,
    job: str,
    description: dict,
    hosts: list[str],
    transport: str,
    argv: list[str],
    timeout: float,
    stdin: bytes = b"",
    concurrency: Optional[int] = None,
) -> dict[str, RunResult]:
    runner = transports()[transport]
    gate = asyncio.Semaphore(max(1, concurrency or config.max_concurrency))

    async def one(host: str) -> RunResult:
        async with gate:
            return await run_on_host(jobs, config, job, description, host, runner, argv,
                                     timeout, stdin)  # fmt: skip

    results = await asyncio.gather(*(one(host) for host in hosts))
    return dict(zip(hosts, results))


async def run_on_host(jobs, config, job, description, host, runner, argv, timeout, stdin=b""):
    request = AttachRequest(job=job, host=host, description=description, config=config, jobs=jobs)
    started = time.monotonic()
    try:
        # The transport keeps to the timeout itself; this bounds what it cannot (e.g. a
        # connection attempt that hangs) with a little slack for its clean-up.
        return await asyncio.wait_for(runner.run(request, argv, timeout, stdin), timeout + 5)
    except asyncio.TimeoutError:
        return RunResult(None, timed_out=True, seconds=time.monotonic() - started)
    except SMDebugError as error:
        return RunResult(
            None,
            error={"code": error.code, "message": error.message, "hint": error.hint},
            seconds=time.monotonic() - started,
        )
