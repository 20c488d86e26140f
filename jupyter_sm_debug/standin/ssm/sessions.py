"""The stand-in's SSM sessions: what StartSession made, and the registry of one stand-in
(with the knobs and faults tests set). Shared by the API (``ssm.py``), the gateway
(``gateway.py``) and the agents (``agent.py`` and its session kinds); imports none
of them.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from ...ssm import protocol as p

# The agent reads its shell 1 KiB at a time, then sleeps a millisecond (its writePump).
PACE_BYTES_PER_SECOND = p.STREAM_DATA_PAYLOAD_SIZE * 1000
SMUX_KEEPALIVE_INTERVAL = 10.0  # seconds: smux.DefaultConfig's KeepAliveInterval
SMUX_KEEPALIVE_TIMEOUT = 30.0  # seconds: its KeepAliveTimeout


@dataclass
class SsmSession:
    session_id: str
    token: str
    target: str
    job: str
    host: str
    stream_url: str
    status: str = "Connecting"  # Connecting -> Connected -> Terminated
    token_used: bool = False
    agent: Any = None  # its AgentBase, from the first connection on
    document: str = p.SHELL_DOCUMENT
    inputs: Optional[dict] = None  # the session document's inputs (kmsKeyId, shellProfile...)
    port: Optional[int] = None  # AWS-StartPortForwardingSession's portNumber (port.py)
    local_port: str = ""  # its localPortNumber: the agent passes it on to the client
    # As a held host's look sees it (ssm_looks.ssm_sessions): the extension's own; the pids
    # (as the host numbers them) of its shell's processes while it counted as a person's;
    # its close was looked at.
    ours: bool = False
    pids: set = field(default_factory=set)
    closed: bool = False

    @property
    def kms_key_id(self) -> str:
        return str((self.inputs or {}).get("kmsKeyId") or "")

    @property
    def idle_timeout(self) -> Optional[float]:
        """Seconds without input before the session ends; None when the document sets none."""
        value = (self.inputs or {}).get("idleSessionTimeout")
        try:
            minutes = int(str(value)) if value not in (None, "") else None
        except ValueError:
            return None
        return minutes * 60.0 if minutes and 1 <= minutes <= 60 else None

    @property
    def shell_profile(self) -> str:
        profile = (self.inputs or {}).get("shellProfile")
        return str(profile.get("linux") or "") if isinstance(profile, dict) else ""


class SessionRegistry:
    """The stand-in's SSM sessions, plus knobs for tests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: Dict[str, SsmSession] = {}
        # Knobs: make the handshake ask for KMS encryption; the output message size; run
        # the handshake even when the agent would skip it; output bytes per second (0: as
        # fast as the client acknowledges).
        self.kms_key_id: Optional[str] = None
        self.payload_size = p.STREAM_DATA_PAYLOAD_SIZE
        self.always_handshake = False
        self.pace = PACE_BYTES_PER_SECOND
        # Faults, for every session: sequence numbers of output messages whose first
        # transmission is lost, and of output messages whose first acknowledgement is.
        self.lose_output: set = set()
        self.lose_acks: set = set()
        self.lost: list = []  # what was lost: ("output" | "ack", sequence number)
        # The port agent's smux keep-alive (xtaci/smux DefaultConfig: a NOP every
        # KeepAliveInterval; the session closes when a KeepAliveTimeout tick finds nothing
        # received since the last one). Tests shrink them.
        self.smux_keepalive_interval = SMUX_KEEPALIVE_INTERVAL
        self.smux_keepalive_timeout = SMUX_KEEPALIVE_TIMEOUT

    def lose(self, kind: str, seq: int) -> bool:
        wanted = self.lose_output if kind == "output" else self.lose_acks
        with self.lock:
            if seq not in wanted:
                return False
            wanted.discard(seq)
            self.lost.append((kind, seq))
            return True

    def get(self, session_id: str) -> Optional[SsmSession]:
        with self.lock:
            return self.sessions.get(session_id)


_registries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_registries_lock = threading.Lock()


def registry(standin: Any) -> SessionRegistry:
    """The session registry of one stand-in (kept beside it, not on it)."""
    with _registries_lock:
        reg = _registries.get(standin)
        if reg is None:
            reg = _registries[standin] = SessionRegistry()
        return reg
