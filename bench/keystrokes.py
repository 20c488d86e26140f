"""Keystrokes: what a user feels over SSM and SSH, beyond bulk throughput.

    python bench/keystrokes.py [--quick] [--latency MS] [--json FILE] [--samples N]

Against a stand-in host (the built-in SSM client and ssh, each in a raw PTY, as the
extension runs them):
- echo latency: one character typed at the shell's prompt until its echo is read, through
  the built-in SSM client (and, for comparison, ssh and AWS's session-manager-plugin when
  present: the floor of the stand-in's own data path), against a local bash in a raw PTY
  (median of --samples), at 0 ms and at --latency;
- paste: 100 KiB of text lines into `head -c N | sha256sum` on the host, until the right
  digest shows (whole and in order);
- Ctrl-C: `yes` runs until its output flows, then ^C; seconds until the prompt is back,
  and then no more `yes` output (SSH and SSM).

--latency is a round trip on the network too, not only on AWS API calls: the stand-in's
channel_latency fault holds every SSM data-channel message half of it each way, and ssh
connects through a proxy that holds every byte half of it each way (`DelayProxy`).
"""

from __future__ import annotations

import os
import select
import statistics
import sys
import time

from common.network import DelayProxy
from common.procs import Cleanup
from common.report import footer, header, ms, parser, table, write_json
from common.ssmclients import BUILTIN, PLUGIN, find_plugin, ssm_client_process, upload
from common.standin import standin_with_hosts
from common.terminal import PROMPT, end_pty, pty_until

JOB = "bench-keys"


def drain(fd: int, quiet: float = 0.3) -> None:
    """Read until nothing arrives for `quiet` seconds."""
    while select.select([fd], [], [], quiet)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def read_for(fd: int, wanted: bytes, timeout: float) -> float:
    """Seconds until `wanted` is read (perf_counter at the read holding it)."""
    seen, deadline = b"", time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError(f"{wanted!r} not seen in {timeout} s; got {seen[-200:]!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise EOFError(f"the session ended; got {seen[-200:]!r}")
        seen = seen[-4096:] + chunk
        if wanted in seen:
            return time.perf_counter()


def echo_times(argv: list[str], env: dict, samples: int) -> list[float]:
    """Type one letter at a time at the prompt; seconds from the write to its echo."""
    _, proc = pty_until(argv, env, PROMPT, timeout=60)
    try:
        drain(proc.fd)
        times = []
        for index in range(samples):
            letter = "abcdefghijklmnopqrstuvwxyz"[index % 26].encode()
            started = time.perf_counter()
            os.write(proc.fd, letter)
            times.append(read_for(proc.fd, letter, 10) - started)
            time.sleep(0.02)  # a typist's pace: one key at a time
        os.write(proc.fd, b"\x15")  # Ctrl-U: the line is thrown away
        return times
    finally:
        end_pty(proc)


def interrupt(argv: list[str], env: dict) -> dict:
    """Seconds from ^C to the prompt while `yes` floods the terminal: the flood must be
    flowing when ^C is typed, and no `yes` output may follow the prompt."""
    _, proc = pty_until(argv, env, PROMPT, timeout=60)
    try:
        drain(proc.fd)
        os.write(proc.fd, b"yes\r")
        read_for(proc.fd, b"y\r\ny\r\ny\r\n", 10)
        flowing, last = 0, 0  # bytes of `yes` read in the 0.5 s, and in its last 0.1 s
        flowing_until = time.monotonic() + 0.5  # let the output run a while
        while time.monotonic() < flowing_until:
            if select.select([proc.fd], [], [], 0.05)[0]:
                got = len(os.read(proc.fd, 65536))
                flowing += got
                last += got if flowing_until - time.monotonic() < 0.1 else 0
        if not last:
            raise AssertionError("`yes` output was not flowing when ^C was to be typed")
        started = time.perf_counter()
        os.write(proc.fd, b"\x03")
        text, drained, deadline = "", 0, time.monotonic() + 30
        while time.monotonic() < deadline:
            if not select.select([proc.fd], [], [], deadline - time.monotonic())[0]:
                break
            chunk = os.read(proc.fd, 65536)
            if not chunk:
                break
            drained += len(chunk)
            text = (text + chunk.decode("utf-8", "replace"))[-4096:]
            match = PROMPT.search(text)
            if match:
                seconds = time.perf_counter() - started
                # `yes` is gone: nothing but the prompt's line follows in the next 0.5 s.
                after, until = text[match.end() :], time.monotonic() + 0.5
                while time.monotonic() < until:
                    if select.select([proc.fd], [], [], 0.05)[0]:
                        after += os.read(proc.fd, 65536).decode("utf-8", "replace")
                if "y\r\n" in after:
                    raise AssertionError(f"`yes` still runs after the prompt: {after[-200:]!r}")
                return {"seconds": seconds, "flowing_bytes": flowing, "drained_bytes": drained}
        raise TimeoutError(f"no prompt within 30 s of ^C; got {text[-200:]!r}")
    finally:
        end_pty(proc)


def p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * len(values))]


def ssh_argv(standin, stack, one_way: float = 0.0) -> tuple[list[str], dict]:
    """ssh to algo-1; with one_way > 0, through a DelayProxy with that delay each way."""
    addr, port = standin.host_address(JOB, "algo-1")
    if one_way > 0:
        addr, port = DelayProxy(stack, (addr, port), one_way).address
    argv = ["ssh", "-tt", "-F", "/dev/null", "-i", str(standin.client_key_path),
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-p", str(port),
            "-l", standin.ssh_user, addr]  # fmt: skip
    return argv, {**os.environ, "TERM": "xterm"}


