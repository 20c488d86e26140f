"""What the benchmarks share, by concern:

- report: arguments, the machine, headers, tables, units, JSON, median
- procs: cleanup, process trees, ending processes, CPU and RSS
- network: a loopback TCP proxy with latency (DelayProxy)
- standin: the stand-in in a child process (standin_proc.py) and clients on it
- server: a Jupyter server subprocess, its HTTP client, its session client processes
- terminal: the terminal websocket and a PTY

Every process a benchmark starts is registered with `Cleanup` and ended on the way out.
Importing the package puts the checkout first on sys.path (`python bench/x.py` from a
checkout without installing).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
