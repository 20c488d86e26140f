"""The "demo" seed: a realistic account, every job created through the real API."""

from __future__ import annotations

import time

from .. import hold
from . import demo_code, ecr

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
