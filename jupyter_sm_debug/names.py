"""Validation of the names that arrive in URLs, before they reach AWS or any argv."""

from __future__ import annotations

import re

from .errors import SMDebugError

# AWS's own pattern for TrainingJobName, and its length limit (botocore model: 1..63 chars),
# which the pattern alone does not keep: its hyphens are not counted.
JOB_NAME = re.compile(r"(?=.{1,63}\Z)[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", re.DOTALL)
HOST_NAME = re.compile(r"algo-([1-9][0-9]{0,4})")
NAME_CONTAINS = re.compile(r"[a-zA-Z0-9\-]{1,63}")
STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")


def job_name(value: str) -> str:
    if not isinstance(value, str) or not JOB_NAME.fullmatch(value):
        raise SMDebugError(
            400,
            "invalid_job_name",
            "That is not a valid SageMaker training job name.",
            "Job names are 1-63 letters, digits and hyphens, starting with a letter or digit.",
        )
    return value


def host_index(value: str) -> int:
    """The n of `algo-<n>`; the range check against the job happens where the job is known."""
    match = HOST_NAME.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise SMDebugError(
            400,
            "invalid_host_name",
            "That is not a valid training host name.",
            "Hosts are named algo-1, algo-2, ... algo-N.",
        )
    return int(match.group(1))


def remote_port(value, from_url: bool = False) -> int:
    """1-65535: a JSON number, or digits in a URL; anything else is a 400."""
    if (
        from_url
        and isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= 5
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SMDebugError(
            400,
            "invalid_port",
            "The port must be a whole number from 1 to 65535.",
            "Give the port the app listens on in the container, e.g. 6006 for TensorBoard.",
        )
    return value
