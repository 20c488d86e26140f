"""A host's files through the REST routes: list 1,000 entries, open and save 1 MiB, and a
100 MiB download against `cat` of the same file over the same transport, with the server's
RSS sampled during the download.

    python bench/files.py [--quick] [--latency MS] [--mib N] [--rounds N] [--only ssh,ssm]

A real `jupyter server` with the extension and a stand-in host. --latency (default 50 ms)
is the AWS API's latency and, as in keystrokes.py, each transport's round trip: the SSM
data channel's (the stand-in's channel_latency fault) and SSH's TCP, which goes through a
DelayProxy (c.SMDebug.ssh_addresses points the server at it; the pinned host key is the
host's own). The baseline in the same run: SSH, `ssh host cat FILE` through the same
proxy, read from its stdout; SSM, a port session (the transport's forward, the files
agent's channel) to a program in the host that writes the file once, read through
connect.open_stream. Each figure is the median of --rounds requests after one that opens
the file session (reported apart).
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import threading
import time

from common.network import DelayProxy
from common.procs import Cleanup, rss_kib
from common.report import footer, header, parser, table, write_json
from common.server import JupyterServer, attach_args
from common.standin import server_environment, standin_with_hosts

JOB = "bench-files"
HOME = "/tmp/bench-files"  # noqa: S108 - the host's own /tmp
SERVE_ONCE = (
    "import socket,sys\n"
    "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1)\n"
    "print(s.getsockname()[1], flush=True)\n"
    "c,_=s.accept(); f=open(sys.argv[1],'rb')\n"
    "while True:\n"
    "    b=f.read(1<<20)\n"
    "    if not b: break\n"
    "    c.sendall(b)\n"
    "c.close()\n"
)


class RssSampler:
    """The server's VmRSS every 20 ms in a thread: before, and the peak while running."""

    def __init__(self, pid: int):
        self.pid, self.before = pid, rss_kib(pid)
        self.peak, self.samples = self.before, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))
            self.samples += 1

    def stop(self) -> dict:
        """KiB before and at the peak, the samples, and the growth in MiB."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))
        return {"before_kib": self.before, "peak_kib": self.peak, "samples": self.samples,
                "growth_mib": (self.peak - self.before) / 1024}  # fmt: skip


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def prepare(http, mib: int) -> None:
    """On the host: 1,000 empty files, a 1 MiB text file, a `mib` MiB binary file."""
    shell = (
        f"rm -rf {HOME} && mkdir -p {HOME}/list && cd {HOME} && "
        'python3 -c \'import os\nfor i in range(1000): open("list/f%04d.txt" % i, "w")\' && '
        'python3 -c \'import sys; sys.stdout.write(("x" * 1023 + "\\n") * 1024)\' > text && '
        f"head -c {mib << 20} /dev/urandom > big && sync"
    )
    body = {"shell": shell, "hosts": ["algo-1"], "transport": "ssh", "timeout": 600}
    answer = http.ok("POST", f"sm-debug/jobs/{JOB}/run", body)
    result = answer["hosts"]["algo-1"]
    if result["exit_code"] != 0:
        raise RuntimeError(f"preparing the host failed: {result}")


def rest_numbers(server: JupyterServer, transport: str, rounds: int) -> dict:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"token {server.token}"
    base = f"{server.url}/sm-debug/jobs/{JOB}/hosts/algo-1/files{HOME}"

    def get(path: str, **params) -> requests.Response:
        response = session.get(f"{base}/{path}", params={"transport": transport, **params},
                               timeout=600)  # fmt: skip
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response

    first = timed(lambda: get("list"))
    listing = get("list").json()
    assert len(listing["content"]) == 1000, len(listing["content"])
    text = get("text").json()["content"]
    assert len(text) == 1 << 20
    body = {"type": "file", "format": "text", "content": text}

    def save() -> None:
        response = session.put(f"{base}/saved", params={"transport": transport}, json=body,
                               timeout=600)  # fmt: skip
        assert response.status_code in (200, 201), response.text[:300]

    results = {
        "first_request_seconds": first,
        "list_1000_seconds": statistics.median(timed(lambda: get("list")) for _ in range(rounds)),
        "open_1mib_seconds": statistics.median(timed(lambda: get("text")) for _ in range(rounds)),
        "save_1mib_seconds": statistics.median(timed(save) for _ in range(rounds)),
    }
    return results


def download(server: JupyterServer, transport: str, mib: int) -> dict:
    """One streamed download=1 of the big file: MiB/s and the server's RSS meanwhile."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"token {server.token}"
    url = f"{server.url}/sm-debug/jobs/{JOB}/hosts/algo-1/files{HOME}/big"
    sampler = RssSampler(server.proc.pid)
    started = time.perf_counter()
    got = 0
    with session.get(url, params={"transport": transport, "download": 1}, stream=True,
                     timeout=1800) as response:  # fmt: skip
        assert response.status_code == 200, response.status_code
        for chunk in response.iter_content(1 << 20):
            got += len(chunk)
    seconds = time.perf_counter() - started
    assert got == mib << 20, got
    return {"mib_s": mib / seconds, "rss": sampler.stop()}


def ssh_cat_rate(standin, address: tuple[str, int], mib: int) -> float:
    """MiB/s of `cat` of the big file over ssh (through the same proxy) read from stdout."""
    argv = ["ssh", "-F", "/dev/null", "-i", str(standin.client_key_path),
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-p", str(address[1]), "-l", standin.ssh_user, address[0],
            f"cat {HOME}/big"]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    got = 0
    while chunk := proc.stdout.read(1 << 20):
        got += len(chunk)
    proc.wait()
    assert got == mib << 20, got
    return mib / (time.perf_counter() - started)


