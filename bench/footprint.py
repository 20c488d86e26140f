"""Footprint: what the extension adds to a Jupyter server.

    python bench/footprint.py [--quick] [--starts N] [--sessions N]

- start time (process start -> /api/status answers) and RSS, with and without the extension
  (`jupyter server` subprocesses, alternating, same config otherwise);
- RSS per attached session with 32 sessions open (quick: 4), over SSH and over SSM: the
  server's own growth and the session client processes;
- the labextension bundle (what the browser downloads);
- whether `sagemaker` (the SDK) is in sys.modules once the extension has loaded.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO
from common.procs import Cleanup, cpu_seconds, free_port
from common.report import footer, header, parser, table, write_json
from common.server import CLIENT_HINTS, JupyterServer, attach_args, attach_terminal, clients_rss
from common.standin import StandInProcess, server_environment
from common.terminal import PROMPT, read_until, terminal_websocket

JOB = "bench-footprint"


def start_once(stack, env: dict, extension: bool, args=None) -> tuple[dict, JupyterServer]:
    server = JupyterServer(stack, env, extension=extension, args=args)
    seconds = server.wait_ready()
    cpu, rss = cpu_seconds(server.proc.pid), server.rss_kib()
    time.sleep(1.0)  # anything started in the background after the server answers
    settled = server.rss_kib()
    status, _ = server.http().get("sm-debug/environment")
    loaded = status != 404
    if loaded != extension:
        raise RuntimeError(f"extension={extension} but /sm-debug answered {status}")
    return {"seconds": seconds, "cpu": cpu, "rss_kib": rss, "settled_kib": settled}, server


def measure_start(env: dict, starts: int, warm: bool) -> dict:
    """Alternating starts; with `warm`, a first unmeasured pair fills the bytecode cache."""
    results: dict = {True: [], False: []}
    for index in range(starts + warm):
        for extension in (False, True) if index % 2 else (True, False):
            with Cleanup() as stack:
                result, _ = start_once(stack, env, extension)
            if index or not warm:
                results[extension].append(result)
    return results


MODULES = r"""
import importlib, json, os, sys, time
from jupyter_server.serverapp import ServerApp


def rss():
    with open("/proc/self/status") as handle:
        return int(handle.read().split("VmRSS:")[1].split()[0])


app = ServerApp()
app.initialize(argv=sys.argv[1:])  # every other extension loaded, not serving
for name in filter(None, os.environ.get("BENCH_PREIMPORT", "").split(",")):
    importlib.import_module(name)  # already paid for: what the load costs without it
