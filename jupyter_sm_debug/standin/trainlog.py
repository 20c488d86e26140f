"""What a training container prints, per phase, shaped like the SageMaker training toolkit."""

from __future__ import annotations

import json
import random
import re
import time
from typing import Optional

TOOLKIT = "sagemaker-training-toolkit"
PROGRESS_LINES_PER_RUN = 40  # training progress lines over the whole Training phase


def _stamp(t: float) -> str:
    millis = int(round((t % 1) * 1000)) % 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f",{millis:03d}"


def _toolkit(t: float, level: str, text: str) -> str:
    return f"{_stamp(t)} {TOOLKIT} {level:<8} {text}"


def entry_point(hyperparameters: dict) -> list[str]:
    args = []
    for key, value in sorted(hyperparameters.items()):
        if not key.startswith("sagemaker_"):
            args += [f"--{key}", str(value)]
    return ["/opt/conda/bin/python3.10", "train.py", *args]


def container_start(t: float, host: str, hosts: list[str]) -> list[tuple[float, str]]:
    # No bash warnings first (a DLC's `bash -m` without a terminal prints two): a log
    # that opens with warnings reads as a broken container.
    return [
        (
            t + 0.4,
            _toolkit(t + 0.4, "INFO", "Imported framework sagemaker_pytorch_container.training"),
        ),
        (
            t + 0.5,
            _toolkit(t + 0.5, "INFO", "No Neurons detected (normal if no neurons installed)"),
        ),
        (t + 0.9, _toolkit(t + 0.9, "INFO", f"Current host: {host}, hosts: {json.dumps(hosts)}")),
        (t + 1.2, _toolkit(t + 1.2, "INFO", "Block until all host DNS lookups succeed.")),
    ]


def ssh_line(t: float, host: str, addr: str, port: int, host_key: str) -> tuple[float, str]:
    """sm-debug-entrypoint's announcement (entrypoint.announce_ssh), `host_key` as
    "type:base64": the line SSH attach reads its address from and pins the key of."""
    return (t, f"SM_DEBUG_SSH host={host} addr={addr} port={port} hostkey={host_key}")


def training_start(t: float, job: str, hyperparameters: dict) -> list[tuple[float, str]]:
    command = " ".join(entry_point(hyperparameters))
    env = {"job_name": job, "hyperparameters": hyperparameters, "module_name": "train"}
    return [
        (t, _toolkit(t, "INFO", "Invoking user script")),
        (t, "Training Env:"),
        (t, json.dumps(env, indent=4, sort_keys=True)),
        (t, "Invoking script with the following command:"),
        (t, command),
    ]


class Progress:
    """Loss lines spread evenly over the Training phase, emitted as the clock reaches them."""

    def __init__(self, seed: str, start: float, seconds: float):
        self.start = start
        self.end = start + seconds  # the phase (or the command, if it fails) ends there
        self.step = max(seconds / PROGRESS_LINES_PER_RUN, 30.0)
        self.count = int(seconds // self.step)
        self.emitted = 0
        self._random = random.Random(seed)  # noqa: S311 - log text, not security
        self._loss = 2.6 + self._random.random()

    def until(self, t: float, end: Optional[float] = None) -> list[tuple[float, str]]:
        lines = []
        while self.emitted < self.count:
            at = self.start + (self.emitted + 1) * self.step
            if at > t or at >= self.end or (end is not None and at >= end):
                break
            self.emitted += 1
            self._loss *= 0.97 + self._random.random() * 0.02
            step = self.emitted * 50
            lines.append(
                (
                    at,
                    f"[rank0] step {step} loss {self._loss:.4f} lr 2.0e-05 "
                    f"grad_norm {0.4 + self._random.random():.3f} "
                    f"samples/s {180 + self._random.random() * 20:.1f}",
                )
            )
        return lines


def uploading(t: float) -> list[tuple[float, str]]:
    return [
        (t, _toolkit(t, "INFO", "Waiting for the process to finish and give a return code.")),
        (
            t,
            _toolkit(t, "INFO", "Done waiting for a return code. Received 0 from exiting process."),
        ),
        (t + 0.1, _toolkit(t + 0.1, "INFO", "Reporting training SUCCESS")),
    ]


def error_message(reason: str) -> str:
    """The exception line of a FailureReason (its ErrorMessage "..."), else its first line."""
    match = re.search(r'ErrorMessage "(.*?)"\s*(?:\n|$)', reason, re.DOTALL)
    if match:
        return match.group(1).strip()
    return next((line.strip() for line in reason.splitlines() if line.strip()), reason)


def traceback(t: float, reason: str) -> list[tuple[float, str]]:
    """What the user's script prints as it dies: a Python traceback ending in the error."""
    lines = [
        "Traceback (most recent call last):",
        '  File "/opt/ml/code/train.py", line 241, in <module>',
        "    main()",
        '  File "/opt/ml/code/train.py", line 196, in main',
        "    trainer.train()",
        '  File "/opt/ml/code/train.py", line 118, in train',
        "    loss = self.step(batch)",
        *error_message(reason).splitlines(),
    ]
    return [(t, line) for line in lines]


def failed(t: float, reason: str, with_traceback: bool = True) -> list[tuple[float, str]]:
    """The command failed: its traceback (unless it was killed), then the toolkit's report."""
    lines = traceback(t, reason) if with_traceback else []
    lines += [(t, _toolkit(t, "ERROR", "Reporting training FAILURE"))]
    lines += [(t, _toolkit(t, "ERROR", part)) for part in reason.splitlines() if part.strip()]
    return lines


def hold_start(
    t: float, host: str, seconds: float, code: int, release_file: str
) -> list[tuple[float, str]]:
    """sm-debug-entrypoint's lines as it starts holding the container (entrypoint.main)."""
    return [
        (
            t,
            f"[sm-debug] training command failed with exit code {code}; holding this "
            f"container for {seconds:g} s so you can attach and inspect it. End the hold "
            f"early with `sm-debug-entrypoint --release` (touches {release_file}).",
        ),
        (t, f"SM_DEBUG_HOLD host={host} seconds={seconds:g} code={code}"),
    ]


def hold_ended(t: float, why: str, code: int) -> list[tuple[float, str]]:
    return [(t, f"[sm-debug] hold ended ({why}); exiting with {code}")]


def stopping(t: float) -> list[tuple[float, str]]:
    return [(t, _toolkit(t, "INFO", "Received SIGTERM: the training job is being stopped."))]
