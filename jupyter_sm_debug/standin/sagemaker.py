"""SageMaker training jobs: the state machine and the five actions the project uses.

Own store rather than moto's: moto 5.2.5 keeps a job as a fixed record that is always
``Completed`` and has no Update/Stop/RemoteDebugConfig, so its backend would only be a dict
that we would have to fight. From moto we take the ARN format.

A job's whole life is a timeline computed from its schedule at creation (plus any stop): the
status at a clock time is a lookup, so Describe and List always agree and nothing needs a
timer. Times on the wire are epoch seconds, as awsJson serializes them.

A job that brings code of its own (a submit directory, SDK v3's code channel or a
ContainerEntrypoint) and no tag scripting its end *lives* (Job.lived): its Training lasts
as long as its hosts' processes (hosts.py), which set how it ends (Job.exited) and when a
stop is over (Job.gone). ``standin:`` tags then only place it in time and shape its phases
before Training; jobs scripted by tags, and jobs without code, follow the timeline.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import itertools
import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Callable, Optional

from .. import hold
from . import awsmodel
from .ddp import parse_hang_rank
from .errors import StandInError, validation_error

ACTIONS = (
    "CreateTrainingJob",
    "DescribeTrainingJob",
    "ListTrainingJobs",
    "UpdateTrainingJob",
    "StopTrainingJob",
    "ListTags",
)

TAG_PREFIX = "standin:"
# "Debug a copy" (jobs.debug_copy_request) tags the new job with its original's name.
COPY_OF_TAG = "sm-debug:copy-of"
# sm-debug-entrypoint's hold window: the Environment variable (or hyperparameter) it reads.
HOLD_VARIABLE = "SM_DEBUG_HOLD_ON_FAILURE"
HOLD_HYPERPARAMETER = "sm_debug_hold_on_failure"
# A debug copy reproduces its original's schedule, but the demo compresses time so that a
# person trying it by hand on the real clock sees the copy train within a minute and fail
# within two: these cap the copy's Starting and Downloading, and its Training up to the
# failure. (On AWS a copy takes as long as its original did.)
COPY_MAX_STARTING = 20.0
COPY_MAX_DOWNLOADING = 20.0
COPY_MAX_TRAINING_UNTIL_FAILURE = 60.0
HOMOGENEOUS_GROUP = "homogeneousCluster"  # what SageMaker writes in resourceconfig.json
DEFAULT_MAX_RUNTIME = 86400
MAX_INSTANCES_PER_JOB = 100
LIVE_SECONDARY = ("Downloading", "Training", "Uploading")  # containers exist
REMOTE_DEBUG_UPDATABLE = ("Downloading", "Training")

DEFAULT_FAILURE_REASON = (
    "AlgorithmError: ExecuteUserScriptError:\n"
    "ExitCode 1\n"
    'ErrorMessage "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB '
    "(GPU 0; 22.06 GiB total capacity; 19.87 GiB already allocated; 1.21 GiB free; "
    '20.31 GiB reserved in total by PyTorch)"\n'
    'Command "/opt/conda/bin/python3.10 train.py --epochs 3 --per-device-batch-size 16", '
    "exit code: 1"
)

MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded MaxRuntimeInSeconds",
}


@dataclass
class Schedule:
    """Seconds spent in each phase, and how the job ends if nobody stops it."""

    starting: float = 20.0
    downloading: float = 10.0
    training: float = 3600.0
    uploading: float = 10.0
    stopping: float = 5.0
    outcome: str = "Completed"
    failure_reason: Optional[str] = None

    # Tag key -> attribute; each tag is `standin:<key>`.
    TAGS = {
        "starting-seconds": "starting",
        "downloading-seconds": "downloading",
        "training-seconds": "training",
        "uploading-seconds": "uploading",
        "stopping-seconds": "stopping",
        "outcome": "outcome",
        "failure-reason": "failure_reason",
    }
    # Tags that place the job in time rather than shape its phases.
    TIME_TAGS = ("started-ago", "stop-after")
    # Tags that shape what the hosts run (ddp.py), not the job's phases.
    HOST_TAGS = ("hang-rank",)
    # Tags that script how (or when) a job ends: a job with any of them follows its
    # timeline, whatever its hosts' processes do.
    # (started-ago only backdates a lived job: its process starts when the stand-in does.)
    SCRIPTING_TAGS = ("training-seconds", "outcome", "failure-reason", "stop-after")

    @classmethod
    def from_tags(cls, tags: list[dict]) -> tuple[Schedule, float, Optional[float]]:
        """(schedule, started_ago, stop_after) from the job's `standin:` tags."""
        schedule, started_ago, stop_after = cls(), 0.0, None
        for tag in tags:
            key = tag["Key"]
            if not key.startswith(TAG_PREFIX):
                continue
            short, value = key[len(TAG_PREFIX) :], tag["Value"]
            if short == "outcome":
                if value not in ("Completed", "Failed"):
                    raise validation_error(f"Tag {key} must be Completed or Failed, not {value!r}.")
                schedule.outcome = value
            elif short == "failure-reason":
                schedule.failure_reason = value
            elif short == "hang-rank":
                if parse_hang_rank(value) is None:
                    raise validation_error(
                        f"Tag {key} must be a rank, optionally @step (e.g. 13 or 13@4), "
                        f"not {value!r}."
                    )
            elif short in cls.TAGS or short in cls.TIME_TAGS:
                seconds = _seconds(key, value)
                if short == "started-ago":
                    started_ago = seconds
                elif short == "stop-after":
                    stop_after = seconds
                else:
                    setattr(schedule, cls.TAGS[short], seconds)
            else:
                valid = ", ".join(
                    TAG_PREFIX + k for k in [*cls.TAGS, *cls.TIME_TAGS, *cls.HOST_TAGS]
                )
                raise validation_error(f"Unknown stand-in tag {key}; valid: {valid}.")
        if schedule.failure_reason and schedule.outcome != "Failed":
            schedule.outcome = "Failed"
        return schedule, started_ago, stop_after

    @classmethod
    def copy_of(cls, original: Job) -> Schedule:
        """A debug copy runs the same code on the same data: it goes the way its original
        went (a host lost with exit 137 included), in compressed time (COPY_MAX_*)."""
        s = original.schedule
        outcome, reason, training = s.outcome, s.failure_reason, s.training
        if original.lost_at is not None:
            training_start = original.created + s.starting + s.downloading
            outcome, reason = "Failed", original.lost_reason
            training = max(0.0, original.lost_at - training_start)
        if outcome == "Failed":
            training = min(training, COPY_MAX_TRAINING_UNTIL_FAILURE)
        return cls(
            starting=min(s.starting, COPY_MAX_STARTING),
            downloading=min(s.downloading, COPY_MAX_DOWNLOADING),
            training=training,
            uploading=s.uploading,
            stopping=s.stopping,
            outcome=outcome,
            failure_reason=reason,
        )

    def to_tags(self) -> list[dict]:
        tags = []
        defaults = Schedule()
        for short, attr in self.TAGS.items():
            value = getattr(self, attr)
            if value is not None and value != getattr(defaults, attr):
                text = value if isinstance(value, str) else f"{value:g}"
                tags.append({"Key": TAG_PREFIX + short, "Value": text})
        return tags


