"""Training job descriptions, described once and kept as long as they can be trusted.

Three tiers. Finished jobs never change: their descriptions are kept for good (a few whole
descriptions, many sidebar rows). A running job's description is reused by the list while
the list's own summary of the job (status, secondary status, last-modified time) still
matches it, so refreshing an unchanged list costs the ListTrainingJobs call alone; other
callers reuse it for `running_cache_ttl` seconds. Fresh describes in flight are shared.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

from ..description import FINISHED, attach_state, summary
from ..errors import NOT_FOUND_CODES, SMDebugError

if TYPE_CHECKING:
    from ..config import SMDebug
    from .aws import AWS

# A finished job never changes. The list needs its sidebar row only (about 1.5 KiB in
# Python); the detail, attach and debug copy need the whole description (13 KiB and up: a
# real job's hyperparameters, environment and metrics make it larger). So many rows are
# kept, and few descriptions: browsing 10,000 jobs does not keep 10,000 descriptions.
FINISHED_ROWS = 10_000
FINISHED_DESCRIPTIONS = 200
# The list reuses a running job's description while its summary is unchanged, but describes
# it again at least this often (seconds), in case a change did not move LastModifiedTime.
RUNNING_REVALIDATE = 60.0
# What a ListTrainingJobs summary shares with the description and moves on every change.
SUMMARY_KEYS = ("TrainingJobStatus", "SecondaryStatus", "LastModifiedTime")


class Descriptions:
    """The description cache. `on_finished` callbacks hear of each job seen finished (the
    SSH trust store forgets its hosts)."""

    def __init__(self, aws: AWS, config: SMDebug):
        self.aws = aws
        self.config = config
        self.on_finished: list[Callable[[str], None]] = []
        # Finished jobs, least recently used first: whole descriptions and sidebar rows.
        self._finished: OrderedDict[str, dict] = OrderedDict()
        self._finished_rows: OrderedDict[str, dict] = OrderedDict()
        self._running: dict[str, tuple[float, dict]] = {}
        self._running_pruned = 50  # _running's size after the last pruning (at least 50)
        # Fresh describes in flight, by job: the list starts them, the sidebar joins them.
        self._inflight: dict[str, asyncio.Future] = {}
        # When the list last saw a running job's cached description still current.
        self._confirmed: dict[str, float] = {}

    @property
    def window(self) -> float:
        """How long a running job's description serves the list and an attach."""
        return max(RUNNING_REVALIDATE, self.config.running_cache_ttl)

    async def describe(self, name: str, fresh: bool = False) -> dict:
        cached = self._finished.get(name)
        if cached is not None:
            self._finished.move_to_end(name)
            return cached
        if not fresh:
            hit = self._running.get(name)
            if hit and time.monotonic() - hit[0] < self.config.running_cache_ttl:
                return hit[1]
        try:
            description = await self.aws.call(
                "sagemaker", "describe_training_job", TrainingJobName=name
            )
        except SMDebugError as error:
            # DescribeTrainingJob's one parameter is the name, which the API checked against
            # AWS's pattern: AWS answers an unknown job with ValidationException ("Requested
            # resource not found."), other backends with a not-found code.
            if error.aws_code in NOT_FOUND_CODES or error.aws_code == "ValidationException":
                raise SMDebugError(
                    404,
                    "job_not_found",
                    f"No training job named {name!r} in this account and region.",
                    "Check the name, and that the server's AWS region is the job's region.",
                    aws_code=error.aws_code,
                    operation=error.operation,
                ) from None
            raise
        description.pop("ResponseMetadata", None)
        self._remember(name, description)
        return description

    def _remember(self, name: str, description: dict) -> None:
        if description.get("TrainingJobStatus") in FINISHED:
            self._running.pop(name, None)
            self._confirmed.pop(name, None)
            for forget in self.on_finished:
                forget(name)
            self._finished[name] = description
            self._finished.move_to_end(name)
            self._finished_rows[name] = summary(description)
            self._finished_rows.move_to_end(name)
            while len(self._finished) > FINISHED_DESCRIPTIONS:
                self._finished.popitem(last=False)
            while len(self._finished_rows) > FINISHED_ROWS:
                self._finished_rows.popitem(last=False)
        else:
            now = time.monotonic()
            self._running[name] = (now, description)
            if len(self._running) > 2 * self._running_pruned:
                self._prune_running(now)

    def _prune_running(self, now: float) -> None:
        """Drop running descriptions too old to serve anyone (current, describe and
        attach_description use them for at most the window): a job that finished or went
        out of view is never described again, and its entry would stay for the server's
        life."""
        window = self.window
        for name in [n for n, (seen, _) in self._running.items() if now - seen >= window]:
            if now - self._confirmed.get(name, 0.0) >= window:
                self._running.pop(name, None)
                self._confirmed.pop(name, None)
        self._running_pruned = max(50, len(self._running))

    def finished_row(self, name: str) -> dict | None:
        row = self._finished_rows.get(name)
        if row is not None:
            self._finished_rows.move_to_end(name)
        return row

    def current_row(self, item: dict) -> dict | None:
        """The sidebar row a ListTrainingJobs summary proves current, or None."""
        row = self.finished_row(item["TrainingJobName"])
        if row is not None:
            return row
        running = self.current(item)
        return None if running is None else summary(running)

    def current(self, item: dict) -> dict | None:
        """The cached description of a running job that its ListTrainingJobs summary
        proves current, or None."""
        name = item["TrainingJobName"]
        hit = self._running.get(name)
        if (
            hit is not None
            and item.get("LastModifiedTime") is not None
            and all(item.get(key) == hit[1].get(key) for key in SUMMARY_KEYS)
            and time.monotonic() - hit[0] < self.window
        ):
            self._confirmed[name] = time.monotonic()
            return hit[1]
        return None

    async def attach_description(self, name: str, transport: str) -> tuple[dict, bool]:
        """The description an attach decides on, and whether it came from the cache.

        A running job's description that a describe or the list confirmed within the
        window, and that says the transport can attach, serves without a
        DescribeTrainingJob: the attach's own AWS call (StartSession, the SSH probe) fails on
        a job that ended since, and the caller then asks again with `fresh=True` to say why.
        Anything else (unknown, stale, or not attachable by the cache) is described now."""
        hit = self._running.get(name)
        if hit is not None:
            seen = max(hit[0], self._confirmed.get(name, 0.0))
            if time.monotonic() - seen < self.window and attach_state(hit[1])[transport]["ok"]:
                return hit[1], True
        return await self.describe(name, fresh=True), False

    def inflight(self, name: str) -> asyncio.Future | None:
        return self._inflight.get(name)

    def prefetch(self, name: str) -> asyncio.Future:
        """One fresh describe of `name` in flight at a time; later askers share it."""
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.ensure_future(self.describe(name, fresh=True))
            self._inflight[name] = task

            def done(finished: asyncio.Future) -> None:
                if self._inflight.get(name) is finished:
                    del self._inflight[name]
                if not finished.cancelled():
                    finished.exception()  # retrieved here; the askers get it too

            task.add_done_callback(done)
        return task
