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

import bisect
import contextlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from ... import hold
from ..ddp import parse_hang_rank
from ..errors import validation_error

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
