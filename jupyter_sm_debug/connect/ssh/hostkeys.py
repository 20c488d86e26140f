"""Host keys: parsing them, asking a host for its keys, and checking that it holds the one
pinned for a session before any terminal opens (a mismatch is a 409, never a terminal that
says "Host key verification failed")."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import shutil
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..process import check_output
from ..types import CannotAttach

if TYPE_CHECKING:
    from .address import Target

HOST_KEY_TYPES = frozenset({
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
})  # fmt: skip
PROBE_TIMEOUT = 3.0
CHECK_TIMEOUT = 15.0
# What OpenSSH says when the pinned key is not the one the host shows.
KEY_REFUSED = ("Host key verification failed", "HOST IDENTIFICATION HAS CHANGED")


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


async def probe(addr: str, port: int) -> None:
    """Fail fast with a clear error instead of a terminal that just says 'Connection refused'."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), PROBE_TIMEOUT)
    except (OSError, asyncio.TimeoutError, socket.gaierror) as error:
        reason = getattr(error, "strerror", None) or str(error) or "timed out"
        raise CannotAttach(
            "host_unreachable",
            f"Could not reach sshd at {addr}:{port} ({reason}).",
            "Check that sshd runs in the container and that the job's security group and "
            "subnet allow this notebook to reach that port.",
        ) from None
    writer.close()


async def scan_host_keys(addr: str, port: int) -> list[HostKey]:
    """What the host presents (ssh-keyscan): pinned for the session when no key is known."""
    keyscan = shutil.which("ssh-keyscan")
    if keyscan is None:
        return []
    _, out, _ = await check_output([keyscan, "-T", "5", "-p", str(port), "--", addr], CHECK_TIMEOUT)
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
    code, _, err = await check_output([
        *argv, "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=publickey", "-o", "ConnectTimeout=5", "--", target.addr,
        "true",
    ], CHECK_TIMEOUT)  # fmt: skip
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
