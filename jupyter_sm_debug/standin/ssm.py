"""SSM Session Manager for the local stand-in: the API calls and the data channel.

``handle(action, params, standin)`` answers StartSession, ResumeSession and TerminateSession
like SSM does for SageMaker remote-debug targets (``sagemaker-training-job:<job>_algo-<n>``).
``DataChannelHandler`` is the websocket at ``/v1/data-channel/<SessionId>`` that a client
(our built-in one, or AWS's session-manager-plugin) connects to with the session's
StreamUrl, ``wss://`` like AWS's (the stand-in's own CA, see ``tls.py``). It plays the
message gateway: it checks the token message and hands the connection to the session's
``Agent``, which plays the host's SSM agent and outlives any one connection, so a client
that lost its websocket resumes the same shell (ResumeSession, new token, reconnect).

The agent behaves like amazon-ssm-agent for shell sessions: no handshake unless the session
is KMS-encrypted (or a knob asks for one); shell output read 1024 bytes at a time at most
once a millisecond (its ``writePump``), so throughput matches what clients see on AWS;
reading stops while ``pause_publication`` is in force and resumes on start_publication or
any incoming data or acknowledgement. Unlike the agent, a full outgoing buffer stops the
reading instead of dropping the oldest message.

The network between client and agent is loopback, unless the stand-in's ``channel_latency``
fault (seconds of round trip) is set: then every websocket message, and the close, waits
half of it on its way in and half on its way out, in order (``OneWay``), as over a link with
that round trip and no bandwidth limit.

Session documents come from the stand-in's SSM (moto: CreateDocument/UpdateDocument):
StartSession's DocumentName, else the account's ``SSM-SessionManagerRunShell`` (where Session
Manager keeps its preferences) when it exists. A Standard_Stream document's ``kmsKeyId``
makes the session KMS-encrypted (handshake, ``kms:Decrypt`` of the client's data key
against the stand-in's KMS, the encryption challenge, AES-GCM output), and its
``shellProfile.linux`` runs at the start of the shell as the agent types it.

``idleSessionTimeout`` (minutes without keystrokes, on the stand-in's clock) ends the
session as the service does. ``runAsEnabled``/``runAsDefaultUser`` are not applied: the SSM
agent in a SageMaker container runs in container mode, where it ignores them too.

Port forwarding (AWS-StartPortForwardingSession, smux inside the data channel) is served by
``ssm_port.PortAgent``. Not done: the other session types.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hmac
import json
import os
import re
import secrets
import signal
import struct
import subprocess
import termios
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket

from ..ssm import protocol as p
from ..ssm.channel import (
    AGENT,
    RESEND_INTERVAL,
    DataChannel,
    EncryptionConfirmed,
    HandshakeAnswered,
    ResendTimeout,
    StreamData,
)
from . import container
from .errors import StandInError
from .ssm_port import PORT_DOCUMENT, PortAgent

TARGET = re.compile(
    r"sagemaker-training-job:(?P<job>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})_(?P<host>algo-[1-9][0-9]{0,4})"
)
SHELL_DOCUMENT = "SSM-SessionManagerRunShell"  # also where the account's preferences live
STREAM_DATA_PAYLOAD_SIZE = 1024  # the agent's mgsConfig.StreamDataPayloadSize
READ_LIMIT = 64 * 1024  # bytes of shell output taken per event-loop turn
# The agent's outgoing buffer capacity (mgsConfig.OutgoingMessageBufferCapacity): where it
# would start dropping messages, we stop reading the shell instead.
SEND_WINDOW = 10000
PACE_BYTES_PER_SECOND = STREAM_DATA_PAYLOAD_SIZE * 1000  # a 1 KiB read, then a 1 ms sleep
PACE_BURST = 16 * 1024  # output allowance saved up while the shell is quiet
PACE_WAKE = 4 * 1024  # allowance worth waking up for while output is throttled
RESUME_WINDOW = 120.0  # seconds a session waits for its client to reconnect
TOKEN_TIMEOUT = 30.0  # seconds a client has to send the token message after connecting
CLOSE_DRAIN_TIMEOUT = 5.0  # seconds to wait for the last output to be acknowledged
HANGUP_GRACE = 2.0  # seconds between SIGHUP and SIGKILL of the shell's process group
DEFAULT_SIZE = (80, 24)


# ---------------------------------------------------------------------------- sessions


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
    agent: Optional[Agent] = None
    document: str = SHELL_DOCUMENT
    inputs: Optional[dict] = None  # the session document's inputs (kmsKeyId, shellProfile...)
    port: Optional[int] = None  # AWS-StartPortForwardingSession's portNumber (ssm_port.py)
    local_port: str = ""  # its localPortNumber: the agent passes it on to the client

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
        self.payload_size = STREAM_DATA_PAYLOAD_SIZE
        self.always_handshake = False
        self.pace = PACE_BYTES_PER_SECOND
        # Faults, for every session: sequence numbers of output messages whose first
        # transmission is lost, and of output messages whose first acknowledgement is.
        self.lose_output: set = set()
        self.lose_acks: set = set()
        self.lost: list = []  # what was lost: ("output" | "ack", sequence number)

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


# ---------------------------------------------------------------------------- API


def handle(action: str, params: dict, standin: Any) -> dict:
    """Answer one SSM API call of the JSON protocol (``X-Amz-Target: AmazonSSM.<action>``)."""
    if action == "StartSession":
        return start_session(params, standin)
    if action == "TerminateSession":
        return terminate_session(params, standin)
    if action == "ResumeSession":
        return resume_session(params, standin)
    raise StandInError(
        "InvalidAction", f"The stand-in's SSM does not implement {action}.", status=400
    )


def _not_connected(target: str) -> StandInError:
    return StandInError("TargetNotConnected", f"{target} is not connected.")


def start_session(params: dict, standin: Any) -> dict:
    target = params.get("Target")
    if not isinstance(target, str) or not target:
        raise StandInError("ValidationException", "Target is required.")
    document = params.get("DocumentName") or SHELL_DOCUMENT
    port = None
    if document == PORT_DOCUMENT:
        inputs, port = {}, port_parameter(params.get("Parameters"))
        local_port = local_port_parameter(params.get("Parameters"))
    else:
        inputs = session_document_inputs(standin, document)
    match = TARGET.fullmatch(target)
    if not match:
        raise _not_connected(target)
    job, host = match.group("job"), match.group("host")
    check_target(standin, job, host, target)

    session_id = f"standin-{secrets.token_hex(9)[:17]}"
    token = secrets.token_urlsafe(48)
    # The real StreamUrl carries the gateway cell; clients pass it through untouched.
    cell = secrets.token_urlsafe(12)
    url = (
        f"{_ws_base(standin)}/v1/data-channel/{session_id}"
        f"?role=publish_subscribe&cell-number={cell}"
    )
    session = SsmSession(session_id, token, target, job, host, url, document=document)
    session.inputs = inputs
    session.port = port
    if port is not None:
        session.local_port = local_port
    reg = registry(standin)
    with reg.lock:
        reg.sessions[session_id] = session
    return {"SessionId": session_id, "TokenValue": token, "StreamUrl": url}


def port_parameter(parameters: Any) -> int:
    """portNumber of AWS-StartPortForwardingSession ({"portNumber": ["6006"]}): 1-65535;
    localPortNumber is the client's business."""
    values = parameters.get("portNumber") if isinstance(parameters, dict) else None
    value = values[0] if isinstance(values, list) and len(values) == 1 else None
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]{0,4}", value):
        raise StandInError(
            "InvalidParameters", "portNumber must be one port number from 1 to 65535."
        )
    if int(value) > 65535:
        raise StandInError("InvalidParameters", "portNumber must be from 1 to 65535.")
    return int(value)


