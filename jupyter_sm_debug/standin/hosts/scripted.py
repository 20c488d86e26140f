"""Scripted jobs' log lines and holds (jobs that are not lived)."""

from __future__ import annotations

from typing import Optional

from .. import container, trainlog
from ..sagemaker.models import (
    DEFAULT_FAILURE_REASON,
    Hold,
    HostSpec,
    Job,
    Segment,
    failure_reason,
)
from .live import RELEASE_FILE, JobLogState
from .sshd import _ssh_sessions


class ScriptedMixin:
    """HostManager's part for the scripted log lines and the hold."""

    # -- logs -------------------------------------------------------------------------------

    def _write_logs(
        self,
        job: Job,
        state: JobLogState,
        segments: list[Segment],
        index: int,
        t: float,
        hold: Optional[Hold] = None,
    ) -> None:
        reached = segments[: index + 1]
        container = next((g for g in reached if g.secondary not in ("Starting", "Stopping")), None)
        if container is None or container.terminal:
            return  # never got containers (stopped while Starting): no streams, as on AWS
        names = [h.name for h in job.hosts]
        hyperparameters = {k: str(v) for k, v in (job.request.get("HyperParameters") or {}).items()}
        hold_due = hold is not None and not state.hold_logged and t >= hold.start
        for spec in job.hosts:
            stream = state.streams.setdefault(
                spec.name, f"{job.name}/{spec.name}-{int(container.start)}"
            )
            events: list[tuple[float, str]] = []
            pending = hold_due
            for position in range(state.logged, len(reached)):
                segment = reached[position]
                end = segments[position + 1].start if position + 1 < len(segments) else None
                if pending and segment.secondary != "Training" and segment.start >= hold.start:
                    events += self._hold_start(job, state, spec, hold)
                    pending = False
                if segment.secondary == "Downloading":
                    events += trainlog.container_start(segment.start, spec.name, names)
                elif segment.secondary == "Training":
                    events += trainlog.training_start(segment.start, job.name, hyperparameters)
                    # Loss lines until the command fails (a held container stays quiet).
                    until = hold.start if hold else (end if end is not None else segment.start)
                    state.progress[spec.name] = trainlog.Progress(
                        f"{job.name}/{spec.name}", segment.start, until - segment.start
                    )
                elif segment.secondary == "Uploading":
                    events += self._progress(state, spec.name, segment.start)
                    events += trainlog.uploading(segment.start)
                elif segment.secondary == "Failed":
                    if hold is not None and hold.why != "lost":
                        events += trainlog.hold_ended(segment.start, hold.why, hold.code)
                    else:  # no hold, or the held container was killed
                        events += self._progress(state, spec.name, segment.start)
                        events += trainlog.failed(
                            segment.start, failure_reason(job), job.lost_reason is None
                        )
                elif segment.secondary == "Stopping":
                    events += self._progress(state, spec.name, segment.start)
                    events += trainlog.stopping(segment.start)
                    if hold is not None:
                        events += trainlog.hold_ended(segment.start, "stopped", hold.code)
            if pending:
                events += self._hold_start(job, state, spec, hold)
            if reached[-1].secondary == "Training":
                events += self._progress(state, spec.name, t)
            self.logs.put(job.region, stream, events)
        state.logged = len(reached)
        if hold_due:
            state.hold_logged = True

    def _hold_start(
        self, job: Job, state: JobLogState, spec: HostSpec, hold: Hold
    ) -> list[tuple[float, str]]:
        """The training command fails: its last loss lines, its traceback and the toolkit's
        report, then sm-debug-entrypoint starts holding the container."""
        reason = job.schedule.failure_reason or DEFAULT_FAILURE_REASON
        live = self.live.get((job.region, job.name, spec.name))
        release_file = (
            container.INSIDE_RELEASE_FILE  # as the container sees it
            if live is not None and live.init is not None
            else self.job_dir(job.region, job.name) / spec.name / RELEASE_FILE
        )
        return [
            *self._progress(state, spec.name, hold.start),
            *trainlog.failed(hold.start, reason),
            *trainlog.hold_start(hold.start, spec.name, hold.seconds, hold.code, str(release_file)),
        ]

    # -- the hold ----------------------------------------------------------------------------

    def _hold_ended_by(self, job: Job, state: JobLogState, hold: Hold) -> Optional[str]:
        """Why a held job's hold ends now, as sm-debug-entrypoint's hold() sees it: its release
        file was touched, or a host's last debug session closed. None: it goes on."""
        hosts = [
            host
            for host in (self.live.get((job.region, job.name, spec.name)) for spec in job.hosts)
            if host is not None
        ]
        if not hosts:
            return None
        if not state.hold_armed:
            # The entrypoint removes a stale release file as the hold starts; a host started
            # after the failure (a backdated job) has a fresh sandbox.
            state.hold_armed = True
            for host in hosts:
                if host.started < hold.start:
                    host.release_file.unlink(missing_ok=True)
        if any(host.release_file.exists() for host in hosts):
            return "released"
        ssh = _ssh_sessions(hosts)
        for host in hosts:
            # A person's SSH session is one at any look (its mark is in its argv from the
            # start); an SSM shell is marked only once a command is typed into it, so it is
            # seen as a person's only when it closes unmarked (ssm_looks.ssm_sessions).
            ssm_open, ssm_closed = self.ssm_sessions(job.region, job.name, host.spec.name)
            if ssh.get(host.token, 0) or ssm_closed:
                state.sessions_seen.add(host.spec.name)
            if not (ssh.get(host.token, 0) or ssm_open) and host.spec.name in state.sessions_seen:
                return "last session closed"
        return None

    @staticmethod
    def _progress(state: JobLogState, host: str, until: float) -> list[tuple[float, str]]:
        progress = state.progress.get(host)
        return progress.until(until, end=until) if progress else []
