"""SSM session clients outside the Jupyter server, on sessions of their own: the built-in
client and AWS's session-manager-plugin, as the extension runs them; and a paste measured
through one."""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import sys
import time
from pathlib import Path

from . import REPO
from .measure import CpuMeter
from .terminal import PROMPT, end_pty, pty_until

BUILTIN = "built-in client"
PLUGIN = "session-manager-plugin"


def find_plugin() -> str | None:
    import shutil

    candidates = [os.environ.get("SM_DEBUG_SSM_PLUGIN")]
    for shared in (REPO.parent / "shared", Path("/work/shared")):
        candidates.append(str(shared / "tools/session-manager-plugin/session-manager-plugin"))
    candidates.append(shutil.which("session-manager-plugin"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def ssm_client_process(kind: str, standin, target: str, plugin: str | None) -> tuple:
    """(argv, env) of one client on a fresh session, as the extension runs it."""
    from jupyter_sm_debug.connect.clients import SESSION_VARIABLE

    env = {**os.environ, **standin.client_env(), "TERM": "xterm", "PYTHONPATH": str(REPO)}
    env = fresh_ssm_session(env, ssm_client(standin), target)
    if kind == BUILTIN:
        argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client", "--session-env",
                SESSION_VARIABLE, "--target", target, "--region", standin.region,
                "--endpoint-url", standin.url]  # fmt: skip
    else:
        argv = [plugin, SESSION_VARIABLE, standin.region, "StartSession", "",
                json.dumps({"Target": target}), standin.url]  # fmt: skip
    return argv, env


def upload(argv: list[str], env: dict, kib: int, standin) -> dict:
    """Paste ``kib`` KiB of text lines into ``head -c N | sha256sum`` on the host; seconds
    from the first byte typed to the digest shown (the digest must match)."""
    import threading

    lines = [hashlib.sha256(str(i).encode()).hexdigest()[:63] + "\n" for i in range(kib * 16)]
    data = "".join(lines).encode()
    digest = hashlib.sha256(data).hexdigest().encode()
    _, proc = pty_until(argv, env, PROMPT, timeout=60)
    try:
        os.write(proc.fd, f"stty -echo; head -c {len(data)} | sha256sum; stty echo\r".encode())
        while select.select([proc.fd], [], [], 0.5)[0]:  # until head is reading
            os.read(proc.fd, 65536)
        meter = CpuMeter(client_pid=proc.pid, standin=standin)
        meter.start()
        started = time.perf_counter()

        def type_it() -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(proc.fd, view[:4096]) :]

        writer = threading.Thread(target=type_it, daemon=True)
        writer.start()
        seen = b""
        while digest not in seen:
            if not select.select([proc.fd], [], [], 600)[0]:
                raise TimeoutError("no digest after 600 s")
            chunk = os.read(proc.fd, 65536)
            if not chunk:
                raise EOFError(f"the session ended during the upload: {seen[-300:]!r}")
            seen = seen[-200:] + chunk
            if re.search(rb"\b[0-9a-f]{64}\b", seen) and digest not in seen:
                raise AssertionError("the host got different bytes than were pasted")
        seconds = time.perf_counter() - started
        writer.join(5)
        return {"seconds": seconds, "bytes": len(data), "cpu": meter.stop()}
    finally:
        end_pty(proc)


def fresh_ssm_session(env: dict, ssm, target: str) -> dict:
    """The environment of a built-in SSM client process with a new StartSession answer
    (a session token is good for one client)."""
    from jupyter_sm_debug.connect.clients import SESSION_VARIABLE

    response = ssm.start_session(Target=target)
    response.pop("ResponseMetadata", None)
    return {**env, SESSION_VARIABLE: json.dumps(response)}


def ssm_client(standin):
    """A plain boto3 SSM client on the stand-in (its calls get the latency, as AWS's)."""
    import boto3

    env = standin.client_env()
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=standin.region,
    ).client("ssm", endpoint_url=standin.url)
