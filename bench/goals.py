"""Every goal of issues 15 and 27 (kernels), measured: runs the benchmarks, judges the numbers.

    python bench/goals.py [--quick] [--latency MS] [--json FILE] [--only a,b]

Each benchmark runs in its own process with `--json` to a scratch file (its own tables go
to stdout as usual); then one line per goal: the goal, the measured value, the target and
`met` or `missed`. A goal whose benchmark did not run or did not measure it is `missed`
with the reason, never `met`. With --json FILE: `{"goals": [{"name", "measured",
"target", "met"}]}` (plus the machine and the load). --quick sizes prove that the goals
are computed; their numbers are no measurement.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from common.report import load, machine, median, parser

HERE = Path(__file__).resolve().parent
# Run in this order: the cheap ones first, so a long run shows early results.
BENCHES = ("footprint", "list_jobs", "attach_latency", "keystrokes", "throughput", "growth",
           "kernels")  # fmt: skip
ARGS: dict[str, list[str]] = {}  # extra arguments per benchmark


class Goal:
    def __init__(self, name: str, target: str, measured: Optional[str], met: bool, note=""):
        self.name, self.target, self.measured, self.met, self.note = (
            name, target, measured, met, note,
        )  # fmt: skip

    def json(self) -> dict:
        return {"name": self.name, "measured": self.measured, "target": self.target,
                "met": self.met, **({"note": self.note} if self.note else {})}  # fmt: skip


def dig(data: Any, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def ms(seconds: Optional[float]) -> Optional[str]:
    return None if seconds is None else f"{seconds * 1000:.0f} ms"


def unmeasured(name: str, target: str, why: str) -> Goal:
    return Goal(name, target, None, False, f"not measured: {why}")


# -- the goals, one function per benchmark -------------------------------------------------


def list_goals(data: Optional[dict], latency: float) -> list[Goal]:
    names = [
        ("first rows <= 1.2 x one ListTrainingJobs + 20 ms", "first_rows"),
        ("full page <= one ListTrainingJobs + one DescribeTrainingJob + 30 ms", "full_page"),
        ("refresh <= 1 DescribeTrainingJob per running job on the page", "refresh"),
    ]
    if data is None:
        return [unmeasured(n, "-", "list_jobs did not run") for n, _ in names]
    naive = data.get("naive", {})
    one_list, one_describe = naive.get("one_list"), naive.get("one_describe")
    ext = dig(data, "extension", "extension", default={})
    goals = []
    first_rows = dig(ext, "first_rows", "seconds")
    if first_rows is None or one_list is None:
        goals.append(unmeasured(names[0][0], "-", "no first-rows sample"))
    else:
        target = 1.2 * one_list + 0.020
        goals.append(Goal(names[0][0], f"<= {ms(target)} (one list {ms(one_list)})",
                          ms(first_rows), first_rows <= target))  # fmt: skip
    full = dig(ext, "full_page", "seconds")
    if full is None or one_list is None or one_describe is None:
        goals.append(unmeasured(names[1][0], "-", "no full-page sample"))
    else:
        target = one_list + one_describe + 0.030
        goals.append(
            Goal(
                names[1][0],
                f"<= {ms(target)}",
                ms(full),
                full <= target,
                f"calls: {dig(ext, 'full_page', 'detail')}; the floor here, plain boto3's "
                f"list then one wave of threads: {ms(naive.get('list_then_wave'))}",
            )
        )
    refresh = ext.get("refresh")
    running = dig(data, "account", "running_on_first_page")
    if refresh is None or running is None:
        goals.append(unmeasured(names[2][0], "-", "no refresh sample"))
    else:
        describes = refresh["detail"].get("DescribeTrainingJob", 0)
        goals.append(Goal(names[2][0], f"<= {running} describes", f"{describes} describes "
                          f"({refresh['calls']} calls)", describes <= running))  # fmt: skip
    return goals


def attach_goals(data: Optional[dict], latency: float) -> list[Goal]:
    results = dig(data, "results", default={})
    goals = []

    def calls_of(label: str) -> Optional[dict]:
        samples = dig(results, label, "extension") or []
        return samples[-1]["calls"] if samples else None

    ssm = "ssm (built-in client)"
    calls = calls_of(ssm)
    name = "SSM attach makes exactly one AWS call (StartSession)"
    if calls is None:
        goals.append(unmeasured(name, "StartSession only", "attach_latency did not run"))
    else:
        goals.append(
            Goal(name, "StartSession only", json.dumps(calls), calls == {"StartSession": 1})
        )
    name = "SSM attach overhead over StartSession + the raw client < 20 ms"
    if calls is None:
        goals.append(unmeasured(name, "< 20 ms", "attach_latency did not run"))
    else:
        ext = median([s["total"] for s in results[ssm]["extension"]])
        base = median([s["total"] for s in results[ssm]["baseline"]])
        goals.append(Goal(name, "< 20 ms", ms(ext - base), ext - base < 0.020,
                          f"extension {ms(ext)}, baseline {ms(base)}"))  # fmt: skip
    name = "SSH attach with a known announcement makes no AWS call"
    calls = calls_of("ssh, announcement known")
    if calls is None:
        goals.append(unmeasured(name, "0 calls", "attach_latency did not run"))
    else:
        goals.append(Goal(name, "0 calls", json.dumps(calls) if calls else "0 calls", not calls))
    return goals


def footprint_goals(data: Optional[dict], latency: float) -> list[Goal]:
    if data is None:
        return [
            unmeasured("server start: extension adds < 30 ms", "< 30 ms", "did not run"),
            unmeasured("server start: extension adds < 30 MiB", "< 30 MiB", "did not run"),
        ]
    load_cpu = dig(data, "modules", "load_cpu")
    load_wall = dig(data, "modules", "load_seconds")
    goals = [Goal("server start: extension adds < 30 ms", "< 30 ms",
                  f"{ms(load_cpu)} CPU, {ms(load_wall)} wall (in-process load)",
                  load_cpu is not None and load_cpu < 0.030 and load_wall < 0.030)]  # fmt: skip
    start = data.get("start", {})
    without = median([r["rss_kib"] for r in start.get("False", [])])
    with_ = median([r["rss_kib"] for r in start.get("True", [])])
    if with_ is None:  # --quick starts the server with the extension for the sessions only
        with_ = dig(data, "sessions", "server_start_rss_kib")
    if without is None or with_ is None:
        mib = (dig(data, "modules", "load_kib") or 0) / 1024
        goals.append(Goal("server start: extension adds < 30 MiB", "< 30 MiB",
                          f"{mib:+.1f} MiB (in-process load)", mib < 30))  # fmt: skip
    else:
        mib = (with_ - without) / 1024
        goals.append(Goal("server start: extension adds < 30 MiB", "< 30 MiB",
                          f"{mib:+.1f} MiB", mib < 30))  # fmt: skip
    return goals


def keystroke_goals(data: Optional[dict], latency: float) -> list[Goal]:
    specs = [
        ("SSM echo at 0 ms latency <= raw PTY + 5 ms (median)", "echo_0"),
        (f"SSM echo at {latency * 1000:g} ms latency <= one round trip + 5 ms", "echo_latency"),
        (f"100 KiB paste over SSM arrives whole within 2 s at {latency * 1000:g} ms", "paste"),
        ("Ctrl-C stops `yes` within 1 s, prompt back (SSH)", "interrupt_ssh"),
        ("Ctrl-C stops `yes` within 1 s, prompt back (SSM)", "interrupt_ssm"),
    ]
    if data is None:
        return [unmeasured(name, "-", "keystrokes did not run") for name, _ in specs]
    goals = []
    for name, key in specs:
        entry = data.get("goals", {}).get(key)
        if entry is None:
            goals.append(unmeasured(name, "-", "no sample"))
        else:
            goals.append(Goal(name, entry["target"], entry["measured"], bool(entry["met"]),
                              entry.get("note", "")))  # fmt: skip
    return goals


def throughput_goals(data: Optional[dict], latency: float) -> list[Goal]:
    names = ("SSH throughput >= 0.9 x a plain JupyterLab terminal",
             "SSM built-in >= AWS's plugin, download and upload")  # fmt: skip
    if data is None:
        return [unmeasured(n, "-", "throughput did not run") for n in names]
    size = data["file_bytes"]

    def rate(results: list[dict]) -> Optional[float]:
        return median([size / r["seconds"] / 2**20 for r in results]) if results else None

    runs = data.get("runs", {})
    plain, ssh = (
        rate(runs.get("JupyterLab terminal (local shell)", [])),
        rate(runs.get("attached over SSH", []) or runs.get("attached over ssh", [])),
    )
    goals = []
    if plain and ssh:
        goals.append(Goal(names[0], ">= 0.90x", f"{ssh / plain:.2f}x ({ssh:.1f} vs "
                          f"{plain:.1f} MiB/s)", ssh >= 0.9 * plain))  # fmt: skip
    else:
        goals.append(unmeasured(names[0], ">= 0.90x", f"runs found: {sorted(runs)}"))
    clients = dig(data, "ssm_clients", "runs", default={})

    def client_rate(kind: str, way: str) -> Optional[float]:
        items = dig(clients, kind, way) or []
        return median([r["bytes"] / r["seconds"] / 2**20 for r in items]) if items else None

    kinds = sorted(clients)
    builtin = next((k for k in kinds if "built" in k), None)
    plugin = next((k for k in kinds if "plugin" in k), None)
    if builtin and plugin:
        bd, bu = client_rate(builtin, "download"), client_rate(builtin, "upload")
        pd, pu = client_rate(plugin, "download"), client_rate(plugin, "upload")
        goals.append(Goal(names[1], ">= plugin on both",
                          f"download {bd:.2f} vs {pd:.2f} MiB/s, upload {bu * 1024:.0f} vs "
                          f"{pu * 1024:.0f} KiB/s", bd >= pd and bu >= pu))  # fmt: skip
    else:
        goals.append(unmeasured(names[1], ">= plugin on both", "session-manager-plugin absent"))
    return goals


def growth_goals(data: Optional[dict], latency: float) -> list[Goal]:
    """Goal 6, how cost grows: list time flat in the account's size (a page is 20 whatever
    the account holds), server memory bounded, attach and memory per concurrent session,
    CPU per MiB of terminal output per transport."""
    data = data or {}
    goals: list[Goal] = []

    def series(part: str, label: str) -> Optional[dict]:
        return next((s for s in dig(data, part, "series", default=[]) if s["label"] == label),
                    None)  # fmt: skip

    # -- list ---------------------------------------------------------------------------
    sizes = dig(data, "list", "sizes") or []
    per = dig(data, "list", "per_size", default={})
    small, large = (str(sizes[0]), str(sizes[-1])) if sizes else (None, None)
    span = f"{sizes[0]:,} to {sizes[-1]:,} jobs" if sizes else "100 to 10,000 jobs"
    for key, what in (("first_rows", "first rows"), ("full_page", "full page")):
        name = f"list {what} flat from {span}"
        target = "at the largest <= 1.25 x at the smallest (a page is 20)"
        a, b = dig(per, small, "median", key), dig(per, large, "median", key)
        if a is None or b is None or len(sizes) < 2:
            goals.append(unmeasured(name, target, "growth (list) did not run"))
            continue
        goals.append(Goal(name, target, f"{ms(a)} -> {ms(b)} ({b / a:.2f}x)", b <= 1.25 * a))
    name = f"name filter at {int(large or 10000):,} jobs costs the backend's scan only"
    a = dig(per, large, "median", "filter_no_match")
    base = dig(per, large, "baseline_no_match")
    if a is None or base is None:
        goals.append(unmeasured(name, "<= 1.2 x plain ListTrainingJobs + 20 ms", "no sample"))
    else:
        target = base * 1.2 + 0.020
        goals.append(Goal(name, f"<= {ms(target)} (plain list with the filter {ms(base)})",
                          ms(a), a <= target))  # fmt: skip
    name = f"server RSS after the first page flat from {span}"
    grown = [
        dig(per, size, "median", "rss_page_kib", default=0)
        - dig(per, size, "median", "rss_start_kib", default=0)
        for size in (small, large)
    ]
    if not sizes or dig(per, large, "median", "rss_page_kib") is None:
        goals.append(unmeasured(name, "within 5 MiB", "no sample"))
    else:
        goals.append(Goal(name, "growth within 5 MiB of the smallest account's",
                          f"+{grown[0] / 1024:.1f} MiB -> +{grown[1] / 1024:.1f} MiB",
                          grown[1] - grown[0] <= 5 * 1024))  # fmt: skip
    name = f"server RSS after all {int(large or 10000):,} jobs described is bounded"
    start, after = dig(per, large, "median", "rss_start_kib"), dig(per, large, "median",
                                                                  "rss_all_kib")  # fmt: skip
    if start is None or after is None:
        goals.append(unmeasured(name, "< 4 KiB per job", "not paged through"))
    else:
        per_job = (after - start) * 1024 / int(large)
        goals.append(Goal(name, "< 4 KiB per job (the cache keeps rows, not descriptions)",
                          f"+{(after - start) / 1024:.1f} MiB, {per_job / 1024:.1f} KiB per job",
                          per_job < 4096))  # fmt: skip

    # -- attach -------------------------------------------------------------------------
    counts = dig(data, "attach", "counts") or []
    results = dig(data, "attach", "results", default={})
    most = counts[-1] if counts else 32
    for transport in ("ssm", "ssh"):
        per_count = results.get(transport)
        label = "SSM (built-in client)" if transport == "ssm" else "SSH"
        name = f"{label}: one more attach with {most - 1} sessions open is flat"
        target = "<= 1.25 x with none open"
        if not per_count or len(counts) < 2:
            why = "growth (attach) did not run" if not results else f"no {label} sample"
            goals.append(unmeasured(name, target, why))
            continue
        one = median(per_count[str(counts[0])]["one_more"])
        many = median(per_count[str(most)]["one_more"])
        goals.append(Goal(name, target, f"{ms(one)} -> {ms(many)} ({many / one:.2f}x)",
                          many <= 1.25 * one))  # fmt: skip
        first = per_count[str(counts[0])]["burst_seconds"]
        burst = per_count[str(most)]["burst_seconds"]
        target = f"<= {most} x one attach ({ms(most * first)}): no worse than in turn"
        measured = f"{ms(burst)} ({burst / first:.1f}x one)"
        goals.append(Goal(f"{label}: {most} attaches at once, the slowest", target, measured,
                          burst <= most * first))  # fmt: skip
        grown = per_count[str(most)]["rss_open_kib"] - per_count[str(counts[0])]["rss_before_kib"]
        goals.append(Goal(f"{label}: server RSS at {most} concurrent sessions",
                          "< 256 KiB per session",
                          f"+{grown / 1024:.1f} MiB ({grown / most:.0f} KiB per session)",
                          grown / most < 256))  # fmt: skip

    # -- CPU per MiB --------------------------------------------------------------------
    cpu = {s["label"]: s for s in dig(data, "cpu", "series", default=[])}
    plain = cpu.get("JupyterLab terminal")
    for label in ("SSH", "SSM (built-in client)"):
        name = f"CPU per MiB of terminal output over {label} grows linearly, no worse"
        target = "growth exponent <= 1.1"
        s = cpu.get(label)
        if s is None or plain is None:
            goals.append(unmeasured(name, target, "growth (cpu) did not run"))
            continue
        sizes_mib = [round(b / 2**20, 1) for b in dig(data, "cpu", "bytes").values()]
        exponent = (math.log(s["values"][-1] / s["values"][0]) / math.log(sizes_mib[-1]
                    / sizes_mib[0]) if s["values"][0] > 0 else None)  # fmt: skip
        ratio = s["per_mib"] / plain["per_mib"]
        measured = (f"{s['per_mib'] * 1000:.0f} ms/MiB ({ratio:.1f}x a JupyterLab terminal's "
                    f"{plain['per_mib'] * 1000:.0f} ms), {s['shape']}")  # fmt: skip
        goals.append(Goal(name, target, measured, exponent is not None and exponent <= 1.1))
    return goals


def kernel_goals(data: Optional[dict], latency: float) -> list[Goal]:
    """Issue 27: a kernel on a host, over each transport. SSM's round trip is the stand-in's
    channel latency; SSH's TCP has none here (bench/kernels.py)."""
    goals = []
    for transport in ("ssh", "ssm"):
        names = (f"kernel ready over {transport} <= 3 s",
                 f"1+1 over {transport} <= one round trip + 20 ms",
                 f"printing 10 MiB over {transport} >= 0.8 x the terminal's rate")  # fmt: skip
        summary = dig(data, "summary", transport)
        if not summary:
            goals += [unmeasured(n, "-", "kernels did not run") for n in names]
            continue
        rtt = latency if transport == "ssm" else 0.0
        local = dig(data, "summary", "local_one_plus_one")
        note = f"a local python3 kernel: {ms(local)}" if local is not None else ""
        ready, one = summary["ready"], summary["one_plus_one"]
        ratio = summary["print_mibps"] / summary["terminal_mibps"]
        goals += [
            Goal(names[0], "<= 3000 ms", ms(ready), ready <= 3.0),
            Goal(names[1], f"<= {ms(rtt + 0.020)}", ms(one), one <= rtt + 0.020, note),
            Goal(names[2], ">= 0.80x", f"{ratio:.2f}x ({summary['print_mibps']:.2f} vs "
                 f"{summary['terminal_mibps']:.2f} MiB/s)", ratio >= 0.8),
        ]  # fmt: skip
    return goals


