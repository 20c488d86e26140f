"""FilesService: one FileSystem per job, host and transport, reused by every request, rebuilt
when it died, closed after `c.SMDebug.files_idle_seconds` without use and all closed when
the server stops (SMDebugApp.stop_extension).

Each host takes at most PER_HOST operations at once (a listing, a read, a write...);
further requests wait their turn, so a page that asks for many files cannot open more
streams on a host than this.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from ..connect import HostTarget
from ..connect.registry import get_transport
from .base import FileError, FileSystem

PER_HOST = 4  # operations in flight per FileSystem

Key = tuple[str, str, str]  # job, host, transport


@dataclass
class Pooled:
    fs: FileSystem
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PER_HOST))
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)


def key_of(target: HostTarget) -> Key:
    return (target.job, target.host, target.transport)


class FilesService:
    def __init__(self, config, log):
        self.config = config
        self.log = log
        self._live: dict[Key, Pooled] = {}
        self._opening: dict[Key, asyncio.Lock] = {}
        self._reaper: asyncio.Task | None = None

    def live(self) -> list[Key]:
        return [key for key, pooled in self._live.items() if pooled.fs.alive()]

    async def _pooled(self, target: HostTarget) -> Pooled:
        key = key_of(target)
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._live.get(key)
            if found is not None and found.fs.alive():
                return found
            if found is not None:
                await self._drop(key, found)
            fs = await get_transport(target.transport, "files").files(target)
            pooled = Pooled(fs)
            self._live[key] = pooled
            self._start_reaper()
            self.log.info("sm-debug: files of %s %s over %s opened", *key)
            return pooled

    @contextlib.asynccontextmanager
    async def use(self, target: HostTarget) -> AsyncIterator[FileSystem]:
        """The host's FileSystem for one operation, within the host's PER_HOST slots. A
        failure that leaves it dead drops it: the next request builds a new one."""
        pooled = await self._pooled(target)
        async with pooled.slots:
            pooled.in_use += 1
            try:
                yield pooled.fs
            except FileError:
                raise
            except BaseException:
                if not pooled.fs.alive():
                    await self._drop(key_of(target), pooled)
                raise
            finally:
                pooled.in_use -= 1
                pooled.last_used = time.monotonic()

    async def _drop(self, key: Key, pooled: Pooled) -> None:
        if self._live.get(key) is pooled:
            del self._live[key]
        try:
            await pooled.fs.close()
        except Exception:  # noqa: BLE001 - a dead connection may fail to close; it is gone
            self.log.debug("sm-debug: closing files of %s %s over %s failed", *key, exc_info=True)

    async def close_all(self) -> None:
        if self._reaper:
            self._reaper.cancel()
            self._reaper = None
        for key, pooled in list(self._live.items()):
            await self._drop(key, pooled)

    # -- reaping idle ones -----------------------------------------------------------------

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap_forever())

    async def _reap_forever(self) -> None:
        while self._live:
            idle = self.config.files_idle_seconds
            await asyncio.sleep(max(0.2, min(30.0, idle / 4 if idle > 0 else 30.0)))
            try:
                await self.reap()
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad round
                self.log.exception("sm-debug: reaping file sessions failed")

    async def reap(self) -> None:
        """Close each FileSystem that died, or that nothing used for files_idle_seconds."""
        idle = self.config.files_idle_seconds
        now = time.monotonic()
        for key, pooled in list(self._live.items()):
            if not pooled.fs.alive():
                await self._drop(key, pooled)
            elif idle > 0 and pooled.in_use <= 0 and now - pooled.last_used > idle:
                self.log.info("sm-debug: files of %s %s over %s idle, closed", *key)
                await self._drop(key, pooled)
