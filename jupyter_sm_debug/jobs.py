"""The SageMaker control plane: list, describe and update training jobs through boto3.

boto3 blocks, so every call runs on a small thread pool and the Tornado loop never waits
on AWS. The pool size bounds the calls in flight, which keeps a refresh under SageMaker's
Describe* throttling limits. Finished jobs never change: their descriptions are cached for
good. A running job's description is reused by the list while the list's own summary of the
job (status, secondary status, last-modified time) still matches it, so refreshing an
unchanged list costs the ListTrainingJobs call alone; other callers reuse it for
`running_cache_ttl` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import shutil
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import __version__, hold, logs
from .config import SMDebug
from .connect.clients import ssh_problem
from .errors import SMDebugError, from_boto

if TYPE_CHECKING:  # boto3 and botocore load on the first AWS call, not at server start
    import boto3

FINISHED = {"Completed", "Failed", "Stopped"}
# AWS accepts RemoteDebugConfig updates only in these secondary states.
REMOTE_DEBUG_UPDATABLE = {"Downloading", "Training"}
# Secondary states in which the training containers exist.
CONTAINERS_UP = {"Downloading", "Training", "Uploading"}
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


def iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def hosts_of(description: dict) -> list[dict]:
    """algo-1..N, numbered across instance groups in the order SageMaker lists them."""
    resources = description.get("ResourceConfig", {})
    groups = resources.get("InstanceGroups") or [
        {
            "InstanceGroupName": None,
            "InstanceType": resources.get("InstanceType"),
            "InstanceCount": resources.get("InstanceCount", 1),
        }
    ]
    hosts = []
    for group in groups:
        for _ in range(group.get("InstanceCount", 0)):
            hosts.append(
                {
                    "name": f"algo-{len(hosts) + 1}",
                    "instance_type": group.get("InstanceType"),
                    "group": group.get("InstanceGroupName"),
                }
            )
    return hosts


def state_words(status: str | None, secondary: str | None) -> str:
    """ "Completed", "InProgress (Starting)": the secondary status only when it says more."""
    return f"{status} ({secondary})" if secondary and secondary != status else f"{status}"


def instances_of(description: dict) -> list[dict]:
    """What the job runs on: `[{"type": "ml.g5.12xlarge", "count": 4, "group": None}]`."""
    resources = description.get("ResourceConfig", {})
    groups = resources.get("InstanceGroups") or [
        {
            "InstanceGroupName": None,
            "InstanceType": resources.get("InstanceType"),
            "InstanceCount": resources.get("InstanceCount", 1),
        }
    ]
    return [
        {
            "type": group.get("InstanceType"),
            "count": group.get("InstanceCount", 0),
            "group": group.get("InstanceGroupName"),
        }
        for group in groups
    ]


# The console's host per ARN partition; jobs live under the region's SageMaker console.
CONSOLE_HOSTS = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-cn": "https://{region}.console.amazonaws.cn",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
}
ARN = re.compile(
    r"arn:(?P<partition>[a-z-]+):sagemaker:(?P<region>[a-z0-9-]+):[0-9]{12}:training-job/"
)


def console_url(description: dict) -> str | None:
    """The job's page in the AWS console, in the job's own partition and region."""
    match = ARN.match(description.get("TrainingJobArn") or "")
    if not match or match.group("partition") not in CONSOLE_HOSTS:
        return None
    region = match.group("region")
    host = CONSOLE_HOSTS[match.group("partition")].format(region=region)
    name = quote(description["TrainingJobName"], safe="-")
    return f"{host}/sagemaker/home?region={region}#/jobs/{name}"


def remote_debug_enabled(description: dict) -> bool:
    return bool(description.get("RemoteDebugConfig", {}).get("EnableRemoteDebug", False))


def summary(description: dict) -> dict:
    return {
        "name": description["TrainingJobName"],
        "arn": description.get("TrainingJobArn"),
        "status": description.get("TrainingJobStatus"),
        "secondary_status": description.get("SecondaryStatus"),
        "created": iso(description.get("CreationTime")),
        "started": iso(description.get("TrainingStartTime")),
        "ended": iso(description.get("TrainingEndTime")),
        "last_modified": iso(description.get("LastModifiedTime")),
        "instance_count": len(hosts_of(description)),
        "instances": instances_of(description),
        # Set once the job has finished; billable time is less with managed spot training.
        "training_seconds": description.get("TrainingTimeInSeconds"),
        "billable_seconds": description.get("BillableTimeInSeconds"),
        "console_url": console_url(description),
        "remote_debug": {"enabled": remote_debug_enabled(description)},
        "described": True,
    }


def listed_row(item: dict) -> dict:
    """A row from a ListTrainingJobs summary alone, for the sidebar's first paint: what the
    summary lacks (instances, remote debug, times only a description has) is null, and
    `described` is false until a description fills it (`JobsService.describe_many`)."""
    return {
        "name": item["TrainingJobName"],
        "arn": item.get("TrainingJobArn"),
        "status": item.get("TrainingJobStatus"),
        "secondary_status": item.get("SecondaryStatus"),
        "created": iso(item.get("CreationTime")),
        "started": None,
        "ended": iso(item.get("TrainingEndTime")),
        "last_modified": iso(item.get("LastModifiedTime")),
        "instance_count": None,
        "instances": None,
        "training_seconds": None,
        "billable_seconds": None,
        "console_url": console_url(item),
        "remote_debug": None,
        "described": False,
    }


def remote_debug_change(description: dict) -> dict:
    """Whether the remote-debug switch can be flipped now, and if not, why (AWS's rules)."""
    status = description.get("TrainingJobStatus")
    secondary = description.get("SecondaryStatus")
    if description.get("EnableNetworkIsolation"):
        reason = "SageMaker does not allow remote debug on a job with network isolation."
    elif status != "InProgress":
        reason = f"The job is {status}: a finished job cannot be changed."
    elif secondary not in REMOTE_DEBUG_UPDATABLE:
        reason = (
            f"The job is {secondary}: remote debug can be changed once it is Downloading "
            "or Training."
        )
    else:
        return {"ok": True, "reason": ""}
    return {"ok": False, "reason": reason}


def attach_state(description: dict) -> dict:
    """Whether each transport can reach the hosts now, and if not, why and what to do."""
    status = description.get("TrainingJobStatus")
    secondary = description.get("SecondaryStatus")
    isolated = bool(description.get("EnableNetworkIsolation"))
    if status != "InProgress":
        gone = {"ok": False, "reason": f"The job is {status}: its containers are gone."}
        return {"ssm": gone, "ssh": gone}
    if secondary not in CONTAINERS_UP:
        waiting = {
            "ok": False,
            "reason": f"The job is {secondary}: attach once it is Downloading or Training.",
        }
        return {"ssm": waiting, "ssh": waiting}
    if isolated:
        reason = "The job runs with network isolation, which blocks remote access."
        return {"ssm": {"ok": False, "reason": reason}, "ssh": {"ok": False, "reason": reason}}
    if not remote_debug_enabled(description):
        ssm = {"ok": False, "reason": "Turn on Remote debug for this job first."}
    elif secondary not in REMOTE_DEBUG_UPDATABLE:
        ssm = {"ok": False, "reason": f"The job is {secondary}: the SSM agent has stopped."}
    else:
        ssm = {"ok": True, "reason": ""}
    missing = ssh_problem()  # this machine, not the job: the reason names the missing client
    return {"ssm": ssm, "ssh": {"ok": not missing, "reason": missing["message"] if missing else ""}}


def detail(description: dict) -> dict:
    vpc = description.get("VpcConfig")
    algorithm = description.get("AlgorithmSpecification", {})
    return {
        **summary(description),
        "hosts": hosts_of(description),
        "network_isolation": bool(description.get("EnableNetworkIsolation")),
        "vpc": {
            "subnets": vpc.get("Subnets", []),
            "security_groups": vpc.get("SecurityGroupIds", []),
        }
        if vpc
        else None,
        "failure_reason": description.get("FailureReason"),
        "image": algorithm.get("TrainingImage") or algorithm.get("AlgorithmName"),
        "attach": attach_state(description),
        "remote_debug_change": remote_debug_change(description),
        # Filled in by JobsService.job() from the hosts' logs.
        "hold": None,
    }


def copy_name(name: str, now: datetime | None = None) -> str:
    """`<name>-debug-<MMDDHHMMSS>`, cut to AWS's 63 characters."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%m%d%H%M%S")
    return f"{name[: 63 - len(stamp) - 7].rstrip('-')}-debug-{stamp}"


HOLD_TAG = "sm-debug:hold"  # how the copy holds: "wrapper", "entrypoint" or "none"


def debug_copy_request(
    description: dict, new_name: str, hold_seconds: int, hold_plan: dict | None = None
) -> dict:
    """A CreateTrainingJob request repeating the job, plus remote debug and a hold window.

    Only fields that CreateTrainingJob accepts are carried over (botocore's own model says
    which). ``hold_plan`` (hold.plan) says how the copy holds: with the wrapper, its
    ContainerEntrypoint/Arguments run the job's own command under the hold wrapper. The
    window is an environment variable (read by the wrapper and by sm-debug-entrypoint),
    because hyperparameters reach training scripts as arguments and could break them."""
    accepted = create_training_job_fields()
    request = {
        key: value
        for key, value in description.items()
        if key in accepted and key not in ("TrainingJobName", "Tags") and value is not None
    }
    request["TrainingJobName"] = new_name
    request["RemoteDebugConfig"] = {"EnableRemoteDebug": True}
    environment = dict(request.get("Environment") or {})
    environment["SM_DEBUG_HOLD_ON_FAILURE"] = str(hold_seconds)
    request["Environment"] = environment
    mechanism = "none"
    if hold_plan and hold_plan.get("possible") and hold_plan.get("fields") and hold_seconds > 0:
        algorithm = {
            key: value
            for key, value in request["AlgorithmSpecification"].items()
            if key not in ("ContainerEntrypoint", "ContainerArguments")
        }
        request["AlgorithmSpecification"] = {**algorithm, **hold_plan["fields"]}
        mechanism = hold_plan["mechanism"]
    elif hold_plan and hold_plan.get("possible") and hold_seconds > 0:
        mechanism = hold_plan["mechanism"]  # the image's own entrypoint holds
    request["Tags"] = [
        {"Key": "sm-debug:copy-of", "Value": description["TrainingJobName"]},
        {"Key": HOLD_TAG, "Value": mechanism},
    ]
    return request


def public_plan(plan: dict) -> dict:
    """What the UI shows of a hold plan (not the wrapper's text)."""
    return {key: plan[key] for key in ("mechanism", "command", "possible", "reason")}


def read_image_config(ecr_client) -> Any:
    """hold.plan's reader of an image's config through this ECR client: an AWS refusal
    becomes ImageUnreadable naming AWS's error code."""

    def call(operation: str, **params) -> dict:
        import botocore.exceptions

        try:
            return getattr(ecr_client, operation)(**params)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise hold.ImageUnreadable(f"{operation} answered {code}.") from None
        except botocore.exceptions.BotoCoreError as error:
            raise hold.ImageUnreadable(f"{operation} failed: {type(error).__name__}.") from None

    def read(uri: str) -> dict:
        try:
            return hold.image_config(call, uri)
        except OSError as error:
            raise hold.ImageUnreadable(f"the config blob could not be fetched ({error}).") from None

    return read


@functools.lru_cache(maxsize=1)
def create_training_job_fields() -> frozenset:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.operation_model("CreateTrainingJob").input_shape.members)


# Seconds after the first list before the attach's client is created: the sidebar's first
# page (rows, then its describes) is done by then, and a user has not clicked Attach yet.
WARM_AFTER = 2.0


class JobsService:
    """Async facade over boto3 for the handlers. One per server."""

    def __init__(self, config: SMDebug, log):
        self.config = config
        self.log = log
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, config.max_concurrency), thread_name_prefix="sm-debug-aws"
        )
        self._clients: dict[str, Any] = {}
        self._session: boto3.session.Session | None = None
        self._lock = threading.Lock()
        # Finished jobs, least recently used first: whole descriptions and sidebar rows.
        self._finished: OrderedDict[str, dict] = OrderedDict()
        self._finished_rows: OrderedDict[str, dict] = OrderedDict()
        self._running: dict[str, tuple[float, dict]] = {}
        self._running_pruned = 50  # _running's size after the last pruning (at least 50)
        # Fresh describes in flight, by job: the list starts them, the sidebar joins them.
        self._inflight: dict[str, asyncio.Future] = {}
        # When the list last saw a running job's cached description still current.
        self._confirmed: dict[str, float] = {}
        self._account: tuple[float, dict] | None = None
        # SSH targets hosts announced in their logs, by (job, host): a later attach to the
        # same container needs no log lookup. Dropped when the job ends or the target fails.
        self.ssh_targets: dict[tuple[str, str], Any] = {}
        # (job, host, target) whose sshd proved the pinned key in this server's life: a later
        # session pins the same key (its ssh still refuses any other) without the check's
        # extra handshake. Dropped with the job, and when a session's ssh finds a mismatch.
        self.ssh_verified: set[tuple[str, str, Any]] = set()
        self._warmed = False  # the attach's client is being or has been created

    # -- boto3 plumbing ---------------------------------------------------------------

    def session(self) -> boto3.session.Session:
        import boto3.session

        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session(
                    profile_name=self.config.profile or None,
                    region_name=self.config.region or None,
                )
            return self._session

    def client(self, service: str):
        """A cached boto3 client; created on a worker thread (it reads files and env)."""
        with self._lock:
            client = self._clients.get(service)
        if client is not None:
            return client
        from botocore.config import Config

        session = self.session()
        config = Config(
            connect_timeout=self.config.api_timeout,
            read_timeout=self.config.api_timeout,
            # total_max_attempts counts the first attempt; botocore's max_attempts counts
            # retries only, which made 4 "attempts" 5.
            retries={"mode": "standard", "total_max_attempts": self.config.max_attempts},
            max_pool_connections=max(10, self.config.max_concurrency),
            user_agent_extra=f"jupyter-sm-debug/{__version__}",
        )
        kwargs = {"config": config}
        if self.config.endpoint_url:
            kwargs["endpoint_url"] = self.config.endpoint_url
        with self._lock:
            # boto3 sessions are not thread-safe: create clients under the lock.
            client = self._clients.get(service) or session.client(service, **kwargs)
            self._clients[service] = client
        return client

    def _warm_attach_client(self) -> None:
        """Once the sidebar lists jobs, create the client an Attach calls first (SSM's
        StartSession, or CloudWatch Logs for an SSH announcement) on a worker thread: a
        boto3 client takes a few hundred ms to load its model, which the first Attach
        would otherwise wait for. Not at once: loading the model holds the GIL, and the
        page's describes and its answer come first."""
        if self._warmed:
            return
        self._warmed = True
        service = "ssm" if self.config.default_transport == "ssm" else "logs"

        def warm() -> None:
            try:
                self.client(service)
            except Exception as error:  # noqa: BLE001 - the attach itself reports it
                self.log.debug("sm-debug: no %s client yet: %s", service, type(error).__name__)

        def start() -> None:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                self._executor.submit(warm)

        asyncio.get_running_loop().call_later(WARM_AFTER, start)

    async def call(self, service: str, operation: str, **params) -> dict:
        """Run one AWS API call off the event loop; failures become SMDebugError."""

        def run():
            return getattr(self.client(service), operation)(**params)

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, run)
        except SMDebugError:
            raise
        except Exception as exc:  # noqa: BLE001 - every boto failure is mapped for the user
            error = from_boto(exc, operation)
            if error.status >= 500:
                self.log.warning("sm-debug: %s failed: %s", operation, type(exc).__name__)
            raise error from None

    def close(self) -> None:
        """Stop the worker threads and close every client's connection pool."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- jobs ----------------------------------------------------------------------

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
            description = await self.call(
                "sagemaker", "describe_training_job", TrainingJobName=name
            )
        except SMDebugError as error:
            # SageMaker answers an unknown job with ValidationException "Requested resource
            # not found."; give it the 404 it means.
            if error.code in ("not_found", "invalid_request") and "not found" in error.message:
                raise SMDebugError(
                    404,
                    "job_not_found",
                    f"No training job named {name!r} in this account and region.",
                    "Check the name, and that the server's AWS region is the job's region.",
                ) from None
            raise
        description.pop("ResponseMetadata", None)
        self._remember(name, description)
        return description

    def _remember(self, name: str, description: dict) -> None:
        if description.get("TrainingJobStatus") in FINISHED:
            self._running.pop(name, None)
            self._confirmed.pop(name, None)
            for key in [key for key in self.ssh_targets if key[0] == name]:
                self.ssh_targets.pop(key, None)
            self.ssh_verified = {entry for entry in self.ssh_verified if entry[0] != name}
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
        """Drop running descriptions too old to serve anyone (_current, describe and
        attach_description use them for at most the window): a job that finished or went out
        of view is never described again, and its entry would stay for the server's life."""
        window = max(RUNNING_REVALIDATE, self.config.running_cache_ttl)
        for name in [n for n, (seen, _) in self._running.items() if now - seen >= window]:
            if now - self._confirmed.get(name, 0.0) >= window:
                self._running.pop(name, None)
                self._confirmed.pop(name, None)
        self._running_pruned = max(50, len(self._running))

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
        page = await self.call("sagemaker", "list_training_jobs", **params)
        self._warm_attach_client()
        items = page.get("TrainingJobSummaries", [])
        if not describe:
            rows = []
            for item in items:
                known = self._current_row(item)
                if known is None:
                    # Describe it now, so the sidebar's descriptions request that follows
                    # finds the answer on its way: the page costs two round trips, not
                    # two plus the browser's.
                    self._prefetch(item["TrainingJobName"])
                rows.append(known if known is not None else listed_row(item))
            return {"jobs": rows, "next_token": page.get("NextToken")}
        # ListTrainingJobs has no instance count or remote-debug state: describe the jobs
        # (concurrently, bounded by the pool) unless a description that is still current
        # is at hand.
        rows = await asyncio.gather(*(self._listed(item) for item in items))
        return {"jobs": list(rows), "next_token": page.get("NextToken")}

    async def _listed(self, item: dict) -> dict:
        """The sidebar row of one ListTrainingJobs summary, described only if needed:
        finished jobs come from the cache; a running job's cached description serves while
        the summary agrees with it (no status change, LastModifiedTime unchanged, so no
        UpdateTrainingJob either) and it is younger than RUNNING_REVALIDATE."""
        known = self._current_row(item)
        if known is not None:
            return known
        return summary(await self.describe(item["TrainingJobName"], fresh=True))

    def _finished_row(self, name: str) -> dict | None:
        row = self._finished_rows.get(name)
        if row is not None:
            self._finished_rows.move_to_end(name)
        return row

    def _current_row(self, item: dict) -> dict | None:
        """The sidebar row a ListTrainingJobs summary proves current, or None."""
        row = self._finished_row(item["TrainingJobName"])
        if row is not None:
            return row
        running = self._current(item)
        return None if running is None else summary(running)

    def _current(self, item: dict) -> dict | None:
        """The cached description of a running job that its ListTrainingJobs summary
        proves current, or None."""
        name = item["TrainingJobName"]
        hit = self._running.get(name)
        if (
            hit is not None
            and item.get("LastModifiedTime") is not None
            and all(item.get(key) == hit[1].get(key) for key in SUMMARY_KEYS)
            and time.monotonic() - hit[0] < max(RUNNING_REVALIDATE, self.config.running_cache_ttl)
        ):
            self._confirmed[name] = time.monotonic()
            return hit[1]
        return None

    async def attach_description(self, name: str, transport: str) -> tuple[dict, bool]:
        """The description an attach decides on, and whether it came from the cache.

        A running job's description that a describe or the list confirmed within
        RUNNING_REVALIDATE seconds, and that says the transport can attach, serves without a
        DescribeTrainingJob: the attach's own AWS call (StartSession, the SSH probe) fails on
        a job that ended since, and the caller then asks again with `fresh=True` to say why.
        Anything else (unknown, stale, or not attachable by the cache) is described now."""
        hit = self._running.get(name)
        if hit is not None:
            seen = max(hit[0], self._confirmed.get(name, 0.0))
            fresh_enough = time.monotonic() - seen < max(
                RUNNING_REVALIDATE, self.config.running_cache_ttl
            )
            if fresh_enough and attach_state(hit[1])[transport]["ok"]:
                return hit[1], True
        return await self.describe(name, fresh=True), False

    def _prefetch(self, name: str) -> asyncio.Future:
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

    async def describe_many(self, names: list[str]) -> dict:
        """The sidebar's rows for these jobs, described in one wave (bounded by the pool;
        those a `describe=false` list started are joined, or taken from the cache):
        `{"jobs": [row...], "errors": [{"name", "error"}]}` in the order asked; a job that
        cannot be described is an error entry, not a failure of the others."""

        async def one(name: str):
            try:
                # The list's own describe if still in flight (shielded: a browser that goes
                # away does not cancel it), else the description it left in the cache.
                task = self._inflight.get(name)
                if task is not None:
                    return summary(await asyncio.shield(task))
                return self._finished_row(name) or summary(await self.describe(name))
            except SMDebugError as error:
                return {"name": name, "error": error.to_json()["error"]}

        rows = await asyncio.gather(*map(one, names))
        return {
            "jobs": [row for row in rows if "error" not in row],
            "errors": [row for row in rows if "error" in row],
        }

    async def job(self, name: str) -> dict:
        # The detail view is what a user acts on: always current, never from the TTL cache.
        return await self._detail(await self.describe(name, fresh=True))

    async def _detail(self, description: dict) -> dict:
        out = detail(description)
        out["hold"] = await self.hold(description)
        return out

    # -- logs ------------------------------------------------------------------------

    async def _log_streams(self, prefix: str) -> list[dict]:
        """The log group's streams whose names start with ``prefix`` (a few pages at most:
        a host has one stream per container start, two with SSM)."""
        streams: list[dict] = []
        params: dict[str, Any] = {"logGroupName": logs.LOG_GROUP, "logStreamNamePrefix": prefix}
        for _ in range(5):
            try:
                page = await self.call("logs", "describe_log_streams", **params)
            except SMDebugError as error:
                if error.status == 404:  # no log group yet: nothing has logged
                    return []
                raise
            streams += page.get("logStreams", [])
            if not page.get("nextToken"):
                break
            params["nextToken"] = page["nextToken"]
        return streams

    async def hold(self, description: dict) -> dict | None:
        """The hold sm-debug-entrypoint logged, for a job still up after its command failed:
        `{hosts, since, until, seconds, last_lines}`, or None. A held job is InProgress and
        Training (its containers run); only then are the hosts' logs read. Logs that cannot
        be read (no permission) leave the job without a hold rather than failing it."""
        if description.get("TrainingJobStatus") != "InProgress":
            return None
        if description.get("SecondaryStatus") != "Training":
            return None
        name = description["TrainingJobName"]
        try:
            streams = logs.newest_streams(await self._log_streams(f"{name}/"), name)
            hosts = [h["name"] for h in hosts_of(description) if (h["name"], "training") in streams]

            async def host_hold(host: str) -> dict | None:
                # The hold line is among the last: the tail of the stream is enough.
                page = await self.call(
                    "logs",
                    "get_log_events",
                    logGroupName=logs.LOG_GROUP,
                    logStreamName=streams[(host, "training")],
                    startFromHead=False,
                    limit=200,
                )
                return logs.hold_of(page.get("events", []), host)

            holds = [h for h in await asyncio.gather(*map(host_hold, hosts)) if h]
        except SMDebugError as error:
            self.log.info("sm-debug: no hold state for %s: %s", name, error.code)
            return None
        if not holds:
            return None
        first = min(holds, key=lambda h: h["until"])
        return {
            "hosts": [h["host"] for h in holds],
            "since": first["since"],
            "until": first["until"],
            "seconds": first["seconds"],
            "last_lines": first["last_lines"],
        }

    async def host_logs(
        self, job: str, host: str, kind: str, next_token: str | None, limit: int
    ) -> dict:
        """One page of a host's log: its newest training stream (or that stream's /ssm
        twin), oldest first from the start, then forward from ``next_token``. A host that
        has not logged yet answers no events and no token: ask again later."""
        suffix = "/ssm" if kind == "ssm" else ""
        params: dict[str, Any] = {"startFromHead": True, "limit": limit}
        if next_token:
            epoch, params["nextToken"] = logs.parse_token(next_token)
            stream = f"{job}/{host}-{epoch}{suffix}"
        else:
            newest = logs.newest_streams(await self._log_streams(f"{job}/{host}-"), job)
            stream = newest.get((host, kind))
            if stream is None:
                return {"events": [], "next_token": None, "stream": None}
            epoch = logs.stream_epoch(stream)
        try:
            page = await self.call(
                "logs",
                "get_log_events",
                logGroupName=logs.LOG_GROUP,
                logStreamName=stream,
                **params,
            )
        except SMDebugError as error:
            if error.status == 404:
                raise SMDebugError(
                    404,
                    "log_stream_not_found",
                    f"The log stream {stream} does not exist.",
                    "Start again without next_token to read the host's newest stream.",
                ) from None
            # A token CloudWatch does not know (AWS: InvalidParameterException).
            if "nextToken" in params and (
                error.code == "invalid_request" or "InvalidParameterException" in error.message
            ):
                raise SMDebugError(
                    400,
                    "invalid_next_token",
                    "next_token is not valid for this log stream.",
                    "Pass back the next_token of the previous page unchanged.",
                ) from None
            raise
        token = page.get("nextForwardToken")
        return {
            "events": [logs.event_json(event) for event in page.get("events", [])],
            "next_token": f"{epoch}:{token}" if token else None,
            "stream": stream,
        }

    # -- actions ---------------------------------------------------------------------

    async def stop_job(self, name: str) -> dict:
        """StopTrainingJob: SageMaker sends SIGTERM to the containers, SIGKILL 120 s later.
        Only a job in progress can be stopped; anything else is a 409 saying why."""
        description = await self.describe(name, fresh=True)
        status = description.get("TrainingJobStatus")
        if status != "InProgress":
            already = status == "Stopping"
            raise SMDebugError(
                409,
                "wrong_state",
                f"{name} is already stopping."
                if already
                else f"{name} is {status}: only a job in progress can be stopped.",
                "Wait a moment: it stops within two minutes."
                if already
                else "A finished job has nothing left to stop.",
            )
        try:
            await self.call("sagemaker", "stop_training_job", TrainingJobName=name)
        except SMDebugError as error:
            if error.code == "invalid_request":  # it finished between our check and AWS's
                raise SMDebugError(409, "wrong_state", error.message, "Refresh and see.") from None
            raise
        return await self._detail(await self.describe(name, fresh=True))

    async def set_remote_debug(self, name: str, enabled: bool) -> dict:
        description = await self.describe(name, fresh=True)
        if remote_debug_enabled(description) == enabled:
            return await self._detail(description)
        status = description.get("TrainingJobStatus")
        secondary = description.get("SecondaryStatus")
        if description.get("EnableNetworkIsolation"):
            raise SMDebugError(
                409,
                "network_isolation",
                f"{name} runs with network isolation, and SageMaker does not allow remote "
                "debug with network isolation.",
                "Start a copy of the job without EnableNetworkIsolation to debug it.",
            )
        if status != "InProgress" or secondary not in REMOTE_DEBUG_UPDATABLE:
            if status == "InProgress":
                hint = "Wait until the job is Downloading or Training, then try again."
            else:
                hint = (
                    "A finished job cannot be changed: use Debug a copy to start the same "
                    "job with remote debug on."
                )
            raise SMDebugError(
                409,
                "wrong_state",
                f"Remote debug can only be changed while a job is Downloading or Training; "
                f"{name} is {state_words(status, secondary)}.",
                hint,
            )
        try:
            await self.call(
                "sagemaker",
                "update_training_job",
                TrainingJobName=name,
                RemoteDebugConfig={"EnableRemoteDebug": enabled},
            )
        except SMDebugError as error:
            if error.code == "invalid_request":  # the job moved on between our check and AWS's
                raise SMDebugError(
                    409, "wrong_state", error.message, "Refresh and try again."
                ) from None
            raise
        return await self._detail(await self.describe(name, fresh=True))

    async def hold_plan(self, description: dict) -> dict:
        """How a debug copy of this job holds (hold.plan), reading the image from ECR."""
        algorithm = description.get("AlgorithmSpecification") or {}

        def run() -> dict:
            reader = None

            def read(uri: str) -> dict:
                nonlocal reader
                reader = reader or read_image_config(self.client("ecr"))
                return reader(uri)

            return hold.plan(algorithm, read)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def debug_copy(
        self, name: str, hold_seconds: int, new_name: str | None = None, dry_run: bool = False
    ) -> dict:
        """Start a copy of a job with remote debug on and a hold window; with ``dry_run``
        only say how it would hold. The answer carries ``hold``: mechanism, command,
        possible, reason."""
        description = await self.describe(name, fresh=True)
        plan = await self.hold_plan(description)
        if dry_run:
            return {"name": name, "hold": public_plan(plan)}
        if description.get("EnableNetworkIsolation"):
            raise SMDebugError(
                409,
                "network_isolation",
                f"{name} runs with network isolation, which SageMaker does not allow "
                "with remote debug.",
                "Create the copy yourself without EnableNetworkIsolation.",
            )
        request = debug_copy_request(description, new_name or copy_name(name), hold_seconds, plan)
        await self.call("sagemaker", "create_training_job", **request)
        copy = detail(await self.describe(request["TrainingJobName"], fresh=True))
        # `hold` stays the job's live hold (none yet); how the copy holds is `hold_plan`.
        return {**copy, "hold_plan": public_plan(plan)}

    # -- environment -----------------------------------------------------------------

    async def environment(self) -> dict:
        """The pre-flight check the UI shows: region, identity, clients, problems and fixes."""
        import boto3
        import botocore
        import botocore.exceptions

        problems: list[dict] = []
        session = await asyncio.get_running_loop().run_in_executor(self._executor, self.session)
        region = session.region_name
        credentials = await asyncio.get_running_loop().run_in_executor(
            self._executor, session.get_credentials
        )
        account = None
        if region is None:
            problems.append(from_boto(botocore.exceptions.NoRegionError()).to_json()["error"])
        if credentials is None:
            problems.append(from_boto(botocore.exceptions.NoCredentialsError()).to_json()["error"])
        if region and credentials:
            try:
                account = await self.account()
            except SMDebugError as error:
                problems.append(error.to_json()["error"])
        ssh = shutil.which("ssh")
        problems += [problem for problem in [ssh_problem()] if problem]
        from .connect.ssm import client_report  # connect imports this module

        ssm_clients, ssm_problems = await asyncio.get_running_loop().run_in_executor(
            self._executor, client_report, self.config.ssm_client
        )
        problems += ssm_problems
        return {
            "region": region,
            "account": account,
            "credentials": {
                "found": credentials is not None,
                "method": getattr(credentials, "method", None),
            },
            "endpoint_url": await self.custom_endpoint() if region else None,
            "clients": {"ssh": ssh, **ssm_clients},
            "default_transport": self.config.default_transport,
            "versions": {
                "jupyter_sm_debug": __version__,
                "boto3": boto3.__version__,
                "botocore": botocore.__version__,
                "python": sys.version.split()[0],
            },
            "problems": problems,
        }

    async def custom_endpoint(self) -> str | None:
        """The SageMaker endpoint when it is not AWS's own (e.g. the local stand-in)."""
        loop = asyncio.get_running_loop()
        client = await loop.run_in_executor(self._executor, self.client, "sagemaker")
        url = client.meta.endpoint_url
        return None if url.endswith(".amazonaws.com") or url.endswith(".amazonaws.com.cn") else url

    async def account(self) -> str | None:
        if self._account and time.monotonic() - self._account[0] < 300:
            return self._account[1].get("Account")
        identity = await self.call("sts", "get_caller_identity")
        self._account = (time.monotonic(), identity)
        return identity.get("Account")
