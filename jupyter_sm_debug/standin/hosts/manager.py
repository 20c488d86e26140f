"""HostManager: starts and ends the hosts of jobs as they go through their states."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Callable, Optional

from .. import container
from ..logs import LogWriter
from ..sagemaker.models import (
    LIVE_SECONDARY,
    Job,
    algorithm_error,
)
from .inputs import InputsMixin
from .live import JobLogState, LiveHost
from .process import ProcessMixin
from .scripted import ScriptedMixin
from .sshd import SshdMixin, SshKit


def _no_ssm_sessions(region: str, job: str, host: str) -> tuple[int, bool]:
    return 0, False


class HostManager(InputsMixin, SshdMixin, ProcessMixin, ScriptedMixin):
    ADDRESS = "127.0.0.1"

    def __init__(self, root: Path, internal: Path, logs: LogWriter, default_region: str):
        self.root = root
        self.internal = internal
        self.logs = logs
        self.default_region = default_region
        self.ssh = SshKit(internal / "ssh")
        self.live: dict[tuple[str, str, str], LiveHost] = {}
        self._job_logs: dict[tuple[str, str], JobLogState] = {}
        self._lock = threading.RLock()
        self._made_dirs: set[Path] = set()
        self._listed = "[]"
        # False: hosts without namespaces (as where they are not permitted); None: if possible.
        self.isolate: Optional[bool] = None
        # (region, job, host) -> (people's SSM sessions open on that host, whether one
        # closed since the last look); the stand-in sets it.
        self.ssm_sessions: Callable[[str, str, str], tuple[int, bool]] = _no_ssm_sessions
        # Seconds between SIGTERM and SIGKILL when a lived job is stopped (docker stop -t
        # 120, as SageMaker stops a container); tests shorten it.
        self.stop_grace = 120.0

    # -- layout -------------------------------------------------------------------------

    @property
    def not_isolated(self) -> Optional[str]:
        """Why hosts run without namespaces here (None: each host has its own)."""
        if self.isolate is False:
            return "namespaces turned off for this stand-in"
        return container.unavailable()

    def job_dir(self, region: str, job: str) -> Path:
        # Job names cannot start with "_": the stand-in's own entries never clash.
        if region == self.default_region:
            return self.root / job
        return self.root / "_regions" / region / job

    # -- reconcile ------------------------------------------------------------------------

    def reconcile(
        self, jobs: list[Job], t: float, live_of, partial: bool = False, release=None,
        update=None,
    ) -> None:  # fmt: skip
        """Start and end hosts and write log lines so they match the jobs at time ``t``.

        ``live_of(job)`` answers (segments, index at ``t``, hold) with the store's lock.
        ``partial``: ``jobs`` are not all the jobs; leave the hosts of the others alone.
        ``release(job, t, why)`` ends a job's hold at ``t`` (with the store's lock).
        ``update(job, change)`` runs ``change(job)`` with the store's lock: a lived job's
        processes decide how it ends.
        """
        with self._lock:
            wanted = set()
            for job in jobs:
                key = (job.region, job.name)
                state = self._job_logs.setdefault(key, JobLogState())
                if state.done:
                    continue
                if job.lived and update is not None:
                    self._reconcile_lived(job, state, t, live_of, update, wanted)
                    continue
                segments, index, hold = live_of(job)
                if release is not None and hold is not None and hold.start <= t < hold.end:
                    why = self._hold_ended_by(job, state, hold)
                    if why and release(job, t, why):
                        segments, index, hold = live_of(job)
                current = segments[index]
                if current.status == "InProgress" and current.secondary in LIVE_SECONDARY:
                    start = next(g.start for g in segments if g.secondary != "Starting")
                    for spec in job.hosts:
                        wanted.add((job.region, job.name, spec.name))
                        if (job.region, job.name, spec.name) not in self.live:
                            self._start(job, spec, start, t)
                self._write_logs(job, state, segments, index, t, hold)
                if segments[index].terminal:
                    state.done = True
            considered = {(job.region, job.name) for job in jobs}
            for key in [key for key in self.live if key not in wanted]:
                if not partial or key[:2] in considered:
                    self._end(self.live.pop(key))
            self._write_listing()

    def _reconcile_lived(self, job: Job, state: JobLogState, t: float, live_of, update,
                         wanted: set) -> None:  # fmt: skip
        """A lived job: its hosts run its command from Training on; the first non-zero exit
        fails the job, every host's exit 0 completes it; a stop (or MaxRuntimeInSeconds)
        sends SIGTERM to each PID 1, SIGKILL after the grace period, and the job is Stopped
        once they are gone. Their output is the log stream."""
        segments, index, _ = live_of(job)
        current = segments[index]
        keys = [(job.region, job.name, spec.name) for spec in job.hosts]
        if current.status == "InProgress" and current.secondary == "Training":
            start = next(g.start for g in segments if g.secondary == "Training")
            for spec, key in zip(job.hosts, keys):
                if key not in self.live and spec.name not in state.exited:
                    self._start(job, spec, start, t)
                    state.streams.setdefault(spec.name, self.live[key].log_stream)
        hosts = [self.live[key] for key in keys if key in self.live]
        for host in hosts:
            self._observe(host, t)
            if host.exit_code is not None:
                state.exited.add(host.spec.name)
        if current.status == "InProgress" and current.secondary == "Training":
            failed = next((h for h in hosts if h.exit_code not in (None, 0)), None)
            if failed is not None:
                failure = failed.sandbox / "opt" / "ml" / "output" / "failure"
                try:
                    text = failure.read_text(errors="replace")
                except OSError:
                    text = ""
                reason = algorithm_error(failed.exit_code, text)
                update(job, lambda j: j.exited(t, failed.exit_code, reason))
            elif len(state.exited) == len(job.hosts):
                update(job, lambda j: j.exited(t, 0))
        elif current.status == "Stopping":
            running = [h for h in hosts if h.exit_code is None]
            for host in running:
                self._stop_process(host)
            if not running:
                update(job, lambda j: j.gone(t))
        segments, index, _ = live_of(job)
        current = segments[index]
        if current.status in ("InProgress", "Stopping") and current.secondary != "Starting":
            wanted.update(key for key in keys if key in self.live)
        if current.terminal:
            state.done = True

    def end_all(self) -> None:
        with self._lock:
            for key in list(self.live):
                self._end(self.live.pop(key))
            self._job_logs.clear()
            self._write_listing()

    def _write_listing(self) -> None:
        """What the reaper ends if this process dies without stop()."""
        listing = [
            {
                "sshd": host.sshd.pid if host.sshd else None,
                "namespace": host.namespace.pid if host.namespace else None,
                "token": host.token,
            }
            for host in self.live.values()
        ]
        text = json.dumps(listing)
        if text == self._listed or not self.internal.exists():
            return
        self._listed = text
        self.internal.mkdir(parents=True, exist_ok=True)
        target = self.internal / "live.json"
        partial = target.with_suffix(".json.partial")
        partial.write_text(text)
        os.replace(partial, target)

    def cleanup(self) -> None:
        for directory in sorted(self._made_dirs, key=lambda p: len(p.parts), reverse=True):
            shutil.rmtree(directory, ignore_errors=True)
        self._made_dirs.clear()

    # -- lookups ----------------------------------------------------------------------------

    def get(self, region: str, job: str, host: str) -> Optional[LiveHost]:
        with self._lock:
            return self.live.get((region, job, host))

    def stream(self, region: str, job: str, host: str) -> Optional[str]:
        with self._lock:
            state = self._job_logs.get((region, job))
            return state.streams.get(host) if state else None