async def ssm_cat_rate(standin, mib: int) -> float:
    """MiB/s of the big file written once by a program in the host into an SSM port session
    (the transport's forward), read through connect.open_stream."""
    from jupyter_sm_debug.config import SMDebug
    from jupyter_sm_debug.connect import HostTarget, open_stream
    from jupyter_sm_debug.connect.registry import get_transport
    from jupyter_sm_debug.jobs import JobsService

    config = SMDebug(ssh_key=str(standin.client_key_path), ssh_user=standin.ssh_user)
    jobs = JobsService(config, logging.getLogger("bench"))
    try:
        description = await jobs.describe(JOB, fresh=True)
        target = HostTarget(job=JOB, host="algo-1", description=description, config=config,
                            jobs=jobs, transport="ssm")  # fmt: skip
        ssm = get_transport("ssm", "run")
        # The server in the host, started by a run that returns once it printed its port.
        start = (f"rm -f {HOME}/port; nohup python3 -c \"$0\" {HOME}/big < /dev/null "
                 f"> {HOME}/port 2>/dev/null & "
                 f"while [ ! -s {HOME}/port ]; do sleep 0.05; done; cat {HOME}/port")  # fmt: skip
        result = await ssm.run(target, ["sh", "-c", start, SERVE_ONCE], 60)
        port = int(result.stdout.split()[0])
        tunnel = await get_transport("ssm", "forward").forward(target, port)
        try:
            reader, writer = await open_stream(tunnel)
            started = time.perf_counter()
            got = 0
            while chunk := await reader.read(1 << 20):
                got += len(chunk)
            seconds = time.perf_counter() - started
            writer.close()
        finally:
            await tunnel.close()
        assert got == mib << 20, got
        return mib / seconds
    finally:
        jobs.close()


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=None, help="download size (100)")
    ap.add_argument("--rounds", type=int, default=None, help="requests per figure (7)")
    ap.add_argument("--downloads", type=int, default=None, help="downloads and cats each (3)")
    ap.add_argument("--only", default="ssh,ssm", help="transports (ssh,ssm)")
    args = ap.parse_args()
    mib = args.mib or (8 if args.quick else 100)
    rounds = args.rounds or (2 if args.quick else 7)
    downloads_rounds = args.downloads or (1 if args.quick else 3)
    latency = args.latency / 1000
    transports = [t for t in ("ssh", "ssm") if t in args.only.split(",")]
    header("files: list, open, save, download", args)
    results: dict = {"latency_ms": args.latency, "mib": mib}
    with Cleanup() as stack:
        standin = standin_with_hosts(stack)
        if standin is None:
            return 1
        standin.create_job(JOB, instance_count=1, remote_debug=True, started_ago=600)
        address = standin.host_address(JOB, "algo-1")
        if latency > 0:
            address = DelayProxy(stack, address, latency / 2).address
        ssh_address = f'{{"{JOB}": {{"algo-1": "{address[0]}:{address[1]}"}}}}'
        server = JupyterServer(stack, server_environment(standin),
                               args=[*attach_args(standin),
                                     f"--SMDebug.ssh_addresses={ssh_address}"])  # fmt: skip
        server.wait_ready()
        http = server.http()
        http.ok("GET", f"sm-debug/jobs/{JOB}")
        print("preparing the host", flush=True)
        prepare(http, mib)
        standin.set_faults(latency=latency, channel_latency=latency)
        os.environ.update(standin.client_env())  # this process's own SSM port session
        rows = []
        for transport in transports:
            print(f"measuring {transport} through REST", flush=True)
            got = rest_numbers(server, transport, rounds)
            # The download and the transport's cat alternated, the medians compared: the
            # machine's load moves both.
            downloads, cats = [], []
            for n in range(downloads_rounds):
                print(f"measuring {transport} download and cat, round {n + 1}", flush=True)
                downloads.append(download(server, transport, mib))
                if transport == "ssh":
                    cats.append(ssh_cat_rate(standin, address, mib))
                else:
                    cats.append(asyncio.run(ssm_cat_rate(standin, mib)))
            got["download_mib_s"] = statistics.median(d["mib_s"] for d in downloads)
            got["cat_mib_s"] = statistics.median(cats)
            got["download_vs_cat"] = got["download_mib_s"] / got["cat_mib_s"]
            got["download_rss_growth_mib"] = max(d["rss"]["growth_mib"] for d in downloads)
            got["downloads"], got["cats"] = downloads, cats
            results[transport] = got
            rows.append([
                transport, f"{got['first_request_seconds']:.2f} s",
                f"{got['list_1000_seconds'] * 1000:.0f} ms",
                f"{got['open_1mib_seconds'] * 1000:.0f} ms",
                f"{got['save_1mib_seconds'] * 1000:.0f} ms",
                f"{got['download_mib_s']:.1f} MiB/s", f"{got['cat_mib_s']:.1f} MiB/s",
                f"{got['download_vs_cat'] * 100:.0f} %",
                f"{got['download_rss_growth_mib']:.1f} MiB",
            ])  # fmt: skip
        table(["transport", "first (opens)", "list 1,000", "open 1 MiB", "save 1 MiB",
               f"download {mib} MiB", "cat", "vs cat", "server RSS +"], rows)  # fmt: skip
    footer()
    write_json(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
