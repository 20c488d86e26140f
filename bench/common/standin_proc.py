"""The stand-in in its own process, driven by the benchmarks over stdin/stdout (one JSON
object a line), so that its CPU never shares a GIL with the process that measures.

    python bench/common/standin_proc.py '{"clock": "manual", "hosts": false}'

First line out: {"url", "env", "ssh_user", "ssh_key", "sshd_missing_hint"}. Then one answer
per command in: {"op": "create_jobs", "jobs": [{"name": ..., **create_job kwargs}]} (through
the API), {"op": "seed_jobs", "jobs": [...]} (the same, without HTTP: StandIn.create_jobs),
{"op": "calls"} (AWS API calls so far, by action, set-up calls excluded), {"op": "faults",
...set_faults kwargs}, {"op": "host_address", "job", "host"}, {"op": "quit"}. Ends, and
ends every host, on "quit", on EOF (the benchmark died) and on SIGTERM/SIGINT.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    from jupyter_sm_debug.standin import StandIn

    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    standin = StandIn(
        clock=options.get("clock", "manual"),
        hosts=options.get("hosts", True),
        latency=options.get("latency", 0.0),
    )

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    calls: Counter = Counter()
    lock = threading.Lock()
    try:
        standin.start()
        faults = standin.faults
        original = faults.take

        def take(action):  # every AWS call that is not the stand-in's own set-up traffic
            with lock:
                calls[action] += 1
            return original(action)

        faults.take = take
        reply(
            {
                "url": standin.url,
                "env": standin.client_env(),
                "ssh_user": standin.ssh_user,
                "ssh_key": standin.client_key_path,
                "sshd_missing_hint": standin.sshd_missing_hint,
                "region": standin.region,
            }
        )
        for line in sys.stdin:
            command = json.loads(line)
            op = command.pop("op")
            if op == "quit":
                break
            if op == "calls":
                with lock:
                    reply({"calls": dict(calls)})
            elif op == "faults":
                reply(standin.set_faults(**command))
            elif op == "host_address":
                reply({"address": standin.host_address(command["job"], command["host"])})
            elif op == "create_jobs":
                reply(create_jobs(standin, command["jobs"]))
            elif op == "seed_jobs":  # without HTTP: StandIn.create_jobs
                started = time.perf_counter()
                standin.create_jobs(command["jobs"])
                reply({"created": len(command["jobs"]), "seconds": time.perf_counter() - started})
            else:
                reply({"error": f"unknown op {op}"})
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


def create_jobs(standin, jobs: list[dict]) -> dict:
    started = time.perf_counter()

    def create(spec):
        spec = dict(spec)
        standin.create_job(spec.pop("name"), **spec)

    if jobs:
        create(jobs[0])  # the first call loads botocore's models: not from 4 threads at once
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, jobs[1:]))
    return {"created": len(jobs), "seconds": time.perf_counter() - started}


def reply(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