JUDGES: dict[str, Callable[[Optional[dict], float], list[Goal]]] = {
    "footprint": footprint_goals,
    "list_jobs": list_goals,
    "attach_latency": attach_goals,
    "keystrokes": keystroke_goals,
    "throughput": throughput_goals,
    "growth": growth_goals,
    "kernels": kernel_goals,
}


# -- running -------------------------------------------------------------------------------


def run(bench: str, args, scratch: Path) -> tuple[Optional[dict], dict]:
    out = scratch / f"{bench}.json"
    argv = [sys.executable, str(HERE / f"{bench}.py"), "--json", str(out),
            "--latency", f"{args.latency:g}", *ARGS.get(bench, [])]  # fmt: skip
    if args.quick:
        argv.append("--quick")
    if not (HERE / f"{bench}.py").exists():
        return None, {"skipped": "no such benchmark"}
    print(f"::: {' '.join(argv[1:])}", flush=True)
    started, load_before = time.perf_counter(), load()
    done = subprocess.run(argv, check=False)
    info = {"seconds": round(time.perf_counter() - started, 1), "load_before": load_before,
            "load_after": load(), "returncode": done.returncode}  # fmt: skip
    if done.returncode or not out.exists():
        return None, info
    return json.loads(out.read_text()), info


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma-separated benchmarks (of {', '.join(BENCHES)})")
    ap.add_argument("--keep", metavar="DIR", help="keep each benchmark's JSON and log in DIR")
    args = ap.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    latency = args.latency / 1000
    goals, runs = [], {}
    with tempfile.TemporaryDirectory(prefix="sm-goals-") as scratch:
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            scratch = args.keep
        for bench in BENCHES:
            if bench not in chosen:
                continue
            data, runs[bench] = run(bench, args, Path(scratch))
            goals += JUDGES[bench](data, latency)

    print(f"\n== goals (issue 15){' — quick: no measurement' if args.quick else ''} ==")
    width = max(len(g.name) for g in goals)
    for g in goals:
        verdict = "met" if g.met else "missed"
        note = f"  [{g.note}]" if g.note else ""
        print(f"{g.name.ljust(width)}  {g.measured or '-'}  target {g.target}  {verdict}{note}")
    print(f"load average at end: {load()}; per benchmark: "
          + "; ".join(f"{b} {i.get('seconds', '-')} s, load {i.get('load_before', '-')} -> "
                      f"{i.get('load_after', '-')}" for b, i in runs.items()))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"goals": [g.json() for g in goals], "machine": machine(), "runs": runs,
             "quick": args.quick}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
