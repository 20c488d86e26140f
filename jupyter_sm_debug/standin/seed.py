"""Seeding: the CreateTrainingJob request of a stand-in job (``StandIn.create_job``, the
benchmarks' ``create_jobs``), the images they run, and the "demo" seed: a realistic
account, every job created through the real API."""

from __future__ import annotations

import time
from typing import Optional, Union

from .. import hold
from . import demo_code, ecr
from .sagemaker.models import Schedule

ACCOUNT_ID = "123456789012"  # moto's default account

HOUR = 3600.0

# The crashed-but-attachable job: it was created this long before the demo started; its
# program (demo_code.py) fails at its first evaluation a few seconds after its container
# starts, and the hold wrapper (hold.py) holds its containers for HELD_HOLD seconds.
HELD_STARTED_AGO = 55 * 60
HELD_HOLD = HOUR
# A stand-in without hosts runs no program: there the three scenarios follow a scripted
# timeline instead (standin: tags), ending as their programs would.
WITHOUT_HOSTS = {
    "out-of-memory": {
        "schedule": {"starting": 240, "downloading": 120, "training": 1020, "outcome": "Failed"}
    },
    "hung-rank": {
        "schedule": {"starting": 420, "downloading": 300, "training": 14 * HOUR},
        "tags": [{"Key": "standin:hang-rank", "Value": "13"}],
    },
    "missing-validation": {
        "schedule": {
            "starting": 180,
            "downloading": 90,
            "training": HELD_STARTED_AGO - 270 - 12 * 60,  # failed 12 min ago
            "outcome": "Failed",
            "failure_reason": (
                "AlgorithmError: ExecuteUserScriptError:\n"
                "ExitCode 1\n"
                'ErrorMessage "FileNotFoundError: [Errno 2] No such file or directory: '
                "'/opt/ml/input/data/validation/val.bin'\"\n"
                'Command "/opt/conda/bin/python3.10 train.py --eval-every 2000", exit code: 1'
            ),
        }
    },
}


def dlc_image(region: str) -> str:
    """The PyTorch Deep Learning Container the stand-in's jobs run by default."""
    return (
        f"{ecr.DLC_REGISTRY}.dkr.ecr.{region}.amazonaws.com/"
        "pytorch-training:2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker"
    )


def byoc_image(region: str) -> str:
    """The stand-in's bring-your-own-container image: only an ENTRYPOINT (see ecr.py)."""
    return f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{ecr.BYOC_REPOSITORY}:latest"


