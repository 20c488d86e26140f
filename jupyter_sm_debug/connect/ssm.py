"""SSM transport: SageMaker remote debug sessions through AWS Systems Manager.

The server calls StartSession itself, so a host that SSM cannot reach is a clear 409 before
any terminal opens, then hands the session (StreamUrl + TokenValue) to the session client
through an environment variable — never an argv, which any local user could read with ps.
The client is AWS's session-manager-plugin when installed and new enough to read that
variable (1.2.536.0 and later), else the built-in one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..description import attach_state
from ..errors import SMDebugError
from . import RUN_OUTPUT_LIMIT, AttachRequest, CannotAttach, RunResult, Session, base_environment

SESSION_VARIABLE = "AWS_SSM_START_SESSION_RESPONSE"  # the name the plugin itself accepts
PLUGIN = "session-manager-plugin"
# The first plugin release that reads the StartSession response from a named variable.
ENV_VARIABLE_SINCE = (1, 2, 536, 0)
VERSION_TIMEOUT = 5.0
_VERSION = re.compile(rb"\b(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?\b")
# Where the session clients (ours, the watcher) import jupyter_sm_debug from: this copy.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def target_id(job: str, host: str) -> str:
    return f"sagemaker-training-job:{job}_{host}"


def aws_environment() -> dict[str, str]:
    """What a client needs to call AWS (TerminateSession) like the server does: profile,
    region, endpoint, and the credential sources (keys, container/role credentials), plus
    the trust store settings that real AWS tools honour (a proxy's or a private CA)."""
    names = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("AWS_") or name in names
    }


# ---------------------------------------------------------------------------- plugin version

_versions: dict[tuple[str, float, int], tuple[int, ...] | None] = {}
_versions_lock = threading.Lock()


