"""Jobs that fail, and jobs that hold: the specs the hold tests of several areas share."""

from __future__ import annotations

from jupyter_sm_debug import hold
from jupyter_sm_debug.standin import ecr

REASON = (
    "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"
    'ErrorMessage "ZeroDivisionError: division by zero"\n'
    'Command "/opt/conda/bin/python3.10 train.py", exit code: 1'
)
# 20 s Starting, 10 s Downloading, 60 s Training until the command fails.
FAILING = {"starting": 20, "downloading": 10, "training": 60, "outcome": "Failed",
           "failure_reason": REASON}  # fmt: skip
FAILS_AFTER = 90


def hold_env(seconds: float) -> dict:
    return {"SM_DEBUG_HOLD_ON_FAILURE": f"{seconds:g}"}


# What a debug copy of a DLC job runs: the hold wrapper around the image's own command.
WRAPPED = {
    "container_entrypoint": hold.wrapped_argv(ecr.DLC_ENTRYPOINT),
    "container_arguments": ["train"],
}
