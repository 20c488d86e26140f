"""Training logs written straight into moto's CloudWatch Logs backend.

Straight into the backend, not through PutLogEvents: the stand-in's clock may run days ahead
of the wall clock (``advance``), and PutLogEvents drops events more than two hours in the
future, as AWS does. Reading them back is moto's real API (GetLogEvents, FilterLogEvents...).
"""

from __future__ import annotations

import contextlib
import threading

LOG_GROUP = "/aws/sagemaker/TrainingJobs"

# moto's backends are not thread-safe and are shared by every stand-in in the process.
_lock = threading.Lock()


class LogWriter:
    def __init__(self, account_id: str):
        self.account_id = account_id
        self._created: set[tuple[str, str]] = set()  # (region, stream) made by us

    def _group(self, region: str):
        from moto.logs.exceptions import ResourceAlreadyExistsException
        from moto.logs.models import logs_backends

        backend = logs_backends[self.account_id][region]
        if LOG_GROUP not in backend.groups:
            with contextlib.suppress(ResourceAlreadyExistsException):
                backend.create_log_group(LOG_GROUP, {})
        return backend.groups[LOG_GROUP]

    def put(self, region: str, stream: str, events: list[tuple[float, str]]) -> None:
        """Append (epoch seconds, message) events to a stream, creating it if needed."""
        if not events:
            return
        with _lock:
            group = self._group(region)
            if stream not in group.streams:
                group.create_log_stream(stream)
                self._created.add((region, stream))
            group.streams[stream].put_log_events(
                [
                    {"timestamp": int(t * 1000), "message": text}
                    for t, text in sorted(events, key=lambda event: event[0])
                ]
            )

    def delete_all(self) -> None:
        """Remove the streams this writer made (moto's state outlives a stand-in)."""
        with _lock:
            for region, stream in sorted(self._created):
                # Cleanup must never make stop() fail.
                with contextlib.suppress(Exception):
                    self._group(region).streams.pop(stream, None)
            self._created.clear()


def streams_with_prefix(account_id: str, region: str, group: str, prefix: str) -> list[str]:
    """Stream names of a group starting with ``prefix`` (moto's FilterLogEvents ignores
    logStreamNamePrefix; the front turns it into the equivalent logStreamNames)."""
    from moto.logs.models import logs_backends

    with _lock:
        found = logs_backends[account_id][region].groups.get(group)
        return sorted(name for name in (found.streams if found else {}) if name.startswith(prefix))


def stream_exists(account_id: str, region: str, group: str, stream: str) -> bool:
    """Whether the group exists and has that stream (a missing group counts as existing:
    moto's own answer for it is AWS's)."""
    from moto.logs.models import logs_backends

    with _lock:
        found = logs_backends[account_id][region].groups.get(group)
        return found is None or stream in found.streams