def local_shell() -> tuple[list[str], dict]:
    """The raw-PTY baseline: bash with the stand-in hosts' prompt, no rc files."""
    return ["bash", "--norc", "--noprofile", "-i"], {
        **os.environ,
        "TERM": "xterm",
        "PS1": r"bench@algo-0:\w# ",
    }


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=None, help="keystrokes per side (40)")
    args = ap.parse_args()
    samples = args.samples or (8 if args.quick else 40)
    rounds = 1 if args.quick else 3
    latency = args.latency / 1000
    header("keystrokes: echo, paste, Ctrl-C", args)
    target = f"sagemaker-training-job:{JOB}_algo-1"
    with Cleanup() as stack:
        standin = standin_with_hosts(stack)
        if standin is None:
            return 1
        # One host per kind of measurement: a session killed mid-paste leaves nothing behind.
        standin.create_job(JOB, instance_count=3, remote_debug=True, started_ago=600)
        results: dict = {"echo": {}, "paste": [], "interrupt": {"ssh": [], "ssm": []}}
        plugin = find_plugin()
        for faults in (0.0, latency):
            standin.set_faults(latency=faults, channel_latency=faults)
            echo: dict = {"raw": [], "ssm": [], "ssh": [], **({"plugin": []} if plugin else {})}
            for _ in range(rounds):  # alternated, so all see the same machine load
                echo["raw"] += echo_times(*local_shell(), samples)
                echo["ssm"] += echo_times(
                    *ssm_client_process(BUILTIN, standin, target, None), samples
                )
                echo["ssh"] += echo_times(*ssh_argv(standin, stack, faults / 2), samples)
                if plugin:
                    echo["plugin"] += echo_times(
                        *ssm_client_process(PLUGIN, standin, target, plugin), samples
                    )
            results["echo"][f"{faults * 1000:g}"] = echo
        standin.set_faults(latency=latency, channel_latency=latency)
        for _ in range(rounds):
            results["interrupt"]["ssm"].append(
                interrupt(*ssm_client_process(BUILTIN, standin, target[:-1] + "3", None))
            )
            argv, env = ssm_client_process(BUILTIN, standin, target[:-1] + "2", None)
            results["paste"].append(upload(argv, env, 100, standin))
            results["interrupt"]["ssh"].append(interrupt(*ssh_argv(standin, stack, latency / 2)))

    med = statistics.median
    zero, at = results["echo"]["0"], results["echo"][f"{latency * 1000:g}"]
    raw0, ssm0 = med(zero["raw"]), med(zero["ssm"])
    rawl, ssml = med(at["raw"]), med(at["ssm"])
    paste = max(r["seconds"] for r in results["paste"])
    int_ssh = max(r["seconds"] for r in results["interrupt"]["ssh"])
    int_ssm = max(r["seconds"] for r in results["interrupt"]["ssm"])
    print()
    table(["", "median", "p90", "raw PTY median"], [
        [f"{kind} echo, {label}", ms(med(data[key])), ms(p90(data[key])), ms(med(data["raw"]))]
        for label, data in (("0 ms", zero), (f"{args.latency:g} ms round trip", at))
        for kind, key in (("SSM", "ssm"), ("SSM (AWS's plugin)", "plugin"), ("SSH", "ssh"))
        if key in data
    ])  # fmt: skip
    print(
        f"100 KiB paste over SSM (worst of {rounds}): {paste:.2f} s; "
        f"Ctrl-C to prompt (worst of {rounds}): SSH {int_ssh:.2f} s, SSM {int_ssm:.2f} s"
    )
    for kind in ("ssh", "ssm"):
        print(f"  {kind}: `yes` bytes read in the 0.5 s before ^C / between ^C and the prompt: "
              + ", ".join(f"{r['flowing_bytes']} / {r['drained_bytes']}"
                          for r in results["interrupt"][kind]))  # fmt: skip
    goals = {
        "echo_0": {"measured": f"{ms(ssm0)} (raw PTY {ms(raw0)})",
                   "target": f"<= {ms(raw0 + 0.005)}", "met": ssm0 <= raw0 + 0.005},
        "echo_latency": {"measured": f"{ms(ssml)} (raw PTY {ms(rawl)})",
                         "target": f"<= {ms(latency + 0.005)}", "met": ssml <= latency + 0.005,
                         "note": f"{args.latency:g} ms round trip on the data channel"},
        "paste": {"measured": f"{paste:.2f} s", "target": "<= 2 s", "met": paste <= 2.0},
        "interrupt_ssh": {"measured": f"{int_ssh:.2f} s", "target": "<= 1 s",
                          "met": int_ssh <= 1.0},
        "interrupt_ssm": {"measured": f"{int_ssm:.2f} s", "target": "<= 1 s",
                          "met": int_ssm <= 1.0},
    }  # fmt: skip
    for key, goal in goals.items():
        print(
            f"goal {key}: {'met' if goal['met'] else 'NOT met'} ({goal['measured']}, "
            f"target {goal['target']}){' ' + goal['note'] if 'note' in goal else ''}"
        )
    footer()
    write_json(args, {"results": results, "goals": goals})
    return 0


if __name__ == "__main__":
    sys.exit(main())
