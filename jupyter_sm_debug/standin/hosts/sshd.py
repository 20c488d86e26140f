"""A host's sshd: the kit it runs from, its config, its start, and the sessions in it."""

from __future__ import annotations

import logging
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from ... import entrypoint
from .. import container
from .live import LiveHost

log = logging.getLogger(__name__)


SSHD_MISSING_HINT = (
    "OpenSSH server not found: hosts run without SSH. To get SSH into stand-in hosts, "
    "install it (Debian/Ubuntu: apt-get install openssh-server)."
)
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def _which(name: str) -> Optional[str]:
    path = os.environ.get("PATH", "") + os.pathsep + _SBIN
    return shutil.which(name, path=path)


class SshKit:
    """The stand-in's SSH material: host key, one client key pair, authorized_keys."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.sshd = _which("sshd")
        self.keygen = _which("ssh-keygen")
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.client_key = directory / "client_ed25519"
        self.host_key = directory / "host_ed25519"
        self.authorized_keys = directory / "authorized_keys"
        self._lock = threading.Lock()
        self._ready = False

    @property
    def missing_hint(self) -> Optional[str]:
        return None if (self.sshd and self.keygen) else SSHD_MISSING_HINT

    def prepare(self) -> bool:
        """Create the keys once. True if sshd can be used."""
        with self._lock:
            if self._ready:
                return self.missing_hint is None
            if self.keygen:
                self.dir.mkdir(parents=True, exist_ok=True)
                for key, comment in ((self.client_key, "standin-client"), (self.host_key, "")):
                    if not key.exists():
                        subprocess.run(
                            [self.keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment,
                             "-f", str(key)],
                            check=True, stdin=subprocess.DEVNULL, capture_output=True,
                        )  # fmt: skip
                public = self.client_key.with_suffix(".pub").read_text()
                self.authorized_keys.write_text(public)
            if self.sshd and os.getuid() == 0:
                # sshd running as root needs its privilege-separation directory.
                os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            self._ready = True
            return self.missing_hint is None

    def use_pam(self) -> bool:
        # With UsePAM no, OpenSSH refuses accounts whose password is locked ("!..."),
        # even for keys; PAM does not. Use PAM only when needed and configured.
        try:
            with open("/etc/shadow") as shadow:
                for line in shadow:
                    name, _, rest = line.partition(":")
                    if name == self.user:
                        locked = rest.startswith("!")
                        return locked and os.path.exists("/etc/pam.d/sshd")
        except OSError:
            pass
        return False


# Where OpenSSH's sftp-server lives (Debian, Red Hat, Alpine, Homebrew and source builds).
SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
    "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server", "/usr/local/libexec/sftp-server",
)  # fmt: skip


def sftp_subsystem() -> Optional[str]:
    """The sshd_config line that offers SFTP in a stand-in host, or None without sftp-server.

    A real container's sshd (entrypoint.sshd_config) serves `internal-sftp` inside sshd's own
    connection process: no process of the user, so no person's session for a hold. A
    stand-in host's sshd runs outside the host's namespaces and sends every session through
    ForceCommand (nsenter into the host); sshd then runs the subsystem's command as
    SSH_ORIGINAL_COMMAND there, so internal-sftp would not do (it is no program, and sshd's
    own process sees this machine's /opt/ml). The external sftp-server runs inside the
    host instead, carrying the extension's tool mark (entrypoint.TOOL_MARK) in its argv,
    environment and SSH_ORIGINAL_COMMAND, so it counts no more than internal-sftp does."""
    server = next((path for path in SFTP_SERVERS if os.access(path, os.X_OK)), None)
    env = shutil.which("env") or "/usr/bin/env"
    if server is None:
        return None
    return f"Subsystem sftp {env} {entrypoint.TOOL_MARK} {server}\n"


def _has_children(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as children:
            return bool(children.read().strip())
    except OSError:
        return True  # no such file in this kernel: look the long way


def _ssh_sessions(hosts: list[LiveHost]) -> dict[str, int]:
    """Open SSH debug sessions per host token, counted as sm-debug-entrypoint counts them
    (entrypoint.ssh_session_count: a connection with a process of the user under it; a
    connection still authenticating, a failed login or a port probe does not count). One
    pass over /proc for all the hosts."""
    sshds = {h.sshd.pid: h.token for h in hosts if h.sshd is not None}
    if not any(_has_children(pid) for pid in sshds):
        return {}  # the common case, without reading every process
    table = entrypoint.process_table()
    counts: dict[str, int] = {}
    for sshd_pid, token in sshds.items():
        count = entrypoint.ssh_session_count(sshd_pid, table)
        if count:
            counts[token] = count
    return counts


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


class SshdMixin:
    """HostManager's sshd part."""

    def _sshd_config(self, host: LiveHost, port: int) -> Path:
        ssh = self.ssh
        config = host.meta / "sshd_config"
        force = f"/bin/bash {shlex.quote(str(host.script))} --ssh"
        config.write_text(
            "# sshd of one stand-in host; touches no system configuration.\n"
            f"Port {port}\n"
            f"ListenAddress {self.ADDRESS}\n"
            f"HostKey {ssh.host_key}\n"
            "PidFile none\n"
            f"AuthorizedKeysFile {ssh.authorized_keys}\n"
            "AuthenticationMethods publickey\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "HostbasedAuthentication no\n"
            f"UsePAM {'yes' if ssh.use_pam() else 'no'}\n"
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            f"AllowUsers {ssh.user}\n"
            f"ForceCommand {force}\n"
            # sshd runs ForceCommand as `$SHELL -c`, and bash reads this machine's ~/.bashrc
            # when sshd started it, unless SHLVL says it is nested: a host must not run the
            # machine user's start-up files (pyenv's rehash there waits 60 s on a stale lock).
            "SetEnv SHLVL=1\n"
            "PermitUserEnvironment no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            # As sm-debug-entrypoint's sshd: only local TCP forwarding (ssh -L) stays.
            "X11Forwarding no\n"
            "AllowAgentForwarding no\n"
            "AllowStreamLocalForwarding no\n"
            "AllowTcpForwarding local\n"
            "GatewayPorts no\n"
            "PermitTunnel no\n"
            f"{sftp_subsystem() or ''}"
            "UseDNS no\n"
            "MaxStartups 64\n"
            "LogLevel INFO\n"
        )
        return config

    def _start_sshd(self, host: LiveHost) -> None:
        error = "sshd did not start"
        for _ in range(3):  # the free port may be taken between probe and bind: retry
            port = _free_port(self.ADDRESS)
            config = self._sshd_config(host, port)
            logfile = open(host.meta / "sshd.log", "ab")  # noqa: SIM115 - owned by the child
            try:
                process = subprocess.Popen(
                    [self.ssh.sshd, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                    start_new_session=True, env={"PATH": "/usr/bin:/bin" + os.pathsep + _SBIN},
                    preexec_fn=container.default_signals,
                )  # fmt: skip
            finally:
                logfile.close()
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and process.poll() is None:
                if _listening(self.ADDRESS, port):
                    host.sshd, host.addr, host.port = process, self.ADDRESS, port
                    return
                time.sleep(0.02)
            if process.poll() is None:
                process.kill()
            process.wait()
            error = (host.meta / "sshd.log").read_text(errors="replace")[-2000:]
        host.ssh_error = error
        log.warning("stand-in host %s/%s has no SSH: %s", host.job, host.spec.name, error)
