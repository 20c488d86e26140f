"""SageMaker's backend: the training jobs of one stand-in and the rules of each action."""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import json
import threading
from functools import cache
from typing import Any, Callable, Optional

from ... import hold
from .. import awsmodel
from ..errors import StandInError, validation_error
from .models import (
    COPY_OF_TAG,
    DEFAULT_MAX_RUNTIME,
    MAX_INSTANCES_PER_JOB,
    MESSAGES,
    REMOTE_DEBUG_UPDATABLE,
    TAG_PREFIX,
    Job,
    Schedule,
    _ts,
    brings_code,
    failure_reason,
    hold_window_of,
    hosts_of,
    runs_own_code,
    scripted,
)


@cache
def _echoed_members() -> tuple[str, ...]:
    """Create members that DescribeTrainingJob returns as they were sent (same shape)."""
    model = awsmodel.service_model("sagemaker")
    create = model.operation_model("CreateTrainingJob").input_shape.members
    describe = model.operation_model("DescribeTrainingJob").output_shape.members
    skip = {"TrainingJobName", "RemoteDebugConfig"}
    return tuple(
        name
        for name, shape in create.items()
        if name in describe and name not in skip and describe[name].name == shape.name
    )


class TrainingJobs:
    """All training jobs of one stand-in, keyed by (region, name)."""

    def __init__(self, now: Callable[[], float], account_id: str, images: Any = None):
        self._now = now
        self.account_id = account_id
        self.images = images  # the stand-in's ECR (ecr.Registry): what each image runs
        self.lock = threading.RLock()
        self._jobs: dict[tuple[str, str], Job] = {}
        # Per region, (created, seq, name) ascending: a list by creation time (the default,
        # and the sidebar's) reads its page from here instead of sorting every job, so its
        # cost does not grow with the account, as on AWS.
        self._by_created: dict[str, list[tuple[float, int, str]]] = {}
        self._seq = itertools.count()

    # -- access for the rest of the stand-in ------------------------------------------------

    def get(self, name: str, region: str) -> Optional[Job]:
        with self.lock:
            return self._jobs.get((region, name))

    def all(self) -> list[Job]:
        with self.lock:
            return list(self._jobs.values())

    def clear(self) -> None:
        with self.lock:
            self._jobs.clear()
            self._by_created.clear()

    def arn(self, name: str, region: str) -> str:
        from moto.sagemaker.utils import arn_formatter

        # SageMaker lower-cases resource names in its ARNs.
        return arn_formatter("training-job", name.lower(), self.account_id, region)

    # -- the API ------------------------------------------------------------------------

    def create(self, params: dict, region: str) -> dict:
        name = params["TrainingJobName"]
        arn = self.arn(name, region)
        if (region, name) in self._jobs:
            raise StandInError(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists ({arn})",
            )
        algorithm = params.get("AlgorithmSpecification")
        if not algorithm:
            raise validation_error("AlgorithmSpecification is required for a training job.")
        if bool(algorithm.get("TrainingImage")) == bool(algorithm.get("AlgorithmName")):
            raise validation_error(
                "Exactly one of TrainingImage or AlgorithmName must be specified in "
                "AlgorithmSpecification."
            )
        resources = params.get("ResourceConfig")
        if not resources:
            raise validation_error("ResourceConfig is required for a training job.")
        _check_resources(resources)
        remote_debug = (params.get("RemoteDebugConfig") or {}).get("EnableRemoteDebug")
        if remote_debug and params.get("EnableNetworkIsolation"):
            raise validation_error(_ISOLATION_MESSAGE)
        if remote_debug and algorithm.get("AlgorithmName"):
            raise validation_error(
                "Remote debugging is not supported for built-in algorithm or AWS Marketplace "
                "containers."
            )
        tags = list(params.get("Tags") or [])
        schedule, started_ago, stop_after = Schedule.from_tags(tags)
        copy_of = next((tag["Value"] for tag in tags if tag["Key"] == COPY_OF_TAG), None)
        # A backdated job lives only if it uploaded its code (the demo's scenarios): its
        # process starts when the stand-in does.
        lived = (
            not scripted(tags)
            and runs_own_code(params)
            and (not started_ago or brings_code(params))
        )
        if copy_of and not any(tag["Key"].startswith(TAG_PREFIX) for tag in tags):
            original = self._jobs.get((region, copy_of))
            if original is not None and not original.lived:
                # A copy of a scripted job goes the way its original went.
                schedule, lived = Schedule.copy_of(original), False
        stopping = params.get("StoppingCondition") or {}
        max_runtime = stopping.get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
        request = {k: params[k] for k in _echoed_members() if k in params}
        request.setdefault("StoppingCondition", {"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME})
        for flag in (
            "EnableNetworkIsolation",
            "EnableInterContainerTrafficEncryption",
            "EnableManagedSpotTraining",
        ):
            request.setdefault(flag, False)
        job = Job(
            name=name,
            arn=arn,
            region=region,
            request=request,
            created=round(self._now() - started_ago, 3),  # AWS keeps milliseconds
            seq=next(self._seq),
            schedule=schedule,
            hosts=hosts_of(resources),
            max_runtime=max_runtime,
            stop_after=stop_after,
            remote_debug=None if remote_debug is None else bool(remote_debug),
            tags=tags,
            command=self.command_of(algorithm),
            lived=lived,
        )
        job.hold_seconds = hold_window_of(job.command, request)
        job.lived = lived and job.command is not None
        self._jobs[(region, name)] = job
        bisect.insort(self._by_created.setdefault(region, []), (job.created, job.seq, name))
        return {"TrainingJobArn": arn}

    def command_of(self, algorithm: dict) -> Optional[list]:
        """The argv SageMaker starts the containers with: the job's ContainerEntrypoint
        (else the image's ENTRYPOINT, from the stand-in's ECR) + ContainerArguments (else
        ``train``). None when the image is not in the stand-in's ECR."""
        config = None
        if not algorithm.get("ContainerEntrypoint") and self.images is not None:
            try:
                image = hold.parse_image(algorithm.get("TrainingImage", ""))
            except hold.ImageUnreadable:
                return None
            config = self.images.config(
                image["registry"], image["repository"], image["tag"] or "latest"
            )
        if config is None and not algorithm.get("ContainerEntrypoint"):
            return None
        entrypoint = list(algorithm.get("ContainerEntrypoint") or config.get("Entrypoint") or [])
        default = [] if algorithm.get("ContainerEntrypoint") else ["train"]
        return entrypoint + list(algorithm.get("ContainerArguments") or default)

    def _find(self, params: dict, region: str, code: str) -> Job:
        job = self._jobs.get((region, params["TrainingJobName"]))
        if job is None:
            # Describe really answers ValidationException here, Update and Stop do not.
            raise StandInError(code, "Requested resource not found.")
        return job

    def describe(self, params: dict, region: str) -> dict:
        return self.description(self._find(params, region, "ValidationException"))

    def description(self, job: Job, t: Optional[float] = None) -> dict:
        t = self._now() if t is None else t
        segments = job.segments()
        index = job.index_at(t)
        current = segments[index]
        out: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "TrainingJobStatus": current.status,
            "SecondaryStatus": current.secondary,
            "CreationTime": _ts(job.created),
        }
        out.update(json.loads(json.dumps(job.request)))  # a copy: callers may mutate
        reached = segments[: index + 1]
        transitions = []
        for position, segment in enumerate(reached):
            item = {
                "Status": segment.secondary,
                "StartTime": _ts(segment.start),
                "StatusMessage": MESSAGES.get(segment.secondary, segment.secondary),
            }
            if position < index:
                item["EndTime"] = _ts(reached[position + 1].start)
            elif segment.terminal:
                item["EndTime"] = _ts(segment.start)
            transitions.append(item)
        out["SecondaryStatusTransitions"] = transitions
        started = next(
            (g.start for g in reached if g.secondary in ("Downloading", "Training")), None
        )
        if started is not None:
            out["TrainingStartTime"] = _ts(started)
        if current.terminal:
            out["TrainingEndTime"] = _ts(current.start)
            seconds = int(current.start - started) if started is not None else 0
            out["TrainingTimeInSeconds"] = seconds
            out["BillableTimeInSeconds"] = seconds
        out["LastModifiedTime"] = _ts(max(current.start, job.updated_at or current.start))
        if current.status == "Failed":
            out["FailureReason"] = failure_reason(job)
        # Required in the output shape: SageMaker names the artifact from the start.
        output = job.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        out["ModelArtifacts"] = {"S3ModelArtifacts": f"{output}/{job.name}/output/model.tar.gz"}
        if job.remote_debug is not None:
            out["RemoteDebugConfig"] = {"EnableRemoteDebug": job.remote_debug}
        return out

    def summary(self, job: Job, t: float) -> dict:
        current = job.at(t)
        out = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "CreationTime": _ts(job.created),
            "LastModifiedTime": _ts(max(current.start, job.updated_at or current.start)),
            "TrainingJobStatus": current.status,
            "SecondaryStatus": current.secondary,
        }
        if current.terminal:
            out["TrainingEndTime"] = _ts(current.start)
        allowed = awsmodel.shape_members("sagemaker", "TrainingJobSummary")
        return {k: v for k, v in out.items() if k in allowed}

    def list(self, params: dict, region: str) -> dict:
        t = self._now()
        params = {k: _epoch(v) if k.endswith(("After", "Before")) else v for k, v in params.items()}
        max_results = params.get("MaxResults", 10)
        sort_by = params.get("SortBy", "CreationTime")
        descending = params.get("SortOrder", "Ascending") == "Descending"
        contains = (params.get("NameContains") or "").lower()
        status = params.get("StatusEquals")
        bounds = [
            (params.get("CreationTimeAfter"), params.get("CreationTimeBefore"), "created"),
            (params.get("LastModifiedTimeAfter"), params.get("LastModifiedTimeBefore"), "mod"),
        ]
        # Nothing here has warm pools or training plans: such filters match no job.
        if params.get("WarmPoolStatusEquals") or params.get("TrainingPlanArnEquals"):
            return {"TrainingJobSummaries": []}
        if sort_by == "CreationTime" and not status and bounds[1][:2] == (None, None):
            return self._list_by_created(params, region, t, max_results, descending, contains)
        rows = []
        for (job_region, _), job in self._jobs.items():
            if job_region != region or (contains and contains not in job.name.lower()):
                continue
            current = job.at(t)
            if status and current.status != status:
                continue
            times = {
                "created": job.created,
                "mod": max(current.start, job.updated_at or current.start),
            }
            if not all(_within(times[key], after, before) for after, before, key in bounds):
                continue
            if sort_by == "Name":
                key = (job.name, job.seq)
            elif sort_by == "Status":
                key = (current.status, job.created, job.seq)
            else:
                key = (job.created, job.seq)
            rows.append((key, job))
        rows.sort(key=lambda row: row[0], reverse=descending)
        start = 0
        if params.get("NextToken"):
            after = _decode_token(params["NextToken"], sort_by)
            start = len(rows)
            for position, (key, _) in enumerate(rows):
                if (key < after) if descending else (key > after):
                    start = position
                    break
        page = rows[start : start + max_results]
        out: dict[str, Any] = {"TrainingJobSummaries": [self.summary(job, t) for _, job in page]}
        if start + max_results < len(rows):
            out["NextToken"] = _encode_token(sort_by, page[-1][0])
        return out

    def _list_by_created(
        self, params: dict, region: str, t: float, max_results: int, descending: bool, contains: str
    ) -> dict:
        """`list` sorted by creation time with no filter that needs a job's state: walks the
        creation index from the token's place and stops after the page (a name filter still
        looks at every name it passes, as a scan must)."""
        index = self._by_created.get(region, [])
        after = len(index) if descending else 0
        if params.get("NextToken"):
            key = _decode_token(params["NextToken"], "CreationTime")
            # Descending: keys below the token's; ascending: keys above it (seq is an int).
            after = bisect.bisect_left(index, (key[0], key[1]) if descending else
                                       (key[0], key[1] + 1))  # fmt: skip
        positions = range(after - 1, -1, -1) if descending else range(after, len(index))
        created_after, created_before = (
            params.get("CreationTimeAfter"),
            params.get("CreationTimeBefore"),
        )
        page: list[Job] = []
        more = False
        for position in positions:
            created, _, name = index[position]
            if contains and contains not in name.lower():
                continue
            if not _within(created, created_after, created_before):
                continue
            if len(page) == max_results:
                more = True
                break
            page.append(self._jobs[(region, name)])
        out: dict[str, Any] = {"TrainingJobSummaries": [self.summary(job, t) for job in page]}
        if more:
            out["NextToken"] = _encode_token("CreationTime", (page[-1].created, page[-1].seq))
        return out

    def update(self, params: dict, region: str) -> dict:
        job = self._find(params, region, "ResourceNotFound")
        changes = [k for k in ("ProfilerConfig", "ProfilerRuleConfigurations", "ResourceConfig",
                               "RemoteDebugConfig") if k in params]  # fmt: skip
        if not changes:
            raise validation_error(
                "At least one of ProfilerConfig, ProfilerRuleConfigurations, ResourceConfig or "
                "RemoteDebugConfig must be specified."
            )
        t = self._now()
        current = job.at(t)
        if "RemoteDebugConfig" in params:
            if job.network_isolation:
                raise validation_error(_ISOLATION_MESSAGE)
            if current.status != "InProgress" or current.secondary not in REMOTE_DEBUG_UPDATABLE:
                raise validation_error(
                    "RemoteDebugConfig can only be updated while the training job's secondary "
                    "status is Downloading or Training. Training job "
                    f"{job.name} is {current.status} with secondary status {current.secondary}."
                )
        elif current.terminal:
            raise validation_error(
                f"The training job {job.name} is {current.status} and cannot be updated."
            )
        if "RemoteDebugConfig" in params:
            enabled = params["RemoteDebugConfig"].get("EnableRemoteDebug")
            if enabled is not None:
                job.remote_debug = bool(enabled)
        if "ResourceConfig" in params:
            resources = dict(job.request.get("ResourceConfig", {}))
            resources.update(params["ResourceConfig"])
            job.request["ResourceConfig"] = resources
        for key in ("ProfilerConfig", "ProfilerRuleConfigurations"):
            if key in params and key in job.request:
                job.request[key] = params[key]
        job.updated_at = t
        return {"TrainingJobArn": job.arn}

    def stop(self, params: dict, region: str) -> dict:
        job = self._find(params, region, "ResourceNotFound")
        t = self._now()
        current = job.at(t)
        if current.status != "InProgress":
            raise validation_error(
                f"The request was rejected because the training job is in status {current.status}."
            )
        job.stop(t)
        return {}

    def list_tags(self, params: dict, region: str) -> Optional[dict]:
        arn = params.get("ResourceArn", "")
        with self.lock:
            for job in self._jobs.values():
                if job.arn == arn:
                    return {"Tags": [dict(tag) for tag in job.tags]}
        return None