def local_port_parameter(parameters: dict) -> str:
    """localPortNumber, "" when not given: the document's properties carry it to the
    client (the plugin listens where the handshake says, not where its argv says)."""
    values = parameters.get("localPortNumber")
    if values is None:
        return ""
    value = values[0] if isinstance(values, list) and len(values) == 1 else None
    if not isinstance(value, str) or not re.fullmatch(r"0|[1-9][0-9]{0,4}", value):
        raise StandInError("InvalidParameters", "localPortNumber must be a port number.")
    if int(value) > 65535:
        raise StandInError("InvalidParameters", "localPortNumber must be from 0 to 65535.")
    return value


def session_document_inputs(standin: Any, name: str) -> dict:
    """The inputs of a Standard_Stream session document in the stand-in's SSM; {} for the
    default shell document when the account never wrote its preferences."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z0-9_\-.:/]{3,128}", name):
        raise StandInError("ValidationException", "DocumentName is not a valid document name.")
    from moto.ssm.models import ssm_backends

    backend = ssm_backends[standin.account_id][standin.region]
    try:
        info = backend.get_document(name, None, None, "JSON")
    except Exception:  # noqa: BLE001 - moto's own "not found" errors
        if name == SHELL_DOCUMENT:
            return {}  # AWS's own default: no preferences set
        raise StandInError("InvalidDocument", f"Document {name} does not exist.") from None
    try:
        content = json.loads(info.get("Content") or "{}")
    except ValueError:
        content = {}
    if info.get("DocumentType") != "Session" or content.get("sessionType") != "Standard_Stream":
        raise StandInError(
            "InvalidDocument",
            f"Document {name} is not a Standard_Stream session document: the stand-in runs "
            "interactive shells only.",
        )
    inputs = content.get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def check_target(standin: Any, job: str, host: str, target: str) -> None:
    """TargetNotConnected unless the host's container runs with its SSM agent.

    SageMaker starts the agent only with remote debug on (``RemoteDebugConfig``), and only
    while the container is up: the stand-in's ``host_env`` raises ``HostNotLive`` (already
    a TargetNotConnected) for a host that is not running or does not exist.
    """
    describe = getattr(standin, "job", None)
    if describe is not None:
        description = describe(job)
        if not description or not (description.get("RemoteDebugConfig") or {}).get(
            "EnableRemoteDebug"
        ):
            raise _not_connected(target)
    standin.host_env(job, host)


def terminate_session(params: dict, standin: Any) -> dict:
    session_id = params.get("SessionId")
    if not isinstance(session_id, str) or not session_id:
        raise StandInError("ValidationException", "SessionId is required.")
    reg = registry(standin)
    with reg.lock:
        session = reg.sessions.get(session_id)
        if session is None or session.status == "Terminated":
            # SSM answers with the id for sessions that are gone already.
            return {"SessionId": session_id}
        session.status = "Terminated"
        agent = session.agent
    if agent is not None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: the stand-in stopped
            agent.loop.add_callback(agent.end, "")
    return {"SessionId": session_id}


def resume_session(params: dict, standin: Any) -> dict:
    """A new token (and the same StreamUrl) for a session that is not terminated: its
    client lost the data channel, or has not opened it yet."""
    session_id = params.get("SessionId")
    reg = registry(standin)
    with reg.lock:
        session = reg.sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or session.status == "Terminated":
            raise StandInError("DoesNotExistException", f"Session {session_id} is not active.")
        session.token = secrets.token_urlsafe(48)
        session.token_used = False
        return {
            "SessionId": session.session_id,
            "TokenValue": session.token,
            "StreamUrl": session.stream_url,
        }


def _ws_base(standin: Any) -> str:
    """wss:// on the stand-in's TLS port, like AWS (ws:// only for a stand-in without one)."""
    url = getattr(standin, "tls_url", None)
    if not isinstance(url, str):
        url = getattr(standin, "url", None) or f"http://127.0.0.1:{standin.port}"
    return "ws" + url[len("http") :].rstrip("/")