before, before_kib = set(sys.modules), rss()
started, cpu = time.perf_counter(), time.process_time()
import jupyter_sm_debug
jupyter_sm_debug._load_jupyter_server_extension(app)
seconds, kib = time.perf_counter() - started, rss() - before_kib
cpu = time.process_time() - cpu
print(json.dumps({
    "loaded": "sm_debug" in app.web_app.settings, "load_seconds": seconds, "load_kib": kib,
    "load_cpu": cpu,
    "sagemaker": sorted(m for m in sys.modules if m.split(".")[0] == "sagemaker"),
    "added_packages": sorted({m.split(".")[0] for m in set(sys.modules) - before}),
}))
"""


def sagemaker_check(env: dict, preimport: str = "") -> dict:
    """In a fresh interpreter: a ServerApp initialized without the extension, then the
    extension loaded into it by hand, timed; then a look at sys.modules."""
    argv = ["--ServerApp.jpserver_extensions=jupyter_sm_debug=False",
            "--ServerApp.jpserver_extensions=jupyter_server_terminals=True",
            "--ServerApp.allow_root=True", "--ServerApp.port_retries=0",
            f"--ServerApp.port={free_port()}", "--ServerApp.open_browser=False"]  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        done = subprocess.run(
            [sys.executable, "-c", MODULES, *argv], capture_output=True, text=True,
            env={**env, "JUPYTER_RUNTIME_DIR": directory, "BENCH_PREIMPORT": preimport},
            timeout=300, check=False,
            cwd=directory,
        )  # fmt: skip
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def bundle() -> dict:
    root = REPO / "jupyter_sm_debug" / "labextension"
    static = root / "static"
    if not (static.is_dir() and any(static.glob("remoteEntry.*.js"))):
        return {"built": False}
    files = [p for p in root.rglob("*") if p.is_file()]
    js = list(static.glob("*.js"))
    return {
        "built": True,
        "all_bytes": sum(p.stat().st_size for p in files),
        "du_kib": int(
            subprocess.run(
                ["du", "-sk", str(root)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        ),  # fmt: skip
        "js_bytes": sum(p.stat().st_size for p in js),
        "js_gzip_bytes": sum(len(gzip.compress(p.read_bytes(), 6)) for p in js),
        "maps_bytes": sum(p.stat().st_size for p in static.glob("*.map")),
    }


async def open_sessions(server, http, standin, count: int, transport: str) -> list:
    """Attach `count` hosts over `transport`, each with a websocket open at its prompt."""
    sockets = []
    for index in range(count):
        host = f"algo-{index + 1}"
        name = await asyncio.to_thread(attach_terminal, http, JOB, host, transport)
        ws = await terminal_websocket(server, name)
        await read_until(ws, PROMPT, timeout=120)
        sockets.append(ws)
    return sockets


def measure_sessions(stack, env: dict, count: int, starts: dict) -> dict:
    """Sessions on a fresh server with the extension (its start counts as one more start
    sample when `starts` is given)."""
    standin = StandInProcess(stack, clock="manual")
    if standin.client_key_path is None:
        return {"skipped": standin.sshd_missing_hint}
    standin.create_job(JOB, instance_count=count, remote_debug=True, started_ago=600)
    env = {**env, **standin.client_env()}
    args = attach_args(standin)
    result, server = start_once(stack, env, True, args)
    if starts is not None:
        starts[True].append(result)
    http = server.http()
    http.ok("GET", f"sm-debug/jobs/{JOB}")  # boto3 client created: not counted per session
    # One attach and detach per transport first: clients, modules and pools the first
    # session of each kind creates once are not per-session costs.
    out: dict = {}

    async def run():
        for transport in ("ssh", "ssm"):
            status, answer = await asyncio.to_thread(
                http.request, "POST", f"sm-debug/jobs/{JOB}/hosts/algo-1/terminals",
                {"transport": transport},
            )  # fmt: skip
            ws = await terminal_websocket(server, answer["terminal"]["name"])
            await read_until(ws, PROMPT, timeout=120)
            ws.close()
            http.request("DELETE", f"api/terminals/{answer['terminal']['name']}")
        await asyncio.sleep(2)
        base = server.rss_kib()
        out["server_before_kib"] = base
        for transport, hint in CLIENT_HINTS.items():
            before = server.rss_kib()
            sockets = await open_sessions(server, http, standin, count, transport)
            await asyncio.sleep(1)
            after = server.rss_kib()
            clients, clients_kib = clients_rss(server, hint)
            out[transport] = {
                "sessions": count,
                "server_growth_kib": after - before,
                "client_processes": clients,
                "clients_kib": clients_kib,
            }
            for ws in sockets:
                ws.close()

    asyncio.run(run())
    return out


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=None, help="starts of each kind (5; quick 1)")
    ap.add_argument("--sessions", type=int, default=None, help="sessions open (32; quick 4)")
    args = ap.parse_args()
    starts = args.starts or (1 if args.quick else 5)
    sessions = args.sessions or (4 if args.quick else 32)
    header("footprint: what the extension adds to a Jupyter server", args)
    with Cleanup() as stack:
        env = server_environment(None)
        if not args.quick:
            # Compiled modules in one private place, written by the unmeasured first pair, so
            # neither side compiles sources (this checkout has no .pyc files of its own).
            cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="sm-pycache-"))
            env["PYTHONPYCACHEPREFIX"] = cache
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        if args.quick:  # one start without; the sessions' server is the start with it
            start = {False: [start_once(stack, env, False)[0]], True: []}
        else:
            start = measure_start(env, starts, warm=True)
        check = sagemaker_check(env)
        # What the load would cost if boto3 were imported on first use instead.
        lazy = None if args.quick else sagemaker_check(env, "boto3,botocore.config")
        session = measure_sessions(stack, env, sessions, start if args.quick else None)
    built = bundle()

    def med(extension: bool, key: str) -> float:
        return statistics.median(r[key] for r in start[extension])

    rows = []
    for label, key, unit, scale in (
        ("start: process -> /api/status", "seconds", "ms", 1000),
        ("CPU used by then", "cpu", "ms", 1000),
        ("RSS when /api/status answers", "rss_kib", "MiB", 1 / 1024),
        ("RSS 1 s later", "settled_kib", "MiB", 1 / 1024),
    ):
        without, with_ = med(False, key) * scale, med(True, key) * scale
        rows.append([label, f"{without:.0f} {unit}" if unit == "ms" else f"{without:.1f} {unit}",
                     f"{with_:.0f} {unit}" if unit == "ms" else f"{with_:.1f} {unit}",
                     f"{with_ / without:.2f}x",
                     f"{with_ - without:+.0f} {unit}" if unit == "ms"
                     else f"{with_ - without:+.1f} {unit}"])  # fmt: skip
    print()
    table(["server", "without extension", "with extension", "ratio", "added"], rows)
    print(f"  samples (ms) without: {[round(r['seconds'] * 1000) for r in start[False]]}, "
          f"with: {[round(r['seconds'] * 1000) for r in start[True]]}")  # fmt: skip
    load_ms, load_mib = check["load_seconds"] * 1000, check["load_kib"] / 1024
    load_cpu_ms = check["load_cpu"] * 1000
    print(f"  loading the extension into a ready ServerApp, in-process: {load_ms:.0f} ms wall, "
          f"{load_cpu_ms:.0f} ms CPU, {load_mib:+.1f} MiB RSS")  # fmt: skip
    added_ms = (med(True, "seconds") - med(False, "seconds")) * 1000
    added_cpu_ms = (med(True, "cpu") - med(False, "cpu")) * 1000
    added_mib = (med(True, "rss_kib") - med(False, "rss_kib")) / 1024
    # Wall time swings by seconds on a busy machine; the CPU the load takes does not.
    print(f"goal < 100 ms added at start: {'met' if load_cpu_ms < 100 else 'NOT met'} "
          f"(loading takes {load_cpu_ms:.0f} ms CPU / {load_ms:.0f} ms wall in-process; end to "
          f"end {added_cpu_ms:+.0f} ms CPU, {added_ms:+.0f} ms wall)")  # fmt: skip
    if lazy:
        print(f"  the same load with boto3 already imported: {lazy['load_cpu'] * 1000:.0f} ms "
              f"CPU, {lazy['load_seconds'] * 1000:.0f} ms wall, {lazy['load_kib'] / 1024:+.1f} "
              "MiB: the rest is boto3's import")  # fmt: skip
    print(f"goal < 30 MiB added at start: {'met' if added_mib < 30 else 'NOT met'} "
          f"({added_mib:+.1f} MiB end to end; {load_mib:+.1f} MiB in-process)")  # fmt: skip
    print()
    if "skipped" in session:
        print(f"sessions: skipped ({session['skipped']})")
    else:
        rows = []
        for transport in ("ssh", "ssm"):
            s = session[transport]
            n = s["sessions"]
            rows.append([
                f"{n} sessions over {transport}", f"{s['server_growth_kib'] / 1024:+.1f} MiB",
                f"{s['server_growth_kib'] / n:.0f} KiB", f"{s['client_processes']}",
                f"{s['clients_kib'] / 1024:.1f} MiB",
                f"{s['clients_kib'] / max(1, s['client_processes']) / 1024:.1f} MiB",
            ])  # fmt: skip
        table(["", "server RSS growth", "per session", "client procs",
               "clients RSS", "per client"], rows)  # fmt: skip
        print(f"  server RSS before the sessions: {session['server_before_kib'] / 1024:.1f} MiB")

    print()
    if built["built"]:
        print(f"labextension: {built['du_kib']} KiB on disk (du), {built['all_bytes'] / 1024:.0f} "
              f"KiB in files, of which JS {built['js_bytes'] / 1024:.0f} KiB "
              f"({built['js_gzip_bytes'] / 1024:.0f} KiB gzipped) and source maps "
              f"{built['maps_bytes'] / 1024:.0f} KiB")  # fmt: skip
    else:
        print("labextension: not built (run `jlpm build:prod`); no bundle size")
    print(f"sagemaker in sys.modules after the extension loaded: {bool(check['sagemaker'])} "
          f"{check['sagemaker'] or ''}(extension loaded: {check['loaded']})")  # fmt: skip
    print(f"packages the extension's load adds: {', '.join(check['added_packages'])}")
    footer()
    write_json(
        args, {"start": {str(k): v for k, v in start.items()}, "sessions": session,
               "bundle": built, "modules": check, "load_without_boto3_import": lazy},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