def plugin_version(path: str) -> tuple[int, ...] | None:
    """``session-manager-plugin --version`` as a tuple, cached per binary (path, mtime,
    size); None when it does not answer with a version."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_mtime, st.st_size)
    with _versions_lock:
        if key in _versions:
            return _versions[key]
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argv, the binary found on PATH
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=VERSION_TIMEOUT,
            env=base_environment(),
            check=False,
        )
        match = _VERSION.search(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        match = None
    version = tuple(int(g) for g in match.groups("0")) if match else None
    with _versions_lock:
        _versions[key] = version
    return version


def version_text(version: tuple[int, ...] | None) -> str:
    return ".".join(map(str, version)) if version else "unknown"


async def start_session(request: AttachRequest, params: dict) -> dict:
    """StartSession for any SSM verb (attach, run, forward), its refusals said plainly."""
    try:
        return await request.jobs.call("ssm", "start_session", **params)
    except SMDebugError as error:
        if "TargetNotConnected" in error.message or "not connected" in error.message:
            raise CannotAttach(
                "target_not_connected",
                f"SSM cannot reach {request.host} of {request.job} yet.",
                "SSM registers a host a minute or two after training starts: wait and "
                "retry. If it persists, check that the job's role allows ssmmessages:*.",
            ) from None
        if "(InvalidDocument)" in error.message:
            raise CannotAttach(
                "invalid_document",
                f"SSM cannot start a session with document {params.get('DocumentName')}: "
                f"{error.message}",
                "Name a SessionManagerRunShell-type (Standard_Stream) session document that "
                "exists in this account and region, or leave c.SMDebug.ssm_document unset.",
                status=400,
            ) from None
        raise


@dataclass
class ClientChoice:
    kind: str | None  # "plugin", "builtin", or None (none usable)
    plugin: str | None = None  # the plugin's path when one is on PATH
    version: tuple[int, ...] | None = None
    problem: dict | None = None  # why a plugin on PATH is not used: {code, message, hint}


def choose_client(preference: str) -> ClientChoice:
    """Which session client an attach runs, per ``c.SMDebug.ssm_client`` (blocking: it may
    run the plugin once to read its version)."""
    plugin = shutil.which(PLUGIN)
    if plugin is None:
        if preference == "plugin":
            return ClientChoice(None)
        return ClientChoice("builtin")
    if preference == "builtin":
        return ClientChoice("builtin", plugin)
    version = plugin_version(plugin)
    if version is not None and version >= ENV_VARIABLE_SINCE:
        return ClientChoice("plugin", plugin, version)
    found = (
        f"{PLUGIN} {version_text(version)} at {plugin}"
        if version
        else f"{PLUGIN} at {plugin} (its --version gave no version)"
    )
    problem = {
        "code": "plugin_too_old",
        "message": f"{found} is older than {version_text(ENV_VARIABLE_SINCE)}: it cannot "
        "read the session from an environment variable, and a session token never goes "
        "in an argv (any local user can read it). SSM attach uses the built-in client.",
        "hint": f"Install Session Manager plugin {version_text(ENV_VARIABLE_SINCE)} or newer "
        "to use it, or set c.SMDebug.ssm_client = 'builtin' to silence this.",
    }
    return ClientChoice("builtin", plugin, version, problem)


def plugin_missing() -> CannotAttach:
    return CannotAttach(
        "plugin_missing",
        "c.SMDebug.ssm_client is 'plugin' but session-manager-plugin is not installed.",
        "Install the Session Manager plugin, or set c.SMDebug.ssm_client = 'auto' to use "
        "the built-in client.",
        status=503,
    )


def client_report(preference: str) -> tuple[dict, list[dict]]:
    """The ``clients`` part of /sm-debug/environment for SSM, and its problems."""
    choice = choose_client(preference)
    report = {
        "session_manager_plugin": choice.plugin,
        "session_manager_plugin_version": version_text(choice.version) if choice.version else None,
        "builtin_ssm": True,
        "ssm": choice.kind,  # which client an SSM attach will run
    }
    return report, [choice.problem] if choice.problem else []


# ---------------------------------------------------------------------------- transport

# Each command over SSM holds a thread for its session (the built-in client blocks); the
# number of hosts run at once is bounded by the caller (c.SMDebug.max_concurrency).
_run_threads = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix="sm-debug-ssm-run")


class SSMTransport:
    name = "ssm"

    async def prepare(self, request: AttachRequest) -> Session:
        state = attach_state(request.description)["ssm"]
        if not state["ok"]:
            hint = (
                "Flip the Remote debug switch on this job, then Attach."
                if "Remote debug" in state["reason"]
                else "Pick a running job (Downloading or Training)."
            )
            raise CannotAttach("not_attachable", state["reason"], hint)
        loop = asyncio.get_running_loop()
        choice = await loop.run_in_executor(None, choose_client, request.config.ssm_client)
        if choice.kind is None:
            raise plugin_missing()
        if choice.problem:
            request.jobs.log.warning("sm-debug: %s", choice.problem["message"])
        target = target_id(request.job, request.host)
        params = {"Target": target}
        document = request.options.get("document") or request.config.ssm_document
        if document:
            params["DocumentName"] = document
        response = await start_session(request, params)
        response.pop("ResponseMetadata", None)
        session_id = response.get("SessionId")

        async def terminate() -> None:
            # The client ends the session itself when it can; one killed before it got
            # that far (a terminal closed at once) would leave it open at SSM until the
            # idle timeout. Terminating a session twice is harmless.
            try:
                await request.jobs.call("ssm", "terminate_session", SessionId=session_id)
            except SMDebugError as error:
                request.jobs.log.info("sm-debug: TerminateSession %s: %s", session_id, error.code)

        ssm = request.jobs.client("ssm")
        region = ssm.meta.region_name
        endpoint = ssm.meta.endpoint_url
        env = {
            **base_environment(),
            **aws_environment(),
            "PYTHONPATH": PACKAGE_PARENT,
            SESSION_VARIABLE: json.dumps(response),
        }
        timeout = f"{request.config.ssm_connect_timeout:g}"
        if choice.kind == "plugin":
            # The plugin's own calling convention (as the AWS CLI uses it), with the session
            # passed by variable name rather than as JSON in the argv; the watcher says in
            # the tab when it ends or shows no shell within ssm_connect_timeout.
            label = f"{PLUGIN} {version_text(choice.version)}"
            argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.watch",
                    "--timeout", timeout, "--label", label, "--",
                    choice.plugin, SESSION_VARIABLE, region, "StartSession",
                    request.config.profile or "", json.dumps(params), endpoint]  # fmt: skip
        else:
            argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client",
                    "--session-env", SESSION_VARIABLE, "--region", region,
                    "--endpoint-url", endpoint]  # fmt: skip
            # By environment: job names stay out of argv (and the timeout with them).
            env["SM_DEBUG_SSM_TARGET"] = target
            env["SM_DEBUG_SSM_CONNECT_TIMEOUT"] = timeout
            if request.config.profile:
                argv += ["--profile", request.config.profile]
        return Session(argv=argv, env=env, target=f"{target} ({choice.kind})", on_end=terminate)

    async def run(
        self, request: AttachRequest, argv: list[str], timeout: float, stdin: bytes = b""
    ) -> RunResult:
        """StartSession, the command typed into the session's shell by the built-in client
        (ssm/run.py: marker protocol, no echo), TerminateSession always."""
        from ..ssm.encryption import kms_data_key
        from ..ssm.run import run_in_session

        started = time.monotonic()
        state = attach_state(request.description)["ssm"]
        if not state["ok"]:
            raise CannotAttach("not_attachable", state["reason"], "Pick a running job.")
        target = target_id(request.job, request.host)
        params = {"Target": target}
        if request.config.ssm_document:
            params["DocumentName"] = request.config.ssm_document
        response = await start_session(request, params)
        session_id = response.get("SessionId")
        ssm = request.jobs.client("ssm")

        def resume(sid: str) -> dict:
            answer = ssm.resume_session(SessionId=sid)
            return {"SessionId": sid, "TokenValue": answer.get("TokenValue", ""),
                    "StreamUrl": answer.get("StreamUrl", "")}  # fmt: skip

        def data_key(key_id: str, context: dict) -> tuple:
            return kms_data_key(request.jobs.client("kms"), key_id, context)  # 64 bytes

        left = max(0.5, timeout - (time.monotonic() - started))
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                _run_threads,
                lambda: run_in_session(
                    response, argv, left, stdin, target=target,
                    generate_data_key=data_key, resume=resume,
                    limit=request.options.get("output_limit", RUN_OUTPUT_LIMIT),
                ),
            )  # fmt: skip
        finally:
            try:
                await request.jobs.call("ssm", "terminate_session", SessionId=session_id)
            except SMDebugError as error:
                request.jobs.log.info("sm-debug: TerminateSession %s: %s", session_id, error.code)
        result.seconds = time.monotonic() - started
        return result
