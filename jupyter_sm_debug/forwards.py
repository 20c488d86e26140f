"""Live port forwards: one per job, host and remote port, reused by every tab and request.

A forward ends when DELETE asks, when its job stops running, when its tunnel dies, or when
nothing used it for `c.SMDebug.forward_idle_seconds` (no proxied request, no open
websocket or streamed response): the browser never says reliably that its last tab closed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .connect import HostTarget, Tunnel
from .connect.registry import get_transport
from .errors import SMDebugError

Key = tuple[str, str, int]  # job, host, remote port


@dataclass
class Forward:
    job: str
    host: str
    port: int
    transport: str
    tunnel: Tunnel
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    in_use: int = 0  # connections the proxy holds open right now

    def to_json(self, base_url: str) -> dict:
        return {
            "job": self.job,
            "host": self.host,
            "port": self.port,
            "transport": self.transport,
            "local_port": self.tunnel.local_port,
            "target": self.tunnel.target,
            "url": proxy_url(base_url, self.job, self.host, self.port),
            "created": self.created,
        }


def proxy_url(base_url: str, job: str, host: str, port: int) -> str:
    return f"{base_url.rstrip('/')}/sm-debug/proxy/{job}/{host}/{port}/"


class ForwardRegistry:
    def __init__(self, config, jobs, log):
        self.config = config
        self.jobs = jobs
        self.log = log
        self._live: dict[Key, Forward] = {}
        self._opening: dict[Key, asyncio.Lock] = {}
        self._reaper: asyncio.Task | None = None
        # The tunnels end with the server in close_all (SMDebugApp.stop_extension).

    def get(self, job: str, host: str, port: int) -> Forward | None:
        found = self._live.get((job, host, port))
        if found and not found.tunnel.alive():
            self._live.pop((job, host, port), None)
            asyncio.ensure_future(found.tunnel.close())
            return None
        return found

    def all(self) -> list[Forward]:
        return [f for f in list(self._live.values()) if self.get(f.job, f.host, f.port)]

    async def open(self, request: HostTarget, port: int, transport: str) -> tuple[Forward, bool]:
        """(forward, reused). A live forward of another transport is ended first."""
        key = (request.job, request.host, port)
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            found = self.get(*key)
            if found and found.transport == transport:
                found.last_used = time.monotonic()
                return found, True
            if found:
                await self.close(*key)
            tunnel = await get_transport(transport, "forward").forward(request, port)
            forward = Forward(request.job, request.host, port, transport, tunnel)
            self._live[key] = forward
            self._start_reaper()
            self.log.info(
                "sm-debug: forward %s %s:%d over %s", request.job, request.host, port, transport
            )
            return forward, False

    async def close(self, job: str, host: str, port: int) -> bool:
        forward = self._live.pop((job, host, port), None)
        if forward is None:
            return False
        await forward.tunnel.close()
        return True

    async def close_all(self) -> None:
        for forward in list(self._live.values()):
            await self.close(forward.job, forward.host, forward.port)
        if self._reaper:
            self._reaper.cancel()

    # -- use, as the proxy reports it ------------------------------------------------------

    def touch(self, forward: Forward, delta: int = 0) -> None:
        forward.in_use += delta
        forward.last_used = time.monotonic()

    # -- reaping -----------------------------------------------------------------------------

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap_forever())

    async def _reap_forever(self) -> None:
        while self._live:
            idle = self.config.forward_idle_seconds
            await asyncio.sleep(max(0.2, min(30.0, idle / 4 if idle > 0 else 30.0)))
            try:
                await self.reap()
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad round
                self.log.exception("sm-debug: reaping forwards failed")

    async def reap(self) -> None:
        idle = self.config.forward_idle_seconds
        now = time.monotonic()
        for forward in list(self._live.values()):
            key = (forward.job, forward.host, forward.port)
            if not forward.tunnel.alive():
                await self.close(*key)
            elif idle > 0 and forward.in_use <= 0 and now - forward.last_used > idle:
                self.log.info("sm-debug: forward %s %s:%d idle, ended", *key)
                await self.close(*key)
            elif not await self._job_running(forward.job):
                self.log.info("sm-debug: forward %s %s:%d ended with its job", *key)
                await self.close(*key)

    async def _job_running(self, job: str) -> bool:
        try:
            description = await self.jobs.describe(job)
        except SMDebugError as error:
            return error.status != 404
        except Exception:  # noqa: BLE001 - AWS unreachable is no reason to cut a tunnel
            return True
        return description.get("TrainingJobStatus") == "InProgress"
