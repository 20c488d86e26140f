"""How cost grows: list time and server memory with the account's size, attach latency and
server memory with concurrent sessions, CPU per MiB of terminal output per transport.

    python bench/growth.py [--quick] [--latency MS] [--json FILE] [--only list,attach,cpu]
                           [--sizes 100,1000,10000] [--sessions 1,8,32] [--mib 2,20]

a) **List.** A stand-in account (API only, manual clock) grown to 100, 1,000 and 10,000
   jobs by adding older jobs, so the newest 20 (the sidebar's page, 5 of them running) are
   the same at every size. Per size, on fresh Jupyter servers: the sidebar's first rows
   (`GET /sm-debug/jobs?describe=false`, cold cache) and its full page (that plus
   `GET /sm-debug/descriptions` for the undescribed rows, as src/model.ts does), its
   refresh (the same list again, warm), a name filter (`name_contains`) matching no job (the
   backend looks at every name) and one matching a quarter of the jobs (full page), the
   server's RSS after those, and after paging through every job (pages of 100, each with
   its descriptions: the most the server can be made to hold; no one clicks "Load more"
   500 times, a script can). Jobs are seeded without HTTP (StandIn.create_jobs); every list
   is a real ListTrainingJobs over HTTP through botocore. Baseline, same run, same account:
   one plain boto3 ListTrainingJobs of 20 (and with the filter), median of 7.
b) **Attach.** A 32-host job (remote debug on, hosts are local shells behind sshd and the
   SSM data channel). For 1, 8 and 32 sessions, per transport (SSM with the built-in
   client, SSH): that many attaches at once (POST -> first prompt on the websocket, each),
   the server's RSS with them open, and one more attach with the others still open
   (detach algo-1, attach it again; 3 samples). Baseline: the same with 1 session.
c) **CPU per MiB.** `cat` of a file of 2 and 20 MiB in a terminal, read off its websocket:
   CPU seconds of the Jupyter server plus its live children (the session client: ssh or
   the built-in SSM client; the plain terminal's bash) from /proc. Baseline: a plain
   JupyterLab terminal (POST /api/terminals) doing the same. Per MiB = the slope between
   the two sizes (the fixed cost of a transfer cancels).

Shapes are computed, not asserted: a cost that grows by at most 1.25x over the range is
"flat"; one whose growth exponent log(cost ratio)/log(size ratio) is at least 0.8 is
"linear", in between "sublinear", above 1.2 "superlinear".
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from common.measure import make_payload
from common.procs import Cleanup, cpu_seconds, tree_cpu
from common.report import footer, header, load, median, ms, parser, table, write_json
from common.server import (
    CLIENT_HINTS,
    JupyterServer,
    attach_terminal,
    attaching_server,
    clients_rss,
)
from common.standin import StandInProcess, server_environment
from common.terminal import PROMPT, cat_command, quiet, read_through, read_until, terminal_websocket

PAGE = 20  # the sidebar's page
BIG_PAGE = 100  # the largest page: paging through everything
RUNNING = 5  # running jobs among the newest 20
KINDS = ("llama-ft", "resnet50", "bert", "xgb")  # one job in four is a "bert"
COMMON_FILTER = "bert"
NO_MATCH_FILTER = "no-such-job"
ATTACH_JOB = "growth-attach"
CPU_JOB = "growth-cpu"


# -- shapes ----------------------------------------------------------------------------------


def shape(xs: list[float], ys: list[Optional[float]]) -> tuple[str, Optional[float]]:
    """(shape, growth exponent) of cost ys over sizes xs, from the first and last point."""
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if len(pairs) < 2 or pairs[0][1] <= 0 or pairs[-1][1] <= 0:
        return "-", None
    (x0, y0), (x1, y1) = pairs[0], pairs[-1]
    grown = y1 / y0
    exponent = math.log(grown) / math.log(x1 / x0) if grown > 0 else 0.0
    if grown <= 1.25:
        return "flat", exponent
    if exponent >= 1.2:
        return "superlinear", exponent
    if exponent >= 0.8:
        return "linear", exponent
    return "sublinear", exponent


def shape_words(xs, ys) -> str:
    name, exponent = shape(xs, ys)
    pairs = [y for y in ys if y is not None]
    if exponent is None:
        return name
    return f"{name} ({pairs[-1] / pairs[0]:.2f}x over {xs[-1] / xs[0]:g}x, exponent {exponent:.2f})"


def mib(kib: Optional[float]) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


# -- a) list --------------------------------------------------------------------------------


def job_specs(start: int, stop: int) -> list[dict]:
    """Jobs number start..stop-1, newest first (every 90 s); 5 of the newest 20 running."""
    specs = []
    for index in range(start, stop):
        spec: dict = {
            "name": f"growth-{index:05d}-{KINDS[index % len(KINDS)]}",
            "started_ago": 600 + index * 90,
            "instance_count": (1, 1, 2, 4)[index % 4],
            "remote_debug": False,
        }
        if index < PAGE and index % 4 == 1:  # 5 running on the first page
            spec["schedule"] = {"training": 30 * 86400}
            spec["remote_debug"] = True
        else:
            spec["schedule"] = {"training": 60 + index % 500}
        specs.append(spec)
    return specs


def start_server(stack, standin) -> JupyterServer:
    server = JupyterServer(stack, server_environment(standin))
    server.wait_ready()
    server.http_client = server.http()  # type: ignore[attr-defined]
    # The server's boto3 client exists (its first AWS call); a list that matches nothing
    # leaves nothing in the cache.
    server.http_client.ok("GET", "sm-debug/jobs", max_results=1, name_contains=NO_MATCH_FILTER)
    return server


def sidebar_page(http, page_size: int = PAGE, name_contains=None, next_token=None) -> dict:
    """The sidebar's page: first rows from the list alone, then one descriptions request
    for the rows it left undescribed. Returns the two times and the page."""
    started = time.perf_counter()
    page = http.ok("GET", "sm-debug/jobs", max_results=page_size, describe="false",
                   name_contains=name_contains, next_token=next_token)  # fmt: skip
    rows_at = time.perf_counter()
    missing = [job["name"] for job in page["jobs"] if not job.get("described", True)]
    if missing:
        filled = http.ok("GET", "sm-debug/descriptions", names=",".join(missing))
        if filled["errors"] or len(filled["jobs"]) != len(missing):
            raise RuntimeError(f"descriptions left rows out: {filled['errors']}")
    done = time.perf_counter()
    return {"first_rows": rows_at - started, "full_page": done - started,
            "described": len(missing), "rows": len(page["jobs"]),
            "next_token": page["next_token"]}  # fmt: skip


def timed_list(http, **params) -> float:
    started = time.perf_counter()
    http.ok("GET", "sm-debug/jobs", describe="false", **params)
    return time.perf_counter() - started


def page_through(http) -> dict:
    """Every job, in pages of 100, each page with its descriptions (Load more, to the end)."""
    token, rows, pages, started = None, 0, 0, time.perf_counter()
    while True:
        page = sidebar_page(http, BIG_PAGE, next_token=token)
        rows += page["rows"]
        pages += 1
        token = page["next_token"]
        if not token:
            return {"rows": rows, "pages": pages, "seconds": time.perf_counter() - started}


def plain_list(standin, **params) -> float:
    """Median of 7 plain boto3 ListTrainingJobs calls of a page (the baseline)."""
    import boto3

    env = standin.client_env()
    sm = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=standin.region,
    ).client("sagemaker", endpoint_url=standin.url)
    sm.list_training_jobs(MaxResults=1)  # warm: models loaded, connection open
    times = []
    for _ in range(7):
        started = time.perf_counter()
        sm.list_training_jobs(MaxResults=PAGE, SortBy="CreationTime", SortOrder="Descending",
                              **params)  # fmt: skip
        times.append(time.perf_counter() - started)
    return median(times)


def measure_list(args, sizes: list[int], samples: int) -> dict:
    out: dict = {"sizes": sizes, "per_size": {}}
    with Cleanup() as stack:
        standin = StandInProcess(stack, clock="manual", hosts=False)
        have = 0
        for size in sizes:
            seeded = standin.seed_jobs(job_specs(have, size))
            have = size
            standin.set_faults(latency=args.latency / 1000)
            print(f"list: {size} jobs ({seeded['created']} seeded in {seeded['seconds']:.1f} s)"
                  f", load {load()}", flush=True)  # fmt: skip
            result: dict = {
                "baseline_list": plain_list(standin),
                "baseline_no_match": plain_list(standin, NameContains=NO_MATCH_FILTER),
                "samples": [],
            }
            for sample in range(samples):
                with Cleanup() as server_stack:
                    server = start_server(server_stack, standin)
                    http = server.http_client
                    rss_start = server.rss_kib()
                    first = sidebar_page(http)
                    refreshes = [timed_list(http, max_results=PAGE) for _ in range(3)]
                    no_match = timed_list(http, max_results=PAGE, name_contains=NO_MATCH_FILTER)
                    common = sidebar_page(http, name_contains=COMMON_FILTER)
                    time.sleep(0.5)  # let the describes the list started settle
                    entry = {
                        "first_rows": first["first_rows"],
                        "full_page": first["full_page"],
                        "refresh": median(refreshes),
                        "filter_no_match": no_match,
                        "filter_common_first_rows": common["first_rows"],
                        "filter_common_full_page": common["full_page"],
                        "rss_start_kib": rss_start,
                        "rss_page_kib": server.rss_kib(),
                    }
                    if sample == 0 and not args.no_page_all:
                        entry["all_pages"] = page_through(http)
                        time.sleep(0.5)
                        entry["rss_all_kib"] = server.rss_kib()
                        if not args.quick:  # the pages again: rows from the cache
                            entry["all_pages_again"] = page_through(http)
                            entry["rss_all_again_kib"] = server.rss_kib()
                    result["samples"].append(entry)
            keys = ("first_rows", "full_page", "refresh", "filter_no_match",
                    "filter_common_first_rows", "filter_common_full_page", "rss_start_kib",
                    "rss_page_kib")  # fmt: skip
            result["median"] = {k: median([s[k] for s in result["samples"]]) for k in keys}
            first_sample = result["samples"][0]
            for key in ("all_pages", "rss_all_kib", "all_pages_again", "rss_all_again_kib"):
                if key in first_sample:
                    result["median"][key] = first_sample[key]
            out["per_size"][str(size)] = result
            standin.set_faults(latency=0)  # seeding the next size needs no latency
    return out


def list_table(data: dict) -> list[dict]:
    sizes = data["sizes"]
    per = [data["per_size"][str(s)] for s in sizes]
    series = []

    def add(label: str, values: list, kind: str = "time", baseline: Optional[list] = None):
        series.append({"label": label, "values": values, "kind": kind, "baseline": baseline,
                       "shape": shape_words(sizes, values)})  # fmt: skip

    base = [p["baseline_list"] for p in per]
    add("one plain ListTrainingJobs of 20 (baseline)", base)
    add("first rows (describe=false), cold", [p["median"]["first_rows"] for p in per], "time", base)
    add("full page (+ descriptions), cold", [p["median"]["full_page"] for p in per], "time", base)
    add("refresh (first rows, warm)", [p["median"]["refresh"] for p in per], "time", base)
    no_match_base = [p["baseline_no_match"] for p in per]
    add("plain ListTrainingJobs, NameContains matching nothing (baseline)", no_match_base)
    add("name filter matching nothing (backend scans)",
        [p["median"]["filter_no_match"] for p in per], "time", no_match_base)  # fmt: skip
    add(f"name filter '{COMMON_FILTER}' (1 in 4 jobs), full page",
        [p["median"]["filter_common_full_page"] for p in per], "time", base)  # fmt: skip
    add("server RSS after start", [p["median"]["rss_start_kib"] for p in per], "rss")
    grown = {key: [p["median"][key] - p["median"]["rss_start_kib"] if key in p["median"]
                   else None for p in per] for key in ("rss_page_kib", "rss_all_kib")}  # fmt: skip
    add("  growth after the page, refresh and filters", grown["rss_page_kib"], "rss")
    if "rss_all_kib" in per[0]["median"]:
        add("  growth after every job described (pages of 100)", grown["rss_all_kib"], "rss")
        add("  the same, per job",
            [g * 1024 / s for g, s in zip(grown["rss_all_kib"], sizes)], "bytes")  # fmt: skip
        series[-1]["shape"] = "-"  # a fixed cost over few jobs: no shape to read
        add("paging through every job, with descriptions",
            [p["median"]["all_pages"]["seconds"] for p in per], "time")  # fmt: skip
        if "all_pages_again" in per[0]["median"]:
            add("  again (rows from the cache)",
                [p["median"]["all_pages_again"]["seconds"] for p in per], "time")  # fmt: skip
    rows = []
    for s in series:
        cells = []
        for value, size_index in zip(s["values"], range(len(sizes))):
            if s["kind"] == "time":
                cell = ms(value)
                if s["baseline"] and s["baseline"][size_index]:
                    cell += f" ({value / s['baseline'][size_index]:.2f}x)"
            elif s["kind"] == "rss":
                cell = mib(value)
            else:
                cell = f"{value / 1024:.1f} KiB"
            cells.append(cell)
        rows.append([s["label"], *cells, s["shape"]])
    print()
    table(["list", *[f"{s:,} jobs" for s in sizes], "shape"], rows)
    print("(x) = ratio to the plain boto3 ListTrainingJobs of the same size, same run; times are")
    print("medians over fresh servers (cold) or 3 calls (refresh). Paging: one server, once.")
    return series


# -- b) attach -------------------------------------------------------------------------------


async def attach(server, http, host: str, transport: str) -> dict:
    started = time.perf_counter()
    name = await asyncio.to_thread(attach_terminal, http, ATTACH_JOB, host, transport)
    ws = await terminal_websocket(server, name)
    prompt_at, _ = await read_until(ws, PROMPT, timeout=120)
    return {"seconds": prompt_at - started, "name": name, "ws": ws}


async def detach(http, session: dict) -> None:
    session["ws"].close()
    await asyncio.to_thread(http.request, "DELETE", f"api/terminals/{session['name']}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, listed = await asyncio.to_thread(http.request, "GET", "api/terminals")
        if status == 200 and all(t.get("name") != session["name"] for t in listed):
            return
        await asyncio.sleep(0.05)


async def measure_attach_async(server, http, counts: list[int], transports: list[str],
                               again: int) -> dict:  # fmt: skip
    out: dict = {}
    for transport in transports:  # the first session of a kind loads what all share
        await detach(http, await attach(server, http, "algo-1", transport))
    await asyncio.sleep(1)
    for transport in transports:
        out[transport] = {}
        for count in counts:
            rss_before = server.rss_kib()
            started = time.perf_counter()
            sessions = await asyncio.gather(
                *(attach(server, http, f"algo-{i + 1}", transport) for i in range(count))
            )
            burst = time.perf_counter() - started
            latencies = sorted(round(x["seconds"], 4) for x in sessions)
            await asyncio.sleep(1)
            rss_open = server.rss_kib()
            procs, procs_kib = clients_rss(server, CLIENT_HINTS[transport])
            # One more attach with the others open: algo-1 detached and attached again.
            one_more = []
            for _ in range(again):
                await detach(http, sessions[0])
                await asyncio.sleep(0.3)
                sessions[0] = await attach(server, http, "algo-1", transport)
                one_more.append(sessions[0]["seconds"])
            result = {
                "count": count,
                "burst_seconds": burst,
                "latencies": latencies,  # each session of the burst
                "one_more": one_more,
                "rss_before_kib": rss_before,
                "rss_open_kib": rss_open,
                "client_processes": procs,
                "clients_kib": procs_kib,
                "load": load(),
            }
            out[transport][str(count)] = result
            print(f"attach {transport} x{count}: burst {burst:.2f} s, one more "
                  f"{ms(median(one_more))}, server RSS {mib(rss_before)} -> {mib(rss_open)}, "
                  f"load {load()}", flush=True)  # fmt: skip
            for session in sessions:
                await detach(http, session)
            await asyncio.sleep(1)
    return out


def hosts_setup(stack, args, hosts: int):
    """One stand-in with hosts and one Jupyter server for parts b and c: the attach job
    (`hosts` hosts) and the CPU job (1 host). None when the stand-in has no sshd."""
    standin = StandInProcess(stack, clock="manual")
    if standin.client_key_path is None:
        return None, standin.sshd_missing_hint
    standin.create_job(ATTACH_JOB, instance_count=hosts, remote_debug=True, started_ago=600)
    standin.create_job(CPU_JOB, instance_count=1, remote_debug=True, started_ago=600)
    env = {**server_environment(standin), "SHELL": "/bin/bash"}  # the plain terminal's shell
    server, http = attaching_server(stack, standin, env)
    http.ok("GET", f"sm-debug/jobs/{ATTACH_JOB}")  # the boto3 client exists
    standin.set_faults(latency=args.latency / 1000)
    return (standin, server, http), None


def measure_attach(setup, counts: list[int], transports: list[str], again: int) -> dict:
    _, server, http = setup
    results = asyncio.run(measure_attach_async(server, http, counts, transports, again))
    return {"counts": counts, "results": results}


def attach_table(data: dict) -> list[dict]:
    counts = data["counts"]
    series, rows = [], []
    for transport, per in data["results"].items():
        items = [per[str(c)] for c in counts]

        def entry(label, values, kind, base_first=True, transport=transport):
            s = {"label": f"{transport}: {label}", "values": values, "kind": kind,
                 "shape": shape_words(counts, values)}  # fmt: skip
            series.append(s)
            base = values[0]
            cells = []
            for v in values:
                if kind == "time":
                    cells.append(ms(v) + (f" ({v / base:.2f}x)" if base_first and base else ""))
                else:
                    cells.append(mib(v))
            rows.append([s["label"], *cells, s["shape"]])

        entry("attach, all at once (median)", [median(i["latencies"]) for i in items], "time")
        entry("attach, all at once (slowest)", [i["burst_seconds"] for i in items], "time")
        entry("one more attach, the others open", [median(i["one_more"]) for i in items], "time")
        entry("server RSS with the sessions open", [i["rss_open_kib"] for i in items], "rss")
        growth = [i["rss_open_kib"] - items[0]["rss_before_kib"] for i in items]
        entry("  server RSS growth", growth, "rss")
        # Growth from about nothing has no shape to read: say what it is per session.
        rows[-1][-1] = series[-1]["shape"] = f"{growth[-1] / counts[-1]:.0f} KiB per session"
        entry("session clients' RSS (all)", [i["clients_kib"] for i in items], "rss")
    print()
    table(["attach", *[f"{c} session{'s' if c > 1 else ''}" for c in counts], "shape"], rows)
    print("(x) = ratio to 1 session, same run. Attach = POST -> first prompt on the websocket.")
    return series


# -- c) CPU per MiB --------------------------------------------------------------------------


async def cat_through(server, name: str, path: Path, ready: re.Pattern) -> dict:
    ws = await terminal_websocket(server, name)
    await read_until(ws, ready, timeout=120)
    await quiet(ws)
    cpu_before = tree_cpu(server.proc.pid)
    server_before = cpu_seconds(server.proc.pid)
    await ws.write_message(json.dumps(["stdin", cat_command(path)]))
    started = time.perf_counter()
    received, _ = await read_through(ws)
    seconds = time.perf_counter() - started
    cpu = tree_cpu(server.proc.pid) - cpu_before
    server_cpu = cpu_seconds(server.proc.pid) - server_before
    ws.close()
    return {"seconds": seconds, "cpu": cpu, "server_cpu": server_cpu,
            "clients_cpu": cpu - server_cpu, "chars": received}  # fmt: skip


async def measure_cpu_async(server, http, payloads: dict, rounds: int) -> dict:
    out: dict = {}
    ready = re.compile(r"\S")
    for _ in range(rounds):
        for kib, path in payloads.items():
            answer = http.ok("POST", "api/terminals")
            result = await cat_through(server, answer["name"], path, ready)
            http.request("DELETE", f"api/terminals/{answer['name']}")
            out.setdefault("JupyterLab terminal", {}).setdefault(str(kib), []).append(result)
            for transport, label in (("ssh", "SSH"), ("ssm", "SSM (built-in client)")):
                name = await asyncio.to_thread(attach_terminal, http, CPU_JOB, "algo-1", transport)
                result = await cat_through(server, name, path, PROMPT)
                await detach(http, {"ws": _Closed(), "name": name})
                out.setdefault(label, {}).setdefault(str(kib), []).append(result)
                await asyncio.sleep(0.3)
    return out


class _Closed:
    def close(self) -> None:
        pass


def measure_cpu(setup, sizes_mib: list[float], rounds: int) -> dict:
    _, server, http = setup
    # Not under /tmp: a stand-in host in namespaces has a /tmp of its own.
    with tempfile.TemporaryDirectory(prefix="sm-growth-", dir=Path(__file__).parent) as scratch:
        payloads = {int(m * 1024): make_payload(Path(scratch), int(m * 1024)) for m in sizes_mib}
        runs = asyncio.run(measure_cpu_async(server, http, payloads, rounds))
        sizes = {str(kib): path.stat().st_size for kib, path in payloads.items()}
    return {"sizes_kib": list(payloads), "bytes": sizes, "runs": runs}


def cpu_table(data: dict) -> list[dict]:
    kibs = data["sizes_kib"]
    sizes_mib = [round(data["bytes"][str(k)] / 2**20, 2) for k in kibs]
    rows, series, per_mib = [], [], {}
    for label, per in data["runs"].items():
        med = [median([r["cpu"] for r in per[str(k)]]) for k in kibs]
        server = [median([r["server_cpu"] for r in per[str(k)]]) for k in kibs]
        seconds = [median([r["seconds"] for r in per[str(k)]]) for k in kibs]
        slope = (med[-1] - med[0]) / (sizes_mib[-1] - sizes_mib[0])
        server_slope = (server[-1] - server[0]) / (sizes_mib[-1] - sizes_mib[0])
        per_mib[label] = slope
        s = {"label": label, "values": med, "kind": "cpu", "per_mib": slope,
             "server_per_mib": server_slope, "shape": shape_words(sizes_mib, med)}  # fmt: skip
        series.append(s)
        rows.append(
            [
                label,
                *[
                    f"{c:.2f} s ({m / t:.1f} MiB/s)" for c, m, t in zip(med, sizes_mib, seconds)
                ],  # fmt: skip
                f"{slope * 1000:.0f} ms",
                f"{server_slope * 1000:.0f} ms",
                None,
                s["shape"],
            ]
        )
    base = per_mib.get("JupyterLab terminal")
    for row, s in zip(rows, series):
        row[-2] = f"{s['per_mib'] / base:.2f}x" if base else "-"
    print()
    table(["CPU (server + clients)", *[f"cat {m:g} MiB" for m in sizes_mib], "per MiB",
           "of which server", "vs terminal", "shape"], rows)  # fmt: skip
    print("CPU seconds of the Jupyter server and its live children (the session client) while")
    print("the file is read off the websocket; per MiB = the slope between the two sizes.")
    return series


# -- main ------------------------------------------------------------------------------------


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--only", default="list,attach,cpu", help="parts to run (list,attach,cpu)")
    ap.add_argument("--sizes", help="jobs in the account (100,1000,10000; quick 50,500)")
    ap.add_argument("--samples", type=int, help="fresh servers per size (3; quick 1)")
    ap.add_argument("--no-page-all", action="store_true", help="skip paging through every job")
    ap.add_argument("--sessions", help="concurrent sessions (1,8,32; quick 1,4)")
    ap.add_argument("--transports", help="attach transports (ssm,ssh; quick ssm)")
    ap.add_argument("--mib", help="file sizes in MiB (2,20; quick 0.5,2)")
    ap.add_argument("--rounds", type=int, help="runs of each transfer (3; quick 1)")
    args = ap.parse_args()
    parts = args.only.split(",")
    sizes = ints(args.sizes) if args.sizes else ([50, 500] if args.quick else [100, 1000, 10000])
    samples = args.samples or (1 if args.quick else 3)
    counts = ints(args.sessions) if args.sessions else ([1, 4] if args.quick else [1, 8, 32])
    sizes_mib = ([float(x) for x in args.mib.split(",")] if args.mib
                 else [0.5, 2.0] if args.quick else [2.0, 20.0])  # fmt: skip
    rounds = args.rounds or (1 if args.quick else 3)
    header("growth: how cost grows", args)
    results: dict = {"parts": parts}
    if "list" in parts:
        started = time.perf_counter()
        results["list"] = measure_list(args, sizes, samples)
        results["list"]["seconds"] = time.perf_counter() - started
        results["list"]["series"] = list_table(results["list"])
        print(f"list part: {time.perf_counter() - started:.0f} s, load {load()}", flush=True)
    if "attach" in parts or "cpu" in parts:
        with Cleanup() as stack:
            setup, skipped = hosts_setup(stack, args, max(counts))
            if setup is None:
                print(f"attach and cpu: skipped ({skipped})")
                results.update({part: {"skipped": skipped} for part in ("attach", "cpu")})
            if setup is not None and "attach" in parts:
                started = time.perf_counter()
                transports = (args.transports or ("ssm" if args.quick else "ssm,ssh")).split(",")
                again = 1 if args.quick else 3
                results["attach"] = measure_attach(setup, counts, transports, again)
                results["attach"]["series"] = attach_table(results["attach"])
                print(f"attach part: {time.perf_counter() - started:.0f} s, load {load()}",
                      flush=True)  # fmt: skip
            if setup is not None and "cpu" in parts:
                started = time.perf_counter()
                results["cpu"] = measure_cpu(setup, sizes_mib, rounds)
                results["cpu"]["series"] = cpu_table(results["cpu"])
                print(f"cpu part: {time.perf_counter() - started:.0f} s, load {load()}",
                      flush=True)  # fmt: skip
    footer()
    write_json(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
