"""The hold's look at a host's SSM sessions (the stand-in's side of entrypoint.SessionWatch):
which of them are a person's, and whether one closed since the last look."""

from __future__ import annotations

import os
from typing import Optional

from ... import entrypoint, hold


def ssm_sessions(standin, region: str, job: str, host: str) -> tuple[int, bool]:
    """(people's SSM sessions open on a host now, whether one closed since the last
    look), by entrypoint.SessionWatch's rule: only a shell session counts (a port
    forward runs nothing), from when its shell is in the host, never one of the
    extension's own. A shell whose processes
    carry its mark at a look (hold.subtree_marked) stays ours; one that closed is checked
    against the mark directories its command left (named by the pids it descends from,
    as the host numbers them), since a command typed into an SSM shell can mark it and
    end between two looks. The SSM stand-in serves the default region."""
    if region != standin.region:
        return 0, False
    from .sessions import registry

    sessions = registry(standin)
    with sessions.lock:
        mine = [s for s in sessions.sessions.values() if s.job == job and s.host == host]
    live = standin._hosts.get(region, job, host) if standin._hosts is not None else None
    # The host's /tmp (its own with namespaces), seen through a process that outlives
    # its sessions.
    marks = f"/proc/{live.init}/root{hold.MARK_DIR}" if live and live.init else hold.MARK_DIR
    table = entrypoint.process_table()
    people, closed = 0, False
    for session in mine:
        shell = getattr(session.agent, "proc", None)
        if session.ours or (shell is None and not session.pids):
            continue
        if session.status == "Connected" and shell is not None:
            if hold.subtree_marked(shell.pid, table):
                session.ours = True
                continue
            session.pids |= _numbers_inside(shell.pid, table, live.init if live else None)
            people += bool(session.pids)  # a person's once its shell is in the host
        elif session.status == "Terminated" and session.pids and not session.closed:
            session.closed = True
            if any(entrypoint.mark_file_names(pid, marks) for pid in session.pids):
                session.ours = True
            else:
                closed = True
    return people, closed


def _numbers_inside(root: int, table: dict[int, tuple[int, str]], init: Optional[int]) -> set[int]:
    """The pids of the processes under `root` (and itself) that are in the host (in the PID
    namespace of its `init`; all without one), as the host numbers them (the innermost of
    each NSpid): what the extension's mark directories are named by."""
    inside = _pid_namespace(init) if init else None
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if inside is None or _pid_namespace(pid) == inside:
            found.add(hold._inner_pids(pid)[-1])
        todo += children.get(pid, [])
    return found


def _pid_namespace(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
