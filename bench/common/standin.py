"""The stand-in in a child process (standin_proc.py) and clients on it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Optional

from . import REPO
from .procs import Cleanup, default_signals, die_with_us, stop_process


class StandInProcess:
    """The local stand-in in a child process (standin_proc.py): its CPU never shares
    a GIL with the measuring process. Counts the AWS API calls that reach it."""

    def __init__(self, stack: Cleanup, clock: str = "manual", hosts: bool = True):
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by cleanup
        stack.callback(self._stderr.close)
        options = json.dumps({"clock": clock, "hosts": hosts})
        self.proc = subprocess.Popen(
            [*die_with_us(), sys.executable, str(Path(__file__).with_name("standin_proc.py")),
             options],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            start_new_session=True, preexec_fn=default_signals,
        )  # fmt: skip
        stack.callback(self.close)
        info = self._read()
        self.url = info["url"]
        self.env = info["env"]
        self.ssh_user = info["ssh_user"]
        self.client_key_path = info["ssh_key"]
        self.sshd_missing_hint = info["sshd_missing_hint"]
        self.region = info["region"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"the stand-in process ended: {tail}")
        return json.loads(line)

    def _ask(self, op: str, **command) -> dict:
        with self._lock:
            self.proc.stdin.write(json.dumps({"op": op, **command}) + "\n")
            self.proc.stdin.flush()
            return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)  # it ends its hosts (sshd, shells) first
            except subprocess.TimeoutExpired:
                stop_process(self.proc)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()

    def client_env(self) -> dict:
        return dict(self.env)

    def create_jobs(self, specs: list[dict]) -> dict:
        return self._ask("create_jobs", jobs=specs)

    def seed_jobs(self, specs: list[dict]) -> dict:
        """create_jobs without the API's HTTP round trips (StandIn.create_jobs): for the
        thousands of jobs of an account, which the API would take minutes to make."""
        return self._ask("seed_jobs", jobs=specs)

    def create_job(self, name: str, **kwargs) -> None:
        self.create_jobs([{"name": name, **kwargs}])

    def set_faults(self, **faults) -> dict:
        return self._ask("faults", **faults)

    def host_address(self, job: str, host: str) -> Optional[tuple[str, int]]:
        address = self._ask("host_address", job=job, host=host)["address"]
        return tuple(address) if address else None

    def calls(self) -> Counter:
        return Counter(self._ask("calls")["calls"])

    @contextlib.contextmanager
    def measure(self):
        """with standin.measure() as got: ...; got then holds the API calls made inside."""
        before = self.calls()
        got: Counter = Counter()
        try:
            yield got
        finally:
            after = self.calls()
            got.update({k: after[k] - before.get(k, 0) for k in after if after[k] != before[k]})


def server_environment(standin) -> dict:
    from jupyter_sm_debug.cli import demo_environment

    env = demo_environment(dict(os.environ), standin.client_env() if standin else {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def standin_with_hosts(stack: Cleanup) -> Optional[StandInProcess]:
    """A stand-in whose hosts run sshd, or None after saying why it cannot (no sshd here)."""
    standin = StandInProcess(stack, clock="manual")
    if standin.client_key_path is None:
        print(f"cannot run: {standin.sshd_missing_hint}")
        return None
    return standin
