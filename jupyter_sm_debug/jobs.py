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
import functools
import shutil
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import __version__, hold
from .config import SMDebug
from .errors import SMDebugError, from_boto

if TYPE_CHECKING:  # boto3 and botocore load on the first AWS call, not at server start
    import boto3

FINISHED = {"Completed", "Failed", "Stopped"}
# AWS accepts RemoteDebugConfig updates only in these secondary states.
REMOTE_DEBUG_UPDATABLE = {"Downloading", "Training"}
# Secondary states in which the training containers exist.
CONTAINERS_UP = {"Downloading", "Training", "Uploading"}
FINISHED_CACHE_SIZE = 10_000
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
        "remote_debug": {"enabled": remote_debug_enabled(description)},
    }


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
    return {"ssm": ssm, "ssh": {"ok": True, "reason": ""}}


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
        self._finished: OrderedDict[str, dict] = OrderedDict()
        self._running: dict[str, tuple[float, dict]] = {}
        self._account: tuple[float, dict] | None = None

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
            retries={"mode": "standard", "max_attempts": self.config.max_attempts},
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
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- jobs ----------------------------------------------------------------------

    async def describe(self, name: str, fresh: bool = False) -> dict:
        cached = self._finished.get(name)
        if cached is not None:
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
            self._finished[name] = description
            while len(self._finished) > FINISHED_CACHE_SIZE:
                self._finished.popitem(last=False)
        else:
            self._running[name] = (time.monotonic(), description)

    async def list_jobs(
        self,
        status: str | None = None,
        name_contains: str | None = None,
        max_results: int = 20,
        next_token: str | None = None,
    ) -> dict:
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
        # ListTrainingJobs has no instance count or remote-debug state: describe the jobs
        # (concurrently, bounded by the pool) unless a description that is still current
        # is at hand.
        descriptions = await asyncio.gather(
            *(self._listed(item) for item in page.get("TrainingJobSummaries", []))
        )
        return {
            "jobs": [summary(description) for description in descriptions],
            "next_token": page.get("NextToken"),
        }

    async def _listed(self, item: dict) -> dict:
        """The description behind one ListTrainingJobs summary, described only if needed:
        finished jobs come from the cache; a running job's cached description serves while
        the summary agrees with it (no status change, LastModifiedTime unchanged, so no
        UpdateTrainingJob either) and it is younger than RUNNING_REVALIDATE."""
        name = item["TrainingJobName"]
        cached = self._finished.get(name)
        if cached is not None:
            return cached
        hit = self._running.get(name)
        if (
            hit is not None
            and item.get("LastModifiedTime") is not None
            and all(item.get(key) == hit[1].get(key) for key in SUMMARY_KEYS)
            and time.monotonic() - hit[0] < max(RUNNING_REVALIDATE, self.config.running_cache_ttl)
        ):
            return hit[1]
        return await self.describe(name, fresh=True)

    async def job(self, name: str) -> dict:
        # The detail view is what a user acts on: always current, never from the TTL cache.
        return detail(await self.describe(name, fresh=True))

    async def set_remote_debug(self, name: str, enabled: bool) -> dict:
        description = await self.describe(name, fresh=True)
        if remote_debug_enabled(description) == enabled:
            return detail(description)
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
                f"{name} is {status} ({secondary}).",
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
        return detail(await self.describe(name, fresh=True))

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
        return {**copy, "hold": public_plan(plan)}

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
        plugin = shutil.which("session-manager-plugin")
        return {
            "region": region,
            "account": account,
            "credentials": {
                "found": credentials is not None,
                "method": getattr(credentials, "method", None),
            },
            "endpoint_url": await self.custom_endpoint() if region else None,
            "clients": {
                "ssh": ssh,
                "session_manager_plugin": plugin,
                "builtin_ssm": True,
                # Which client an SSM attach will run, per c.SMDebug.ssm_client.
                "ssm": "plugin"
                if plugin and self.config.ssm_client != "builtin"
                else ("builtin" if self.config.ssm_client != "plugin" else None),
            },
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
