"""Ends a stand-in's hosts if the stand-in's process dies without stop() (SIGKILL, OOM, a
cancelled CI job): without it, sshds and shells would outlive it, holding their ports.

Run by the stand-in as ``python -m jupyter_sm_debug.standin.reaper <pid> <state dir> [root]``
in its own session (Ctrl-C in a terminal does not reach it). It waits until it is orphaned,
then ends every host listed in ``<state dir>/live.json`` and removes the directories. A clean
stop() kills the reaper first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time

from . import procs


def end_listed_hosts(state_dir: str) -> None:
    try:
        with open(os.path.join(state_dir, "live.json")) as listing:
            hosts = json.load(listing)
    except (OSError, ValueError):
        return
    for host in hosts:
        roots = [host.get("sshd"), host.get("namespace")]
        procs.end_host([pid for pid in roots if pid], host["token"])


def main(argv: list[str]) -> int:
    parent, state_dir = int(argv[0]), argv[1]
    root = argv[2] if len(argv) > 2 else None
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    # Orphaned = our parent changed: no pid reuse can fool this.
    while os.getppid() == parent:
        time.sleep(0.5)
    end_listed_hosts(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    if root:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