def job_request(
    region: str,
    name: str,
    instance_count: int = 1,
    instance_groups: Optional[list] = None,
    remote_debug: Optional[bool] = False,
    network_isolation: bool = False,
    schedule: Union[dict, Schedule, None] = None,
    started_ago: float = 0,
    *,
    instance_type: str = "ml.m5.xlarge",
    hyperparameters: Optional[dict] = None,
    stop_after: Optional[float] = None,
    tags: Optional[list] = None,
    environment: Optional[dict] = None,
    image: Optional[str] = None,
    container_entrypoint: Optional[list] = None,
    container_arguments: Optional[list] = None,
) -> dict:
    """The CreateTrainingJob request of a stand-in job.

    ``schedule``: seconds per phase and outcome, e.g. {"training": 600, "outcome":
    "Failed", "failure_reason": "..."} (keys: starting, downloading, training, uploading,
    stopping, outcome, failure_reason). ``started_ago`` backdates the creation, so the job
    is created in the phase it would have reached; ``stop_after`` stops it that many
    seconds after creation. Each of these travels as a ``standin:`` tag.
    ``environment``: the job's Environment. SM_DEBUG_HOLD_ON_FAILURE in it holds a failed
    job's containers that long only if what they run holds: ``container_entrypoint``
    wrapped by ``hold.wrapped_argv`` or starting with sm-debug-entrypoint (as on AWS).
    ``image``: the TrainingImage (default a PyTorch DLC; see ecr.py for the images).
    """
    if isinstance(schedule, dict):
        schedule = Schedule(**schedule)
    schedule = schedule or Schedule()
    tags = [*(tags or []), *schedule.to_tags()]
    if started_ago:
        tags.append({"Key": "standin:started-ago", "Value": f"{started_ago:g}"})
    if stop_after is not None:
        tags.append({"Key": "standin:stop-after", "Value": f"{stop_after:g}"})
    if instance_groups:
        groups = [
            group
            if isinstance(group, dict)
            else {
                "InstanceGroupName": group[0],
                "InstanceType": group[1],
                "InstanceCount": group[2],
            }  # fmt: skip
            for group in instance_groups
        ]
        resources: dict = {"InstanceGroups": groups, "VolumeSizeInGB": 100}
    else:
        resources = {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": 100,
        }
    total = schedule.starting + schedule.downloading + schedule.training + schedule.uploading
    bucket = f"s3://sagemaker-{region}-{ACCOUNT_ID}"
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": image or dlc_image(region),
            "TrainingInputMode": "File",
            **({"ContainerEntrypoint": list(container_entrypoint)} if container_entrypoint else {}),
            **({"ContainerArguments": list(container_arguments)} if container_arguments else {}),
        },  # fmt: skip
        "RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/SageMakerExecutionRole",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"{bucket}/{name}/input/train",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"{bucket}/output"},
        "ResourceConfig": resources,
        "StoppingCondition": {
            "MaxRuntimeInSeconds": int(min(max(86400, total + 3600), 28 * 86400))
        },
        "HyperParameters": {k: str(v) for k, v in (hyperparameters or {}).items()},
        "EnableNetworkIsolation": bool(network_isolation),
        "Tags": tags,
    }
    if remote_debug is not None:
        request["RemoteDebugConfig"] = {"EnableRemoteDebug": bool(remote_debug)}
    # Stand-in hosts run as if under `sm-debug-entrypoint --ssh`: say so in the job's
    # own configuration, where SSH attach looks before trusting an announcement.
    environment = {"SM_DEBUG_SSH": "1", **(environment or {})}
    request["Environment"] = {k: str(v) for k, v in environment.items()}
    return request


def _name(prefix: str, created: float) -> str:
    return f"{prefix}-{time.strftime('%Y-%m-%d-%H%M', time.gmtime(created))}"


