"""The stand-in's distributed training: one Python process per "GPU", standard library only.

``train.py`` is a torch-free imitation of a DDP job: a launcher (like torchrun) forks one
rank per GPU of the instance type; every rank computes a step, then meets the others in an
``all_reduce``. The job tag ``standin:hang-rank`` (a global rank, optionally ``@step``)
makes that rank stall in its data loader at that step, so every other rank of the job
waits in ``all_reduce`` for it, as NCCL ranks do: a stack dump has a true outlier to find.
The ranks know the plan instead of talking to each other: the stacks are what matters.

``nvidia-smi`` on the hosts' PATH prints plausible numbers for the instance type's GPUs,
with "(stand-in)" in every GPU name so that nobody takes them for a real reading.
"""

from __future__ import annotations

import re

HANG_RANK_TAG = "hang-rank"  # standin:hang-rank = "<global rank>[@<step>]"
HANG_RANK = re.compile(r"(0|[1-9][0-9]{0,4})(?:@([1-9][0-9]{0,5}))?")

# Instance type -> (GPUs, GPU name, memory per GPU in MiB), for the families SageMaker
# trains on. Anything else has no GPU.
GPUS = {
    "ml.p3.2xlarge": (1, "Tesla V100-SXM2-16GB", 16384),
    "ml.p3.8xlarge": (4, "Tesla V100-SXM2-16GB", 16384),
    "ml.p3.16xlarge": (8, "Tesla V100-SXM2-16GB", 16384),
    "ml.p3dn.24xlarge": (8, "Tesla V100-SXM2-32GB", 32768),
    "ml.p4d.24xlarge": (8, "NVIDIA A100-SXM4-40GB", 40960),
    "ml.p4de.24xlarge": (8, "NVIDIA A100-SXM4-80GB", 81920),
    "ml.p5.48xlarge": (8, "NVIDIA H100 80GB HBM3", 81559),
    "ml.g4dn.xlarge": (1, "Tesla T4", 15360),
    "ml.g4dn.2xlarge": (1, "Tesla T4", 15360),
    "ml.g4dn.12xlarge": (4, "Tesla T4", 15360),
    "ml.g5.xlarge": (1, "NVIDIA A10G", 23028),
    "ml.g5.2xlarge": (1, "NVIDIA A10G", 23028),
    "ml.g5.4xlarge": (1, "NVIDIA A10G", 23028),
    "ml.g5.8xlarge": (1, "NVIDIA A10G", 23028),
    "ml.g5.12xlarge": (4, "NVIDIA A10G", 23028),
    "ml.g5.24xlarge": (4, "NVIDIA A10G", 23028),
    "ml.g5.48xlarge": (8, "NVIDIA A10G", 23028),
    "ml.g6.xlarge": (1, "NVIDIA L4", 23034),
    "ml.g6.12xlarge": (4, "NVIDIA L4", 23034),
}


def gpus(instance_type: str) -> tuple[int, str, int]:
    return GPUS.get(instance_type, (0, "", 0))


def parse_hang_rank(value: str) -> tuple[int, int] | None:
    """'13' or '13@4' -> (rank, step); None when malformed."""
    match = HANG_RANK.fullmatch(value or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 2)


