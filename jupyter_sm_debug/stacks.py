"""Python stacks of every host of a job at once (py-spy), grouped, the odd one out marked.

On each host one command (argv, no names in it) walks the process tree under the
container's PID 1 — the training and whatever it forked — skipping the ways in (sshd, the
SSM agent, anything on a terminal), and runs ``py-spy dump --json`` on each Python process.
When the container has no py-spy, the static binary from the py-spy wheel installed beside
this extension is sent through the same transport, gzip'd, into the container's temp dir
under a name that carries its digest; later dumps find it there and start at once.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from typing import Optional

from .connect import HostTarget
from .hostrun import ANSWER_BUDGET, run_on_hosts

# ELF e_machine -> `uname -m`
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}
NEED = "SMD_NEED_PY_SPY"
MARK = "SMD_STACKS"

# Runs as `sh -c FIND_AND_DUMP sh <mode> <cache name>`; mode "auto" uses a py-spy on PATH,
# "push" only ours. Prints NEED when neither is there (with `uname -m` and gzip's presence).
FIND_AND_DUMP = r"""
mode=$1 name=$2
cache="${TMPDIR:-/tmp}/$name/py-spy"
spy=
if [ "$mode" = auto ]; then spy=$(command -v py-spy 2>/dev/null); fi
if [ -z "$spy" ] && [ -x "$cache" ]; then spy=$cache; fi
if [ -z "$spy" ]; then
  if command -v gzip >/dev/null 2>&1; then z=gzip; else z=none; fi
  echo "SMD_NEED_PY_SPY $(uname -m) $z"
  exit 3
