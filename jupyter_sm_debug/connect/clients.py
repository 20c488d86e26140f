"""The local programs the transports run, and whether this machine has them.

- SSH: OpenSSH's `ssh` client; without it SSH is unavailable, and the reason names it.
- SSM: AWS's session-manager-plugin when installed and new enough to read the StartSession
  response from an environment variable (1.2.536.0 and later), else the built-in client
  (jupyter_sm_debug.ssm.client): which one runs, how it is called, and what it may inherit
  from the server's environment.

Imports nothing of the package but connect's own types, so jobs.py and the request layer
can ask it without an import cycle.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .types import CannotAttach, base_environment

SESSION_VARIABLE = "AWS_SSM_START_SESSION_RESPONSE"  # the name the plugin itself accepts
PLUGIN = "session-manager-plugin"
# The first plugin release that reads the StartSession response from a named variable.
ENV_VARIABLE_SINCE = (1, 2, 536, 0)
VERSION_TIMEOUT = 5.0
_VERSION = re.compile(rb"\b(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?\b")
# Where the session clients (ours, the watcher) import jupyter_sm_debug from: this copy.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


# ---------------------------------------------------------------------------- SSH

SSH_MISSING = {
    "code": "ssh_client_missing",
    "message": "The OpenSSH client (ssh) is not installed on the Jupyter server, so SSH "
    "cannot reach any host.",
    "hint": "Install it on the Jupyter server (apt-get install openssh-client, or conda "
    "install openssh), or attach over SSM.",
}


SSH_LOOKUP_TTL = 5.0  # seconds a PATH lookup of ssh is reused (job lists ask per job)
_ssh_lookup: tuple[str, float, str | None] | None = None


def ssh_client() -> str | None:
    """The ssh executable on PATH, or None."""
    global _ssh_lookup
    path, now = os.environ.get("PATH", ""), time.monotonic()
    if _ssh_lookup and _ssh_lookup[0] == path and now - _ssh_lookup[1] < SSH_LOOKUP_TTL:
        return _ssh_lookup[2]
    found = shutil.which("ssh")
    _ssh_lookup = (path, now, found)
    return found


def ssh_problem() -> dict | None:
    """Why SSH cannot be used from this machine, as {code, message, hint}; None when it can."""
    return None if ssh_client() else dict(SSH_MISSING)


# ---------------------------------------------------------------------------- SSM


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


def plugin_argv(plugin: str, region: str, profile: str, params: dict, endpoint: str) -> list[str]:
    """The plugin's own calling convention (as the AWS CLI uses it), with the session passed
    by variable name (SESSION_VARIABLE) rather than as JSON in the argv."""
    return [plugin, SESSION_VARIABLE, region, "StartSession", profile or "", json.dumps(params),
            endpoint]  # fmt: skip
