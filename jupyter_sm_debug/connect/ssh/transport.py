"""SSH transport: OpenSSH's `ssh` client into a container that runs sshd.

Every verb starts from one prepared connection (`_prepare`): the target resolved
(address.py), the host key pinned in a per-session known_hosts in a 0700 directory of its
own and checked once (hostkeys.py), the hardened argv (argv.py). Attach runs it in a
terminal, run runs one command, forward runs `ssh -N -L <dir>/socket:127.0.0.1:PORT`,
files runs `ssh -s ... sftp` and speaks SFTP over its pipes (files/sftp.py).
The directory goes when the session, command or forward ends.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ...description import attach_state
from ...files.sftp import START_TIMEOUT, SFTPFileSystem
from ...files.sftp_wire import Connection, WireError
from ..clients import ssh_client, ssh_problem
from ..process import capture, end_process, private_directory, remove_directory
from ..types import (
    RUN_OUTPUT_LIMIT,
    CannotAttach,
    HostTarget,
    RunResult,
    Session,
    Tunnel,
    base_environment,
)
from . import argv as ssh_argv
from .address import USER_NAME, Target, resolve_target
from .hostkeys import KEY_REFUSED, scan_host_keys

FORWARD_READY_TIMEOUT = 20.0
SOCKET_NAME = "forward.sock"


@dataclass
class Prepared:
    """A checked connection: the attach argv and what to release when its user ends."""

    argv: list[str]
    env: dict[str, str]
    directory: str  # 0700, this connection's only: known_hosts, a forward's socket
    target: Target
    where: str  # user@addr:port
    info: dict
    pin: str
    on_exit: Callable[[Optional[int], str], None]
    released: bool = field(default=False)

    async def release(self) -> None:
        if not self.released:
            self.released = True
            remove_directory(self.directory)


class SSHTransport:
    name = "ssh"
    capabilities = frozenset({"attach", "run", "forward", "files"})

    # -- the shared preparation ------------------------------------------------------------------

    def _checked_client(self, target: HostTarget) -> tuple[str, list[str]]:
        """(ssh path, identity options) or CannotAttach: the machine first, then the job."""
        problem = ssh_problem()
        if problem is not None:
            raise CannotAttach(problem["code"], problem["message"], problem["hint"], status=503)
        state = attach_state(target.description)["ssh"]
        if not state["ok"]:
            raise CannotAttach("not_attachable", state["reason"], "Pick a running job.")
        config = target.config
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
        identity: list[str] = []
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
        return ssh_client() or "ssh", identity

    async def _prepare(self, target: HostTarget) -> Prepared:
        ssh, identity = self._checked_client(target)
        remembered = target.jobs.ssh_trust.target(target.job, target.host)
        where = await resolve_target(target)
        try:
            return await self._connect(target, ssh, identity, where)
        except CannotAttach:
            if remembered is None or where is not remembered:
                raise
            # A remembered announcement may be an earlier container's: read the log again.
            target.jobs.ssh_trust.forget(target.job, target.host)
        return await self._connect(target, ssh, identity, await resolve_target(target))

    async def _connect(self, request: HostTarget, ssh: str, identity: list, target: Target):
        config = request.config
        if target.host_key is None and config.ssh_strict_host_key_checking:
            raise CannotAttach(
                "host_key_required",
                f"No host key is known for {target.addr}:{target.port}, and "
                "c.SMDebug.ssh_strict_host_key_checking refuses unverified hosts.",
                "Give the host key with the address (the request's 'host_key', or "
                '{"address": ..., "host_key": ...} in c.SMDebug.ssh_addresses).',
            )
        checks = sys.modules[__package__]  # hostkeys' functions, as the package names them
        await checks.probe(target.addr, target.port)
        keys = (
            [target.host_key] if target.host_key else await scan_host_keys(target.addr, target.port)
        )
        if not keys:
            raise CannotAttach(
                "host_key_unavailable",
                f"{target.addr}:{target.port} presented no SSH host key.",
                "Check that an sshd listens there.",
            )
        alias = f"sm-debug-{request.host}"
        directory = private_directory("sm-debug-ssh-")
        try:
            known_hosts = os.path.join(directory, "known_hosts")
            with open(known_hosts, "w") as handle:
                handle.writelines(key.known_hosts_line(alias) for key in keys)
            options = ssh_argv.client_options(config, known_hosts, alias, target.port)
            trust, job, host = request.jobs.ssh_trust, request.job, request.host
            if target.host_key is None or not trust.verified(job, host, target):
                try:
                    await checks.check_host_key([ssh, *options], target)
                except BaseException:
                    trust.unverify(job, host, target)
                    raise
                if target.host_key is not None:
                    trust.mark_verified(job, host, target)
        except BaseException:
            remove_directory(directory)
            raise

        def on_exit(status: int | None, output: str) -> None:
            # The session's ssh refused the host's key: trust nothing remembered about it
            # (a remote shell printing these words only costs the next attach its check).
            if status == 255 and any(words in output[-600:] for words in KEY_REFUSED):
                trust.refused(job, host, target)

        argv = ssh_argv.session_argv(ssh, options, identity, config.ssh_user, target.addr)
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
        return Prepared(
            argv=argv,
            env=env,
            directory=directory,
            target=target,
            where=f"{config.ssh_user}@{target.addr}:{target.port}",
            info={"host_key": host_key},
            pin=" ".join(host_key["fingerprints"]),
            on_exit=on_exit,
        )

    # -- the verbs ---------------------------------------------------------------------------------

    async def attach(self, target: HostTarget) -> Session:
        prepared = await self._prepare(target)
        return Session(
            argv=prepared.argv,
            env=prepared.env,
            target=prepared.where,
            on_end=prepared.release,
            on_exit=prepared.on_exit,
            info=prepared.info,
            pin=prepared.pin,
        )

    async def run(
        self, target: HostTarget, argv: list[str], timeout: float, stdin: bytes = b""
    ) -> RunResult:
        """`ssh ... -- addr 'argv'` with the attach's pinned key and options, no PTY."""
        started = time.monotonic()
        prepared = await self._prepare(target)
        try:
            left = max(0.1, timeout - (time.monotonic() - started))
            result = await capture(
                ssh_argv.run_argv(prepared.argv, argv), left, stdin, prepared.env,
                limit=target.options.get("output_limit", RUN_OUTPUT_LIMIT),  # hostrun's share
            )  # fmt: skip
        finally:
            await prepared.release()
        if not result.timed_out:
            prepared.on_exit(result.exit_code, result.stderr.decode(errors="replace"))
        result.seconds = time.monotonic() - started
        if result.exit_code == 255 and not result.timed_out:
            # ssh's own failure (connection, authentication), not the command's exit code.
            last = (result.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            result.error = {
                "code": "ssh_failed",
                "message": f"ssh to {prepared.where} failed: {last[:300]}",
                "hint": "Check that the host is up and that the key is accepted.",
            }
        return result

    async def forward(self, target: HostTarget, remote_port: int) -> Tunnel:
        """`ssh -N -L <0700 dir>/forward.sock:127.0.0.1:PORT`: no TCP listener on this
        machine; the proxy connects to the Unix socket, which only this user can reach."""
        prepared = await self._prepare(target)
        path = os.path.join(prepared.directory, SOCKET_NAME)
        try:
            process = await asyncio.create_subprocess_exec(
                *ssh_argv.forward_argv(prepared.argv, path, remote_port),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=prepared.env, start_new_session=True,
            )  # fmt: skip
        except BaseException:
            await prepared.release()
            raise
        try:
            ready = await socket_listening(path, process, FORWARD_READY_TIMEOUT)
        except BaseException:
            await end_process(process)
            await prepared.release()
            raise
        if not ready:
            await end_process(process)
            await prepared.release()
            errors = await process.stderr.read(4096)
            last = (errors.decode(errors="replace").strip().splitlines() or ["no answer"])[-1]
            raise CannotAttach(
                "forward_failed",
                f"ssh could not forward port {remote_port} of {target.host}: {last[:300]}",
                "Check that the container's sshd allows TCP forwarding (AllowTcpForwarding).",
            )

        async def drain() -> None:  # 'open failed' lines per refused connection; unread
            while await process.stderr.read(65536):
                pass

        drainer = asyncio.ensure_future(drain())

        async def close() -> None:
            await end_process(process)
            drainer.cancel()
            await prepared.release()

        async def connect():
            return await asyncio.open_unix_connection(path)

        return Tunnel(
            local_port=0,
            remote_port=remote_port,
            target=f"{prepared.where} → 127.0.0.1:{remote_port}",
            close=close,
            alive=lambda: process.returncode is None,
            connect=connect,
            pids=[process.pid],
            info=prepared.info,
        )

    async def files(self, target: HostTarget) -> SFTPFileSystem:
        """The host's files: one `ssh -s -- addr sftp` (the attach's pinned key and options,
        no PTY, nothing forwarded) speaking SFTP 3 on its pipes; released when closed."""
        prepared = await self._prepare(target)
        try:
            process = await asyncio.create_subprocess_exec(
                *ssh_argv.sftp_argv(prepared.argv), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=prepared.env, start_new_session=True, limit=1 << 20,
            )  # fmt: skip
        except BaseException:
            await prepared.release()
            raise
        connection = Connection(process, end_process)

        async def release(connection: Connection) -> None:
            await prepared.release()
            output = connection.stderr_tail.decode(errors="replace")
            prepared.on_exit(process.returncode, output)

        filesystem = SFTPFileSystem(connection, target.host, on_close=release)
        filesystem.info = prepared.info
        try:
            await connection.start(START_TIMEOUT)
            await filesystem.start()
        except WireError:
            await filesystem.close()
            last = connection.stderr_tail.decode(errors="replace").strip().splitlines()
            raise CannotAttach(
                "sftp_failed",
                f"No SFTP session to {prepared.where}: {(last or ['no answer'])[-1][:300]}",
                "Check that the host's sshd offers the sftp subsystem "
                "(Subsystem sftp internal-sftp) and accepts the key.",
                status=502,
            ) from None
        except BaseException:
            await filesystem.close()
            raise
        return filesystem


def unix_listening(path: str) -> bool:
    """Whether a Unix socket at `path` is listening (/proc/net/unix: flag __SO_ACCEPTCON)."""
    try:
        with open("/proc/net/unix") as table:
            next(table)
            for line in table:
                fields = line.split(None, 7)
                if len(fields) == 8 and fields[7].rstrip("\n") == path:
                    return int(fields[3], 16) & 0x10000 != 0
    except (OSError, StopIteration, ValueError):
        pass
    return False


async def socket_listening(path: str, process, timeout: float) -> bool:
    """Until ssh listens on the Unix socket (after its login), or it exits. Nobody else can
    create anything in the socket's 0700 directory, so what listens there is this ssh."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and process.returncode is None:
        try:
            is_socket = stat.S_ISSOCK(os.lstat(path).st_mode)
        except OSError:
            is_socket = False
        if is_socket and await accepts(path):
            return True
        await asyncio.sleep(0.05)
    return False


async def accepts(path: str) -> bool:
    """Whether the socket at `path` listens: /proc/net/unix where there is one (Linux),
    else one connection that is closed at once (ssh opens and drops one channel)."""
    if os.path.exists("/proc/net/unix"):
        return unix_listening(path)
    try:
        _, writer = await asyncio.open_unix_connection(path)
    except OSError:
        return False
    writer.close()
    return True