fi
echo "SMD_STACKS spy $spy"
skip() {
  case "$1" in
    sshd|sshd-session|amazon-ssm-agen*|ssm-agent-work*|ssm-session-wor*) return 0 ;;
    session-manage*|py-spy) return 0 ;;
  esac
  return 1
}
queue=1
while :; do
  set -- $queue
  [ $# -eq 0 ] && break
  p=$1; shift; queue="$*"
  comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
  skip "$comm" && continue
  stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
  set -- ${stat##*) }
  [ "$p" != 1 ] && [ "${5:-0}" != 0 ] && continue  # on a terminal: someone's shell
  exe=$(readlink "/proc/$p/exe" 2>/dev/null)
  case "${exe##*/}" in
    python*)
      echo "SMD_STACKS pid $p ${exe##*/}"
      tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | head -c 300; echo
      "$spy" dump --json --pid "$p" 2>&1
      echo "SMD_STACKS end $p $?"
      ;;
  esac
  queue="$queue $(cat /proc/$p/task/*/children 2>/dev/null)"
done
"""

INSTALL = r"""
dir="${TMPDIR:-/tmp}/$1"
mkdir -p "$dir" && chmod 700 "$dir" || exit 1
if [ "$2" = gzip ]; then gzip -dc > "$dir/py-spy.part"; else cat > "$dir/py-spy.part"; fi || exit 1
chmod 755 "$dir/py-spy.part" && mv "$dir/py-spy.part" "$dir/py-spy" && "$dir/py-spy" --version
"""


@dataclass
class Binary:
    path: str
    arch: str
    digest: str

    @property
    def cache_name(self) -> str:
        return f"sm-debug-py-spy-{self.digest[:16]}"


def elf_arch(path: str) -> Optional[str]:
    with open(path, "rb") as handle:
        head = handle.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return ELF_MACHINES.get(int.from_bytes(head[18:20], "little" if head[5] == 1 else "big"))


@functools.lru_cache(maxsize=1)
def local_py_spy() -> Optional[Binary]:
    """The static py-spy binary of the installed py-spy wheel (its console script)."""
    try:
        files = metadata.distribution("py-spy").files or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.name == "py-spy":
            path = str(entry.locate())
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                return Binary(os.path.realpath(path), elf_arch(path) or "unknown", digest)
    return None


@functools.lru_cache(maxsize=2)
def compressed(path: str) -> bytes:
    with open(path, "rb") as handle:
        return gzip.compress(handle.read(), compresslevel=6)


# -- one host ------------------------------------------------------------------------------


def parse_dump(text: str) -> tuple[Optional[str], list[dict]]:
    """FIND_AND_DUMP's output -> (the py-spy used, [process])."""
    spy, processes = None, []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(MARK + " spy "):
            spy = line[len(MARK) + 5 :]
        match = re.fullmatch(MARK + r" pid (\d+) (\S+)", line)
        if match:
            pid, exe = int(match.group(1)), match.group(2)
            command = lines[i + 1] if i + 1 < len(lines) else ""
            body, i = [], i + 2
            while i < len(lines) and not lines[i].startswith(f"{MARK} end {pid} "):
                body.append(lines[i])
                i += 1
            process = {"pid": pid, "exe": exe, "command": command.strip(), "threads": []}
            try:
                threads = json.loads("\n".join(body))
                process["threads"] = [thread_of(t) for t in threads if isinstance(t, dict)]
            except ValueError:
                process["error"] = "\n".join(body).strip()[:2000] or "py-spy gave no output"
            processes.append(process)
        i += 1
    return spy, processes


def thread_of(raw: dict) -> dict:
    frames = [
        {
            "name": str(f.get("name")),
            "file": str(f.get("short_filename") or f.get("filename")),
            "line": f.get("line") if isinstance(f.get("line"), int) else 0,
        }
        for f in raw.get("frames") or []
        if isinstance(f, dict)
    ]
    return {
        "thread_id": raw.get("thread_id"),
        "name": raw.get("thread_name") or "",
        "active": bool(raw.get("active")),
        "owns_gil": bool(raw.get("owns_gil")),
        "frames": frames,  # innermost first, as py-spy gives them
    }


# -- grouping ----------------------------------------------------------------------------------


def signature(thread: dict) -> tuple:
    return tuple((f["name"], f["file"], f["line"]) for f in thread["frames"])


def headline(frames: list[dict]) -> str:
    if not frames:
        return "(no Python frames)"
    top = frames[0]
    return f"{top['name']} at {top['file']}:{top['line']}"


def group(hosts: dict[str, dict]) -> list[dict]:
    """Identical stacks across hosts as one group each; the odd ones marked `outlier`.

    A host's fingerprint is the multiset of its stacks. When most hosts share one
    fingerprint, a stack seen only on the other hosts is an outlier (the rank that does
    something else while the rest wait). With no majority (one host, or all alike), a stack
    that only one thread has, beside a stack that starts the same way and many threads
    share, is the outlier.
    """
    members: dict[tuple, list[dict]] = {}
    fingerprints: dict[str, tuple] = {}
    frames_of: dict[tuple, list[dict]] = {}
    for host, answer in hosts.items():
        seen = []
        for process in answer.get("processes", []):
            for thread in process.get("threads", []):
                key = signature(thread)
                frames_of[key] = thread["frames"]
                members.setdefault(key, []).append(
                    {"host": host, "pid": process["pid"], "thread": thread["name"]}
                )
                seen.append(key)
        if answer.get("processes"):
            fingerprints[host] = tuple(sorted(Counter(seen).items()))
    majority: set[str] = set()
    counts = Counter(fingerprints.values())
    if len(counts) > 1:
        (common, n), *rest = counts.most_common()
        if n > rest[0][1]:
            majority = {h for h, f in fingerprints.items() if f == common}
    outliers = set()
    if majority:
        for key, who in members.items():
            if not any(m["host"] in majority for m in who):
                outliers.add(key)
    else:
        for key, who in members.items():
            if len(who) != 1:
                continue
            entry = key[-3:]  # outermost frames: the same program, the same kind of thread
            if any(other[-3:] == entry and len(m) >= 3 for other, m in members.items()):
                outliers.add(key)
    groups = [
        {
            "headline": headline(frames_of[key]),
            "frames": frames_of[key],
            "members": who,
            "hosts": sorted({m["host"] for m in who}, key=host_order),
            "count": len(who),
            "outlier": key in outliers,
        }
        for key, who in members.items()
    ]
    groups.sort(key=lambda g: (not g["outlier"], -g["count"], g["headline"]))
    return groups


def host_order(host: str) -> int:
    return int(host.rsplit("-", 1)[-1])


def hosts_text(hosts: list[str]) -> str:
    """algo-1, algo-2, algo-3, algo-5 -> 'algo-1..3, algo-5'."""
    numbers = sorted(host_order(h) for h in hosts)
    runs, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            runs.append(f"algo-{start}" if start == n else f"algo-{start}..{n}")
            start = None
    return ", ".join(runs)


# -- the feature --------------------------------------------------------------------------------


def output_limit(hosts: int) -> int:
    """Bytes of a host's dump kept: the answer repeats a dump up to three times (per host,
    grouped, as text), so a quarter of the /run budget's share per host."""
    return max(64 * 1024, ANSWER_BUDGET // (4 * max(1, hosts)))


async def dump(targets: list[HostTarget], timeout: float) -> dict:
    first = targets[0]
    mode = first.config.stacks_py_spy
    binary = local_py_spy()
    name = binary.cache_name if binary else "sm-debug-py-spy-none"
    argv = ["sh", "-c", FIND_AND_DUMP, "sh", mode, name]
    limit = output_limit(len(targets))
    results = await run_on_hosts(targets, argv, timeout, output_limit=limit)
    answers: dict[str, dict] = {}
    need = {}
    for host, result in results.items():
        text = result.stdout.decode(errors="replace")
        if result.exit_code == 3 and NEED in text:
            need[host] = text[text.index(NEED) :].split()[1:3]
        answers[host] = answer_of(result, text)
    if need:
        lacking = [t for t in targets if t.host in need]
        await push(lacking, timeout, binary, need, answers)
        again = [t for t in lacking if answers[t.host].get("py_spy") == "pushed"]
        if again:
            results = await run_on_hosts(again, argv, timeout, output_limit=limit)
            for host, result in results.items():
                answers[host] = {
                    **answer_of(result, result.stdout.decode(errors="replace")),
                    "py_spy": "pushed",
                }
    groups = group(answers)
    for entry in groups:
        entry["hosts_text"] = hosts_text(entry["hosts"])
    return {
        "job": first.job,
        "transport": first.transport,
        "hosts": answers,
        "groups": groups,
        "outliers": [g["hosts_text"] + ": " + g["headline"] for g in groups if g["outlier"]],
        "text": as_text(groups, answers),
    }


def answer_of(result, text: str) -> dict:
    answer = {"seconds": round(result.seconds, 3)}
    if result.error:
        answer["error"] = result.error
        return answer
    if result.timed_out:
        answer["error"] = {
            "code": "timed_out",
            "message": "The host did not answer within the timeout.",
            "hint": "A host under heavy load may need a longer timeout.",
        }
        return answer
    if result.exit_code == 3 and NEED in text:
        answer["py_spy"] = "missing"
        return answer
    spy, processes = parse_dump(text)
    answer["py_spy"] = spy and ("container" if "sm-debug-py-spy-" not in spy else "cached")
    answer["processes"] = processes
    if result.exit_code != 0:
        answer["error"] = {
            "code": "dump_failed",
            "message": f"The stack dump ended with exit code {result.exit_code}: "
            + result.stderr.decode(errors="replace").strip()[-300:],
            "hint": "py-spy needs ptrace: the attach user must be root or have "
            "CAP_SYS_PTRACE in the container.",
        }
    elif not processes:
        answer["note"] = "No Python process runs under the container's PID 1."
    return answer


async def push(targets: list[HostTarget], timeout, binary, need, answers):
    """Send our py-spy to the hosts that lack one (same architecture only)."""
    if binary is None:
        for host in need:
            answers[host]["error"] = {
                "code": "py_spy_unavailable",
                "message": "The container has no py-spy and neither has the Jupyter server.",
                "hint": "pip install py-spy beside jupyter-sm-debug (it is a dependency).",
            }
        return
    by_kind: dict[tuple, list[HostTarget]] = {}
    for target in targets:
        host, (arch, gz) = target.host, need[target.host]
        if arch != binary.arch:
            answers[host]["error"] = {
                "code": "py_spy_wrong_arch",
                "message": f"The container is {arch}, and the py-spy beside the Jupyter server "
                f"is for {binary.arch}; no {arch} py-spy is available to send.",
                "hint": f"Install py-spy in the image, or run JupyterLab on an {arch} machine.",
            }
            continue
        by_kind.setdefault((gz,), []).append(target)
    loop = asyncio.get_running_loop()
    for (gz,), kind in by_kind.items():
        if gz == "gzip":
            data = await loop.run_in_executor(None, compressed, binary.path)
        else:
            with open(binary.path, "rb") as handle:
                data = handle.read()
        argv = ["sh", "-c", INSTALL, "sh", binary.cache_name, gz]
        results = await run_on_hosts(kind, argv, max(timeout, 60.0), data, 64 * 1024)
        for host, result in results.items():
            if result.exit_code == 0:
                answers[host]["py_spy"] = "pushed"
            else:
                answers[host]["error"] = result.error or {
                    "code": "py_spy_push_failed",
                    "message": "Sending py-spy to the host failed: "
                    + (result.stderr.decode(errors="replace").strip()[-300:] or "timed out"),
                    "hint": "Check that the container's temp dir is writable.",
                }


def as_text(groups: list[dict], answers: dict[str, dict]) -> str:
    """The grouped stacks as plain text (the view's "copy as text")."""
    out = []
    for entry in groups:
        flag = "  <-- OUTLIER" if entry["outlier"] else ""
        count = f"{entry['count']} thread{'s' if entry['count'] != 1 else ''}"
        out.append(f"== {entry['hosts_text']} ({count}): {entry['headline']}{flag}")
        for frame in entry["frames"]:
            out.append(f"    {frame['name']} ({frame['file']}:{frame['line']})")
        out.append("")
    for host, answer in answers.items():
        if answer.get("error"):
            out.append(f"!! {host}: {answer['error']['message']}")
    return "\n".join(out)
