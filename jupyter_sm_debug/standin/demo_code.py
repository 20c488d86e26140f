"""The demo's scenarios as programs: each is uploaded to the stand-in's S3 as a job's
``sourcedir.tar.gz`` (SDK v2 script mode) and run by its hosts, so what the demo shows is
what the program really does.

- the hung rank: ddp.TRAIN_PY with ``--hang-rank 13`` (rank 13 stalls in its data loader,
  the other ranks wait in all_reduce, forever, as NCCL does);
- the failing job: trains a few steps, then runs out of (simulated) GPU memory;
- the held job: trains a few steps, then its first evaluation opens a validation file the
  job never got; the hold wrapper around its command keeps the containers up.
"""

from __future__ import annotations

import io
import json
import tarfile

from . import ddp

_STEPS = """\
import os
import random
import sys
import time

STEP_SECONDS = float(os.environ.get("SM_STANDIN_STEP_SECONDS", "1"))
rng = random.Random(os.environ.get("SM_CURRENT_HOST", "algo-1"))
loss = 2.6 + rng.random()
print(f"training on {os.environ.get('SM_CURRENT_HOST')} with {sys.argv[1:]}", flush=True)


def steps(count):
    global loss
    for step in range(1, count + 1):
        time.sleep(STEP_SECONDS)
        loss *= 0.97 + rng.random() * 0.02
        print(f"[rank0] step {step * 50} loss {loss:.4f} lr 2.0e-05", flush=True)
"""

OUT_OF_MEMORY = (
    _STEPS
    + '''

class OutOfMemoryError(RuntimeError):
    """torch.OutOfMemoryError's stand-in: this program has no torch and no GPU."""


steps(3)
raise OutOfMemoryError(
    "CUDA out of memory (stand-in). Tried to allocate 2.00 GiB (GPU 0; 22.06 GiB total "
    "capacity; 19.87 GiB already allocated)"
)
'''
)

MISSING_VALIDATION = (
    _STEPS
    + """

steps(3)
# The first evaluation: the job was launched without a validation channel.
with open("/opt/ml/input/data/validation/val.bin", "rb") as validation:
    validation.read()
"""
)

PROGRAMS = {
    "hung-rank": ddp.TRAIN_PY,
    "out-of-memory": OUT_OF_MEMORY,
    "missing-validation": MISSING_VALIDATION,
}


def source_archive(program: str) -> bytes:
    """A sourcedir.tar.gz holding ``train.py``, as the SDK packs an entry point."""
    data = program.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload(standin, job_prefix: str, scenario: str) -> dict:
    """Upload a scenario's code; returns the hyperparameters that run it in script mode."""
    bucket = f"sagemaker-{standin.region}-{standin.account_id}"
    key = f"demo-code/{job_prefix}/source/sourcedir.tar.gz"
    client = standin.client("s3")
    try:
        client.head_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - not there yet
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=source_archive(PROGRAMS[scenario]))
    return {
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{key}"),
    }
