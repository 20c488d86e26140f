"""List at scale: the sidebar's job list on an account with 2,000 training jobs.

    python bench/list_jobs.py [--quick] [--latency MS] [--jobs N] [--running N]
                              [--max-concurrency N]

A local stand-in (API only, manual clock, so nothing changes during the run) holds N jobs,
`--running` of them InProgress with 1-16 hosts, spread over the newest rows; every AWS call
from a client waits `--latency` ms, as a round trip to AWS would. A real `jupyter server`
with the extension answers `GET /sm-debug/jobs`; the stand-in counts the API calls.

Baseline, in the same run: the naive boto3 script (ListTrainingJobs, then DescribeTrainingJob
one job at a time), in its own process.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

from common.procs import Cleanup, cpu_seconds
from common.report import footer, header, ms, parser, ratio, table, write_json
from common.server import JupyterServer
from common.standin import StandInProcess, server_environment

PAGE = 20  # the sidebar's page size
SAMPLES = 5  # fresh servers for the first page
FULL_PAGE = 100  # the largest page SageMaker (and /sm-debug/jobs) gives


# -- the account ---------------------------------------------------------------------------


def populate(standin, total: int, running: int, seed: int = 8) -> dict:
    """`total` jobs, newest first every 90 s; `running` of them InProgress (Training) at
    random places among the newest 2*running rows, the others Completed, Failed or Stopped."""
    rng = random.Random(seed)
    running_at = set(rng.sample(range(min(total, 2 * running)), running))
    specs = []
    for index in range(total):  # index 0 is the newest
        name = f"bench-{index:05d}-{rng.choice(['llama-ft', 'resnet50', 'bert', 'xgb'])}"
        started_ago = 600 + index * 90
        spec: dict = {"name": name, "started_ago": started_ago, "remote_debug": False}
        if index in running_at:
            count = rng.randint(1, 16)
            spec["schedule"] = {"training": 30 * 86400}
            spec["remote_debug"] = rng.random() < 0.5
            if count > 2 and rng.random() < 0.25:  # a heterogeneous cluster
                head = rng.randint(1, count - 1)
                spec["instance_groups"] = [
                    ["head", "ml.m5.2xlarge", head],
                    ["workers", "ml.p4d.24xlarge", count - head],
                ]
            else:
                spec["instance_count"] = count
        else:
            spec["instance_count"] = rng.choice([1, 1, 1, 2, 4, 8])
            roll = rng.random()
            training = rng.randint(60, 540)
            if roll < 0.1:
                spec["schedule"] = {"training": training, "outcome": "Failed"}
            elif roll < 0.15:
                spec["schedule"] = {"training": 3600}
                spec["stop_after"] = 30 + training
            else:
                spec["schedule"] = {"training": training}
        specs.append(spec)

    standin.create_jobs(specs)
    on_first_page = sum(1 for index in running_at if index < PAGE)
    return {"total": total, "running": running, "running_on_first_page": on_first_page}


# -- the extension ------------------------------------------------------------------------


def sidebar_pages(http, page_size: int, all_pages: bool) -> int:
    """GET /sm-debug/jobs like the sidebar: one page, or every page following next_token."""
    jobs, token, pages = [], None, 0
    while True:
        page = http.ok("GET", "sm-debug/jobs", max_results=page_size, next_token=token)
        pages += 1
        jobs += page["jobs"]
        token = page["next_token"]
        if not (all_pages and token):
            return pages


def first_rows(http, page_size: int) -> dict:
    """The sidebar's first paint: the page from ListTrainingJobs alone (describe=false)."""
    return http.ok("GET", "sm-debug/jobs", max_results=page_size, describe="false")


def full_page(http, page_size: int) -> dict:
    """The sidebar's whole page: first rows, then the undescribed ones in one request."""
    page = first_rows(http, page_size)
    missing = [job["name"] for job in page["jobs"] if not job.get("described", True)]
    if missing:
        filled = http.ok("GET", "sm-debug/descriptions", names=",".join(missing))
        if filled["errors"] or len(filled["jobs"]) != len(missing):
            raise RuntimeError(f"descriptions left rows out: {filled['errors']}")
    return page


