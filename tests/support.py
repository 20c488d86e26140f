"""Small helpers every area of the tests shares (the fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port free right now (for servers the tests start themselves)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_counter = itertools.count()


def unique(prefix: str) -> str:
    """A job name no other test uses."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


ERROR_KEYS = {"code", "message", "hint"}


def assert_error(status, body, expected_status, code=None):
    """The one error shape: {"error": {code, message, hint}} with the expected status."""
    assert status == expected_status, body
    assert set(body) == {"error"}, body
    assert set(body["error"]) == ERROR_KEYS, body
    assert body["error"]["message"], body
    if code:
        assert body["error"]["code"] == code, body


async def attach(api, job, host, **body):
    """POST .../terminals: (status, body)."""
    return await api("POST", "jobs", job, "hosts", host, "terminals", body=body)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


async def failed_job(api, timeout: float = 120.0) -> dict:
    """The newest Failed job's row (the Failed filter also lists held jobs, InProgress). The
    demo's failing job is a real program that fails a few seconds after the stand-in
    starts, so a test that runs first waits for it."""
    deadline = time.monotonic() + timeout
    while True:
        status, page = await api("GET", "jobs", status="Failed")
        assert status == 200, page
        failed = [job for job in page["jobs"] if job["status"] == "Failed"]
        if failed:
            return failed[0]
        assert time.monotonic() < deadline, "no job failed in time"
        await asyncio.sleep(0.5)


async def host_target(services, job: str, host: str = "algo-1", transport: str = "ssh"):
    """The HostTarget the request layer would build for `host` of `job` (described afresh)."""
    from jupyter_sm_debug.connect import HostTarget

    description = await services.jobs.describe(job, fresh=True)
    return HostTarget(job, host, description, services.config, services.jobs, transport=transport)
