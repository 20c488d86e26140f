"""Processes: cleanup on the way out (also on Ctrl-C and SIGTERM, turned into
KeyboardInterrupt so `finally` blocks run), the descendants of a process, ending them, and
what they cost (CPU, RSS)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from typing import Optional


class Cleanup(contextlib.ExitStack):
    """An ExitStack that also turns SIGTERM/SIGHUP into KeyboardInterrupt while open."""

    def __enter__(self):
        super().__enter__()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                previous = signal.signal(sig, _interrupt)
                self.callback(signal.signal, sig, previous)
        return self


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def children_of(pid: int) -> list[int]:
    """Every live descendant of pid (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def started_at(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot: with the pid, who it is."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL it and whatever it started and left behind."""
    if proc.poll() is None:
        descendants = [(pid, started_at(pid)) for pid in children_of(proc.pid)]
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid, start in descendants:
            if start is not None and started_at(pid) == start:  # still the same process
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def die_with_us() -> list[str]:
    """An argv prefix that sends the child SIGTERM if this process dies without cleaning up
    (even by SIGKILL): util-linux setpriv's parent-death signal, which fires when the thread
    that started the child ends (here always the main thread); nothing where it is absent."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def default_signals() -> None:  # runs in the child, before exec
    """SIGINT, SIGQUIT and SIGHUP back to their defaults. A benchmark started in the
    background (`cmd &` in a script, nohup) runs with them ignored, and ignored signals are
    inherited through exec: the stand-in's host shells would then ignore them too, and ^C
    could not stop `yes` there, as it does in a real container."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_cpu(pid: int) -> float:
    """CPU time of a process and its live descendants."""
    total = 0.0
    for each in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_seconds(each)
    return total
