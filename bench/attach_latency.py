"""Attach latency: from the POST that attaches to the first prompt byte on the terminal
websocket, over SSH and over SSM (built-in client), against a stand-in host.

    python bench/attach_latency.py [--quick] [--latency MS] [--samples N]

A real `jupyter server` with the extension and a local stand-in (in its own process) whose
every AWS call waits `--latency` ms. Baseline, in the same run: the very argv and environment of
the session client the extension started (read from /proc), run directly in a PTY until the
first prompt byte; for SSM the baseline also makes its own StartSession call first, as
`aws ssm start-session` does.
"""

from __future__ import annotations

import asyncio
import sys
import time

from common.procs import Cleanup
from common.report import footer, header, ms, parser, ratio, table, write_json
from common.server import (
    attach_terminal,
    attaching_server,
    session_process,
)
from common.ssmclients import fresh_ssm_session, ssm_client
from common.standin import standin_with_hosts
from common.terminal import PROMPT, end_pty, pty_until, read_until, terminal_websocket

JOB = "bench-attach"
HOSTS = 8


async def attach_once(server, http, counter, host: str, transport: str, body: dict) -> dict:
    with counter.measure() as calls:
        started = time.perf_counter()
        name = await asyncio.to_thread(attach_terminal, http, JOB, host, transport, body)
        posted = time.perf_counter()
    ws = await terminal_websocket(server, name)
    connected = time.perf_counter()
    try:
        prompt_at, _ = await read_until(ws, PROMPT, timeout=20)
    except asyncio.TimeoutError:
        ws.close()
        raise NoPrompt(name) from None
    ws.close()
    return {
        "name": name,
        "total": prompt_at - started,
        "post": posted - started,
        "websocket": connected - posted,
        "to_prompt": prompt_at - connected,
        # A TerminateSession here comes from the previous SSM session's client, ending.
        "calls": {k: v for k, v in calls.items() if k != "TerminateSession"},
    }


class NoPrompt(Exception):
    """An attach that answered 201 but whose terminal showed no prompt in 20 s."""


def close_terminal(http, name: str) -> None:
    """End the terminal and wait until the server no longer lists it: a new attach to the
    same host reuses the name, and must not meet the old one on its way out."""
    http.request("DELETE", f"api/terminals/{name}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, listed = http.request("GET", "api/terminals")
        if status == 200 and all(term.get("name") != name for term in listed):
            return
        time.sleep(0.05)


def baseline(argv, env, ssm=None, target: str = "") -> dict:
    """The session client alone in a PTY; for SSM with its own StartSession first."""
    started = time.perf_counter()
    api = 0.0
    if ssm is not None:
        env = fresh_ssm_session(env, ssm, target)
        api = time.perf_counter() - started
    seconds, proc = pty_until(argv, env, PROMPT, timeout=60)
    end_pty(proc)
    return {"total": api + seconds, "api": api, "spawn_to_prompt": seconds}


def summarize(samples: list[dict], key: str) -> float:
    values = sorted(sample[key] for sample in samples)
    return values[len(values) // 2]


async def measure(args, standin, server, http) -> dict:
    samples = args.samples or (1 if args.quick else 10)
    variants = [  # label, transport, give the address in the request, always the same host
        ("ssh", "ssh", False, False),
        # The same hosts again: the "ssh" attaches read their announcements.
        ("ssh, announcement known", "ssh", False, False),
        ("ssh, address given", "ssh", True, False),
        ("ssm (built-in client)", "ssm", False, False),
    ]
    results: dict = {}
    # One boto3 client for every baseline, warmed like the server's: a StartSession costs
    # its round trip, not a client's creation and first connection.
    ssm_warm = ssm_client(standin)
    ssm_warm.terminate_session(SessionId="bench-warm-up")  # answered for a gone session
    for label, transport, with_address, same_host in variants:
        ext, base, first, no_prompt = [], [], None, []
        for index in range(samples + 1):  # the first attach of a kind warms the server up
            host = "algo-1" if same_host else f"algo-{index % HOSTS + 1}"
            body = {}
            if with_address:
                address = standin.host_address(JOB, host)
                body = {"address": f"{address[0]}:{address[1]}"}
            try:
                sample = await attach_once(server, http, standin, host, transport, body)
            except NoPrompt as lost:  # counted and reported, not measured
                print(f"{label}: no prompt from {host} within 20 s", flush=True)
                close_terminal(http, str(lost))
                no_prompt.append(host)
                continue
            argv, env, _ = session_process(
                server, "ssh" if transport == "ssh" else "jupyter_sm_debug.ssm.client"
            )
            if index == 0:
                close_terminal(http, sample["name"])
                first = sample
                continue
            ext.append(sample)
            target = f"sagemaker-training-job:{JOB}_{host}"
            ssm = ssm_warm if transport == "ssm" else None
            # The session stays open meanwhile: ssh's argv names the pinned host keys,
            # which go away with the session.
            base.append(await asyncio.to_thread(baseline, argv, env, ssm, target))
            close_terminal(http, sample["name"])
            await asyncio.sleep(0.2)  # let the closed session wind down
        results[label] = {"first": first, "extension": ext, "baseline": base,
                          "no_prompt": no_prompt}  # fmt: skip
    return results


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=None, help="attaches per transport (10)")
    args = ap.parse_args()
    latency = args.latency / 1000
    header("attach_latency: POST attach -> first prompt byte", args)
    with Cleanup() as stack:
        standin = standin_with_hosts(stack)
        if standin is None:
            return 1
        standin.create_job(JOB, instance_count=HOSTS, remote_debug=True, started_ago=600)
        server, http = attaching_server(stack, standin)
        http.ok("GET", f"sm-debug/jobs/{JOB}")  # the server's boto3 client exists
        standin.set_faults(latency=latency)
        results = asyncio.run(measure(args, standin, server, http))

    rows, verdicts = [], []
    for label, result in results.items():
        ext, base = result["extension"], result["baseline"]
        total, base_total = summarize(ext, "total"), summarize(base, "total")
        added = total - base_total
        # The minimum of each side: the least disturbed run, when the machine is busy.
        added_min = min(s["total"] for s in ext) - min(s["total"] for s in base)
        calls = ext[-1]["calls"]
        extra = sum(calls.values()) - (1 if label.startswith("ssm") else 0)
        local = added - extra * latency
        rows.append([
            label, ms(total), ms(summarize(ext, "post")), ms(base_total), ratio(total, base_total),
            ms(added), ms(added_min),
            f"{extra} ({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})", ms(local),
        ])  # fmt: skip
        verdicts.append((label, added, added_min, local, extra))
    print()
    table(
        ["transport", "extension", "of which POST", "baseline", "ratio", "added",
         "added (min)", "extra API calls", "added - calls x latency"],
        rows,
    )  # fmt: skip
    print()
    print("extension = POST attach -> first prompt byte on the websocket (median);")
    print("baseline  = the same client argv/env in a PTY (SSM: plus its own StartSession).")
    for label, added, added_min, local, extra in verdicts:
        verdict = "met" if added < 0.050 else "NOT met"
        trips = f"{extra} extra AWS round trip(s) = {ms(extra * latency)}"
        print(f"goal '{label}' adds < 50 ms: {verdict} (adds {ms(added)}, min {ms(added_min)}; "
              f"{trips}, rest {ms(local)})")  # fmt: skip
    firsts = {label: ms(r["first"]["total"]) if r["first"] else "-" for label, r in results.items()}
    print(f"first attach of the server's life (creates boto3 clients): {firsts}")
    footer()
    write_json(args, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
