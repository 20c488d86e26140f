"""Port forwards: throughput and added latency per request of a forwarded HTTP app, against
a direct local connection to the same app.

    python bench/forward.py [--quick] [--latency MS] [--mib N] [--ssm-mib N] [--requests N]

A real `jupyter server` with the extension and the stand-in (its hosts' network is this
machine's loopback, so the app runs here and the tunnels reach it from inside the host).
For each transport (SSH: `ssh -N -L` to a Unix socket in a 0700 directory; SSM: the
built-in client's smux session through the stand-in's wss:// gateway): the tunnel itself,
opened by the transport in this process and read through `connect.open_stream` (no
forward listens on a TCP port), and the browser's path through the Jupyter server's proxy
(/sm-debug/proxy/...). Latency: median of sequential small GETs on one keep-alive
connection; throughput: one streamed GET.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import statistics
import subprocess
import sys
import time

from common.procs import Cleanup, free_port, stop_process
from common.report import footer, header, parser, ratio, table, write_json
from common.server import attaching_server
from common.standin import standin_with_hosts

JOB = "bench-forward"
APP = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BIG = bytes(range(256)) * (int(sys.argv[2]) // 256)
class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        body = BIG if self.path.startswith("/big") else b"hello, forward"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
"""


def latency(session, url: str, count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def throughput(session, url: str, wanted: int) -> float:
    """MiB/s of the first `wanted` bytes of one streamed GET (over SSM less than the whole
    body, which would take long)."""
    started = time.perf_counter()
    got = 0
    with session.get(url, stream=True, timeout=600) as response:
        assert response.status_code == 200, (url, response.status_code)
        for chunk in response.iter_content(1 << 20):
            got += len(chunk)
            if got >= wanted:
                break
    assert got >= wanted, (url, got, wanted)
    return got / (time.perf_counter() - started) / (1 << 20)


async def http_get(reader, writer, path: str, wanted: int = 0) -> int:
    """One HTTP/1.1 GET on a raw (reader, writer) stream; returns the body bytes read (at
    most `wanted` if given, then the caller drops the stream)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: app\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    if not wanted:
        await reader.readexactly(length)
        return length
    got = 0
    while got < min(wanted, length):
        chunk = await reader.read(1 << 20)
        assert chunk, (path, got)
        got += len(chunk)
    return got


async def stream_numbers(open_stream, count: int, size: int) -> dict:
    """Latency of `count` small GETs on one stream, throughput of one GET on a fresh one."""
    reader, writer = await open_stream()
    for _ in range(3):
        await http_get(reader, writer, "/warm")
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await http_get(reader, writer, "/small")
        samples.append(time.perf_counter() - started)
    writer.close()
    reader, writer = await open_stream()
    started = time.perf_counter()
    got = await http_get(reader, writer, "/big", size << 20)
    rate = got / (time.perf_counter() - started) / (1 << 20)
    writer.close()
    return {"latency": statistics.median(samples), "rate": rate}


async def tunnel_numbers(standin, transport: str, port: int, count: int, size: int) -> dict:
    """Open the forward with the transport itself, as ForwardRegistry does, and measure it
    through connect.open_stream (what the proxy does for every upstream connection)."""
    from jupyter_sm_debug.config import SMDebug
    from jupyter_sm_debug.connect import HostTarget, open_stream
    from jupyter_sm_debug.connect.registry import get_transport
    from jupyter_sm_debug.jobs import JobsService

    config = SMDebug(ssh_key=str(standin.client_key_path), ssh_user=standin.ssh_user)
    jobs = JobsService(config, logging.getLogger("bench"))
    try:
        description = await jobs.describe(JOB, fresh=True)
        target = HostTarget(job=JOB, host="algo-1", description=description, config=config,
                            jobs=jobs, transport=transport)  # fmt: skip
        started = time.perf_counter()
        tunnel = await get_transport(transport, "forward").forward(target, port)
        opened = time.perf_counter() - started
        try:
            got = await stream_numbers(lambda: open_stream(tunnel), count, size)
        finally:
            await tunnel.close()
    finally:
        jobs.close()
    return {**got, "open_seconds": opened}


def main() -> int:
    import requests

    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=None, help="download size, direct and SSH (64)")
    ap.add_argument("--ssm-mib", type=int, default=None, help="download size over SSM (16)")
    ap.add_argument("--requests", type=int, default=None, help="small GETs per path (100)")
    args = ap.parse_args()
    mib = args.mib or (4 if args.quick else 64)
    ssm_mib = args.ssm_mib or (2 if args.quick else 16)
    count = args.requests or (10 if args.quick else 100)
    header("forward: an HTTP app through a port forward", args)
    results: dict = {}
    with Cleanup() as stack:
        standin = standin_with_hosts(stack)
        if standin is None:
            return 1
        standin.create_job(JOB, instance_count=1, remote_debug=True, started_ago=600)
        port = free_port()
        app = subprocess.Popen([sys.executable, "-c", APP, str(port), str(mib << 20)])
        stack.callback(stop_process, app)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.05)
        server, http = attaching_server(stack, standin)
        http.ok("GET", f"sm-debug/jobs/{JOB}")
        standin.set_faults(latency=args.latency / 1000)
        os.environ.update(standin.client_env())  # this process's own tunnels
        time.sleep(0.5)
        rows: list = []
        base: dict = {}

        def row(label: str, median: float, rate: float, raw: bool = False) -> None:
            """raw: a stream read by hand, compared with the direct raw stream; else an
            HTTP client (requests), compared with the direct requests."""
            first = base.setdefault(raw, {"latency": median, "rate": rate})
            added = (median - first["latency"]) * 1000
            results[label] = {"latency_ms": median * 1000, "added_ms": added, "mib_s": rate}
            rows.append([label, f"{median * 1000:.2f} ms", f"+{added:.2f} ms",
                         f"{rate:.1f} MiB/s", ratio(rate, first["rate"])])  # fmt: skip

        def measure(label: str, url: str, size: int) -> None:
            print(f"measuring {label}", flush=True)
            session = requests.Session()
            session.headers["Authorization"] = f"token {server.token}"
            latency(session, url + "warm", 3)
            row(label, latency(session, url + "small", count),
                throughput(session, url + "big", size << 20))  # fmt: skip

        measure("direct", f"http://127.0.0.1:{port}/", mib)
        print("measuring direct (raw stream)", flush=True)
        got = asyncio.run(
            stream_numbers(lambda: asyncio.open_connection("127.0.0.1", port), count, mib)
        )
        row("direct (raw stream)", got["latency"], got["rate"], raw=True)
        # One forward per job/host/port: each transport in turn (opening one ends the other).
        for transport in ("ssh", "ssm"):
            size = mib if transport == "ssh" else ssm_mib
            print(f"measuring {transport} tunnel", flush=True)
            got = asyncio.run(tunnel_numbers(standin, transport, port, count, size))
            results[f"{transport}_tunnel_open_seconds"] = got["open_seconds"]
            row(f"{transport} tunnel (raw stream)", got["latency"], got["rate"], raw=True)
            started = time.perf_counter()
            forward = http.ok(
                "POST", f"sm-debug/jobs/{JOB}/hosts/algo-1/ports",
                {"port": port, "transport": transport},
            )  # fmt: skip
            results[f"{transport}_open_seconds"] = time.perf_counter() - started
            measure(f"{transport} via proxy", f"{server.url}{forward['url']}", size)
            http.session.delete(f"{server.url}/sm-debug/jobs/{JOB}/hosts/algo-1/ports/{port}")
        print(f"forward opened: ssh {results['ssh_open_seconds'] * 1000:.0f} ms, "
              f"ssm {results['ssm_open_seconds'] * 1000:.0f} ms")  # fmt: skip
        table(["path", "median GET", "added", "download", "vs direct"], rows)
        print("added / vs direct: the proxy rows against `direct` (both through requests),")
        print("the tunnels against `direct (raw stream)` (both an HTTP/1.1 GET by hand on a")
        print("stream: the tunnel's from connect.open_stream, as the proxy opens it)")
    footer()
    write_json(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
