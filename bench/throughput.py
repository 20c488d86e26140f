"""Throughput: `cat` of a 64 MiB file in an attached terminal, read off the terminal
websocket, against a plain JupyterLab terminal running the same command locally.

    python bench/throughput.py [--quick] [--latency MS] [--mib N] [--rounds N]
                               [--ssm-only] [--ssm-mib N] [--upload-kib N]

SSM session clients, in the same run: the built-in client and AWS's session-manager-plugin
(when it is installed: $SM_DEBUG_SSM_PLUGIN, ../shared/tools/session-manager-plugin/ beside
the clone, or PATH), each in a raw PTY on its own session over the stand-in's wss:// data
channel: download (`cat` of a 32 MiB file) and upload (a 1 MiB paste into `head -c | sha256sum`).
--latency is also the data channel's round trip (the stand-in's channel_latency fault); SSH's
TCP has none here (a delaying proxy would cost CPU the plain terminal does not pay, on the
same cores: the SSH ratio would measure the proxy).

A real `jupyter server` with the extension and a stand-in host (a local shell behind a real
sshd, or behind the stand-in's SSM data channel). Baselines, in the same run: a plain
JupyterLab terminal (POST /api/terminals) and each session client in a raw PTY (the argv and
environment the extension used, read from /proc) read straight from the PTY.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import sys
import tempfile
import time
from pathlib import Path

from common.measure import CpuMeter, make_payload
from common.procs import Cleanup
from common.report import footer, header, parser, table, write_json
from common.server import (
    attach_terminal,
    attaching_server,
    session_process,
)
from common.ssmclients import (
    BUILTIN,
    PLUGIN,
    find_plugin,
    fresh_ssm_session,
    ssm_client,
    ssm_client_process,
    upload,
)
from common.standin import StandInProcess, server_environment, standin_with_hosts
from common.terminal import (
    END,
    PROMPT,
    cat_command,
    end_pty,
    pty_until,
    quiet,
    read_through,
    read_until,
    terminal_websocket,
)

JOB = "bench-throughput"
PLAIN = "JupyterLab terminal (local shell)"
ANY = re.compile(r"\S")


async def over_websocket(server, name: str, path: Path, ready: re.Pattern, meter) -> dict:
    ws = await terminal_websocket(server, name)
    await read_until(ws, ready, timeout=60)
    await quiet(ws)
    meter.start()
    await ws.write_message(json.dumps(["stdin", cat_command(path)]))
    started = time.perf_counter()
    received, messages = await read_through(ws)
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    ws.close()
    return {"seconds": seconds, "chars": received, "messages": messages, "cpu": cpu}


def over_pty(argv: list[str], env: dict, path: Path, standin) -> dict:
    _, proc = pty_until(argv, env, PROMPT, timeout=60)
    try:
        while select.select([proc.fd], [], [], 0.3)[0]:  # until the prompt is drawn
            os.read(proc.fd, 65536)
        meter = CpuMeter(client_pid=proc.pid, standin=standin)
        meter.start()
        os.write(proc.fd, cat_command(path).encode())
        started = time.perf_counter()
        received, tail = 0, b""
        end = END.encode()
        while True:
            if not select.select([proc.fd], [], [], 600)[0]:
                raise TimeoutError("no output for 600 s")
            chunk = os.read(proc.fd, 1 << 20)
            if not chunk:
                raise EOFError("the session ended during the transfer")
            received += len(chunk)
            window = tail + chunk
            if end in window:
                break
            tail = window[-len(end) :]
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "chars": received, "cpu": meter.stop()}
    finally:
        end_pty(proc)


async def attach(http, host: str, transport: str) -> str:
    return await asyncio.to_thread(attach_terminal, http, JOB, host, transport)


def keep_pins(argv: list[str], directory: Path, index: int) -> list[str]:
    """The ssh argv with a copy of its session's known_hosts (the pinned, announced host
    key): the extension removes the original with the terminal."""
    import shutil

    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("UserKnownHostsFile="):
            copy = directory / f"known_hosts-{index}"
            shutil.copyfile(arg.split("=", 1)[1], copy)
            out[i] = f"UserKnownHostsFile={copy}"
            return out
    raise RuntimeError(f"no UserKnownHostsFile in the extension's ssh argv: {argv}")


async def one_round(server, http, standin, path: Path, round_index: int) -> dict:
    out = {}
    # A plain JupyterLab terminal: the server's own local shell.
    answer = http.ok("POST", "api/terminals")
    meter = CpuMeter(server, standin=standin)
    out[PLAIN] = await over_websocket(server, answer["name"], path, ANY, meter)
    http.request("DELETE", f"api/terminals/{answer['name']}")
    host = f"algo-{round_index % 2 + 1}"
    for transport, hint in (("ssh", "ssh"), ("ssm", "jupyter_sm_debug.ssm.client")):
        name = await attach(http, host, transport)
        argv, env, pid = session_process(server, hint)
        if transport == "ssh":
            argv = keep_pins(argv, path.parent, round_index)
        meter = CpuMeter(server, pid, standin)
        out[f"attached over {transport}"] = await over_websocket(server, name, path, PROMPT, meter)
        http.request("DELETE", f"api/terminals/{name}")
        if transport == "ssm":
            target = f"sagemaker-training-job:{JOB}_{host}"
            env = fresh_ssm_session(env, ssm_client(standin), target)
        out[f"{transport} client in a raw PTY"] = await asyncio.to_thread(
            over_pty, argv, env, path, standin
        )
        await asyncio.sleep(0.3)
    return out


def ssm_clients(standin, directory: Path, mib: int, kib: int, rounds: int) -> dict:
    plugin = find_plugin()
    kinds = [BUILTIN] + ([PLUGIN] if plugin else [])
    path = make_payload(directory, mib * 1024)
    runs: dict[str, dict[str, list]] = {k: {"download": [], "upload": []} for k in kinds}
    target = f"sagemaker-training-job:{JOB}_algo-1"
    for _ in range(rounds):
        for kind in kinds:  # alternated, so both see the same machine load
            argv, env = ssm_client_process(kind, standin, target, plugin)
            result = over_pty(argv, env, path, standin)
            result["bytes"] = path.stat().st_size
            runs[kind]["download"].append(result)
            argv, env = ssm_client_process(kind, standin, target, plugin)
            runs[kind]["upload"].append(upload(argv, env, kib, standin))
    return {"plugin": plugin, "runs": runs}


def ssm_table(results: dict, mib: int, kib: int) -> None:
    def rate(r: dict) -> float:
        return r["bytes"] / r["seconds"] / (1024 * 1024)

    def median(items: list) -> dict:
        return sorted(items, key=rate)[len(items) // 2]

    rows = []
    medians = {}
    for kind, by_way in results["runs"].items():
        down, up = median(by_way["download"]), median(by_way["upload"])
        medians[kind] = (rate(down), rate(up))
        rows.append([
            kind, f"{rate(down):.2f}", f"{down['seconds']:.1f} s",
            f"{down['cpu']['client']:.1f} s", f"{rate(up) * 1024:.0f}",
            f"{up['seconds']:.2f} s", f"{up['cpu']['client']:.2f} s",
        ])  # fmt: skip
    print()
    table(
        ["SSM client (raw PTY, wss://)", f"download {mib} MiB: MiB/s", "time", "client CPU",
         f"upload {kib} KiB paste: KiB/s", "time", "client CPU"],
        rows,
    )  # fmt: skip
    if results["plugin"] is None:
        print("session-manager-plugin not found: only the built-in client was measured.")
    elif BUILTIN in medians and PLUGIN in medians:
        (bd, bu), (pd, pu) = medians[BUILTIN], medians[PLUGIN]
        verdict = "met" if bd >= pd and bu >= pu else "NOT met"
        print(f"goal built-in >= plugin on both: {verdict} (download {bd:.2f} vs {pd:.2f} MiB/s, "
              f"upload {bu * 1024:.0f} vs {pu * 1024:.0f} KiB/s)")  # fmt: skip


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=None, help="file size in MiB (64; quick 2)")
    ap.add_argument("--rounds", type=int, default=None, help="runs of each kind (5; quick 1)")
    ap.add_argument("--ssm-only", action="store_true", help="only the SSM clients' table")
    ap.add_argument("--ssm-mib", type=int, default=None, help="SSM download size (32; quick 2)")
    ap.add_argument("--upload-kib", type=int, default=None, help="SSM paste size (1024; quick 64)")
    args = ap.parse_args()
    ssm_mib = args.ssm_mib or (2 if args.quick else 32)
    upload_kib = args.upload_kib or (64 if args.quick else 1024)
    if args.ssm_only:
        return ssm_only(args, ssm_mib, upload_kib)
    mib = args.mib or (2 if args.quick else 64)
    rounds = args.rounds or (1 if args.quick else 5)
    header("throughput: cat in a terminal, read off the websocket", args, f" | {mib} MiB")
    with Cleanup() as stack:
        # Not under /tmp: a stand-in host in namespaces has a /tmp of its own.
        directory = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="sm-tput-", dir=Path(__file__).parent)
            )
        )
        path = make_payload(directory, mib * 1024)
        size = path.stat().st_size
        standin = standin_with_hosts(stack)
        if standin is None:
            return 1
        standin.create_job(JOB, instance_count=2, remote_debug=True, started_ago=600)
        env = {**server_environment(standin), "SHELL": "/bin/bash"}
        server, http = attaching_server(stack, standin, env)
        standin.set_faults(latency=args.latency / 1000, channel_latency=args.latency / 1000)
        runs: dict[str, list[dict]] = {}

        async def all_rounds():
            for index in range(rounds):
                for kind, result in (await one_round(server, http, standin, path, index)).items():
                    runs.setdefault(kind, []).append(result)

        asyncio.run(all_rounds())
        ssm_results = ssm_clients(standin, directory, ssm_mib, upload_kib, rounds)

    def mibps(result: dict) -> float:
        return size / result["seconds"] / (1024 * 1024)

    medians, rows = {}, []
    for kind, results in runs.items():
        ordered = sorted(results, key=mibps)
        medians[kind] = ordered[len(ordered) // 2]
    plain = mibps(medians[PLAIN])
    best_plain = max(mibps(r) for r in runs[PLAIN])

    def cpu(result: dict, key: str) -> str:
        value = result["cpu"].get(key)
        return "-" if value is None else f"{value:.1f} s"

    for kind, result in medians.items():
        rate, best = mibps(result), max(mibps(r) for r in runs[kind])
        rows.append([
            kind, f"{rate:.1f}", f"{best:.1f}", f"{rate / plain:.2f}x", f"{best / best_plain:.2f}x",
            cpu(result, "server"), cpu(result, "client"), cpu(result, "standin"),
            cpu(result, "reader"),
            f"{result['chars'] / result['messages'] / 1024:.1f}" if result.get("messages") else "-",
        ])  # fmt: skip
    print()
    table(
        ["", "MiB/s", "best", "vs JupyterLab terminal", "best vs best", "jupyter server CPU",
         "session client CPU", "stand-in CPU", "reader CPU", "KiB/message"],
        rows,
    )  # fmt: skip
    print("\nall runs (MiB/s): " + "; ".join(
        f"{kind}: {' '.join(f'{mibps(r):.1f}' for r in results)}" for kind, results in runs.items()
    ))  # fmt: skip
    print("CPU: seconds used during the median run by the Jupyter server and the session client")
    print("(each alone), the stand-in with its children (SSM agent side, sshd, the host's shell,")
    print("cat) and this reader. KiB/message: average size of the websocket stdout messages.")
    for transport in ("ssh", "ssm"):
        rate = mibps(medians[f"attached over {transport}"])
        verdict = "met" if rate >= 0.9 * plain else "NOT met"
        print(f"goal attached over {transport} within 10% of the JupyterLab terminal: {verdict} "
              f"({rate:.1f} vs {plain:.1f} MiB/s, {rate / plain:.2f}x)")  # fmt: skip
    ssm_table(ssm_results, ssm_mib, upload_kib)
    footer()
    write_json(args, {"file_bytes": size, "runs": runs, "ssm_clients": ssm_results})
    return 0


def ssm_only(args, mib: int, kib: int) -> int:
    rounds = args.rounds or (1 if args.quick else 3)
    header("throughput: SSM session clients, built-in vs plugin", args, f" | {mib} MiB / {kib} KiB")
    with Cleanup() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sm-tput-")))
        standin = StandInProcess(stack, clock="manual")
        standin.create_job(JOB, instance_count=1, remote_debug=True, started_ago=600)
        standin.set_faults(latency=args.latency / 1000, channel_latency=args.latency / 1000)
        results = ssm_clients(standin, directory, mib, kib, rounds)
    ssm_table(results, mib, kib)
    footer()
    write_json(args, {"ssm_clients": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