TRAIN_PY = '''\
"""Entry point of a stand-in training job: a DDP-like launcher and one process per GPU.

Standard library only. SM_NUM_GPUS ranks per host (one when the host has no GPU);
SM_STANDIN_HANG_RANK="<global rank>@<step>" stalls that rank in its data loader.
"""

import json
import os
import random
import sys
import time


def all_reduce(tensor, step, world, stalled):
    """Every rank meets here each step; one rank that never comes holds all of them."""
    if stalled is not None and step >= stalled[1]:
        _wait_for_peers(world, stalled[0])
    return tensor


def _wait_for_peers(world, missing):
    while True:  # as NCCL does: no timeout by default
        time.sleep(1.0)


def next_batch(loader, rank, step, stalled):
    if stalled is not None and stalled == (rank, step):
        return _read_shard_blocking(loader, rank)
    return loader.random()


def _read_shard_blocking(loader, rank):
    while True:  # a read from a stalled file system never returns
        time.sleep(1.0)


def train_loop(rank, world, local_rank, step_seconds, stalled):
    rng = random.Random(f"{os.environ.get('SM_CURRENT_HOST', '')}/{rank}")
    loss = 2.6 + rng.random()
    step = 0
    while True:
        step += 1
        batch = next_batch(rng, rank, step, stalled)
        time.sleep(step_seconds)  # forward and backward
        loss *= 0.97 + batch * 0.02
        all_reduce(loss, step, world, stalled)
        print(
            f"[rank{rank}] step {step * 50} loss {loss:.4f} lr 2.0e-05 "
            f"grad_norm {0.4 + rng.random():.3f} samples/s {180 + rng.random() * 20:.1f}",
            flush=True,
        )


def launch(local_ranks, host_index, hosts, step_seconds, stalled):
    """Like torchrun: one child process per local rank; waits for them."""
    world = local_ranks * hosts
    children = []
    for local_rank in range(local_ranks):
        pid = os.fork()
        if pid == 0:
            rank = host_index * local_ranks + local_rank
            try:
                train_loop(rank, world, local_rank, step_seconds, stalled)
            finally:
                os._exit(1)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


def main():
    # argv: the job's hyperparameters, as the toolkit passes them (--name value ...)
    step_seconds = float(os.environ.get("SM_STANDIN_STEP_SECONDS", "5"))
    env = json.loads(os.environ.get("SM_TRAINING_ENV", "{}"))
    hosts = env.get("hosts") or ["algo-1"]
    current = env.get("current_host") or hosts[0]
    gpus = int(os.environ.get("SM_NUM_GPUS", "0") or 0)
    hang = os.environ.get("SM_STANDIN_HANG_RANK", "")
    # The hyperparameter --hang-rank (a demo job's own code, as the toolkit passes it).
    if "--hang-rank" in sys.argv[:-1]:
        hang = sys.argv[sys.argv.index("--hang-rank") + 1]
        hang = hang if "@" in hang else hang + "@2"
    stalled = tuple(int(x) for x in hang.split("@")) if hang else None
    print(f"training on {current} of {hosts}", flush=True)
    host_index = hosts.index(current) if current in hosts else 0
    if gpus <= 0:
        train_loop(host_index, len(hosts), 0, step_seconds, stalled)
    else:
        launch(gpus, host_index, len(hosts), step_seconds, stalled)


if __name__ == "__main__":
    sys.exit(main())
'''


def nvidia_smi(instance_type: str, host: str) -> str | None:
    """The host's nvidia-smi (a Python script), or None when its instance has no GPU."""
    count, name, memory = gpus(instance_type)
    if not count:
        return None
    return f"""#!/usr/bin/env python
# The SageMaker stand-in's nvidia-smi: plausible numbers, not a reading of any GPU.
import random
import sys
import time

COUNT, NAME, MEMORY, HOST = {count}, {name + " (stand-in)"!r}, {memory}, {host!r}
FIELDS = {{
    "index": lambda i, r: (str(i), ""),
    "name": lambda i, r: (NAME, ""),
    "uuid": lambda i, r: ("GPU-5ac1d0e0-0000-4000-8000-%012d" % i, ""),
    "utilization.gpu": lambda i, r: (str(r.randint(88, 100)), " %"),
    "utilization.memory": lambda i, r: (str(r.randint(30, 60)), " %"),
    "memory.used": lambda i, r: (str(int(MEMORY * (0.7 + 0.1 * r.random()))), " MiB"),
    "memory.total": lambda i, r: (str(MEMORY), " MiB"),
    "memory.free": lambda i, r: (str(int(MEMORY * (0.2 + 0.1 * r.random()))), " MiB"),
    "temperature.gpu": lambda i, r: (str(r.randint(52, 71)), ""),
    "power.draw": lambda i, r: ("%.2f" % (250 + 100 * r.random()), " W"),
}}


def query(fields, options):
    header = "noheader" not in options
    units = "nounits" not in options
    rows = [", ".join(fields)] if header else []
    for i in range(COUNT):
        r = random.Random("%s/%d/%d" % (HOST, i, int(time.time() // 5)))
        cells = []
        for field in fields:
            if field not in FIELDS:
                sys.stderr.write('Field "%s" is not a valid field to query.\\n' % field)
                sys.exit(2)
            value, unit = FIELDS[field](i, r)
            cells.append(value + (unit if units else ""))
        rows.append(", ".join(cells))
    print("\\n".join(rows))


def main(args):
    fields, options = None, ""
    for arg in args:
        if arg.startswith("--query-gpu="):
            fields = [f.strip() for f in arg.split("=", 1)[1].split(",") if f.strip()]
        elif arg.startswith("--format="):
            options = arg.split("=", 1)[1]
    if fields:
        if "csv" not in options:
            sys.stderr.write("Please specify --format=csv with --query-gpu.\\n")
            return 2
        query(fields, options)
        return 0
    if "-L" in args:
        for i in range(COUNT):
            print("GPU %d: %s (UUID: GPU-5ac1d0e0-0000-4000-8000-%012d)" % (i, NAME, i))
        return 0
    print("SageMaker stand-in nvidia-smi: %d x %s on %s (no real GPU is read)"
          % (COUNT, NAME, HOST))
    query(["index", "name", "utilization.gpu", "memory.used", "memory.total",
           "temperature.gpu"], "csv")
    return 0


sys.exit(main(sys.argv[1:]))
"""
