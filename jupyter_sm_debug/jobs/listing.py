"""What the sidebar and the detail view show: pages of jobs, their rows, and one job in
full with the hold its hosts' logs tell of."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .. import logs
from ..description import detail, hold_answer, hold_window, hosts_of, listed_row, summary
from ..errors import SMDebugError

if TYPE_CHECKING:
    from ..logs import LogReader
    from .aws import AWS
    from .cache import Descriptions

TAIL_EVENTS = 200  # the hold line is among a stream's last events
HELD_CANDIDATES = 100  # running jobs looked at for holds (ListTrainingJobs' largest page)


class Listing:
    def __init__(self, aws: AWS, cache: Descriptions, reader: LogReader, log):
        self.aws = aws
        self.cache = cache
        self.reader = reader
        self.log = log

    async def list_jobs(
        self,
        status: str | None = None,
        name_contains: str | None = None,
        max_results: int = 20,
        next_token: str | None = None,
        describe: bool = True,
    ) -> dict:
        """One page of jobs, newest first. With ``describe=False`` the answer comes as soon
        as ListTrainingJobs does: jobs whose current description is at hand are whole, the
        others are rows from the summary (`described: false`) for `describe_many`."""
        params: dict[str, Any] = {
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": max_results,
        }
        if status:
            params["StatusEquals"] = status
        if name_contains:
            params["NameContains"] = name_contains
        if next_token:
            params["NextToken"] = next_token
        page = await self.aws.call("sagemaker", "list_training_jobs", **params)
        self.aws.warm_attach_client()
        items = page.get("TrainingJobSummaries", [])
        # A held job failed but is InProgress on AWS (our wrapper keeps its container up),
        # so StatusEquals=Failed hides it. The Failed filter's first page also lists the held
        # jobs, first and marked `held`: decided here, where the hold is read from the logs
        # as the detail view reads it (the front end would need a second paged list and a
        # detail request per running row). Held jobs are few and short-lived.
        held = await self._held(name_contains) if status == "Failed" and not next_token else []
        if not describe:
            rows = []
            for item in items:
                known = self.cache.current_row(item)
                if known is None:
                    # Describe it now, so the sidebar's descriptions request that follows
                    # finds the answer on its way: the page costs two round trips, not
                    # two plus the browser's.
                    self.cache.prefetch(item["TrainingJobName"])
                rows.append(known if known is not None else listed_row(item))
            return {"jobs": held + rows, "next_token": page.get("NextToken")}
        # ListTrainingJobs has no instance count or remote-debug state: describe the jobs
        # (concurrently, bounded by the pool) unless a description that is still current
        # is at hand.
        rows = await asyncio.gather(*(self._listed(item) for item in items))
        return {"jobs": held + list(rows), "next_token": page.get("NextToken")}

    async def _held(self, name_contains: str | None) -> list[dict]:
        """The rows of the running jobs that are held now (a hold window, and a hold their
        logs tell of), each with `held: true`, newest first."""
        params: dict[str, Any] = {
            "StatusEquals": "InProgress",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": HELD_CANDIDATES,
        }
        if name_contains:
            params["NameContains"] = name_contains
        page = await self.aws.call("sagemaker", "list_training_jobs", **params)

        async def one(item: dict) -> dict | None:
            try:
                description = self.cache.current(item) or await self.cache.describe(
                    item["TrainingJobName"], fresh=True
                )
                if not hold_window(description) or await self.hold(description) is None:
                    return None
            except SMDebugError:
                return None  # one job that cannot be described does not fail the list
            return {**summary(description), "held": True}

        rows = await asyncio.gather(*map(one, page.get("TrainingJobSummaries", [])))
        return [row for row in rows if row is not None]

    async def _listed(self, item: dict) -> dict:
        """The sidebar row of one ListTrainingJobs summary, described only if needed:
        finished jobs come from the cache; a running job's cached description serves while
        the summary agrees with it (no status change, LastModifiedTime unchanged, so no
        UpdateTrainingJob either) and it is younger than the cache's window."""
        known = self.cache.current_row(item)
        if known is not None:
            return known
        return summary(await self.cache.describe(item["TrainingJobName"], fresh=True))

    async def describe_many(self, names: list[str]) -> dict:
        """The sidebar's rows for these jobs, described in one wave (bounded by the pool;
        those a `describe=false` list started are joined, or taken from the cache):
        `{"jobs": [row...], "errors": [{"name", "error"}]}` in the order asked; a job that
        cannot be described is an error entry, not a failure of the others."""

        async def one(name: str):
            try:
                # The list's own describe if still in flight (shielded: a browser that goes
                # away does not cancel it), else the description it left in the cache.
                task = self.cache.inflight(name)
                if task is not None:
                    return summary(await asyncio.shield(task))
                row = self.cache.finished_row(name)
                return row or summary(await self.cache.describe(name))
            except SMDebugError as error:
                return {"name": name, "error": error.to_json()["error"]}

        rows = await asyncio.gather(*map(one, names))
        return {
            "jobs": [row for row in rows if "error" not in row],
            "errors": [row for row in rows if "error" in row],
        }

    async def job(self, name: str) -> dict:
        # The detail view is what a user acts on: always current, never from the TTL cache.
        return await self.detail(await self.cache.describe(name, fresh=True))

    async def detail(self, description: dict) -> dict:
        out = detail(description)
        out["hold"] = await self.hold(description)
        return out

    async def hold(self, description: dict) -> dict | None:
        """The hold our wrapper or sm-debug-entrypoint logged, for a job still up after its
        command failed: `{hosts, since, until, seconds, last_lines}`, or None. A held job is
        InProgress and Training (its containers run); only then are the hosts' logs read.
        Logs that cannot be read (no permission) leave the job without a hold rather than
        failing it."""
        if description.get("TrainingJobStatus") != "InProgress":
            return None
        if description.get("SecondaryStatus") != "Training":
            return None
        name = description["TrainingJobName"]
        try:
            streams = await self.reader.streams(name)
            hosts = [h["name"] for h in hosts_of(description) if (h["name"], "training") in streams]

            async def host_hold(host: str) -> dict | None:
                stream = streams[(host, "training")]
                page = await self.reader.events(stream, head=False, limit=TAIL_EVENTS)
                return logs.hold_of(page.get("events", []), host)

            holds = [h for h in await asyncio.gather(*map(host_hold, hosts)) if h]
        except SMDebugError as error:
            self.log.info("sm-debug: no hold state for %s: %s", name, error.code)
            return None
        if not holds:
            return None
        first = min(holds, key=lambda h: h["until"])
        return hold_answer(first, [h["host"] for h in holds], description)
