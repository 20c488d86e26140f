"""The faults a test or a demo sets on the stand-in: latency, throttling, down, expired."""

from __future__ import annotations

import threading
from typing import Any, Optional


class Faults:
    """Latency on every AWS call, a round trip on the SSM data channel (channel_latency:
    each websocket message waits half of it in each direction), throttling of the next N
    calls, the whole API down, or the caller's credentials expired (every call answers
    ExpiredToken)."""

    def __init__(self, latency: float = 0.0, channel_latency: float = 0.0):
        self._lock = threading.Lock()
        self.initial_latency = latency
        self.initial_channel_latency = channel_latency
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.latency = float(self.initial_latency)
            self.channel_latency = float(self.initial_channel_latency)
            self.throttle = 0
            self.throttle_action: Optional[str] = None
            self.down = False
            self.expired = False

    def update(self, **changes: Any) -> dict:
        for key in ("latency", "channel_latency"):
            if key in changes:
                value = changes[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{key} must be a number of seconds >= 0")
        if "throttle" in changes:
            throttle = changes["throttle"]
            if isinstance(throttle, bool) or not isinstance(throttle, int) or throttle < 0:
                raise ValueError("throttle must be a whole number of calls >= 0")
        if "throttle_action" in changes:
            action = changes["throttle_action"]
            if action is not None and not isinstance(action, str):
                raise ValueError("throttle_action must be an action name or null")
        for flag in ("down", "expired"):
            if flag in changes and not isinstance(changes[flag], bool):
                raise ValueError(f"{flag} must be true or false")
        known = {"latency", "channel_latency", "throttle", "throttle_action", "down", "expired"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        with self._lock:
            for key, value in changes.items():
                if key == "throttle_action" and value:
                    value = value.rsplit(".", 1)[-1]  # "SageMaker.ListTrainingJobs" works too
                setattr(self, key, float(value) if "latency" in key else value)
        return self.snapshot()

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "latency": self.latency,
                "channel_latency": self.channel_latency,
                "throttle": self.throttle,
                "throttle_action": self.throttle_action,
                "down": self.down,
                "expired": self.expired,
            }

    def take(self, action: str) -> tuple[float, bool, bool]:
        """(latency, down, throttled) for one call; a throttled call uses up one of N."""
        with self._lock:
            throttled = False
            if self.throttle > 0 and self.throttle_action in (None, action):
                self.throttle -= 1
                throttled = True
            return self.latency, self.down, throttled
