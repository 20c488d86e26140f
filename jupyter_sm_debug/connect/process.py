"""Local processes a transport runs (ssh, ssh-keyscan, session-manager-plugin): started in
their own process group, output read with a cap, ended with the whole group; and the
private directories they use (SSH's pinned known_hosts, a forward's socket).

Shared by every transport; nothing here knows SSH or SSM.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import shutil
import signal
import tempfile
import threading
from typing import Optional

from .types import RUN_OUTPUT_LIMIT, RunResult, base_environment

CHUNK = 256 * 1024
END_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


async def read_capped(stream, limit: int) -> tuple[bytes, bool]:
    """All of a stream, keeping at most `limit` bytes (the rest is read and dropped so the
    writer never blocks): (kept, whether anything was dropped)."""
    kept, dropped = bytearray(), False
    while True:
        chunk = await stream.read(CHUNK)
        if not chunk:
            return bytes(kept), dropped
        room = limit - len(kept)
        if len(chunk) > room:
            dropped = True
        kept += chunk[: max(0, room)]


async def end_process(process) -> None:
    """SIGTERM to the process's group, SIGKILL after a grace period; waits for it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), END_GRACE)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def capture(
    argv: list[str],
    timeout: float,
    stdin: bytes = b"",
    env: Optional[dict] = None,
    limit: int = RUN_OUTPUT_LIMIT,
) -> RunResult:
    """Run a local process with `stdin`, output capped at `limit` bytes per stream and a
    deadline; a process past its deadline is ended with its group (timed_out)."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=base_environment() if env is None else env,
        start_new_session=True,
    )  # fmt: skip

    async def feed() -> None:
        try:
            if stdin:
                process.stdin.write(stdin)
                await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            process.stdin.close()

    async def everything():
        _, (out, cut_out), (err, cut_err) = await asyncio.gather(
            feed(), read_capped(process.stdout, limit), read_capped(process.stderr, limit)
        )
        return out, err, cut_out or cut_err, await process.wait()

    try:
        out, err, cut, code = await asyncio.wait_for(everything(), timeout)
    except asyncio.TimeoutError:
        await end_process(process)
        return RunResult(None, timed_out=True)
    except BaseException:
        await end_process(process)
        raise
    return RunResult(code, out, err, truncated=cut)


async def check_output(
    argv: list[str], timeout: float, limit: int = 1 << 20
) -> tuple[int, str, str]:
    """A short helper command (ssh-keyscan, a handshake check): (exit code, stdout, stderr)
    as text; -1 and "timed out" past the deadline."""
    result = await capture(argv, timeout, limit=limit)
    if result.timed_out:
        return -1, "", "timed out"
    return (
        result.exit_code,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


# -- threads for blocking session clients (SSM run) ---------------------------------------------

MAX_THREADS = 64
_threads: Optional[concurrent.futures.ThreadPoolExecutor] = None
_threads_lock = threading.Lock()


def threads() -> concurrent.futures.ThreadPoolExecutor:
    """The pool blocking session clients run in, created on first use (never at import).
    The number of hosts run at once is bounded by the caller (c.SMDebug.max_concurrency)."""
    global _threads
    with _threads_lock:
        if _threads is None:
            _threads = concurrent.futures.ThreadPoolExecutor(
                MAX_THREADS, thread_name_prefix="sm-debug-connect"
            )
        return _threads


def shutdown() -> None:
    """Release the pool and every private directory still on disk (the extension's stop
    hook); a later use creates a new pool."""
    global _threads
    with _threads_lock:
        pool, _threads = _threads, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    remove_directories()


# -- private directories ----------------------------------------------------------------------

# Removed by their owner when the session ends, and any left when the server stops
# (shutdown) or its process exits (a terminal killed with the server never reports its end).
_directories: set[str] = set()


def private_directory(prefix: str) -> str:
    """A new directory only this user can enter (mode 0700)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    _directories.add(directory)
    return directory


def remove_directory(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    _directories.discard(directory)


@atexit.register
def remove_directories() -> None:
    for directory in list(_directories):
        remove_directory(directory)