def drop_connections(standin: Any, session_id: Optional[str] = None) -> list:
    """Fault: cut the data-channel websocket of connected sessions (all, or one) without a
    close frame, as a network failure does; the agent side goes on and waits for the
    client to resume. Returns the ids of the sessions cut."""
    reg = registry(standin)
    with reg.lock:
        agents = [
            s.agent
            for s in reg.sessions.values()
            if s.agent is not None and s.status == "Connected"
            and (session_id is None or s.session_id == session_id)
        ]  # fmt: skip
    cut = []
    for agent in agents:
        done = threading.Event()

        def drop(agent=agent, done=done):
            try:
                if agent.drop_connection():
                    cut.append(agent.session.session_id)
            finally:
                done.set()

        try:
            agent.loop.add_callback(drop)
        except RuntimeError:
            continue
        done.wait(5)
    return cut


# ---------------------------------------------------------------------------- data channel


def _make_controlling_tty() -> None:  # pragma: no cover - runs in the child
    # After setsid (start_new_session) the PTY becomes the shell's controlling terminal,
    # so job control, ^C and SIGWINCH work like in a real session.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    container.default_signals()


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class OneWay:
    """One direction of the data channel's network: what is pushed is delivered after
    ``delay()`` seconds, in order (a lower delay never overtakes), at once when the delay is
    0 and nothing is in flight. Items due together are delivered in one call."""

    def __init__(self, loop: Any, delay: Callable[[], float], deliver: Callable[[list], None]):
        self.loop = loop
        self.delay = delay
        self.deliver = deliver
        self.queue: deque = deque()  # (due, item)
        self._timer: Optional[object] = None

    def push(self, item: Any) -> None:
        delay = self.delay()
        if delay <= 0 and not self.queue:
            self.deliver([item])
            return
        due = self.loop.time() + max(0.0, delay)
        if self.queue:
            due = max(due, self.queue[-1][0])
        self.queue.append((due, item))
        if self._timer is None:
            self._timer = self.loop.call_at(due, self._due)

    def _due(self) -> None:
        self._timer = None
        now = self.loop.time()
        items = [self.queue.popleft()[1]]  # the one this timer was set for
        while self.queue and self.queue[0][0] <= now:
            items.append(self.queue.popleft()[1])
        if self.queue:
            self._timer = self.loop.call_at(self.queue[0][0], self._due)
        self.deliver(items)

    def cancel(self) -> None:
        if self._timer is not None:
            self.loop.remove_timeout(self._timer)
            self._timer = None
        self.queue.clear()


