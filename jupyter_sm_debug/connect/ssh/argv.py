"""The ssh command lines: one hardened base (pinned host key, nothing forwarded, no ssh_config
surprises) that attach, run, forward and files (sftp) each finish in their own way."""

from __future__ import annotations

import os
import shlex


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


def session_argv(ssh: str, options: list[str], identity: list[str], user: str, addr: str):
    """Attach: a terminal on the host (the last two words are `--` and the address)."""
    return [
        ssh, "-t", *options, *identity,
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=4",
        "-o", "ConnectTimeout=10",
        "-l", user, "--", addr,
    ]  # fmt: skip


def run_argv(attach_argv: list[str], command: list[str]) -> list[str]:
    """One command, no PTY, no prompt. sshd hands the remote side one string, so the argv is
    quoted for its shell here."""
    argv = ["-T" if word == "-t" else word for word in attach_argv[:-2]]
    return [*argv, "-o", "BatchMode=yes", "--", attach_argv[-1], shlex.join(command)]


def sftp_argv(attach_argv: list[str], subsystem: str = "sftp") -> list[str]:
    """The Attach argv turned into the `sftp` subsystem on stdin/stdout (`ssh -s`): no PTY,
    no prompt, nothing forwarded (ClearAllForwardings stays), the same pinned key."""
    argv = ["-T" if word == "-t" else word for word in attach_argv[:-2]]
    return [*argv, "-o", "BatchMode=yes", "-s", "--", attach_argv[-1], subsystem]


def forward_argv(attach_argv: list[str], socket_path: str, remote_port: int) -> list[str]:
    """The Attach argv turned into a forward to a Unix socket (in a 0700 directory, so no
    other local user can reach or pre-empt it): no terminal, no command, one -L.
    ClearAllForwardings=yes clears command-line forwards too, so it becomes =no here (ssh
    keeps an option's first value, hence replaced, not appended); -F still reads only
    c.SMDebug.ssh_config or nothing. ExitOnForwardFailure: no socket, no ssh."""
    argv = list(attach_argv)
    argv[argv.index("-t")] = "-N"
    argv[argv.index("ClearAllForwardings=yes")] = "ClearAllForwardings=no"
    end = argv.index("--")
    argv[end:end] = [
        "-o", "ExitOnForwardFailure=yes",
        "-o", "StreamLocalBindUnlink=yes",
        "-o", "StreamLocalBindMask=0177",
        "-L", f"{socket_path}:127.0.0.1:{remote_port}",
    ]  # fmt: skip
    return argv