def _seconds(key: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise validation_error(f"Tag {key} must be a number of seconds >= 0, not {value!r}.")
    return seconds


@dataclass(frozen=True)
class Segment:
    secondary: str
    status: str
    start: float

    @property
    def terminal(self) -> bool:
        return self.status in ("Completed", "Failed", "Stopped")


@dataclass(frozen=True)
class HostSpec:
    name: str
    group: str
    instance_type: str


@dataclass(frozen=True)
class Hold:
    """sm-debug-entrypoint's hold: the training command failed at ``start``; the container
    stayed up (still Training) until ``end``, for the reason ``why``: "hold window over",
    "released", "last session closed", "stopped" or "lost" (a host died)."""

    start: float
    end: float
    seconds: float
    why: str
    code: int


def hold_seconds_of(request: dict) -> float:
    """The hold window the job's containers get from sm-debug-entrypoint: Environment
    SM_DEBUG_HOLD_ON_FAILURE, else the sm_debug_hold_on_failure hyperparameter (as the
    entrypoint reads them); 0 for none."""
    value = (request.get("Environment") or {}).get(HOLD_VARIABLE)
    if value in (None, ""):
        value = (request.get("HyperParameters") or {}).get(HOLD_HYPERPARAMETER)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # the SDK JSON-encodes values ('"1800"')
                value = json.loads(value)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if seconds > 0 and math.isfinite(seconds) else 0.0


def hold_window_of(command: Optional[list], request: dict) -> float:
    """The hold window a failed container gets: only a container that runs a hold holds.
    Our sh wrapper reads SM_DEBUG_HOLD_ON_FAILURE from the environment; sm-debug-entrypoint
    reads it or the sm_debug_hold_on_failure hyperparameter. Anything else ends on failure,
    whatever the job's environment says."""
    if not command:
        return 0.0
    if hold.is_wrapped(command):
        value = (request.get("Environment") or {}).get(HOLD_VARIABLE, "")
        return float(value) if value.isdigit() else 0.0
    if os.path.basename(command[0]) == "sm-debug-entrypoint":
        return hold_seconds_of(request)
    return 0.0


def runs_own_code(params: dict) -> bool:
    """Whether a CreateTrainingJob request brings code of its own for its containers to run:
    a script-mode submit directory (SDK v2), a ``code`` channel (SDK v3's SourceCode) or a
    command (ContainerEntrypoint). Such a job lives: its status comes from that process."""
    algorithm = params.get("AlgorithmSpecification") or {}
    hyperparameters = params.get("HyperParameters") or {}
    channels = {c.get("ChannelName") for c in params.get("InputDataConfig") or []}
    return bool(
        algorithm.get("ContainerEntrypoint")
        or "sagemaker_submit_directory" in hyperparameters
        or "code" in channels
    )


def brings_code(params: dict) -> bool:
    """Whether the request uploads code (a submit directory, or SDK v3's code channel)."""
    hyperparameters = params.get("HyperParameters") or {}
    channels = {c.get("ChannelName") for c in params.get("InputDataConfig") or []}
    return "sagemaker_submit_directory" in hyperparameters or "code" in channels


def scripted(tags: list[dict]) -> bool:
    """Whether the job's ``standin:`` tags script how it ends (Schedule.SCRIPTING_TAGS)."""
    keys = {TAG_PREFIX + key for key in Schedule.SCRIPTING_TAGS}
    return any(tag.get("Key") in keys for tag in tags)


def algorithm_error(code: int, failure: str) -> str:
    """FailureReason as SageMaker reports a container that exited non-zero: the first 1024
    characters of /opt/ml/output/failure after "AlgorithmError: ", and the exit code."""
    return f"AlgorithmError: {failure[:1024]}, exit code: {code}"


def exit_code_of(reason: str) -> int:
    match = re.search(r"ExitCode (\d+)", reason) or re.search(r"exit code: (\d+)", reason)
    return int(match.group(1)) if match else 1


def hosts_of(resource_config: dict) -> list[HostSpec]:
    """algo-1..N, numbered across instance groups in the order they are listed."""
    groups = resource_config.get("InstanceGroups")
    if not groups:
        groups = [
            {
                "InstanceGroupName": HOMOGENEOUS_GROUP,
                "InstanceType": resource_config.get("InstanceType"),
                "InstanceCount": resource_config.get("InstanceCount", 0),
            }
        ]
    hosts: list[HostSpec] = []
    for group in groups:
        for _ in range(group["InstanceCount"]):
            hosts.append(
                HostSpec(
                    f"algo-{len(hosts) + 1}", group["InstanceGroupName"], group["InstanceType"]
                )
            )
    return hosts


@dataclass
class Job:
    name: str
    arn: str
    region: str
    request: dict
    created: float
    seq: int
    schedule: Schedule
    hosts: list[HostSpec]
    max_runtime: float
    stop_after: Optional[float] = None
    remote_debug: Optional[bool] = None
    api_stop_at: Optional[float] = None
    lost_at: Optional[float] = None  # a host died: the job fails then
    lost_reason: Optional[str] = None
    updated_at: Optional[float] = None
    tags: list = field(default_factory=list)
    command: Optional[list] = None  # what its containers run (None: an image ECR lacks)
    hold_seconds: float = 0.0  # the hold window after a failure, if what it runs holds
    released_at: Optional[float] = None  # the hold ended early then ...
    release_why: Optional[str] = None  # ... for this reason
    # A lived job's Training lasts as long as its hosts' processes: they exited then, with
    # this code (FailureReason from the failure file), or after a stop were all gone then.
    lived: bool = False
    exit_at: Optional[float] = None
    exit_code: Optional[int] = None
    exit_reason: Optional[str] = None
    gone_at: Optional[float] = None
    _segments: Optional[list[Segment]] = None
    _starts: Optional[list[float]] = None

    @property
    def network_isolation(self) -> bool:
        return bool(self.request.get("EnableNetworkIsolation"))

    def segments(self) -> list[Segment]:
        if self._segments is None:
            self._segments = self._timeline()
            self._starts = [segment.start for segment in self._segments]
        return self._segments

    def _timeline(self) -> list[Segment]:
        s, t = self.schedule, self.created
        segments = []
        for phase, seconds in (
            ("Starting", s.starting),
            ("Downloading", s.downloading),
            ("Training", s.training),
        ):
            segments.append(Segment(phase, "InProgress", t))
            t += seconds
        if self.lived:
            # Training until the hosts' processes say otherwise (exited()).
            if self.exit_at is None:
                pass
            elif self.exit_code == 0:
                segments.append(Segment("Uploading", "InProgress", self.exit_at))
                segments.append(Segment("Completed", "Completed", self.exit_at + s.uploading))
            else:
                segments.append(Segment("Failed", "Failed", self.exit_at))
        elif s.outcome == "Failed":
            # Under sm-debug-entrypoint the container outlives its failed command by the hold
            # window (or until released): the job stays Training until then.
            end = t + self.hold_seconds
            if self.released_at is not None and t <= self.released_at < end:
                end = self.released_at
            segments.append(Segment("Failed", "Failed", end))
        else:
            segments.append(Segment("Uploading", "InProgress", t))
            segments.append(Segment("Completed", "Completed", t + s.uploading))
        # A stop or a lost host cuts the timeline: the earliest that finds the job running wins.
        cuts = []
        if self.lost_at is not None:
            cuts.append((self.lost_at, "Failed", ("InProgress",)))
        if self.stop_after is not None:
            cuts.append((self.created + self.stop_after, "Stopped", ("InProgress",)))
        if self.api_stop_at is not None:
            cuts.append((self.api_stop_at, "Stopped", ("InProgress",)))
        # MaxRuntimeInSeconds counts from the end of Starting, and only while training.
        deadline = self.created + s.starting + self.max_runtime
        cuts.append((deadline, "MaxRuntimeExceeded", REMOTE_DEBUG_UPDATABLE))
        for at, final, applies in sorted(cuts, key=lambda cut: cut[0]):
            current = _at(segments, [g.start for g in segments], at)
            if current.status != "InProgress" or (
                applies != ("InProgress",) and current.secondary not in applies
            ):
                continue
            kept = [g for g in segments if g.start < at]
            if final == "Failed":
                return [*kept, Segment("Failed", "Failed", at)]
            if self.lived:
                # Stopping until the hosts' processes are gone (SIGTERM, then SIGKILL).
                stopped = [] if self.gone_at is None else [
                    Segment(final, "Stopped", max(self.gone_at, at))
                ]  # fmt: skip
                return [*kept, Segment("Stopping", "Stopping", at), *stopped]
            return [
                *kept,
                Segment("Stopping", "Stopping", at),
                Segment(final, "Stopped", at + s.stopping),
            ]
        return segments

    def index_at(self, t: float) -> int:
        self.segments()
        return max(0, bisect.bisect_right(self._starts, t) - 1)

    def at(self, t: float) -> Segment:
        return self.segments()[self.index_at(t)]

    def live_at(self, t: float) -> bool:
        segment = self.at(t)
        return segment.status == "InProgress" and segment.secondary in LIVE_SECONDARY

    def next_change_after(self, t: float) -> Optional[float]:
        segments = self.segments()
        index = self.index_at(t)
        return segments[index + 1].start if index + 1 < len(segments) else None

    def stop(self, t: float) -> None:
        self.api_stop_at = t
        self._segments = None

    def exited(self, t: float, code: int, reason: Optional[str] = None) -> None:
        """A lived job's training process ended with ``code`` (0: every host's did)."""
        if self.exit_at is None:
            s = self.schedule
            t = max(t, self.created + s.starting + s.downloading)  # not before Training
            self.exit_at, self.exit_code, self.exit_reason = t, code, reason
            self._segments = None

    def gone(self, t: float) -> None:
        """A stopped lived job's processes are all gone: it is Stopped from ``t``."""
        if self.gone_at is None:
            self.gone_at = t
            self._segments = None

    def lose_host(self, t: float, reason: str) -> None:
        self.lost_at, self.lost_reason = t, reason
        self._segments = None

    @property
    def command_fails_at(self) -> Optional[float]:
        """When the training command fails, if its schedule says it does."""
        s = self.schedule
        if s.outcome != "Failed":
            return None
        return self.created + s.starting + s.downloading + s.training

    def hold(self) -> Optional[Hold]:
        """The hold after the failure, if the job is held (or was): None when it has no hold
        window or never got to fail (stopped, lost, out of time before)."""
        failed_at = self.command_fails_at
        if failed_at is None or self.hold_seconds <= 0:
            return None
        segments = self.segments()
        for position, segment in enumerate(segments[:-1]):
            if segment.secondary != "Training":
                continue
            after = segments[position + 1]
            if after.start < failed_at:
                return None  # cut before the command failed
            if after.secondary == "Stopping":
                why = "stopped"
            elif self.lost_at is not None and after.start == self.lost_at:
                why = "lost"
            elif self.released_at is not None and after.start == self.released_at:
                why = self.release_why or "released"
            else:
                why = "hold window over"
            code = exit_code_of(self.schedule.failure_reason or DEFAULT_FAILURE_REASON)
            return Hold(failed_at, after.start, self.hold_seconds, why, code)
        return None

    def release(self, t: float, why: str) -> bool:
        """End the hold at ``t`` (release file touched, last session closed). False if the
        job is not held at ``t``."""
        hold = self.hold()
        if hold is None or not hold.start <= t < hold.end:
            return False
        self.released_at, self.release_why = t, why
        self._segments = None
        return True


def failure_reason(job: Job) -> str:
    return (
        job.lost_reason or job.exit_reason or job.schedule.failure_reason or DEFAULT_FAILURE_REASON
    )


def _at(segments: list[Segment], starts: list[float], t: float) -> Segment:
    return segments[max(0, bisect.bisect_right(starts, t) - 1)]


def _ts(t: Optional[float]) -> Optional[float]:
    return None if t is None else round(t, 3)


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
        self._lock = threading.RLock()
        self._jobs: dict[tuple[str, str], Job] = {}
        # Per region, (created, seq, name) ascending: a list by creation time (the default,
        # and the sidebar's) reads its page from here instead of sorting every job, so its
        # cost does not grow with the account, as on AWS.
        self._by_created: dict[str, list[tuple[float, int, str]]] = {}
        self._seq = itertools.count()

    # -- access for the rest of the stand-in ------------------------------------------------

    def get(self, name: str, region: str) -> Optional[Job]:
        with self._lock:
            return self._jobs.get((region, name))

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._by_created.clear()

    def arn(self, name: str, region: str) -> str:
        from moto.sagemaker.utils import arn_formatter

        # SageMaker lower-cases resource names in its ARNs.
        return arn_formatter("training-job", name.lower(), self.account_id, region)

    # -- the API ------------------------------------------------------------------------

    def handle(self, action: str, params: dict, region: str) -> Optional[dict]:
        """Answer one action; None means "not ours" (the caller passes it on to moto)."""
        if action == "ListTags":
            return self.list_tags(params, region)
        handler = {
            "CreateTrainingJob": self.create,
            "DescribeTrainingJob": self.describe,
            "ListTrainingJobs": self.list,
            "UpdateTrainingJob": self.update,
            "StopTrainingJob": self.stop,
        }[action]
        with self._lock:
            return handler(params, region)

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
        with self._lock:
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