def timed(counter, server: JupyterServer, fn, *args) -> dict:
    """Wall time, AWS calls and the server's CPU time of one sidebar action."""
    with counter.measure() as calls:
        cpu, standin_cpu = cpu_seconds(server.proc.pid), cpu_seconds(counter.proc.pid)
        started = time.perf_counter()
        result = fn(server.http_client, *args)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(server.proc.pid) - cpu
        standin_cpu = cpu_seconds(counter.proc.pid) - standin_cpu
    return {"seconds": seconds, "calls": sum(calls.values()), "detail": dict(calls), "cpu": cpu,
            "standin_cpu": standin_cpu, "result": result}  # fmt: skip


def start_server(stack, standin, server_args) -> JupyterServer:
    server = JupyterServer(stack, server_environment(standin), args=server_args)
    server.wait_ready()
    server.http_client = server.http()  # type: ignore[attr-defined]
    return server


def warm_up(server) -> None:
    """Create the server's boto3 client (the first AWS call of a server's life) with a
    list that matches nothing: no job is described, so nothing is cached."""
    server.http_client.ok("GET", "sm-debug/jobs", max_results=1, name_contains="no-such-job")


def measure_extension(args, standin, counter, server_args: list[str], ttl: float) -> dict:
    """Each cold-cache measurement on a fresh server (quick: one server for everything)."""
    out: dict = {}
    server_args = [*server_args, f"--SMDebug.running_cache_ttl={ttl:g}"]

    def full_list(server) -> None:
        out["full_list"] = timed(counter, server, sidebar_pages, FULL_PAGE, True)
        time.sleep(ttl + 0.1)
        out["full_refresh"] = timed(counter, server, sidebar_pages, FULL_PAGE, True)

    if not args.quick:  # the very first request of a server also creates its boto3 client
        with Cleanup() as stack:
            server = start_server(stack, standin, server_args)
            out["cold_server"] = timed(counter, server, sidebar_pages, PAGE, False)

    firsts, refreshes, rows, fulls = [], [], [], []
    for sample in range(1 if args.quick else SAMPLES):
        # Two steps on cold caches: the first rows, then the page filled (fresh servers).
        for measured, into in ((first_rows, rows), (full_page, fulls)):
            with Cleanup() as stack:
                server = start_server(stack, standin, server_args)
                warm_up(server)
                into.append(timed(counter, server, measured, PAGE))
        with Cleanup() as stack:
            server = start_server(stack, standin, server_args)
            warm_up(server)
            firsts.append(timed(counter, server, sidebar_pages, PAGE, False))
            if sample == 0:
                out["refresh_within_ttl"] = timed(counter, server, sidebar_pages, PAGE, False)
            time.sleep(ttl + 0.1)  # the sidebar polls every 15 s: past the running TTL
            refreshes.append(timed(counter, server, sidebar_pages, PAGE, False))
            if args.quick:  # the page's 20 jobs are cached already: a smoke test only
                full_list(server)
    out["first_rows"] = pick_median(rows)
    out["full_page"] = pick_median(fulls)
    out["first_rows_samples"] = [round(r["seconds"] * 1000) for r in rows]
    out["full_page_samples"] = [round(r["seconds"] * 1000) for r in fulls]
    out["first_page"] = pick_median(firsts)
    out["first_page_best"] = min(firsts, key=lambda s: s["seconds"])
    out["first_page_samples"] = [round(s["seconds"] * 1000) for s in firsts]
    out["refresh"] = pick_median(refreshes)

    if not args.quick:
        with Cleanup() as stack:
            server = start_server(stack, standin, server_args)
            warm_up(server)
            full_list(server)
    for value in out.values():
        if isinstance(value, dict):
            value.pop("result", None)
    return out


def row(title: str, ours: dict, theirs: dict) -> list:
    """A table row: the extension against the naive script."""
    return [title, ms(ours["seconds"]), ours["calls"], ms(ours["cpu"]), ms(ours["standin_cpu"]),
            ms(theirs["seconds"]),
            theirs["calls"] if theirs.get("calls") is not None else "-",
            ms(theirs["cpu"]) if theirs.get("cpu") is not None else "-",
            ratio(ours["seconds"], theirs["seconds"])]  # fmt: skip