_ISOLATION_MESSAGE = (
    "Remote debugging is not supported for training jobs with network isolation enabled "
    "(EnableNetworkIsolation is true)."
)


def _epoch(value: Any) -> Optional[float]:
    """A wire timestamp (epoch number from awsJson clients, or ISO 8601) as epoch seconds."""
    if value is None or isinstance(value, (int, float)):
        return value
    from botocore.utils import parse_timestamp

    return parse_timestamp(value).timestamp()


def _within(t: float, after: Optional[float], before: Optional[float]) -> bool:
    return (after is None or t > after) and (before is None or t < before)


def _check_resources(resources: dict) -> None:
    groups = resources.get("InstanceGroups")
    plain = [k for k in ("InstanceType", "InstanceCount") if resources.get(k) is not None]
    if groups and plain:
        raise validation_error(
            "ResourceConfig must specify either InstanceGroups or InstanceType and "
            "InstanceCount, not both."
        )
    if groups:
        names = [group["InstanceGroupName"] for group in groups]
        if len(set(names)) != len(names):
            raise validation_error("InstanceGroupName must be unique within InstanceGroups.")
        total = sum(group["InstanceCount"] for group in groups)
    else:
        if len(plain) != 2:
            raise validation_error(
                "ResourceConfig must specify InstanceType and InstanceCount, or InstanceGroups."
            )
        total = resources["InstanceCount"]
    if total < 1:
        raise validation_error("A training job needs at least one instance (InstanceCount).")
    if total > MAX_INSTANCES_PER_JOB:
        raise StandInError(
            "ResourceLimitExceeded",
            f"The stand-in runs at most {MAX_INSTANCES_PER_JOB} instances per training job; "
            f"this request asks for {total}.",
        )


def _encode_token(sort_by: str, key: tuple) -> str:
    raw = json.dumps({"s": sort_by, "k": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str, sort_by: str) -> tuple:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["s"] != sort_by:
            raise ValueError("token from another sort order")
        key = tuple(data["k"])
        if sort_by == "Name":
            valid = len(key) == 2 and isinstance(key[0], str) and isinstance(key[1], int)
        elif sort_by == "Status":
            valid = len(key) == 3 and isinstance(key[0], str)
        else:
            valid = len(key) == 2 and isinstance(key[0], (int, float))
        if not valid:
            raise ValueError("malformed key")
        return key
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise validation_error("Invalid pagination token.") from error
