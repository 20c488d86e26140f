"""Where SSH connects: one parser for every address (request, configuration, announcement)
and the rules that decide which of them counts.

The address of a host comes, in this order, from the request body, from
`c.SMDebug.ssh_addresses`, or from the line `sm-debug-entrypoint` writes to the host's
CloudWatch log stream when its sshd listens:

    SM_DEBUG_SSH host=algo-2 addr=10.0.1.7 port=2222 hostkey=ssh-ed25519:AAAAC3Nza...

Nothing the training code prints may choose where Attach connects (docs/ssh.md): the line
counts only when the job's own configuration says its containers run sm-debug-entrypoint
with SSH on (so the entrypoint wrote the stream's announcement before the training command
started), only as a whole line, only from the stream of the host's current run
(`<job>/algo-N-<digits>`), and only the first announcement of that stream.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import shlex
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..types import CannotAttach
from .hostkeys import HostKey, host_key_from_text, parse_host_key

if TYPE_CHECKING:
    from .. import HostTarget

LOG_PAGES = 5  # GetLogEvents pages read from the head of a stream for the announcement
ENTRYPOINT = "sm-debug-entrypoint"
# Whole lines only (fullmatch): the entrypoint's announcement, and its report that sshd did
# not start. The fields are checked again by the parsers below.
ANNOUNCEMENT = re.compile(
    r"SM_DEBUG_SSH host=(?P<host>algo-[1-9][0-9]*) addr=(?P<addr>\S+) port=(?P<port>\S+)"
    r" hostkey=(?P<type>[a-z0-9@.-]+):(?P<key>[A-Za-z0-9+/]+={0,2})"
)
FAILED = re.compile(r"SM_DEBUG_SSH_FAILED host=(?P<host>algo-[1-9][0-9]*) reason=(?P<reason>\w+)")
OLD_ANNOUNCEMENT = re.compile(r"SM_DEBUG_SSH host=(?P<host>algo-[1-9][0-9]*) addr=\S+ port=\S+")
DNS_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\.?")
PORT = re.compile(r"[1-9][0-9]{0,4}")
USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


def valid_host(text) -> str | None:
    """An IP address or DNS name, never anything an argv could take for an option. No IPv6
    scope ids (`fe80::1%lo`), no legacy IPv4 forms (`127.1`, `0x7f000001`) that resolve to
    something other than what they look like."""
    if not isinstance(text, str) or not text.isascii():
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is not None:
        return None if "%" in text else str(address)
    if not DNS_NAME.fullmatch(text):
        return None
    try:
        socket.inet_aton(text)
    except OSError:
        return text
    return None  # a number the resolver reads as an IPv4 address


def valid_port(text) -> int | None:
    """Digits only, 1-65535 (no sign, no leading zero, no '22abc')."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not PORT.fullmatch(text):
        return None
    port = int(text)
    return port if port <= 65535 else None


def parse_address(value, default_port: int) -> tuple[str, int]:
    """'addr', 'addr:port', 'v6addr' or '[addr]:port' → (addr, port); CannotAttach(400).
    Whitespace around the whole value is dropped (a pasted address); nothing else is."""
    text = value.strip() if isinstance(value, str) else ""
    host, port_text = text, None
    bracketed = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", text)
    if bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    addr = valid_host(host)
    port = valid_port(port_text) if port_text is not None else valid_port(default_port)
    if not addr or port is None:
        raise CannotAttach(
            "invalid_address",
            f"{value!r} is not an address to connect to.",
            "Give an IP address or host name, optionally with :port (1-65535); "
            "IPv6 with a port as [addr]:port.",
            status=400,
        )
    return addr, port


@dataclass(frozen=True)
class Target:
    addr: str
    port: int
    host_key: HostKey | None
    source: str  # "request", "config" or "announcement"


# -- does the job run the entrypoint with SSH on? (issue 22, finding 10) -----------------------


