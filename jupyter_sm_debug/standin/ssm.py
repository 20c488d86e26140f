"""SSM Session Manager for the local stand-in: the API calls and the data channel.

``handle(action, params, standin)`` answers StartSession and TerminateSession like SSM does
for SageMaker remote-debug targets (``sagemaker-training-job:<job>_algo-<n>``).
``DataChannelHandler`` is the websocket at ``/v1/data-channel/<SessionId>`` that a client
(our built-in one, or AWS's session-manager-plugin) connects to with the session's
StreamUrl. It plays both the message gateway and the SSM agent of the host: it checks the
token message, runs the agent's side of the handshake, starts the host's shell in a PTY and
bridges it to the channel with the same sequencing, acknowledgement and retransmission as
the client (``jupyter_sm_debug.ssm.channel``).

Like the real agent, shell output goes out in 1024-byte messages; unlike it, output reading
pauses while too many messages are unacknowledged, so a slow client slows the shell down
instead of growing a buffer in this process.

Not done: resuming after a disconnect (a dropped websocket ends the session here, so
ResumeSession only re-issues the token of a session not yet connected), KMS encryption (the
``kms_key_id`` knob only makes the handshake ask for it, to test clients that must refuse),
port forwarding and other session documents.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hmac
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
from dataclasses import dataclass
from typing import Any, Dict, Optional

import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket

from ..ssm import protocol as p
from ..ssm.channel import (
    AGENT,
    RESEND_INTERVAL,
    DataChannel,
    HandshakeAnswered,
    ResendTimeout,
    StreamData,
)
from .errors import StandInError

TARGET = re.compile(
    r"sagemaker-training-job:(?P<job>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})_(?P<host>algo-[1-9][0-9]{0,4})"
)
SHELL_DOCUMENTS = ("SSM-SessionManagerRunShell",)
STREAM_DATA_PAYLOAD_SIZE = 1024  # the agent's mgsConfig.StreamDataPayloadSize
READ_LIMIT = 64 * 1024  # bytes of shell output taken per event-loop turn
SEND_WINDOW = 512  # unacknowledged output messages before the PTY is no longer read
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
    handler: Optional[DataChannelHandler] = None


class SessionRegistry:
    """The stand-in's SSM sessions, plus knobs for tests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: Dict[str, SsmSession] = {}
        # Knobs: make the handshake ask for KMS encryption; the output message size.
        self.kms_key_id: Optional[str] = None
        self.payload_size = STREAM_DATA_PAYLOAD_SIZE
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
    document = params.get("DocumentName")
    if document and document not in SHELL_DOCUMENTS:
        raise StandInError(
            "InvalidDocument",
            f"Document {document} is not available here: the stand-in only runs interactive "
            "shells (no DocumentName).",
        )
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
    session = SsmSession(session_id, token, target, job, host, url)
    reg = registry(standin)
    with reg.lock:
        reg.sessions[session_id] = session
    return {"SessionId": session_id, "TokenValue": token, "StreamUrl": url}


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
        handler = session.handler
    if handler is not None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: the stand-in stopped
            handler.loop.add_callback(handler.end, "")
    return {"SessionId": session_id}


def resume_session(params: dict, standin: Any) -> dict:
    """A new token for a session whose data channel is not connected yet.

    A session whose websocket dropped has ended here (its shell is gone), so unlike SSM
    there is nothing to resume after a disconnect.
    """
    session_id = params.get("SessionId")
    reg = registry(standin)
    with reg.lock:
        session = reg.sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or session.status != "Connecting":
            raise StandInError("DoesNotExistException", f"Session {session_id} is not active.")
        session.token = secrets.token_urlsafe(48)
        session.token_used = False
        return {
            "SessionId": session.session_id,
            "TokenValue": session.token,
            "StreamUrl": session.stream_url,
        }


def _ws_base(standin: Any) -> str:
    url = getattr(standin, "url", None)
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return "ws" + url[len("http") :].rstrip("/")
    return f"ws://127.0.0.1:{standin.port}"


# ---------------------------------------------------------------------------- data channel


