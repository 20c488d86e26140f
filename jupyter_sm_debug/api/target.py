"""From a request to the HostTargets every verb takes: the job described, the host checked to
belong to it, the transport chosen, and "is the job reachable?" decided once, here, with one
hint per reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ..connect import HostTarget, Transport
from ..connect.clients import ssh_problem
from ..connect.registry import get_transport
from ..description import hosts_of, unreachable
from ..errors import SMDebugError
from ..names import host_index

if TYPE_CHECKING:
    from .base import SMDebugHandler

# What to do, per reason a transport cannot reach a job's hosts.
HINTS = {
    "ended": "Pick a running job (Downloading or Training).",
    "starting": "Wait until the job is Downloading or Training, then try again.",
    "isolated": "Network isolation blocks every way in: debug a copy of the job without it.",
    "remote_debug_off": "Flip the Remote debug switch on this job, then try again.",
    "agent_stopped": "The SSM agent has stopped on this job's hosts: use SSH.",
}


def require_reachable(description: dict, transport: str) -> None:
    """409 not_attachable, with the reason's hint, unless the transport can reach the job
    (503 when this machine lacks the transport's client: nothing about the job to change)."""
    found = unreachable(description, transport)
    if found is None:
        return
    why, message = found
    if why == "client_missing":
        missing = ssh_problem() or {"code": "client_missing", "hint": ""}
        raise SMDebugError(503, missing["code"], message, missing["hint"])
    raise SMDebugError(409, "not_attachable", message, HINTS[why])


def host_count(description: dict) -> int:
    return len(hosts_of(description))


def require_host(description: dict, job: str, host: str) -> None:
    """404 host_not_found unless the job runs `host` (a valid algo-<n> name)."""
    count = host_count(description)
    if host_index(host) > count:
        raise SMDebugError(
            404,
            "host_not_found",
            f"{job} has no host {host}.",
            f"It runs {count} host(s): algo-1 to algo-{count}.",
        )


def choose_hosts(description: dict, job: str, requested: Optional[list[str]]) -> list[str]:
    """Every host of the job, or the requested ones (each the job's, in order, no repeats)."""
    count = host_count(description)
    if requested is None:
        return [f"algo-{n}" for n in range(1, count + 1)]
    if len(requested) > count:
        raise SMDebugError(
            400,
            "invalid_hosts",
            '"hosts" must be a non-empty list of the job\'s hosts.',
            f'Send e.g. {{"hosts": ["algo-1"]}}; this job runs algo-1 to algo-{count}.',
        )
    for host in requested:
        require_host(description, job, host)
    return list(dict.fromkeys(requested))


def transport_of(name: Any, verb: str) -> Transport:
    """The transport called `name` that can do `verb` (400 invalid_transport otherwise)."""
    return get_transport(name, verb)


async def host_targets(
    handler: SMDebugHandler,
    transport: str,
    verb: str,
    hosts: Optional[list[str]] = None,
    options: Optional[dict] = None,
    cached: bool = False,
) -> tuple[list[HostTarget], bool]:
    """The one way a request becomes HostTargets: one per host asked for (all of the job's
    when `hosts` is None), each the job's (404 host_not_found), for a transport that can do
    `verb` (400) and can reach the job now (409, with the reason's hint). Also says whether
    the description came from the cache: attach may use the one the list just confirmed
    (no round trip); everything else describes the job fresh."""
    transport_of(transport, verb)
    if cached:
        description, from_cache = await handler.jobs.attach_description(handler.job, transport)
    else:
        description, from_cache = await handler.jobs.describe(handler.job, fresh=True), False
    chosen = choose_hosts(description, handler.job, hosts)
    require_reachable(description, transport)
    targets = [
        HostTarget(
            job=handler.job,
            host=host,
            description=description,
            config=handler.config,
            jobs=handler.jobs,
            options=dict(options or {}),
            transport=transport,
        )
        for host in chosen
    ]
    return targets, from_cache
