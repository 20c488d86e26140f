"""Ending every process of a host, the way a container's end does.

An sshd forks one process per connection into a new session, and a user can background or
double-fork anything from a shell, so neither the process group nor the tree of the sshd
catches everything. Every host shell carries a token in its environment; a host's end kills
the sshd's tree and every process whose environment holds the token (Linux /proc).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterable

TOKEN_VARIABLE = "SM_STANDIN_HOST_TOKEN"  # noqa: S105 - a variable name, not a secret


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The command name may contain spaces and parentheses: split after the last ")".
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Running (zombies are dead: nothing can kill them twice, their parent reaps them)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def descendants(roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid in _pids():
        parent = _parent(pid)
        if parent is not None:
            children[parent].append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def holders(token: str) -> set[int]:
    """Processes whose environment carries this host's token."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    found = set()
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if needle in environ.read().split(b"\0"):
                    found.add(pid)
        except OSError:
            continue
    return found


def end_host(roots: Iterable[int], token: str, grace: float = 0.3) -> set[int]:
    """SIGTERM, then SIGKILL after ``grace`` seconds, everything of a host. Returns the pids.

    Interactive bash ignores SIGTERM, as in a container: the SIGKILL is what ends sessions.
    """
    roots = [pid for pid in roots if pid]
    me = os.getpid()
    ended: set[int] = set()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        # Collect again each round: a dying shell's children get reparented, not killed.
        found = set(roots) | descendants(roots) | holders(token) | ended
        victims = {pid for pid in found if alive(pid)}
        victims.discard(me)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        ended |= victims
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline and any(alive(pid) for pid in victims):
            time.sleep(0.02)
    return ended