def _make_controlling_tty() -> None:  # pragma: no cover - runs in the child
    # After setsid (start_new_session) the PTY becomes the shell's controlling terminal,
    # so job control, ^C and SIGWINCH work like in a real session.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class DataChannelHandler(tornado.websocket.WebSocketHandler):
    """One client connection of one session: gateway + agent + the host's shell."""

    def initialize(self, standin: Any) -> None:
        self.standin = standin
        self.registry = registry(standin)
        self.session: Optional[SsmSession] = None
        self.channel: Optional[DataChannel] = None
        self.loop = tornado.ioloop.IOLoop.current()
        self.proc: Optional[subprocess.Popen] = None
        self.master_fd: Optional[int] = None
        self._pty_events = 0
        self._reading = False
        self._shell_done = False
        self._pty_input = bytearray()
        self._out_batch: Optional[list[bytes]] = None  # frames of one PTY read
        self._resend_timer: Optional[tornado.ioloop.PeriodicCallback] = None
        self._token_deadline: Optional[object] = None
        self._closing_since: Optional[float] = None
        self._ended = False

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
        if self._ended:
            return
        if self.channel is None:
            self._accept_token(message)
            return
        if isinstance(message, str):
            return  # only the first message is text
        if self.registry.lose_acks and self._lose_ack(message):
            return
        try:
            events = self.channel.receive(message)
        except p.ProtocolError:
            return  # like the agent: log-and-drop
        for event in events:
            if isinstance(event, StreamData):
                self._on_stream(event)
            elif isinstance(event, HandshakeAnswered):
                self._on_handshake(event)
        self._update_pty_events()
        self._maybe_finish_close()

    def _lose_ack(self, frame: bytes) -> bool:
        try:
            msg = p.decode(frame)
            if msg.message_type != p.MessageType.ACKNOWLEDGE:
                return False
            seq = p.parse_acknowledgement(msg).sequence_number
        except p.ProtocolError:
            return False
        return self.registry.lose("ack", seq)

    def on_close(self) -> None:
        self._ended = True
        self._stop_timer()
        self._kill_shell()
        session = self.session
        if session is not None:
            with self.registry.lock:
                # A connection that never gave the right token ends nothing.
                if session.handler is self:
                    session.status = "Terminated"
                    session.handler = None

    # ------------------------------------------------------------ token and handshake

    def _refuse(self, reason: str) -> None:
        self._ended = True
        self.close(1008, reason)

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
                session.handler = self
        if not ok:
            self._refuse("invalid token")
            return
        if self._token_deadline is not None:
            self.loop.remove_timeout(self._token_deadline)
        self.channel = DataChannel(AGENT, self._send_frame, session_id=session.session_id)
        self.channel.request_handshake(kms_key_id=self.registry.kms_key_id)
        self._resend_timer = tornado.ioloop.PeriodicCallback(self._tick, RESEND_INTERVAL * 1000)
        self._resend_timer.start()

    def _on_handshake(self, event: HandshakeAnswered) -> None:
        if not event.ok:
            failed = "; ".join(a.error for a in event.response.actions if a.error)
            self.end(f"Handshake failed: {failed or 'the client refused the session'}")
            return
        assert self.channel is not None
        try:
            self._spawn_shell()
        except (OSError, StandInError) as exc:
            self.end(f"Cannot start a shell on {self.session.host}: {exc}")
            return
        self.channel.complete_handshake()
        self._reading = True

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

    def _update_pty_events(self) -> None:
        """Read the PTY only while the client keeps up; write while input is queued."""
        if self.master_fd is None:
            return
        unacked = self.channel.unacked
        if self._reading and unacked >= SEND_WINDOW:
            self._reading = False
        elif not self._reading and not self._shell_done and unacked <= SEND_WINDOW // 2:
            self._reading = True
        events = (tornado.ioloop.IOLoop.READ if self._reading and not self._shell_done else 0) | (
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

    def _on_pty(self, fd: int, events: int) -> None:
        if events & tornado.ioloop.IOLoop.WRITE:
            self._flush_input()
        if events & (tornado.ioloop.IOLoop.READ | tornado.ioloop.IOLoop.ERROR):
            self._read_output()
        self._update_pty_events()
        self._maybe_finish_close()

    def _read_output(self) -> None:
        """Read what the shell wrote, as far as the window allows, and send it in
        payload-size messages, all in one socket write."""
        size = self.registry.payload_size
        budget = min(READ_LIMIT, max(1, SEND_WINDOW - self.channel.unacked) * size)
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
        if chunks:
            data = b"".join(chunks)
            self._out_batch = []
            try:
                for start in range(0, len(data), size):
                    self.channel.send_data(data[start : start + size])
            finally:
                batch, self._out_batch = self._out_batch, None
                self._write_frames(batch)
        if eof:
            self._shell_exited()

    def _flush_input(self) -> None:
        while self._pty_input:
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
        if self._ended or self.channel is None:
            return
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
        self._maybe_finish_close()

    def _read_output_until_empty(self) -> None:
        while self.master_fd is not None and not self._shell_done:
            before = self.channel.next_sequence_number
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
        else:
            self._write_frames([frame])

    def _write_frames(self, frames: list[bytes]) -> None:
        # A closed socket is noticed by on_close; the frames have nowhere to go.
        conn = self.ws_connection
        if conn is None or conn.is_closing() or not frames:
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

    def end(self, output: str = "") -> None:
        """End the session: channel_closed to the client, shell killed, socket closed."""
        if self._ended:
            return
        if self.channel is not None:
            self.channel.close(output)
        self._ended = True
        self._stop_timer()
        self._kill_shell()
        if self.session is not None:
            with self.registry.lock:
                self.session.status = "Terminated"
        # Give the client a moment to read channel_closed and close first, as the plugin does.
        self.loop.call_later(2.0, self.close)

    def _stop_timer(self) -> None:
        if self._resend_timer is not None:
            self._resend_timer.stop()
            self._resend_timer = None
        if self._token_deadline is not None:
            self.loop.remove_timeout(self._token_deadline)
            self._token_deadline = None

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
