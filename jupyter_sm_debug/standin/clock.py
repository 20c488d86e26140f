"""The stand-in's clock."""

from __future__ import annotations

import threading
import time


class Clock:
    """Stand-in time, epoch seconds. "manual" moves only by advance(); "real" is the wall
    clock (plus any advance(), for a demo that wants to skip ahead)."""

    def __init__(self, mode: str):
        if mode not in ("real", "manual"):
            raise ValueError(f'clock must be "real" or "manual", not {mode!r}')
        self.mode = mode
        self._base = time.time()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return (time.time() if self.mode == "real" else self._base) + self._offset

    def advance(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError("the clock only moves forward: seconds must be >= 0")
        with self._lock:
            self._offset += float(seconds)
