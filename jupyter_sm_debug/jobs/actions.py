"""The three things a user does to a job: stop it, flip remote debug, or start a debug copy
(the same job with remote debug on and a hold window; hold.plan reads the image from ECR to
say how the copy holds)."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .. import hold
from ..description import REMOTE_DEBUG_UPDATABLE, detail, remote_debug_enabled, state_words
from ..errors import SMDebugError

if TYPE_CHECKING:
    from .aws import AWS
    from .cache import Descriptions
    from .listing import Listing

HOLD_TAG = "sm-debug:hold"  # how the copy holds: "wrapper", "entrypoint" or "none"
# AWS's answer when a job is not in a state the call accepts (it moved on since our check).
WRONG_STATE_CODES = ("ValidationException",)


def copy_name(name: str, now: datetime | None = None) -> str:
    """`<name>-debug-<MMDDHHMMSS>`, cut to AWS's 63 characters."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%m%d%H%M%S")
    return f"{name[: 63 - len(stamp) - 7].rstrip('-')}-debug-{stamp}"


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
    # The runtime limit counts the hold too: it grows by the hold window (hold.stopping_condition).
    request["StoppingCondition"], _ = hold.stopping_condition(
        request.get("StoppingCondition"), hold_seconds
    )
    if not hold.environment_room(request.get("Environment")):
        environment = dict(request.get("Environment") or {})
        environment[hold.HOLD_VARIABLE] = str(hold_seconds)
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


def planned_copy(
    description: dict, new_name: str, hold_seconds: int, plan: dict
) -> tuple[dict, dict, list[str]]:
    """(CreateTrainingJob request, the plan as it stands, what still breaks AWS's limits).

    When the hold cannot fit in AWS's documented limits (botocore's model: the Environment's
    100 entries, the 100 + 100 entrypoint items, sizes, patterns), the plan says which and
    the copy goes without the hold. The plan also says when the runtime limit cannot grow
    by the whole hold window (runtime_limit)."""
    room = hold.environment_room(description.get("Environment"))
    if room and plan.get("possible") and hold_seconds > 0:
        plan = hold.refused(room)
    request = debug_copy_request(description, new_name, hold_seconds, plan)
    problems = hold.limit_problems(request)
    if problems and plan.get("possible") and hold_seconds > 0:
        plan = hold.refused(f"The copy would break AWS's limits: {'; '.join(problems)}.")
        request = debug_copy_request(description, new_name, hold_seconds, plan)
        problems = hold.limit_problems(request)
    _, runtime_note = hold.stopping_condition(description.get("StoppingCondition"), hold_seconds)
    if plan.get("possible") and hold_seconds > 0 and runtime_note:
        plan = {**plan, "reason": plan["reason"] + runtime_note,
                "runtime_limit": runtime_note.strip()}  # fmt: skip
    return request, plan, problems


def public_plan(plan: dict) -> dict:
    """What the UI shows of a hold plan (not the wrapper's text)."""
    keys = ("mechanism", "command", "possible", "reason", "runtime_limit")
    return {key: plan[key] for key in keys if key in plan}


@functools.lru_cache(maxsize=1)
def create_training_job_fields() -> frozenset:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.operation_model("CreateTrainingJob").input_shape.members)


def network_isolation(name: str, hint: str) -> SMDebugError:
    return SMDebugError(
        409,
        "network_isolation",
        f"{name} runs with network isolation, and SageMaker does not allow remote debug "
        "with network isolation.",
        hint,
    )


class Actions:
    def __init__(self, aws: AWS, cache: Descriptions, listing: Listing):
        self.aws = aws
        self.cache = cache
        self.listing = listing

    async def _changed(self, name: str) -> dict:
        return await self.listing.detail(await self.cache.describe(name, fresh=True))

    async def stop_job(self, name: str) -> dict:
        """StopTrainingJob: SageMaker sends SIGTERM to the containers, SIGKILL 120 s later.
        Only a job in progress can be stopped; anything else is a 409 saying why."""
        description = await self.cache.describe(name, fresh=True)
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
            await self.aws.call("sagemaker", "stop_training_job", TrainingJobName=name)
        except SMDebugError as error:
            if error.aws_code in WRONG_STATE_CODES:  # it finished between our check and AWS's
                raise SMDebugError(409, "wrong_state", error.message, "Refresh and see.") from None
            raise
        return await self._changed(name)

    async def set_remote_debug(self, name: str, enabled: bool) -> dict:
        description = await self.cache.describe(name, fresh=True)
        if remote_debug_enabled(description) == enabled:
            return await self.listing.detail(description)
        status = description.get("TrainingJobStatus")
        secondary = description.get("SecondaryStatus")
        if description.get("EnableNetworkIsolation"):
            raise network_isolation(
                name, "Start a copy of the job without EnableNetworkIsolation to debug it."
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
            await self.aws.call(
                "sagemaker",
                "update_training_job",
                TrainingJobName=name,
                RemoteDebugConfig={"EnableRemoteDebug": enabled},
            )
        except SMDebugError as error:
            if error.aws_code in WRONG_STATE_CODES:  # the job moved on since our check
                raise SMDebugError(
                    409, "wrong_state", error.message, "Refresh and try again."
                ) from None
            raise
        return await self._changed(name)

    async def hold_plan(self, description: dict) -> dict:
        """How a debug copy of this job holds (hold.plan), reading the image from ECR."""
        algorithm = description.get("AlgorithmSpecification") or {}

        def run() -> dict:
            reader = None

            def read(uri: str) -> dict:
                nonlocal reader
                reader = reader or hold.read_image_config(self.aws.client("ecr"))
                return reader(uri)

            return hold.plan(algorithm, read)

        return await self.aws.run(run)

    async def debug_copy(
        self, name: str, hold_seconds: int, new_name: str | None = None, dry_run: bool = False
    ) -> dict:
        """Start a copy of a job with remote debug on and a hold window; with ``dry_run``
        only say how it would hold. The answer carries ``hold``: mechanism, command,
        possible, reason."""
        description = await self.cache.describe(name, fresh=True)
        plan = await self.hold_plan(description)
        request, plan, problems = planned_copy(
            description, new_name or copy_name(name), hold_seconds, plan
        )
        if dry_run:
            return {"name": name, "hold": public_plan(plan)}
        if description.get("EnableNetworkIsolation"):
            raise network_isolation(
                name, "Create the copy yourself without EnableNetworkIsolation."
            )
        if problems:
            raise SMDebugError(
                409, "aws_limits", f"The copy would break AWS's limits: {'; '.join(problems)}.",
                "Create the copy yourself within AWS's limits.",
            )  # fmt: skip
        await self.aws.call("sagemaker", "create_training_job", **request)
        copy = detail(await self.cache.describe(request["TrainingJobName"], fresh=True))
        # `hold` stays the job's live hold (none yet); how the copy holds is `hold_plan`.
        return {**copy, "hold_plan": public_plan(plan)}
