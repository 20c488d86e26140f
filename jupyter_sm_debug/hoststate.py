"""What a host is doing: GPUs (nvidia-smi), load, memory, the disk of /opt/ml, top processes.

One fixed command per host (no names in it); its sections are parsed here into JSON.
"""

from __future__ import annotations

from .connect import HostTarget
from .errors import SMDebugError
from .hostrun import run_on_hosts

GPU_FIELDS = ("index", "name", "utilization.gpu", "memory.used", "memory.total", "temperature.gpu")
MARK = "SMD_STATE"
STATE_SCRIPT = f"""
echo "{MARK} gpu"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu={",".join(GPU_FIELDS)} --format=csv,noheader,nounits 2>&1
  echo "{MARK} gpu_rc $?"
else
  echo "{MARK} gpu_rc 127"
fi
echo "{MARK} load"; cat /proc/loadavg 2>/dev/null
echo "{MARK} cpus"; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
echo "{MARK} mem"; grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo
echo "{MARK} disk"; df -Pk /opt/ml 2>/dev/null | tail -n 1
echo "{MARK} ps"
ps -eo pid,ppid,user,pcpu,pmem,rss,etime,args --sort=-pcpu 2>/dev/null | head -n 11
echo "{MARK} end"
"""
ARGV = ["sh", "-c", STATE_SCRIPT]
# The script prints a few KiB (ten processes, their commands cut to 500 characters on
# parsing): more is a host that misbehaves, cut while it is read.
OUTPUT_LIMIT = 256 * 1024


def sections(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(MARK + " "):
            name, _, rest = line[len(MARK) + 1 :].partition(" ")
            current = name
            found.setdefault(name, [])
            if rest:
                found[name].append(rest)
        elif current is not None:
            found[current].append(line)
    return found


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def parse(text: str) -> dict:
    parts = sections(text)
    state: dict = {}
    rc = (parts.get("gpu_rc") or ["127"])[0].strip()
    if rc == "127":
        state["gpus"] = []
        state["gpu_note"] = "No GPU: nvidia-smi is not installed on this host."
    elif rc != "0":
        state["gpus"] = []
        state["gpu_note"] = "nvidia-smi failed: " + " ".join(parts.get("gpu", []))[:300]
    else:
        gpus = []
        for line in parts.get("gpu", []):
            cells = [c.strip() for c in line.split(",")]
            if len(cells) != len(GPU_FIELDS):
                continue
            row = dict(zip(GPU_FIELDS, cells))
            gpus.append({
                "index": _number(row["index"]),
                "name": row["name"],
                "utilization_percent": _number(row["utilization.gpu"]),
                "memory_used_mib": _number(row["memory.used"]),
                "memory_total_mib": _number(row["memory.total"]),
                "temperature_c": _number(row["temperature.gpu"]),
            })  # fmt: skip
        state["gpus"] = gpus
        if not gpus:
            state["gpu_note"] = "No GPU: nvidia-smi lists none."
    load = (parts.get("load") or [""])[0].split()
    state["load"] = [_number(v) for v in load[:3]] if len(load) >= 3 else None
    cpus = (parts.get("cpus") or [""])[0].strip()
    state["cpus"] = int(cpus) if cpus.isdigit() else None
    memory = {}
    for line in parts.get("mem", []):
        key, _, value = line.partition(":")
        number = value.split()[0] if value.split() else ""
        if number.isdigit():
            memory[key.strip()] = int(number) * 1024
    state["memory"] = {
        "total_bytes": memory.get("MemTotal"),
        "available_bytes": memory.get("MemAvailable"),
        "swap_total_bytes": memory.get("SwapTotal"),
        "swap_free_bytes": memory.get("SwapFree"),
    }
    disk = (parts.get("disk") or [""])[0].split()
    if len(disk) >= 6 and disk[1].isdigit():
        state["disk"] = {
            "path": "/opt/ml",
            "filesystem": disk[0],
            "total_bytes": int(disk[1]) * 1024,
            "used_bytes": int(disk[2]) * 1024,
            "available_bytes": int(disk[3]) * 1024,
            "mounted_on": disk[5],
        }
    else:
        state["disk"] = None
    processes = []
    for line in (parts.get("ps") or [])[1:]:
        cells = line.split(None, 7)
        if len(cells) == 8 and cells[0].isdigit():
            processes.append({
                "pid": int(cells[0]), "ppid": _number(cells[1]), "user": cells[2],
                "cpu_percent": _number(cells[3]), "memory_percent": _number(cells[4]),
                "rss_bytes": (_number(cells[5]) or 0) * 1024, "elapsed": cells[6],
                "command": cells[7][:500],
            })  # fmt: skip
    state["processes"] = processes
    return state


async def host_state(target: HostTarget, timeout: float) -> dict:
    host = target.host
    results = await run_on_hosts([target], ARGV, timeout, output_limit=OUTPUT_LIMIT)
    result = results[host]
    answer = {"job": target.job, "host": host, "transport": target.transport,
              "seconds": round(result.seconds, 3)}  # fmt: skip
    if result.timed_out:
        raise SMDebugError(
            504,
            "host_not_answering",
            f"{host} did not answer within {timeout:g} s.",
            "Retry; a host under heavy load may need a longer timeout.",
        )
    if result.error:
        error = result.error
        raise SMDebugError(409, error["code"], error["message"], error.get("hint", ""))
    return {**answer, **parse(result.stdout.decode(errors="replace"))}
