"""SSH transport: OpenSSH's `ssh` client into a container that runs sshd (docs/ssh.md).

- address.py: where to connect (request, configuration, the entrypoint's announcement);
- hostkeys.py: host keys, what a host presents, the check before a terminal opens;
- argv.py: the hardened ssh command lines of attach, run, forward and files (sftp);
- transport.py: `SSHTransport`, the four verbs (files: files/sftp.py over `ssh -s sftp`).
"""

from __future__ import annotations

from .address import (
    ANNOUNCEMENT,
    DNS_NAME,
    FAILED,
    USER_NAME,
    Target,
    entrypoint_without_ssh,
    first_announcement,
    parse_address,
    resolve_target,
    valid_host,
    valid_port,
)
from .argv import client_options, forward_argv, sftp_argv
from .hostkeys import (
    HOST_KEY_TYPES,
    KEY_REFUSED,
    HostKey,
    check_host_key,
    host_key_from_text,
    parse_host_key,
    probe,
    scan_host_keys,
)
from .transport import SSHTransport

__all__ = [
    "ANNOUNCEMENT",
    "DNS_NAME",
    "FAILED",
    "HOST_KEY_TYPES",
    "KEY_REFUSED",
    "USER_NAME",
    "HostKey",
    "SSHTransport",
    "Target",
    "check_host_key",
    "client_options",
    "entrypoint_without_ssh",
    "first_announcement",
    "forward_argv",
    "host_key_from_text",
    "parse_address",
    "parse_host_key",
    "probe",
    "resolve_target",
    "scan_host_keys",
    "sftp_argv",
    "valid_host",
    "valid_port",
]
