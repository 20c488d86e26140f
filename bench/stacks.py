"""Stacks of all hosts: one dump of 8 hosts against one of a single host, over SSH and SSM.

    python bench/stacks.py [--quick] [--latency MS] [--samples N] [--json FILE]

A local stand-in (in this process) whose every AWS call waits `--latency` ms, two jobs of
ml.g5.12xlarge hosts (4 training ranks each, rank 6 hanging): 8 hosts and 1 host. Each
sample is a whole `stacks.dump` (StartSession/ssh, process walk, py-spy per process,
grouping) as the REST handler runs it. The first dump of each job sends py-spy
(c.SMDebug.stacks_py_spy = "push"): that is measured on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jupyter_sm_debug import stacks  # noqa: E402
from jupyter_sm_debug.config import SMDebug  # noqa: E402
from jupyter_sm_debug.connect import HostTarget  # noqa: E402
from jupyter_sm_debug.jobs import JobsService  # noqa: E402
from jupyter_sm_debug.standin import StandIn  # noqa: E402


def make_job(standin: StandIn, name: str, hosts: int) -> None:
    standin.create_job(
        name, instance_count=hosts, instance_type="ml.g5.12xlarge", remote_debug=True,
        started_ago=600, tags=[{"Key": "standin:hang-rank", "Value": "6@2"}],
        environment={"SM_STANDIN_STEP_SECONDS": "0.2"},
    )  # fmt: skip


async def measure(jobs, config, job, hosts, transport, samples) -> dict:
    description = await jobs.describe(job, fresh=True)
    # What api/target.host_targets builds for POST .../stacks (the job is running).
    targets = [
        HostTarget(job=job, host=f"algo-{n}", description=description, config=config,
                   jobs=jobs, transport=transport)
        for n in range(1, hosts + 1)
    ]  # fmt: skip
    started = time.perf_counter()
    first = await stacks.dump(targets, 120)
    push = time.perf_counter() - started
    assert {h.get("py_spy") for h in first["hosts"].values()} == {"pushed"}, first["hosts"]
    times = []
    answer = first
    for _ in range(samples):
        started = time.perf_counter()
        answer = await stacks.dump(targets, 60)
        times.append(time.perf_counter() - started)
    errors = {h: a["error"]["message"][:200] for h, a in answer["hosts"].items() if a.get("error")}
    return {
        "hosts": hosts,
        "transport": transport,
        "first_with_push_s": round(push, 3),
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "outliers": answer["outliers"],
        "errors": errors,
    }


async def main(args) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix="bench-stacks-"))
    standin = StandIn(root=root, clock="real", latency=args.latency / 1000)
    standin.start()
    os.environ.update(standin.client_env())
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    try:
        config = SMDebug(
            ssh_key=str(standin.client_key_path),
            ssh_user=standin.ssh_user,
            stacks_py_spy="push",
        )
        jobs = JobsService(config, logging.getLogger("bench"))
        results = []
        for transport in args.transports:
            for hosts in (1, 8):
                job = f"bench-stacks-{transport}-{hosts}"
                make_job(standin, job, hosts)
                await asyncio.sleep(3)  # the ranks reach their hang
                results.append(await measure(jobs, config, job, hosts, transport, args.samples))
        return results
    finally:
        standin.stop()


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one sample, SSH only")
    ap.add_argument("--latency", type=float, default=50.0, help="ms per AWS call (default 50)")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    args.transports = ["ssh"] if args.quick else ["ssh", "ssm"]
    if args.quick:
        args.samples = 1
    results = asyncio.run(main(args))
    print(f"stacks of all hosts, {args.latency:g} ms per AWS call, {os.cpu_count()} CPUs")
    print(f"{'transport':9} {'hosts':>5} {'first (push)':>13} {'median':>8} {'min':>8}  outlier")
    for r in results:
        print(
            f"{r['transport']:9} {r['hosts']:5d} {r['first_with_push_s']:12.2f}s "
            f"{r['median_s']:7.2f}s {r['min_s']:7.2f}s  {'; '.join(r['outliers']) or '-'}"
            + (f"  errors: {r['errors']}" if r["errors"] else "")
        )
    for transport in args.transports:
        one, eight = (next(r for r in results if r["transport"] == transport and r["hosts"] == n)
                      for n in (1, 8))  # fmt: skip
        print(f"{transport}: 8 hosts take {eight['median_s'] / one['median_s']:.2f}x one host")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    cli()
