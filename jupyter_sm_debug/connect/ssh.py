"""SSH transport: OpenSSH's `ssh` client into a container that runs sshd.

The address of a host comes, in this order, from the request body, from
`c.SMDebug.ssh_addresses`, or from the `SM_DEBUG_SSH host=... addr=... port=...` line the
container's entrypoint prints to its CloudWatch log stream.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import socket

from ..jobs import attach_state
from . import AttachRequest, CannotAttach, Session, base_environment

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ANNOUNCEMENT = re.compile(
    r"SM_DEBUG_SSH host=(?P<host>algo-[1-9][0-9]*) addr=(?P<addr>\S+) port=(?P<port>[0-9]{1,5})"
)
DNS_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*")
USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
PROBE_TIMEOUT = 3.0


def valid_address(addr: str) -> str | None:
    """An IP address or DNS name, never anything an argv could mistake for an option."""
    if not isinstance(addr, str):
        return None
    try:
        return str(ipaddress.ip_address(addr.strip("[]")))
    except ValueError:
        return addr if DNS_NAME.fullmatch(addr) else None


def parse_address(value: str, default_port: int) -> tuple[str, int]:
    """'addr', 'addr:port' or '[v6]:port' → (addr, port); CannotAttach(400) when malformed."""
    text = value.strip() if isinstance(value, str) else ""
    match = re.fullmatch(
        r"\[(?P<v6>[0-9A-Fa-f:.]+)\](:(?P<p6>\d{1,5}))?|(?P<a>[^:\s]+)(:(?P<p>\d{1,5}))?", text
    )
    addr = match and valid_address(match.group("v6") or match.group("a"))
    port = int((match and (match.group("p6") or match.group("p"))) or default_port)
    if not addr or not 0 < port < 65536:
        raise CannotAttach(
            "invalid_address",
            f"{value!r} is not an address to connect to.",
            "Give an IP address or host name, optionally with :port.",
            status=400,
        )
    return addr, port


def announced_address(events: list[dict], host: str) -> tuple[str, int] | None:
    """The last valid SM_DEBUG_SSH line for this host in a log stream's events."""
    found = None
    for event in events:
        match = ANNOUNCEMENT.search(event.get("message", ""))
        if match and match.group("host") == host:
            addr, port = valid_address(match.group("addr")), int(match.group("port"))
            if addr and 0 < port < 65536:
                found = (addr, port)
    return found


async def address_from_logs(request: AttachRequest) -> tuple[str, int] | None:
    """Read the host's newest training log stream for the entrypoint's announcement."""
    prefix = f"{request.job}/{request.host}-"
    streams = await request.jobs.call(
        "logs", "describe_log_streams", logGroupName=LOG_GROUP, logStreamNamePrefix=prefix
    )
    names = [
        stream
        for stream in streams.get("logStreams", [])
        if not stream["logStreamName"].endswith("/ssm")
    ]
    if not names:
        return None
    newest = max(names, key=lambda stream: stream.get("creationTime", 0))
    events = await request.jobs.call(
        "logs",
        "get_log_events",
        logGroupName=LOG_GROUP,
        logStreamName=newest["logStreamName"],
        startFromHead=True,
        limit=1000,
    )
    return announced_address(events.get("events", []), request.host)


async def resolve_address(request: AttachRequest) -> tuple[str, int]:
    config = request.config
    if request.options.get("address"):
        return parse_address(request.options["address"], config.ssh_port)
    configured = config.ssh_addresses.get(request.job, {}).get(request.host)
    if configured:
        return parse_address(configured, config.ssh_port)
    try:
        found = await address_from_logs(request)
    except CannotAttach:
        raise
    except Exception:  # noqa: BLE001 - no log access is the same as no announcement
        found = None
    if found:
        return found
    raise CannotAttach(
        "no_ssh_address",
        f"No SSH address is known for {request.host} of {request.job}.",
        "Run the container under `sm-debug-entrypoint --ssh` so it announces its address in "
        "its CloudWatch log, or give the address (c.SMDebug.ssh_addresses or the request's "
        "'address').",
    )


async def probe(addr: str, port: int) -> None:
    """Fail fast with a clear error instead of a terminal that just says 'Connection refused'."""

    def connect():
        with socket.create_connection((addr, port), timeout=PROBE_TIMEOUT):
            pass

    try:
        await asyncio.get_running_loop().run_in_executor(None, connect)
    except OSError as error:
        raise CannotAttach(
            "host_unreachable",
            f"Could not reach sshd at {addr}:{port} ({error.strerror or error}).",
            "Check that sshd runs in the container and that the job's security group and "
            "subnet allow this notebook to reach that port.",
        ) from None


class SSHTransport:
    name = "ssh"

    async def prepare(self, request: AttachRequest) -> Session:
        state = attach_state(request.description)["ssh"]
        if not state["ok"]:
            raise CannotAttach("not_attachable", state["reason"], "Pick a running job.")
        ssh = shutil.which("ssh")
        if ssh is None:
            raise CannotAttach(
                "ssh_missing",
                "The OpenSSH client (ssh) is not installed on the Jupyter server.",
                "Install it (apt-get install openssh-client, or conda install openssh), "
                "or attach over SSM.",
            )
        config = request.config
        if not USER_NAME.fullmatch(config.ssh_user or ""):
            raise CannotAttach(
                "invalid_ssh_user",
                "c.SMDebug.ssh_user is not a valid user name.",
                "Fix c.SMDebug.ssh_user.",
                status=400,
            )
        addr, port = await resolve_address(request)
        await probe(addr, port)
        checking = "accept-new" if config.ssh_strict_host_key_checking else "no"
        argv = [
            ssh,
            "-t",
            "-o", f"StrictHostKeyChecking={checking}",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
            "-o", "ConnectTimeout=10",
            "-o", "LogLevel=ERROR",
            "-p", str(port),
        ]  # fmt: skip
        if not config.ssh_strict_host_key_checking:
            argv += ["-o", "UserKnownHostsFile=/dev/null"]
        if config.ssh_key:
            key = os.path.expanduser(config.ssh_key)
            if not os.path.isfile(key):
                raise CannotAttach(
                    "ssh_key_missing",
                    f"The SSH key {config.ssh_key} does not exist.",
                    "Fix c.SMDebug.ssh_key.",
                    status=400,
                )
            argv += ["-o", "IdentitiesOnly=yes", "-i", key]
        argv += ["-l", config.ssh_user, "--", addr]
        env = base_environment()
        if "SSH_AUTH_SOCK" in os.environ:  # the user's agent may hold the key
            env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
        return Session(argv=argv, env=env, target=f"{config.ssh_user}@{addr}:{port}")
