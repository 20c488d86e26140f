"""Kernels on hosts (issue 27): how soon a kernel is ready, how long `1+1` takes, and how
fast a loop printing 10 MiB streams, against a terminal on the same transport.

    python bench/kernels.py [--quick] [--latency MS] [--mib N] [--rounds N]

A real `jupyter server` with the extension and a stand-in host, over SSH and SSM. Everything
is read off the kernel's `channels` websocket, as JupyterLab reads it. --latency is the
stand-in's API latency and the SSM data channel's round trip (channel_latency); SSH's TCP
has none here (as in throughput.py).

- ready: from POST .../kernels to the reply of a first `pass` cell (the agent pushed, the
  tunnel, the kernel process, a fresh interpreter in the host);
- `1+1`: execute_request sent to execute_reply received (median of --rounds x 10);
- print: a cell running `for line in open(f): print(line, end="")` over a 10 MiB file, until
  the kernel is idle; the terminal runs the same loop with `python3 -c` on the same host over
  the same transport, until its end marker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common.measure import make_payload
from common.procs import Cleanup
from common.report import footer, header, median, parser, table, write_json
from common.server import attach_terminal, attaching_server
from common.standin import server_environment, standin_with_hosts
from common.terminal import PROMPT, quiet, read_through, read_until, terminal_websocket

JOB = "bench-kernels"


class Channels:
    """A kernel's channels websocket, as JupyterLab uses it (JSON messages)."""

    def __init__(self, ws):
        self.ws = ws
        self.session = uuid.uuid4().hex

    @classmethod
    async def open(cls, server, kernel_id: str) -> Channels:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels"
        request = HTTPRequest(url, headers={"Authorization": f"token {server.token}"})
        return cls(await websocket_connect(request, max_message_size=256 * 1024 * 1024))

    async def execute(self, code: str, timeout: float = 600) -> dict:
        """Run `code`; {seconds to the reply, seconds to idle, stream chars, reply}."""
        msg_id = uuid.uuid4().hex
        header_ = {"msg_id": msg_id, "msg_type": "execute_request", "username": "bench",
                   "session": self.session, "date": "", "version": "5.3"}  # fmt: skip
        content = {"code": code, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        message = {"header": header_, "parent_header": {}, "metadata": {}, "content": content,
                   "channel": "shell", "buffers": []}  # fmt: skip
        started = time.perf_counter()
        await self.ws.write_message(json.dumps(message))
        chars, reply, replied, idle = 0, None, None, None
        while reply is None or idle is None:
            raw = await asyncio.wait_for(self.ws.read_message(), timeout)
            if raw is None:
                raise EOFError("the kernel's websocket closed")
            got = json.loads(raw)
            if got.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = got["header"]["msg_type"]
            if kind == "stream":
                chars += len(got["content"]["text"])
            elif kind == "execute_reply":
                reply, replied = got["content"], time.perf_counter() - started
            elif kind == "status" and got["content"]["execution_state"] == "idle":
                idle = time.perf_counter() - started
        return {"reply_s": replied, "idle_s": idle, "chars": chars, "reply": reply}

    def close(self) -> None:
        self.ws.close()


async def local_baseline(server, http, rounds: int) -> list[float]:
    """`1+1` on the server's own local python3 kernel, through the same websocket: what the
    Jupyter server's path costs by itself."""
    times = []
    for _ in range(rounds):
        status, answer = await asyncio.to_thread(
            http.request, "POST", "api/kernels", {"name": "python3"}
        )
        if status != 201:
            raise RuntimeError(f"local kernel: {status} {answer}")
        channels = await Channels.open(server, answer["id"])
        await channels.execute("pass")
        for _ in range(10):
            times.append((await channels.execute("1+1"))["reply_s"])
        channels.close()
        await asyncio.to_thread(http.request, "DELETE", f"api/kernels/{answer['id']}")
    return times


async def one_transport(server, http, transport: str, path: Path, rounds: int) -> dict:
    out: dict = {"ready": [], "one_plus_one": [], "print": [], "terminal": []}
    loop_code = f"for line in open({str(path)!r}): print(line, end='')"
    for _ in range(rounds):
        started = time.perf_counter()
        status, answer = await asyncio.to_thread(
            http.request, "POST", f"sm-debug/jobs/{JOB}/hosts/algo-1/kernels",
            {"transport": transport},
        )  # fmt: skip
        if status != 201:
            raise RuntimeError(f"kernel over {transport}: {status} {answer}")
        kernel_id = answer["kernel"]["id"]
        channels = await Channels.open(server, kernel_id)
        first = await channels.execute("pass")
        assert first["reply"]["status"] == "ok", first
        out["ready"].append(time.perf_counter() - started)
        for _ in range(10):
            result = await channels.execute("1+1")
            out["one_plus_one"].append(result["reply_s"])
        result = await channels.execute(loop_code)
        out["print"].append({"seconds": result["idle_s"], "chars": result["chars"]})
        channels.close()
        await asyncio.to_thread(http.request, "DELETE", f"api/kernels/{kernel_id}")
        # The same loop in a terminal on the same host and transport.
        name = await asyncio.to_thread(attach_terminal, http, JOB, "algo-1", transport)
        ws = await terminal_websocket(server, name)
        await read_until(ws, PROMPT, timeout=60)
        await quiet(ws)
        command = f"python3 -c \"for line in open({str(path)!r}): print(line, end='')\""
        await ws.write_message(json.dumps(["stdin", command + '; echo END-""MARK\r']))
        started = time.perf_counter()
        chars, _ = await read_through(ws)
        out["terminal"].append({"seconds": time.perf_counter() - started, "chars": chars})
        ws.close()
        await asyncio.to_thread(http.request, "DELETE", f"api/terminals/{name}")
    return out


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=None, help="printed MiB (10; quick 1)")
    ap.add_argument("--rounds", type=int, default=None, help="kernels per transport (3; quick 1)")
    args = ap.parse_args()
    mib = args.mib or (1 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 3)
    header("kernels: ready, 1+1, printing", args, f" | {mib} MiB")
    results: dict = {}
    with Cleanup() as stack:
        # Not under /tmp: a stand-in host in namespaces has a /tmp of its own.
        directory = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="sm-kern-", dir=Path(__file__).parent)
            )
        )
        path = make_payload(directory, mib * 1024)
        standin = standin_with_hosts(stack)
        if standin is None:
            return 1
        standin.create_job(JOB, instance_count=1, remote_debug=True, started_ago=600)
        env = {**server_environment(standin), "SHELL": "/bin/bash"}
        server, http = attaching_server(stack, standin, env)
        standin.set_faults(latency=args.latency / 1000, channel_latency=args.latency / 1000)
        for transport in ("ssh", "ssm"):
            results[transport] = asyncio.run(one_transport(server, http, transport, path, rounds))
        local = asyncio.run(local_baseline(server, http, rounds))
    rows = []
    summary: dict = {}
    for transport, data in results.items():

        def rate(runs: list[dict]) -> float:
            return median([r["chars"] / r["seconds"] / (1 << 20) for r in runs])

        ready, one = median(data["ready"]), median(data["one_plus_one"])
        kernel_rate, terminal_rate = rate(data["print"]), rate(data["terminal"])
        summary[transport] = {"ready": ready, "one_plus_one": one, "print_mibps": kernel_rate,
                              "terminal_mibps": terminal_rate}  # fmt: skip
        rows.append([transport, f"{ready:.2f} s", f"{one * 1000:.1f} ms",
                     f"{kernel_rate:.2f}", f"{terminal_rate:.2f}",
                     f"{kernel_rate / terminal_rate:.2f}x"])  # fmt: skip
    print()
    table(["transport", "ready", "1+1 (median)", f"print {mib} MiB: MiB/s", "terminal MiB/s",
           "kernel / terminal"], rows)  # fmt: skip
    summary["local_one_plus_one"] = median(local)
    print(f"\n1+1 on the server's own local python3 kernel (same websocket): "
          f"{median(local) * 1000:.1f} ms (median)")  # fmt: skip
    footer()
    write_json(args, {"summary": summary, "runs": results, "local": local, "mib": mib})
    return 0


if __name__ == "__main__":
    sys.exit(main())