def seed_demo(standin) -> dict[str, str]:
    """Create the demo jobs, oldest first; returns {name prefix: job name}."""
    now = standin.now()
    jobs = [
        # prefix, started_ago, create_job keyword arguments
        (
            "bert-base-sentiment",
            26 * HOUR,
            {
                "instance_type": "ml.g5.xlarge",
                "schedule": {"starting": 180, "downloading": 95, "training": 2 * HOUR},
                "hyperparameters": {"epochs": "4", "learning_rate": "3e-5", "max_seq_len": "256"},
            },
        ),
        (
            "mistral-7b-sft",
            5 * HOUR,
            {
                "instance_type": "ml.g5.12xlarge",
                # Its program runs out of (simulated) GPU memory after a few steps.
                "schedule": {"starting": 240, "downloading": 120},
                "hyperparameters": {"epochs": "3", "per-device-batch-size": "16"},
                "scenario": "out-of-memory",
            },
        ),  # fmt: skip
        (
            "whisper-asr-finetune",
            3 * HOUR,
            {
                "instance_type": "ml.g5.2xlarge",
                "remote_debug": True,
                "schedule": {"starting": 150, "downloading": 60, "training": 8 * HOUR},
                "stop_after": 41 * 60,
            },
        ),
        (
            "resnet50-ddp-4node",
            2 * HOUR + 10 * 60,
            {
                "instance_type": "ml.p4d.24xlarge",
                "instance_count": 4,
                "remote_debug": False,
                "schedule": {"starting": 420, "downloading": 300},
                # Rank 13 (algo-2's sixth GPU) stalls in its data loader; the other 31 ranks
                # wait for it in all_reduce: "Stacks of all hosts" finds it.
                "hyperparameters": {
                    "epochs": "90",
                    "batch-size": "256",
                    "backend": "nccl",
                    "hang-rank": "13",
                },  # fmt: skip
                "scenario": "hung-rank",
            },
        ),
        (
            "isolated-fraud-scoring",
            HOUR,
            {
                "instance_type": "ml.m5.4xlarge",
                "network_isolation": True,
                "schedule": {"starting": 120, "downloading": 45, "training": 6 * HOUR},
                "hyperparameters": {"num_round": "500", "max_depth": "8"},
            },
        ),
        (
            # Crashed at its first evaluation (no validation channel) and held for an hour by
            # the hold wrapper around the DLC's command: still Training, attachable over SSH
            # and SSM.
            "gpt2-pretrain-ddp",
            HELD_STARTED_AGO,
            {
                "instance_type": "ml.g5.12xlarge",
                "instance_count": 2,
                "remote_debug": True,
                "schedule": {"starting": 180, "downloading": 90},
                "environment": {"SM_DEBUG_HOLD_ON_FAILURE": str(int(HELD_HOLD))},
                # It holds because it runs the hold wrapper around the DLC's own command, as
                # a Debug a copy launches it; the variable alone would hold nothing.
                "container_entrypoint": hold.wrapped_argv(ecr.DLC_ENTRYPOINT),
                "container_arguments": ["train"],
                "hyperparameters": {"eval-every": "2000"},
                "scenario": "missing-validation",
            },
        ),  # fmt: skip
        (
            "llama-finetune",
            47 * 60,
            {
                "instance_type": "ml.g5.2xlarge",
                "remote_debug": True,
                "schedule": {"starting": 210, "downloading": 140, "training": 10 * HOUR},
                "hyperparameters": {
                    "epochs": "3",
                    "learning_rate": "2e-5",
                    "lora_r": "16",
                    "model_id": "meta-llama/Llama-3.1-8B",
                },
            },
        ),  # fmt: skip
        (
            "hetero-preprocess-train",
            35 * 60,
            {
                "instance_groups": [
                    {
                        "InstanceGroupName": "preproc",
                        "InstanceType": "ml.c5.4xlarge",
                        "InstanceCount": 1,
                    },
                    {
                        "InstanceGroupName": "train",
                        "InstanceType": "ml.g5.12xlarge",
                        "InstanceCount": 2,
                    },
                ],
                "remote_debug": True,
                "schedule": {"starting": 300, "downloading": 120, "training": 9 * HOUR},
                "hyperparameters": {"preprocess-workers": "16", "epochs": "5"},
            },
        ),  # fmt: skip
        (
            "sdxl-lora-dreambooth",
            5,
            {
                "instance_type": "ml.p4d.24xlarge",
                "instance_count": 2,
                # Waiting for p4d capacity: Starting for a while, then hours of training.
                "schedule": {"starting": 8 * 60, "downloading": 90, "training": 7 * HOUR},
                "hyperparameters": {"resolution": "1024", "max_train_steps": "4000"},
            },
        ),
    ]
    created = {}
    for prefix, ago, options in jobs:
        name = _name(prefix, now - ago)
        scenario = options.pop("scenario", None)
        if scenario and not standin.hosts_enabled:
            options.update(WITHOUT_HOSTS[scenario])
            if scenario == "hung-rank":
                options["hyperparameters"].pop("hang-rank")
        elif scenario:  # a real program, uploaded as the job's code
            code = demo_code.upload(standin, prefix, scenario)
            options["hyperparameters"] = {**options.get("hyperparameters", {}), **code}
        standin.create_job(name, started_ago=ago, **options)
        created[prefix] = name
    return created