def _truthy(value) -> bool:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # the SDK JSON-encodes values ('"true"')
            value = json.loads(value) if value.startswith('"') else value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def entrypoint_without_ssh(description: dict) -> Optional[str]:
    """None when the job's own configuration (what its creator set, not what its container
    prints) says its containers run sm-debug-entrypoint with SSH on; else why not.

    - a ContainerEntrypoint must start with sm-debug-entrypoint and turn SSH on (`--ssh`
      before `--`, or SM_DEBUG_SSH / sm_debug_ssh); a Debug a copy wrapped for its hold runs
      the hold wrapper, so it never qualifies;
    - with no ContainerEntrypoint, the image's ENTRYPOINT runs: SM_DEBUG_SSH in the job's
      Environment or the sm_debug_ssh hyperparameter says it is sm-debug-entrypoint with SSH on
      (else `image_runs_entrypoint_with_ssh` reads the image's ENTRYPOINT).
    """
    algorithm = description.get("AlgorithmSpecification") or {}
    command = [str(word) for word in algorithm.get("ContainerEntrypoint") or []]
    arguments = [str(word) for word in algorithm.get("ContainerArguments") or []]
    environment = description.get("Environment") or {}
    hyperparameters = description.get("HyperParameters") or {}
    declared = _truthy(environment.get("SM_DEBUG_SSH")) or _truthy(
        hyperparameters.get("sm_debug_ssh")
    )
    if command:
        if command[0].rsplit("/", 1)[-1] != ENTRYPOINT:
            return f"its containers run `{command[0]}`, not {ENTRYPOINT}"
        words = [*command, *arguments]
        options = words[: words.index("--")] if "--" in words else words
        if "--ssh" in options or declared:
            return None
        return f"its {ENTRYPOINT} runs without --ssh"
    if declared:
        return None
    return (
        "nothing in the job's configuration turns on SSH of its sm-debug-entrypoint "
        "(SM_DEBUG_SSH in its Environment, the sm_debug_ssh hyperparameter, --ssh in its "
        "ContainerEntrypoint, or an image whose ENTRYPOINT is sm-debug-entrypoint --ssh)"
    )


async def image_runs_entrypoint_with_ssh(target: HostTarget) -> bool:
    """For a job without a ContainerEntrypoint: whether the image's own ENTRYPOINT (read from
    ECR, as Debug a copy's hold plan reads it) is `sm-debug-entrypoint --ssh ...`. An image
    that cannot be read counts as no."""
    algorithm = target.description.get("AlgorithmSpecification") or {}
    if algorithm.get("ContainerEntrypoint"):
        return False
    try:
        plan = await target.jobs.hold_plan(target.description)
        words = shlex.split(plan.get("command") or "")
    except Exception:  # noqa: BLE001 - no ECR access is the same as not proven
        return False
    if plan.get("mechanism") != "entrypoint":
        return False
    options = words[: words.index("--")] if "--" in words else words
    return "--ssh" in options


def not_announced(target: HostTarget, why: str) -> CannotAttach:
    return CannotAttach(
        "ssh_address_required",
        f"{target.host} of {target.job} has no SSH announcement to trust: {why}. An "
        "SM_DEBUG_SSH line in its log could have been printed by the training code, so "
        "it does not choose where SSH connects.",
        "Give the address and host key: the request's 'address' and 'host_key', or "
        '{"address": ..., "host_key": ...} in c.SMDebug.ssh_addresses. Or run the job '
        "under `sm-debug-entrypoint --ssh` (when the image's ENTRYPOINT is "
        "sm-debug-entrypoint, set SM_DEBUG_SSH=1 in the job's Environment).",
    )


# -- the announcement ----------------------------------------------------------------------------


