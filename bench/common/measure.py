"""Measuring one transfer: its payload and the CPU of every party to it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from .procs import cpu_seconds, tree_cpu


def make_payload(directory: Path, kib: int) -> Path:
    """kib KiB of text lines (hex digests), like a log file a user would cat."""
    path = directory / f"payload-{kib}KiB.txt"
    lines = kib * 1024 // 65
    with open(path, "w") as handle:
        for start in range(0, lines, 4096):
            handle.write("".join(hashlib.sha256(str(i).encode()).hexdigest() + "\n"
                                 for i in range(start, min(lines, start + 4096))))  # fmt: skip
    return path


class CpuMeter:
    """CPU time of the parties to one transfer: the Jupyter server, the session client, the
    stand-in (its SSM agent side, sshd and the host's shells) and this reader."""

    def __init__(self, server=None, client_pid=None, standin=None):
        self.pids = {"server": server.proc.pid if server else None, "client": client_pid,
                     "standin": standin.proc.pid if standin else None}  # fmt: skip

    def _now(self) -> dict:
        # The server's and the client's own CPU; the stand-in's with its children (sshd,
        # shells, cat): they stand for the container side.
        return {k: (tree_cpu(p) if k == "standin" else cpu_seconds(p)) if p else None
                for k, p in self.pids.items()}  # fmt: skip

    def start(self) -> None:
        self.reader = time.process_time()
        self.base = self._now()

    def stop(self) -> dict:
        now = self._now()
        out = {k: None if now[k] is None else now[k] - self.base[k] for k in now}
        out["reader"] = time.process_time() - self.reader
        return out