class DataChannelHandler(tornado.websocket.WebSocketHandler):
    """One client connection of one session: the gateway. It checks the token message,
    then carries frames between the client and the session's agent, each way after half the
    ``channel_latency`` fault."""

    def initialize(self, standin: Any) -> None:
        self.standin = standin
        self.registry = registry(standin)
        self.session: Optional[SsmSession] = None
        self.agent: Optional[Agent] = None
        self.loop = tornado.ioloop.IOLoop.current()
        self._token_deadline: Optional[object] = None
        self._ended = False
        self._closed = False  # the client's close (or the connection's loss) has arrived
        self._inbound = OneWay(self.loop, self._one_way, self._arrive)
        self._outbound = OneWay(self.loop, self._one_way, self._depart)

    def _one_way(self) -> float:
        return self.standin._faults.channel_latency / 2

    def check_origin(self, origin: str) -> bool:
        return True  # clients are programs, not browsers; the token is the authentication

    def prepare(self):
        session_id = self.path_args[0] if self.path_args else ""
        session = self.registry.get(session_id)
        if session is None or session.status == "Terminated" or session.token_used:
            raise tornado.web.HTTPError(404, "no such session")
        self.session = session
        return super().prepare()

    # ------------------------------------------------------------ websocket events

    def open(self, session_id: str) -> None:
        self.set_nodelay(True)
        self._token_deadline = self.loop.call_later(
            TOKEN_TIMEOUT, self._refuse, "no token message received"
        )

    def on_message(self, message) -> None:
        self._inbound.push(message)

    def on_close(self) -> None:
        self._inbound.push(None)  # the close travels behind the messages sent before it

    def _arrive(self, messages: list) -> None:
        for message in messages:
            if message is None:
                self._on_close_arrived()
            else:
                self._on_message_arrived(message)

    def _on_message_arrived(self, message) -> None:
        if self._ended:
            return
        if self.agent is None:
            self._accept_token(message)
            return
        if isinstance(message, str):
            return  # only the first message is text
        if self.registry.lose_acks and self._lose_ack(message):
            return
        self.agent.receive(message)

    def _lose_ack(self, frame: bytes) -> bool:
        try:
            msg = p.decode(frame)
            if msg.message_type != p.MessageType.ACKNOWLEDGE:
                return False
            seq = p.parse_acknowledgement(msg).sequence_number
        except p.ProtocolError:
            return False
        return self.registry.lose("ack", seq)

    def _on_close_arrived(self) -> None:
        self._ended = self._closed = True
        self._cancel_deadline()
        self._outbound.cancel()  # nobody to receive it
        if self.agent is not None:
            self.agent.detach(self)

    # ------------------------------------------------------------ token

    def _refuse(self, reason: str) -> None:
        self._ended = True
        self.close(1008, reason)

    def _cancel_deadline(self) -> None:
        if self._token_deadline is not None:
            self.loop.remove_timeout(self._token_deadline)
            self._token_deadline = None

    def _accept_token(self, message) -> None:
        session = self.session
        assert session is not None
        if not isinstance(message, str):
            self._refuse("the first message must be the OpenDataChannel token message")
            return
        try:
            opened = p.parse_open_data_channel(message)
        except p.ProtocolError as exc:
            self._refuse(str(exc))
            return
        with self.registry.lock:
            ok = (
                # bytes: compare_digest raises on a str that is not ASCII
                hmac.compare_digest(opened["TokenValue"].encode(), session.token.encode())
                and not session.token_used
                and session.status != "Terminated"
            )
            if ok:
                session.token_used = True
                session.status = "Connected"
                if session.agent is None and session.port is not None:
                    session.agent = PortAgent(self.standin, session, self.loop)
                elif session.agent is None:
                    session.agent = Agent(self.standin, session, self.loop)
                agent = session.agent
        if not ok:
            self._refuse("invalid token")
            return
        self._cancel_deadline()
        self.agent = agent
        agent.attach(self)

    # ------------------------------------------------------------ frames out

    def write_frames(self, frames: list[bytes]) -> None:
        if frames and not self._closed:
            self._outbound.push(frames)

    def _depart(self, batches: List[list]) -> None:
        frames = [frame for batch in batches for frame in batch]
        # A closed socket is noticed by on_close; the frames have nowhere to go (the agent
        # keeps them until they are acknowledged).
        conn = self.ws_connection
        if self._closed or conn is None or conn.is_closing() or not frames:
            return
        stream = getattr(conn, "stream", None)
        if len(frames) == 1 or stream is None or getattr(conn, "_compressor", None):
            with contextlib.suppress(tornado.websocket.WebSocketClosedError):
                for frame in frames:
                    self.write_message(frame, binary=True)
            return
        # write_message sends each message with its own syscall; shell output comes in
        # runs of 1 KiB messages, so frame them here and write them together.
        with contextlib.suppress(tornado.iostream.StreamClosedError):
            stream.write(b"".join(map(_binary_frame, frames)))

    def drop(self) -> None:
        """Cut the TCP connection without a close frame (the network-failure fault)."""
        self._outbound.cancel()
        conn = self.ws_connection
        stream = getattr(conn, "stream", None)
        if stream is not None:
            stream.close()
        else:
            self.close()

    def finish_later(self, delay: float) -> None:
        self._ended = True
        # After what is still on its way out (channel_closed) has arrived.
        self.loop.call_later(delay + self._one_way(), self.close)