def pick_median(samples: list[dict]) -> dict:
    ordered = sorted(samples, key=lambda s: s["seconds"])
    return ordered[len(ordered) // 2]


# -- the naive baseline -------------------------------------------------------------------

NAIVE = r"""
import json, sys, time, boto3
sm = boto3.client("sagemaker")
calls = 0
def count(**_):
    global calls
    calls += 1
sm.meta.events.register("before-call", count)

def listing(page_size, all_pages):
    global calls
    before, started, jobs, token = calls, time.perf_counter(), [], None
    cpu = time.process_time()
    while True:
        kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": page_size}
        if token:
            kwargs["NextToken"] = token
        page = sm.list_training_jobs(**kwargs)
        for summary in page["TrainingJobSummaries"]:
            d = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            jobs.append((d["TrainingJobName"], d["ResourceConfig"]))
        token = page.get("NextToken")
        if not (all_pages and token):
            return {"seconds": time.perf_counter() - started, "calls": calls - before,
                    "cpu": time.process_time() - cpu, "jobs": len(jobs)}

sm.list_training_jobs(MaxResults=1, NameContains="no-such-job-at-all")  # warm, like the server
out = {"first_page": listing(%(page)d, False), "refresh": listing(%(page)d, False)}

def one(call, **kwargs):
    times = []
    for _ in range(7):
        started = time.perf_counter()
        call(**kwargs)
        times.append(time.perf_counter() - started)
    return sorted(times)[3]

name = sm.list_training_jobs(MaxResults=1)["TrainingJobSummaries"][0]["TrainingJobName"]
# The floor of any first page: one ListTrainingJobs, then one DescribeTrainingJob after it.
out["one_list"] = one(sm.list_training_jobs, MaxResults=%(page)d, SortBy="CreationTime",
                      SortOrder="Descending")
out["one_describe"] = one(sm.describe_training_job, TrainingJobName=name)

# The floor of a page on this machine: one ListTrainingJobs, then the page's describes in one
# wave from a plain boto3 client's threads (a pool as large as the page). Beyond the two
# round trips it pays what 20 calls cost in CPU: botocore's work in the client, the stand-in's
# in its process, sharing this machine's cores.
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
wave_client = boto3.client("sagemaker", config=Config(max_pool_connections=%(page)d))
wave_client.list_training_jobs(MaxResults=1, NameContains="no-such-job-at-all")
with ThreadPoolExecutor(%(page)d) as pool:
    waves = []
    for _ in range(5):
        started = time.perf_counter()
        page = wave_client.list_training_jobs(MaxResults=%(page)d, SortBy="CreationTime",
                                              SortOrder="Descending")
        list(pool.map(lambda s: wave_client.describe_training_job(
            TrainingJobName=s["TrainingJobName"]), page["TrainingJobSummaries"]))
        waves.append(time.perf_counter() - started)
out["list_then_wave"] = sorted(waves)[2]
if %(full)s:
    out["full_list"] = listing(%(full_page)d, True)
print(json.dumps(out))
"""


def measure_naive(standin, counter, full: bool) -> dict:
    code = NAIVE % {"page": PAGE, "full_page": FULL_PAGE, "full": full}
    with counter.measure() as calls:
        done = subprocess.run(
            [sys.executable, "-c", code], env=server_environment(standin), capture_output=True,
            text=True, timeout=3600, check=False,
        )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"naive baseline failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    result["stand-in counted"] = sum(calls.values())
    return result


# -- main ----------------------------------------------------------------------------------


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=None, help="jobs in the account (2000; quick 60)")
    ap.add_argument("--running", type=int, default=None, help="InProgress jobs (20; quick 10)")
    ap.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="also run the extension with c.SMDebug.max_concurrency set to this",
    )
    args = ap.parse_args()
    total = args.jobs or (60 if args.quick else 2000)
    running = args.running or (10 if args.quick else 20)
    latency = args.latency / 1000
    ttl = 1.0 if args.quick else 5.0  # running_cache_ttl: 5 s is the default
    header("list_jobs: the sidebar's job list", args, f" | {total} jobs, {running} running")

    with Cleanup() as stack:
        started = time.perf_counter()
        standin = counter = StandInProcess(stack, clock="manual", hosts=False)
        account = populate(standin, total, running)
        took = time.perf_counter() - started
        on_page = account["running_on_first_page"]
        print(f"stand-in: {total} jobs created in {took:.1f} s; {on_page} running on page 1")
        standin.set_faults(latency=latency)

        variants = {"extension": []}
        if args.max_concurrency:
            variants[f"extension, max_concurrency={args.max_concurrency}"] = [
                f"--SMDebug.max_concurrency={args.max_concurrency}"
            ]
        results = {name: measure_extension(args, standin, counter, extra, ttl)
                   for name, extra in variants.items()}  # fmt: skip
        naive = measure_naive(standin, counter, full=True)

    nfirst, nrefresh, nfull = naive["first_page"], naive["refresh"], naive["full_list"]
    rows = []
    for name, out in results.items():
        label = "" if name == "extension" else f" ({name.split(', ', 1)[1]})"
        if "cold_server" in out:
            rows.append(row(f"first page, fresh server{label}", out["cold_server"], nfirst))
        rows += [
            row(f"first rows, describe=false (median){label}", out["first_rows"], nfirst),
            row(f"full page, rows + descriptions (median){label}", out["full_page"], nfirst),
            row(f"first page, {PAGE} jobs (median){label}", out["first_page"], nfirst),
            row(f"first page, {PAGE} jobs (best){label}", out["first_page_best"], nfirst),
            row(f"refresh within TTL{label}", out["refresh_within_ttl"], nrefresh),
            row(f"refresh after TTL{label}", out["refresh"], nrefresh),
            row(f"full list, {total} jobs{label}", out["full_list"], nfull),
            row(f"full list refresh{label}", out["full_refresh"], {"seconds": nfull["seconds"]}),
        ]
    print()
    table(["", "extension", "API calls", "server CPU", "stand-in CPU", "naive boto3",
           "API calls", "its CPU", "ratio"], rows)  # fmt: skip
    print()
    print("naive boto3 = ListTrainingJobs, then DescribeTrainingJob one job after the other (no")
    print("cache: its refresh is its first page again); pages of 20, the full list pages of 100.")
    goal = 2.2 * latency
    floor = naive["one_list"] + naive["one_describe"]
    one_list, one_describe = ms(naive["one_list"]), ms(naive["one_describe"])
    print(f"one round trip from a plain boto3 client (median of 7): ListTrainingJobs ({PAGE}) "
          f"{one_list}, DescribeTrainingJob {one_describe}; one after the other, the floor of "
          f"any first page: {ms(floor)}")  # fmt: skip
    wave = naive.get("list_then_wave")
    if wave is not None:
        print(f"plain boto3, one ListTrainingJobs then the page's {PAGE} describes in one wave of "
              f"threads (median of 5): {ms(wave)}, {ms(wave - floor)} above the two round trips "
              "(the CPU of 20 calls on this machine's cores)")  # fmt: skip
    for name, out in results.items():
        first, best, refresh = out["first_page"], out["first_page_best"], out["refresh"]
        print(f"[{name}] first page samples (ms): {out['first_page_samples']}")
        verdict = "met" if first["seconds"] < goal else "NOT met"
        print(f"[{name}] goal first page < 2.2 x latency = {ms(goal)}: {verdict} "
              f"(median {ms(first['seconds'])} = {first['seconds'] / latency:.1f} latencies, best "
              f"{ms(best['seconds'])}; {first['calls']} calls {first['detail']}, server CPU "
              f"{ms(first['cpu'])}, stand-in CPU {ms(first['standin_cpu'])}; "
              f"{ms(first['seconds'] - floor)} above the floor)")  # fmt: skip
        rows_goal = 1.2 * naive["one_list"] + 0.020
        page_goal = naive["one_list"] + naive["one_describe"] + 0.030
        r, f = out["first_rows"], out["full_page"]
        print(f"[{name}] goal first rows <= 1.2 x one list + 20 ms = {ms(rows_goal)}: "
              f"{'met' if r['seconds'] <= rows_goal else 'NOT met'} (median {ms(r['seconds'])}, "
              f"samples {out['first_rows_samples']}, {r['detail']})")  # fmt: skip
        print(f"[{name}] goal full page <= one list + one describe + 30 ms = {ms(page_goal)}: "
              f"{'met' if f['seconds'] <= page_goal else 'NOT met'} (median {ms(f['seconds'])}, "
              f"samples {out['full_page_samples']}, {f['detail']})")  # fmt: skip
        describes = refresh["detail"].get("DescribeTrainingJob", 0)
        running_seen = account["running_on_first_page"]
        verdict = "met" if describes <= running_seen else "NOT met"
        calls = f"{refresh['calls']} calls: {refresh['detail']}"
        print(f"[{name}] goal refresh <= 1 DescribeTrainingJob per running job ({running_seen} "
              f"on the page): {verdict} ({calls})")  # fmt: skip
    print(f"naive calls counted by the stand-in: {naive['stand-in counted']}")
    footer()
    write_json(args, {"account": account, "extension": results, "naive": naive})
    return 0


if __name__ == "__main__":
    sys.exit(main())
