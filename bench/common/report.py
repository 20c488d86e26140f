"""Arguments, the machine, and the output every benchmark prints: headers, tables, units,
JSON, and the small statistics they share."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any, Optional

DEFAULT_LATENCY = 0.050


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="small sizes: finishes in seconds")
    ap.add_argument(
        "--latency",
        type=float,
        default=DEFAULT_LATENCY * 1000,
        help="milliseconds the stand-in adds to every AWS API call (default 50); keystrokes "
        "and throughput also give it to the SSM data channel and SSH's TCP as a round trip",
    )
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return ap


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor() or "unknown",
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load": load(),
    }


def header(title: str, args, extra: str = "") -> None:
    m = machine()
    print(f"\n== {title} ==")
    print(
        f"{m['date']} | {m['nproc']} x {m['cpu']} | {m['ram_gib']} GiB | Python {m['python']}"
        f" | API latency {args.latency:g} ms{' | quick' if args.quick else ''}{extra}"
    )
    print(f"load average at start: {load()}", flush=True)
    if args.quick:
        print("--quick: smoke-test sizes and single samples; these numbers are no measurement")


def load() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every number."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def footer() -> None:
    print(f"load average at end: {load()}")


def table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(row, widths))))  # fmt: skip
        if n == 0:
            print("  ".join("-" * w for w in widths))


def ms(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def ratio(value: Optional[float], base: Optional[float]) -> str:
    if not value or not base:
        return "-"
    return f"{value / base:.2f}x"


def write_json(args, results: dict) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), **results}, indent=2))


def median(values: list) -> Optional[float]:
    """The middle value (the upper one of an even count), Nones left out; None if empty."""
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None