class Agent:
    """The SSM agent of one session on its host: the shell in a PTY and the agent's side
    of the data channel. It lives from the first connection to the session's end; a
    client that reconnects (ResumeSession) finds the same shell and the same sequence."""

    def __init__(self, standin: Any, session: SsmSession, loop: Any) -> None:
        self.standin = standin
        self.session = session
        self.registry = registry(standin)
        self.loop = loop
        self.channel = DataChannel(
            AGENT,
            self._send_frame,
            session_id=session.session_id,
            target_id=session.target,
            decrypt_data_key=self._decrypt_data_key,
        )
        self.handler: Optional[DataChannelHandler] = None
        self.proc: Optional[subprocess.Popen] = None
        self.master_fd: Optional[int] = None
        self._started = False
        self._pty_events = 0
        self._reading = False
        self._shell_done = False
        self._pty_input = bytearray()
        self._out_batch: Optional[list[bytes]] = None  # frames of one PTY read
        self._resend_timer: Optional[tornado.ioloop.PeriodicCallback] = None
        self._closing_since: Optional[float] = None
        self._detached_since: Optional[float] = None
        self._allowance = float(PACE_BURST)
        self._refilled = time.monotonic()
        self._pace_wake: Optional[object] = None
        self._last_input = standin.now()
        self._ended = False

    # ------------------------------------------------------------ connections

    def attach(self, handler: DataChannelHandler) -> None:
        previous, self.handler = self.handler, handler
        self._detached_since = None
        if previous is not None and previous is not handler:
            previous.agent = None
            previous.drop()  # a resumed client replaces a connection it gave up on
        if not self._started:
            self._started = True
            self._start()
        else:
            # What the client may have missed while it was away, at once (the service
            # kept it for the client; the agent itself never lost its connection).
            self.channel.resend_all()
            self._update_pty_events()

    def detach(self, handler: DataChannelHandler) -> None:
        if self.handler is not handler:
            return
        self.handler = None
        if not self._ended:
            self._detached_since = time.monotonic()

    def drop_connection(self) -> bool:
        handler = self.handler
        if handler is None or self._ended:
            return False
        handler.drop()
        return True

    # ------------------------------------------------------------ handshake and start

    def _start(self) -> None:
        self._resend_timer = tornado.ioloop.PeriodicCallback(self._tick, RESEND_INTERVAL * 1000)
        self._resend_timer.start()
        kms_key_id = self.session.kms_key_id or self.registry.kms_key_id
        # The agent runs a handshake for a shell only when the session is KMS-encrypted.
        if kms_key_id or self.registry.always_handshake:
            self.channel.request_handshake(kms_key_id=kms_key_id)
            return
        self.channel.skip_handshake()
        self._begin_shell()

    def _decrypt_data_key(self, blob: bytes, context: dict) -> bytes:
        """kms:Decrypt of the client's data key, in the stand-in's KMS (moto)."""
        from moto.kms.models import kms_backends

        backend = kms_backends[self.standin.account_id][self.standin.region]
        plain, _arn = backend.decrypt(ciphertext_blob=blob, encryption_context=dict(context))
        return plain

    def _on_handshake(self, event: HandshakeAnswered) -> None:
        if not event.ok:
            failed = "; ".join(a.error for a in event.response.actions if a.error)
            reason = event.problem or failed or "the client refused the session"
            self.end(f"Handshake failed: {reason}")
            return
        if event.challenged:
            return  # the shell starts once the client proves it has the key
        if self._begin_shell():
            self.channel.complete_handshake()

    def _on_encryption(self, event: EncryptionConfirmed) -> None:
        if not event.ok:
            self.end("Handshake failed: Encryption challenge does not match!")
            return
        if self._begin_shell():
            self.channel.complete_handshake()

    def _begin_shell(self) -> bool:
        try:
            self._spawn_shell()
        except (OSError, StandInError) as exc:
            self.end(f"Cannot start a shell on {self.session.host}: {exc}")
            return False
        self._reading = True
        if self.session.shell_profile:
            # The agent types the document's shell profile into the new shell.
            self._pty_input += self.session.shell_profile.encode() + b"\n"
            self._flush_input()
        self._update_pty_events()
        return True

    # ------------------------------------------------------------ frames in

    def receive(self, frame: bytes) -> None:
        if self._ended:
            return
        try:
            events = self.channel.receive(frame)
        except p.ProtocolError:
            return  # like the agent: log-and-drop
        for event in events:
            if isinstance(event, StreamData):
                self._on_stream(event)
            elif isinstance(event, HandshakeAnswered):
                self._on_handshake(event)
            elif isinstance(event, EncryptionConfirmed):
                self._on_encryption(event)
        self._update_pty_events()
        self._maybe_finish_close()

    # ------------------------------------------------------------ shell and PTY

    def _spawn_shell(self) -> None:
        session = self.session
        argv = self.standin.host_shell_argv(session.job, session.host)
        env, cwd = self.standin.host_env(session.job, session.host)
        env = dict(env)
        env.setdefault("TERM", "xterm-256color")
        master, slave = os.openpty()
        try:
            set_winsize(master, *DEFAULT_SIZE)
            self.proc = subprocess.Popen(  # noqa: S603 - argv from the stand-in itself
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_make_controlling_tty,  # noqa: PLW1509 - one ioctl, nothing else
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # else no EIO on the master when the shell exits
        os.set_blocking(master, False)
        self.master_fd = master

    def _budget(self) -> int:
        """Bytes of shell output the agent's pace allows now."""
        rate = self.registry.pace
        if not rate:
            return READ_LIMIT
        now = time.monotonic()
        self._allowance = min(PACE_BURST, self._allowance + (now - self._refilled) * rate)
        self._refilled = now
        return int(self._allowance)

    def _update_pty_events(self) -> None:
        """Read the PTY while the pace, the window and publication allow; write it while
        input is queued."""
        if self.master_fd is None or self._ended:
            return
        unacked = self.channel.unacked
        if self._reading and unacked >= SEND_WINDOW:
            self._reading = False
        elif not self._reading and not self._shell_done and unacked <= SEND_WINDOW // 2:
            self._reading = True
        want_read = self._reading and not self._shell_done and not self.channel.paused
        if want_read and self.registry.pace and self._budget() < STREAM_DATA_PAYLOAD_SIZE:
            want_read = False
            if self._pace_wake is None:
                delay = (PACE_WAKE - self._allowance) / self.registry.pace
                self._pace_wake = self.loop.call_later(max(0.001, delay), self._paced)
        events = (tornado.ioloop.IOLoop.READ if want_read else 0) | (
            tornado.ioloop.IOLoop.WRITE if self._pty_input else 0
        )
        if events == self._pty_events:
            return
        if self._pty_events == 0:
            self.loop.add_handler(self.master_fd, self._on_pty, events)
        elif events == 0:
            self.loop.remove_handler(self.master_fd)
        else:
            self.loop.update_handler(self.master_fd, events)
        self._pty_events = events

    def _paced(self) -> None:
        self._pace_wake = None
        self._update_pty_events()

    def _on_pty(self, fd: int, events: int) -> None:
        if events & tornado.ioloop.IOLoop.WRITE:
            self._flush_input()
        if events & (tornado.ioloop.IOLoop.READ | tornado.ioloop.IOLoop.ERROR):
            self._read_output()
        self._update_pty_events()
        self._maybe_finish_close()

    def _read_output(self) -> None:
        """Read what the shell wrote, as far as pace and window allow, and send it in
        payload-size messages, all in one socket write."""
        if self.master_fd is None:
            return
        size = self.registry.payload_size
        budget = min(
            READ_LIMIT, max(1, SEND_WINDOW - self.channel.unacked) * size, max(1, self._budget())
        )
        chunks: list[bytes] = []
        got = 0
        eof = False
        while got < budget:  # a PTY read returns at most a few KiB
            try:
                data = os.read(self.master_fd, budget - got)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data = b""  # EIO: every slave fd is closed, the shell is gone
            if not data:
                eof = True
                break
            chunks.append(data)
            got += len(data)
        if self.registry.pace:
            self._allowance -= got
        if chunks:
            data = b"".join(chunks)
            self._out_batch = []
            try:
                for start in range(0, len(data), size):
                    self.channel.send_data(data[start : start + size])
            finally:
                batch, self._out_batch = self._out_batch, None
                if self.handler is not None:
                    self.handler.write_frames(batch)
        if eof:
            self._shell_exited()

    def _flush_input(self) -> None:
        while self._pty_input and self.master_fd is not None:
            try:
                n = os.write(self.master_fd, self._pty_input)
            except BlockingIOError:
                return
            except OSError:
                self._pty_input.clear()  # the shell is gone; its input with it
                return
            del self._pty_input[:n]

    def _on_stream(self, event: StreamData) -> None:
        if self.master_fd is None:
            return
        if event.payload_type == p.PayloadType.OUTPUT:
            self._last_input = self.standin.now()
            self._pty_input += event.payload
            self._flush_input()
        elif event.payload_type == p.PayloadType.SIZE:
            try:
                cols, rows = p.parse_size(event.payload)
            except p.ProtocolError:
                return
            if cols and rows:
                set_winsize(self.master_fd, cols, rows)  # the kernel sends SIGWINCH
        elif event.payload_type == p.PayloadType.FLAG:
            try:
                flag = p.parse_flag(event.payload)
            except p.ProtocolError:
                return
            if flag == p.PayloadTypeFlag.TERMINATE_SESSION:
                self.end("")

    def _shell_exited(self) -> None:
        if self._shell_done:
            return
        self._shell_done = True
        self._closing_since = time.monotonic()

    def _maybe_finish_close(self) -> None:
        """After the shell exits: channel_closed once its last output is acknowledged."""
        if self._closing_since is None or self._ended:
            return
        drained = self.channel.unacked == 0
        if drained or time.monotonic() - self._closing_since > CLOSE_DRAIN_TIMEOUT:
            self.end("")

    # ------------------------------------------------------------ timers and ending

    def _tick(self) -> None:
        if self._ended:
            return
        idle = self.session.idle_timeout
        if idle is not None and self.standin.now() - self._last_input > idle:
            minutes = int(idle // 60)
            self.end(f"Your session timed out after {minutes} minute(s) of inactivity.")
            return
        if self.handler is None:
            # No connection: nothing to resend to. The client has a while to come back.
            if (
                self._detached_since is not None
                and time.monotonic() - self._detached_since > RESUME_WINDOW
            ):
                self.end("")
                return
        else:
            try:
                self.channel.tick()
            except ResendTimeout:
                self.end("The client stopped acknowledging output.")
                return
        proc = self.proc
        if proc is not None and not self._shell_done and proc.poll() is not None:
            # The shell ended but something it left behind holds the PTY open: the agent
            # ends the session with the shell, so do we.
            self._read_output_until_empty()
            self._shell_exited()
        self._update_pty_events()
        self._maybe_finish_close()

    def _read_output_until_empty(self) -> None:
        while self.master_fd is not None and not self._shell_done:
            before = self.channel.next_sequence_number
            self._allowance = max(self._allowance, float(READ_LIMIT))
            self._read_output()
            if self.channel.next_sequence_number == before:
                return

    def _send_frame(self, frame: bytes) -> None:
        if self.registry.lose_output and frame[4:22] == b"output_stream_data":
            seq = struct.unpack_from(">q", frame, 48)[0]  # SequenceNumber's offset
            if self.registry.lose("output", seq):
                return
        if self._out_batch is not None:
            self._out_batch.append(frame)
        elif self.handler is not None:
            self.handler.write_frames([frame])

    def end(self, output: str = "") -> None:
        """End the session: channel_closed to the client, shell killed, socket closed."""
        if self._ended:
            return
        self.channel.close(output)
        self._ended = True
        self._stop_timers()
        self._kill_shell()
        with self.registry.lock:
            self.session.status = "Terminated"
        handler, self.handler = self.handler, None
        if handler is not None:
            # A moment to read channel_closed and close first, as the plugin does.
            handler.finish_later(2.0)

    def _stop_timers(self) -> None:
        if self._resend_timer is not None:
            self._resend_timer.stop()
            self._resend_timer = None
        if self._pace_wake is not None:
            self.loop.remove_timeout(self._pace_wake)
            self._pace_wake = None

    def _kill_shell(self) -> None:
        if self.master_fd is not None:
            if self._pty_events:
                self.loop.remove_handler(self.master_fd)
                self._pty_events = 0
            os.close(self.master_fd)
            self.master_fd = None
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGHUP)
        started = time.monotonic()

        def reap() -> None:
            if proc.poll() is not None:
                return
            if time.monotonic() - started > HANGUP_GRACE:
                _signal_group(proc, signal.SIGKILL)
            tornado.ioloop.IOLoop.current().call_later(0.1, reap)

        self.loop.call_later(0.05, reap)


def _binary_frame(payload: bytes) -> bytes:
    """An unmasked, final, binary websocket frame (RFC 6455 5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x82, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x82, 126, n) + payload
    return struct.pack("!BBQ", 0x82, 127, n) + payload


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the shell leads its own group
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)
