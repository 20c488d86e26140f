"""What the stand-in keeps per live host and per job's log."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..sagemaker.models import (
    HostSpec,
)

RELEASE_FILE = "tmp/sm-debug-release"  # in the sandbox: the container's /tmp/sm-debug-release


@dataclass
class LiveHost:
    region: str
    job: str
    spec: HostSpec
    sandbox: Path
    meta: Path
    script: Path
    token: str
    env: dict
    cwd: str
    started: float
    log_stream: str
    sshd: Optional[subprocess.Popen] = None
    addr: Optional[str] = None
    port: Optional[int] = None
    ssh_error: Optional[str] = None
    # Namespaces: unshare's process and the init inside (container.py), or why there are none.
    namespace: Optional[subprocess.Popen] = None
    init: Optional[int] = None
    not_isolated: Optional[str] = None
    train: Optional[subprocess.Popen] = None  # the training process of a host without them
    # A lived job's process: what it printed so far (train.log), how it ended, the stop.
    log_offset: int = 0
    log_partial: bytes = b""
    exit_code: Optional[int] = None
    term_at: Optional[float] = None  # SIGTERM sent (monotonic)
    killed: bool = False  # SIGKILL sent after the grace period

    @property
    def process(self) -> Optional[subprocess.Popen]:
        """PID 1's process as this machine started it (unshare's, or the plain process)."""
        return self.namespace if self.namespace is not None else self.train

    @property
    def release_file(self) -> Path:
        return self.sandbox / RELEASE_FILE


@dataclass
class JobLogState:
    streams: dict = field(default_factory=dict)  # host -> stream name
    logged: int = 0  # segments already written
    progress: dict = field(default_factory=dict)  # host -> trainlog.Progress
    done: bool = False
    hold_logged: bool = False  # the hold's start lines are written
    hold_armed: bool = False  # stale release files are gone: a new one releases the hold
    sessions_seen: set = field(default_factory=set)  # hosts that had a session in the hold
    exited: set = field(default_factory=set)  # hosts of a lived job whose process ended