def first_announcement(events: list[dict], host: str) -> Target | None:
    """The first whole-line announcement (or failure report) of `host` in a stream decides;
    every later line, whoever wrote it, is ignored."""
    for event in events:
        line = event.get("message", "") if isinstance(event, dict) else ""
        line = line[:-1] if line.endswith("\n") else line
        failed = FAILED.fullmatch(line)
        if failed and failed.group("host") == host:
            reason = failed.group("reason")
            if reason == "sshd_not_installed":
                raise CannotAttach(
                    "ssh_failed_in_container",
                    f"sshd did not start in {host}: the OpenSSH server (sshd) is not "
                    "installed where the host runs.",
                    "Install openssh-server where the host runs (in its image; for the "
                    "demo's stand-in hosts, on this machine: apt-get install openssh-server), "
                    "or attach over SSM.",
                )
            raise CannotAttach(
                "ssh_failed_in_container",
                f"sshd did not start in {host}: {reason}.",
                "See the [sm-debug] lines of the host's log; training went on without SSH. "
                "Attach over SSM, or fix the image and start the job again.",
            )
        match = ANNOUNCEMENT.fullmatch(line)
        if match and match.group("host") == host:
            addr, port = valid_host(match.group("addr")), valid_port(match.group("port"))
            key = parse_host_key(match.group("type"), match.group("key"))
            if not (addr and port and key):
                raise CannotAttach(
                    "invalid_announcement",
                    f"The SSH announcement of {host} is malformed.",
                    "Give the address and host key in the request or c.SMDebug.ssh_addresses.",
                )
            return Target(addr, port, key, "announcement")
        old = OLD_ANNOUNCEMENT.fullmatch(line)
        if old and old.group("host") == host:
            raise CannotAttach(
                "announcement_without_host_key",
                f"{host} announces its SSH address without a host key (an older "
                "sm-debug-entrypoint), so the extension cannot tell it from an impostor.",
                "Upgrade jupyter-sm-debug in the image, or give the address and host key in "
                "the request or c.SMDebug.ssh_addresses.",
            )
    return None


async def announced_target(target: HostTarget) -> Target | None:
    """The first announcement in the host's training stream of its newest container start
    (logs.LogReader decides which stream that is: exact names only)."""
    stream = await target.jobs.logs.current(target.job, target.host)
    if stream is None:
        return None
    async for events in target.jobs.logs.head(stream, LOG_PAGES):
        found = first_announcement(events, target.host)
        if found:
            return found
    return None


def configured_target(target: HostTarget) -> Target | None:
    config = target.config
    where = "c.SMDebug.ssh_addresses"
    hosts = config.ssh_addresses.get(target.job) or {}
    entry = hosts.get(target.host) if isinstance(hosts, dict) else None
    if not entry:
        return None
    if isinstance(entry, dict):
        address, key_text = entry.get("address"), entry.get("host_key")
    else:
        address, key_text = entry, None
    addr, port = parse_address(address, config.ssh_port)
    key = host_key_from_text(key_text, where) if key_text is not None else None
    return Target(addr, port, key, "config")


async def resolve_target(target: HostTarget) -> Target:
    """Where SSH connects for this host: the request's address, the configured one, or the
    entrypoint's announcement (only for a job that runs the entrypoint with SSH on)."""
    config = target.config
    options = target.options
    if options.get("address"):
        addr, port = parse_address(options["address"], config.ssh_port)
        key_text = options.get("host_key")
        key = host_key_from_text(key_text, "the request") if key_text is not None else None
        return Target(addr, port, key, "request")
    configured = configured_target(target)
    if configured:
        return configured
    known = target.jobs.ssh_trust.target(target.job, target.host)
    if known is not None:  # announced by this container before (it passed the check below)
        return known
    why = entrypoint_without_ssh(target.description)
    if why is not None and not await image_runs_entrypoint_with_ssh(target):
        raise not_announced(target, why)
    try:
        found = await announced_target(target)
    except CannotAttach:
        raise
    except Exception:  # noqa: BLE001 - no log access is the same as no announcement
        found = None
    if found:
        target.jobs.ssh_trust.remember(target.job, target.host, found)
        return found
    raise CannotAttach(
        "no_ssh_address",
        f"No SSH address is known for {target.host} of {target.job}.",
        "Run the container under `sm-debug-entrypoint --ssh` so it announces its address and "
        "host key in its CloudWatch log, or give the address (c.SMDebug.ssh_addresses or the "
        "request's 'address').",
    )
