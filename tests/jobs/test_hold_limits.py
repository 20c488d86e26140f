"""Issue 23, findings 4 and 6: every request a debug copy or debuggable() builds passes AWS's
documented limits, as botocore's model (loaded here, at test time) states them; when a limit
forbids the hold, the plan says which."""

from __future__ import annotations

import itertools

import botocore.session
import botocore.validate
import pytest

from jupyter_sm_debug import hold
from jupyter_sm_debug.jobs.actions import planned_copy

MODEL = botocore.session.get_session().get_service_model("sagemaker")
CREATE = MODEL.operation_model("CreateTrainingJob").input_shape
ENVIRONMENT_MAX = CREATE.members["Environment"].metadata["max"]
ITEMS_MAX = CREATE.members["AlgorithmSpecification"].members["ContainerEntrypoint"].metadata["max"]
ITEM_CHARS = (
    CREATE.members["AlgorithmSpecification"].members["ContainerEntrypoint"].member.metadata["max"]
)
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"


def description(environment: int, entrypoint: int | None, arguments: int, item: int = 8) -> dict:
    """A job as DescribeTrainingJob tells it (the fields a copy repeats)."""
    algorithm = {"TrainingImage": IMAGE, "TrainingInputMode": "File"}
    if entrypoint is not None:
        algorithm["ContainerEntrypoint"] = ["python"] + [
            f"--{i:0{max(1, item - 2)}d}"[:item] for i in range(entrypoint - 1)
        ]
    if arguments:
        algorithm["ContainerArguments"] = [f"a{i}" for i in range(arguments)]
    job = {
        "TrainingJobName": "source-job",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/source-job",
        "AlgorithmSpecification": algorithm,
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },  # fmt: skip
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "TrainingJobStatus": "Failed",
    }
    if environment:
        job["Environment"] = {f"VAR_{i}": "x" for i in range(environment)}
    return job


def image_config(uri: str) -> dict:
    return {"Entrypoint": ["bash", "-m", "start_with_right_hostname.sh"]}


SHAPES = list(
    itertools.product(
        [0, 1, 99, ENVIRONMENT_MAX],  # Environment entries
        [None, 1, 5, 80, 81, 85, 95, ITEMS_MAX],  # ContainerEntrypoint items (None: image's)
        [0, 1, 50, ITEMS_MAX],  # ContainerArguments items
    )
)


@pytest.mark.parametrize(("environment", "entrypoint", "arguments"), SHAPES)
def test_every_copy_request_passes_awss_limits_or_says_which_forbids_the_hold(
    environment, entrypoint, arguments
):
    source = description(environment, entrypoint, arguments)
    plan = hold.plan(source["AlgorithmSpecification"], image_config)
    request, plan, problems = planned_copy(source, "source-job-copy", 1800, plan)
    assert problems == []
    assert hold.limit_problems(request) == []
    botocore.validate.validate_parameters(request, CREATE)  # types and required members
    algorithm = request["AlgorithmSpecification"]
    argv = algorithm["ContainerEntrypoint"] + algorithm.get("ContainerArguments", []) if (
        "ContainerEntrypoint" in algorithm
    ) else []  # fmt: skip
    if plan["possible"]:
        assert request["Environment"][hold.HOLD_VARIABLE] == "1800"
        assert hold.is_wrapped(argv)
        # What runs is the source's own command.
        own = (source["AlgorithmSpecification"].get("ContainerEntrypoint")
               or image_config(IMAGE)["Entrypoint"])  # fmt: skip
        own_arguments = source["AlgorithmSpecification"].get("ContainerArguments") or (
            [] if entrypoint else ["train"]
        )
        assert hold.unwrapped(argv) == [*own, *own_arguments]
    else:
        # One of the limits that forbid it is named.
        assert ("Environment already has 100 entries" in plan["reason"]) or (
            "AWS allows 100 in ContainerEntrypoint and 100 in ContainerArguments" in plan["reason"]
        ), plan["reason"]
        if environment == ENVIRONMENT_MAX:
            assert hold.HOLD_VARIABLE not in request["Environment"]


@pytest.mark.parametrize("entrypoint", range(82, 101))
def test_commands_of_up_to_100_items_hold_through_container_arguments(entrypoint):
    """Finding 6: the wrapper takes ~19 items, so a command of 82-100 items used to be refused;
    with no ContainerArguments of its own the rest goes there."""
    source = description(0, entrypoint, 0)
    plan = hold.plan(source["AlgorithmSpecification"], image_config)
    assert plan["possible"], plan["reason"]
    fields = plan["fields"]
    assert len(fields["ContainerEntrypoint"]) <= ITEMS_MAX
    assert len(fields["ContainerArguments"]) <= ITEMS_MAX
    assert (
        hold.unwrapped(fields["ContainerEntrypoint"] + fields["ContainerArguments"])
        == (source["AlgorithmSpecification"]["ContainerEntrypoint"])
    )


def test_a_command_too_long_for_both_lists_says_so():
    source = description(0, ITEMS_MAX, ITEMS_MAX)
    plan = hold.plan(source["AlgorithmSpecification"], image_config)
    assert not plan["possible"]
    assert (
        f"AWS allows {ITEMS_MAX} in ContainerEntrypoint and {ITEMS_MAX} in ContainerArguments"
        in (plan["reason"])
    )


def test_long_items_and_the_environment_limit_are_named():
    long_item = description(0, 3, 0, item=ITEM_CHARS + 1)
    plan = hold.plan(long_item["AlgorithmSpecification"], image_config)
    assert not plan["possible"] and f"{ITEM_CHARS} characters" in plan["reason"]
    full = description(ENVIRONMENT_MAX, 3, 0)
    plan = hold.plan(full["AlgorithmSpecification"], image_config)
    _, plan, _ = planned_copy(full, "copy", 600, plan)
    assert not plan["possible"] and f"AWS's limit ({ENVIRONMENT_MAX})" in plan["reason"]
    assert hold.environment_room({f"V{i}": "" for i in range(ENVIRONMENT_MAX - 1)}) == ""
    assert (
        hold.environment_room({hold.HOLD_VARIABLE: "1", **{f"V{i}": "" for i in range(99)}}) == ""
    )


def test_limit_problems_reads_the_model():
    assert hold.limit_problems({"Environment": {f"V{i}": "" for i in range(101)}}) == [
        "CreateTrainingJob.Environment has 101 entries; AWS allows at most 100"
    ]
    assert "pattern" in hold.limit_problems({"Environment": {"1BAD": ""}})[0]
    assert (
        "at most 256"
        in hold.limit_problems({"AlgorithmSpecification": {"ContainerArguments": ["x" * 257]}})[0]
    )
