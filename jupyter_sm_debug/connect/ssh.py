"""SSH transport: OpenSSH's `ssh` client into a container that runs sshd.

The address of a host comes, in this order, from the request body, from
`c.SMDebug.ssh_addresses`, or from the line `sm-debug-entrypoint` writes to the host's
CloudWatch log stream when its sshd listens:

    SM_DEBUG_SSH host=algo-2 addr=10.0.1.7 port=2222 hostkey=ssh-ed25519:AAAAC3Nza...

Nothing the training code prints may choose where Attach connects (docs/ssh.md): only a
whole line, only from the stream of the host's current run (`<job>/algo-N-<digits>`), only
the first announcement of that stream (the entrypoint writes it before the training command
starts). Its host key is pinned for the session: a per-session known_hosts file,
`StrictHostKeyChecking=yes` and a `HostKeyAlias`, checked once before the terminal opens so a
mismatch is a 409 rather than a terminal that says "Host key verification failed".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import socket
import struct
import tempfile
import time
from dataclasses import dataclass

from ..description import attach_state
from . import (
    RUN_OUTPUT_LIMIT,
    AttachRequest,
    CannotAttach,
    RunResult,
    Session,
    base_environment,
)

HOST_KEY_TYPES = frozenset({
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
})  # fmt: skip
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
PROBE_TIMEOUT = 3.0
CHECK_TIMEOUT = 15.0
LOG_PAGES = 5  # GetLogEvents pages read from the head of a stream for the announcement


# -- one parser for every address: request, configuration, announcement -----------------------


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


# -- host keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HostKey:
    type: str
    blob: str  # base64, as in known_hosts

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def known_hosts_line(self, alias: str) -> str:
        return f"{alias} {self.type} {self.blob}\n"


def parse_host_key(key_type, blob) -> HostKey | None:
    """A public host key whose blob really is of the type it claims."""
    if key_type not in HOST_KEY_TYPES or not isinstance(blob, str) or len(blob) > 4096:
        return None
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
    except (binascii.Error, ValueError, struct.error):
        return None
    if raw[4 : 4 + length].decode("ascii", "replace") != key_type or len(raw) <= 4 + length:
        return None
    return HostKey(key_type, blob)


def host_key_from_text(text, source: str) -> HostKey:
    """'ssh-ed25519 AAAA...' (a .pub line or known_hosts' key part; a comment may follow)."""
    parts = text.split() if isinstance(text, str) else []
    key = parse_host_key(parts[0], parts[1]) if len(parts) >= 2 else None
    if key is None:
        raise CannotAttach(
            "invalid_host_key",
            f"The host key given in {source} is not a public SSH key.",
            "Give it as '<type> <base64>', e.g. the host's ssh_host_ed25519_key.pub.",
            status=400,
        )
    return key


# -- where to connect ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    addr: str
    port: int
    host_key: HostKey | None
    source: str  # "request", "config" or "announcement"


def first_announcement(events: list[dict], host: str) -> Target | None:
    """The first whole-line announcement (or failure report) of `host` in a stream decides;
    every later line, whoever wrote it, is ignored."""
    for event in events:
        line = event.get("message", "") if isinstance(event, dict) else ""
        line = line[:-1] if line.endswith("\n") else line
        failed = FAILED.fullmatch(line)
        if failed and failed.group("host") == host:
            raise CannotAttach(
                "ssh_failed_in_container",
                f"sshd did not start in {host}: {failed.group('reason')}.",
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


async def announced_target(request: AttachRequest) -> Target | None:
    """The first announcement in the host's training stream of its newest container start
    (logs.LogReader decides which stream that is: exact names only)."""
    stream = await request.jobs.logs.current(request.job, request.host)
    if stream is None:
        return None
    async for events in request.jobs.logs.head(stream, LOG_PAGES):
        found = first_announcement(events, request.host)
        if found:
            return found
    return None


def configured_target(request: AttachRequest) -> Target | None:
    config = request.config
    where = "c.SMDebug.ssh_addresses"
    hosts = config.ssh_addresses.get(request.job) or {}
    entry = hosts.get(request.host) if isinstance(hosts, dict) else None
    if not entry:
        return None
    if isinstance(entry, dict):
        address, key_text = entry.get("address"), entry.get("host_key")
    else:
        address, key_text = entry, None
    addr, port = parse_address(address, config.ssh_port)
    key = host_key_from_text(key_text, where) if key_text is not None else None
    return Target(addr, port, key, "config")


async def resolve_target(request: AttachRequest) -> Target:
    config = request.config
    options = request.options
    if options.get("address"):
        addr, port = parse_address(options["address"], config.ssh_port)
        key_text = options.get("host_key")
        key = host_key_from_text(key_text, "the request") if key_text is not None else None
        return Target(addr, port, key, "request")
    configured = configured_target(request)
    if configured:
        return configured
    known = request.jobs.ssh_trust.target(request.job, request.host)
    if known is not None:  # announced by this container before: no log lookup
        return known
    try:
        found = await announced_target(request)
    except CannotAttach:
        raise
    except Exception:  # noqa: BLE001 - no log access is the same as no announcement
        found = None
    if found:
        request.jobs.ssh_trust.remember(request.job, request.host, found)
        return found
    raise CannotAttach(
        "no_ssh_address",
        f"No SSH address is known for {request.host} of {request.job}.",
        "Run the container under `sm-debug-entrypoint --ssh` so it announces its address and "
        "host key in its CloudWatch log, or give the address (c.SMDebug.ssh_addresses or the "
        "request's 'address').",
    )


# What OpenSSH says when the pinned key is not the one the host shows.
KEY_REFUSED = ("Host key verification failed", "HOST IDENTIFICATION HAS CHANGED")

# -- checking who answers ----------------------------------------------------------------------


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


async def run(argv: list[str], timeout: float = CHECK_TIMEOUT) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=base_environment(),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return -1, "", "timed out"
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def scan_host_keys(addr: str, port: int) -> list[HostKey]:
    """What the host presents (ssh-keyscan): pinned for the session when no key is known."""
    keyscan = shutil.which("ssh-keyscan")
    if keyscan is None:
        return []
    _, out, _ = await run([keyscan, "-T", "5", "-p", str(port), "--", addr])
    keys = []
    for line in out.splitlines():
        parts = line.split()
        key = parse_host_key(parts[1], parts[2]) if len(parts) == 3 else None
        if key and key not in keys:
            keys.append(key)
    return keys


async def check_host_key(argv: list[str], target: Target) -> None:
    """One unauthenticated handshake with the session's own pinning options: OpenSSH checks
    the host's signature against the pinned key, then finds no way to log in. A mismatch is
    a 409 here, never a terminal (and the terminal's ssh checks again)."""
    code, _, err = await run([
        *argv, "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=publickey", "-o", "ConnectTimeout=5", "--", target.addr,
        "true",
    ])  # fmt: skip
    if any(words in err for words in KEY_REFUSED):
        pinned = target.host_key.fingerprint if target.host_key else "the scanned key"
        raise CannotAttach(
            "host_key_mismatch",
            f"The sshd at {target.addr}:{target.port} does not hold the host key pinned from "
            f"the {target.source} ({pinned}). Not connecting: this may be another machine.",
            "If the container restarted, retry once its new announcement is in the log; "
            "otherwise check who listens at that address.",
        )
    if code == 0 or "Permission denied" in err:
        return  # the host proved the key; logging in is the terminal's business
    last = (err.strip().splitlines() or ["no answer"])[-1][:300]
    raise CannotAttach(
        "ssh_handshake_failed",
        f"SSH to {target.addr}:{target.port} failed before login: {last}",
        "Check that sshd runs in the container and that the address is right.",
    )


# -- the session ---------------------------------------------------------------------------------


def client_options(config, known_hosts: str, alias: str, port: int) -> list[str]:
    """Options that no ssh_config can override (the command line wins in OpenSSH): pinned
    host key, nothing forwarded, no multiplexing onto some other connection."""
    ssh_config = os.path.expanduser(config.ssh_config) if config.ssh_config else os.devnull
    return [
        "-F", ssh_config,
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", f"GlobalKnownHostsFile={os.devnull}",
        "-o", f"HostKeyAlias={alias}",
        "-o", "CheckHostIP=no",
        "-o", "UpdateHostKeys=no",
        "-o", "ForwardAgent=no",
        "-o", "ForwardX11=no",
        "-o", "ForwardX11Trusted=no",
        "-o", "ClearAllForwardings=yes",
        "-o", "PermitLocalCommand=no",
        "-o", "ControlMaster=no",
        "-o", "ControlPath=none",
        "-o", "Tunnel=no",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
        "-o", "LogLevel=ERROR",
        "-p", str(port),
    ]  # fmt: skip


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
        if config.ssh_config and not os.path.isfile(os.path.expanduser(config.ssh_config)):
            raise CannotAttach(
                "ssh_config_missing",
                f"The SSH client configuration {config.ssh_config} does not exist.",
                "Fix or unset c.SMDebug.ssh_config.",
                status=400,
            )
        identity = []
        if config.ssh_key:
            key = os.path.expanduser(config.ssh_key)
            if not os.path.isfile(key):
                raise CannotAttach(
                    "ssh_key_missing",
                    f"The SSH key {config.ssh_key} does not exist.",
                    "Fix c.SMDebug.ssh_key.",
                    status=400,
                )
            # Only this key is offered (an agent may still hold it, passphrase-protected).
            identity = ["-o", "IdentitiesOnly=yes", "-i", key]
        remembered = request.jobs.ssh_trust.target(request.job, request.host)
        target = await resolve_target(request)
        try:
            return await self._connect(request, ssh, identity, target)
        except CannotAttach:
            if remembered is None or target is not remembered:
                raise
            # A remembered announcement may be an earlier container's: read the log again.
            request.jobs.ssh_trust.forget(request.job, request.host)
        return await self._connect(request, ssh, identity, await resolve_target(request))

    async def _connect(self, request: AttachRequest, ssh: str, identity: list, target) -> Session:
        config = request.config
        if target.host_key is None and config.ssh_strict_host_key_checking:
            raise CannotAttach(
                "host_key_required",
                f"No host key is known for {target.addr}:{target.port}, and "
                "c.SMDebug.ssh_strict_host_key_checking refuses unverified hosts.",
                "Give the host key with the address (the request's 'host_key', or "
                '{"address": ..., "host_key": ...} in c.SMDebug.ssh_addresses).',
            )
        await probe(target.addr, target.port)
        if target.host_key:
            keys = [target.host_key]
        else:
            keys = await scan_host_keys(target.addr, target.port)
        if not keys:
            raise CannotAttach(
                "host_key_unavailable",
                f"{target.addr}:{target.port} presented no SSH host key.",
                "Check that an sshd listens there.",
            )
        alias = f"sm-debug-{request.host}"
        pins = tempfile.mkdtemp(prefix="sm-debug-ssh-")  # 0700, this session's only
        known_hosts = os.path.join(pins, "known_hosts")
        with open(known_hosts, "w") as handle:
            handle.writelines(key.known_hosts_line(alias) for key in keys)
        options = client_options(config, known_hosts, alias, target.port)
        trust, job, host = request.jobs.ssh_trust, request.job, request.host
        if target.host_key is None or not trust.verified(job, host, target):
            try:
                await check_host_key([ssh, *options], target)
            except BaseException:
                shutil.rmtree(pins, ignore_errors=True)
                trust.unverify(job, host, target)
                raise
            if target.host_key is not None:
                trust.mark_verified(job, host, target)

        async def forget_pins() -> None:
            shutil.rmtree(pins, ignore_errors=True)

        def on_exit(status: int | None, output: str) -> None:
            # The session's ssh refused the host's key: trust nothing remembered about it
            # (a remote shell printing these words only costs the next attach its check).
            if status == 255 and any(words in output[-600:] for words in KEY_REFUSED):
                trust.refused(job, host, target)

        argv = [
            ssh, "-t", *options, *identity,
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
            "-o", "ConnectTimeout=10",
            "-l", config.ssh_user, "--", target.addr,
        ]  # fmt: skip
        env = base_environment()
        if "SSH_AUTH_SOCK" in os.environ:  # the user's agent may hold the key
            env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
        verified = target.host_key is not None
        host_key = {
            "verified": verified,
            "source": target.source if verified else "scanned",
            "fingerprints": [key.fingerprint for key in keys],
        }
        if not verified:
            host_key["note"] = (
                "Host not verified: no host key came with this address, so the key it "
                "presented now is pinned for this session only. Compare the fingerprint "
                "with the host's, or give the key with the address."
            )
        return Session(
            argv=argv,
            env=env,
            target=f"{config.ssh_user}@{target.addr}:{target.port}",
            on_end=forget_pins,
            on_exit=on_exit,
            info={"host_key": host_key},
            pin=" ".join(host_key["fingerprints"]),
        )

    async def run(
        self, request: AttachRequest, argv: list[str], timeout: float, stdin: bytes = b""
    ) -> RunResult:
        """`ssh ... -- addr 'argv'` with the attach's pinned key and options, no PTY. sshd
        hands the remote side one string, so the argv is quoted for its shell here."""
        started = time.monotonic()
        session = await self.prepare(request)
        try:
            ssh_argv = ["-T" if a == "-t" else a for a in session.argv[:-2]]
            command = [*ssh_argv, "-o", "BatchMode=yes", "--", session.argv[-1], shlex.join(argv)]
            left = max(0.1, timeout - (time.monotonic() - started))
            limit = request.options.get("output_limit", RUN_OUTPUT_LIMIT)  # hostrun's share
            result = await capture(command, stdin, left, session.env, limit)
        finally:
            if session.on_end is not None:
                await session.on_end()
        if session.on_exit is not None and not result.timed_out:
            session.on_exit(result.exit_code, result.stderr.decode(errors="replace"))
        result.seconds = time.monotonic() - started
        if result.exit_code == 255 and not result.timed_out:
            # ssh's own failure (connection, authentication), not the command's exit code.
            last = (result.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            result.error = {
                "code": "ssh_failed",
                "message": f"ssh to {session.target} failed: {last[:300]}",
                "hint": "Check that the host is up and that the key is accepted.",
            }
        return result


async def _read_capped(stream, limit: int) -> tuple[bytes, bool]:
    """All of a stream, keeping at most `limit` bytes (the rest is read and dropped so the
    writer never blocks)."""
    kept, dropped = bytearray(), False
    while True:
        chunk = await stream.read(256 * 1024)
        if not chunk:
            return bytes(kept), dropped
        room = limit - len(kept)
        if len(chunk) > room:
            dropped = True
        kept += chunk[: max(0, room)]


async def capture(
    argv: list[str], stdin: bytes, timeout: float, env: dict, limit: int = RUN_OUTPUT_LIMIT
) -> RunResult:
    """Run a local process (the ssh client) with `stdin`, capped output and a deadline."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True,
    )  # fmt: skip

    async def feed() -> None:
        try:
            if stdin:
                process.stdin.write(stdin)
                await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            process.stdin.close()

    async def everything():
        _, (out, cut_out), (err, cut_err) = await asyncio.gather(
            feed(),
            _read_capped(process.stdout, limit),
            _read_capped(process.stderr, limit),
        )
        return out, err, cut_out or cut_err, await process.wait()

    try:
        out, err, cut, code = await asyncio.wait_for(everything(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return RunResult(None, timed_out=True)
    return RunResult(code, out, err, truncated=cut)


# -- forward-a-port: ssh -N -L over the same pinned, hardened connection -------------------------

FORWARD_READY_TIMEOUT = 20.0


def free_local_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def forward_argv(attach_argv: list[str], local_port: int, remote_port: int) -> list[str]:
    """The Attach argv (pinned key, hardened options, identity, user, address) turned into a
    forward: no terminal, no command, one -L on loopback. ClearAllForwardings=yes clears
    command-line forwards too, so it becomes =no here (ssh keeps an option's first value,
    hence replaced, not appended); -F still reads only c.SMDebug.ssh_config or nothing."""
    argv = list(attach_argv)
    argv[argv.index("-t")] = "-N"
    argv[argv.index("ClearAllForwardings=yes")] = "ClearAllForwardings=no"
    end = argv.index("--")
    argv[end:end] = [
        "-o", "ExitOnForwardFailure=yes",
        "-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}",
    ]  # fmt: skip
    return argv


async def wait_listening(port: int, process, timeout: float) -> bool:
    """Until ssh listens on the local port (after its login), or it exits."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline and process.returncode is None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return True
    return False


async def end_process(process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except asyncio.TimeoutError:
            os.killpg(process.pid, 9)
            await process.wait()


class SSHForwarder:
    name = "ssh"

    async def forward(self, request: AttachRequest, remote_port: int):
        from . import Tunnel

        session = await SSHTransport().prepare(request)  # checks, pins the host key
        errors = b""
        for _ in range(3):  # another process may take the free port before ssh binds it
            local_port = free_local_port()
            process = await asyncio.create_subprocess_exec(
                *forward_argv(session.argv, local_port, remote_port),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=session.env, start_new_session=True,
            )  # fmt: skip
            if await wait_listening(local_port, process, FORWARD_READY_TIMEOUT):
                break
            await end_process(process)
            errors = await process.stderr.read(4096)
            if b"Address already in use" not in errors:
                break
        else:
            process = None
        if process is None or process.returncode is not None:
            await session.on_end()
            last = (errors.decode(errors="replace").strip().splitlines() or ["no answer"])[-1]
            raise CannotAttach(
                "forward_failed",
                f"ssh could not forward port {remote_port} of {request.host}: {last[:300]}",
                "Check that the container's sshd allows TCP forwarding (AllowTcpForwarding).",
            )

        async def drain() -> None:  # 'open failed' lines per refused connection; unread
            while await process.stderr.read(65536):
                pass

        drainer = asyncio.ensure_future(drain())

        async def close() -> None:
            await end_process(process)
            drainer.cancel()
            await session.on_end()

        return Tunnel(
            local_port=local_port,
            remote_port=remote_port,
            target=f"{session.target} → 127.0.0.1:{remote_port}",
            close=close,
            alive=lambda: process.returncode is None,
            pids=[process.pid],
            info=session.info,
        )
