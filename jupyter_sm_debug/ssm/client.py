"""The built-in Session Manager client: a shell on an SSM target from this terminal.

A pure-Python stand-in for ``aws ssm start-session`` + ``session-manager-plugin`` for
interactive shell sessions (SageMaker remote debug targets
``sagemaker-training-job:<job>_algo-<n>``)::

    python -m jupyter_sm_debug.ssm.client --target sagemaker-training-job:my-job_algo-1 \\
        [--region R] [--profile P] [--endpoint-url URL] [--reason TEXT] [--no-terminate]

    # a session someone else started (the StartSession response JSON):
    python -m jupyter_sm_debug.ssm.client --session-env VAR  [--region R ...]
    python -m jupyter_sm_debug.ssm.client --session-fd 3     [--region R ...]

    # the plugin's own calling convention, as the AWS CLI uses it:
    python -m jupyter_sm_debug.ssm.client '<response JSON>'|AWS_SSM_START_SESSION_RESPONSE_x \\
        <region> StartSession [<profile> [<request JSON> [<endpoint>]]]

boto3's usual configuration applies (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL(_SSM), ...).
Exit status: 0 when the remote end closed the session, 1 on errors, 2 on bad usage,
128+n when ended by signal n. TerminateSession is called on the way out unless
``--no-terminate``.

boto3 is imported only when an API call is needed (it costs half a second and 28 MiB of
memory); with an inherited session, only at exit (TerminateSession), on a lost connection
(ResumeSession) or for KMS. It is not loaded in advance: 32 sessions would hold 900 MiB for
a quicker exit. A client killed before its TerminateSession leaves that to whoever started
the session (the extension terminates every session when its terminal ends).

Where this differs from session-manager-plugin (shell sessions):

- the terminal is put in raw mode (the plugin uses ``stty cbreak -echo`` and forwards
  SIGINT/SIGQUIT/SIGTSTP as bytes; we forward them too when stdin is not a terminal);
- the size is sent at start and on SIGWINCH (the plugin polls it every 500 ms);
- when the websocket drops, ResumeSession and a new connection, five tries with backoff
  like the plugin, with a line in the terminal saying so; unacknowledged input is sent
  again and output already shown is never shown twice (sequence numbers);
- KMS-encrypted sessions as the plugin does them (``encryption.py``); port forwarding is
  refused in the handshake;
- no conversion of a lone "\n" keystroke to "\r" (a workaround for Windows targets).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

from . import encryption
from . import protocol as p
from .channel import (
    CLIENT,
    CLIENT_VERSION,
    RESEND_INTERVAL,
    ChannelClosedEvent,
    DataChannel,
    HandshakeCompleted,
    HandshakeRequested,
    ResendTimeout,
    StreamData,
)

PROG = "python -m jupyter_sm_debug.ssm.client"
TARGET_VARIABLE = "SM_DEBUG_SSM_TARGET"  # the target of an inherited session (KMS context)
TIMEOUT_VARIABLE = "SM_DEBUG_SSM_CONNECT_TIMEOUT"  # default of --connect-timeout
STDIN_CHUNK = 1024  # the plugin's StdinBufferLimit
RECV_SIZE = 256 * 1024
MAX_MESSAGE = 16 * 1024 * 1024  # far above any data-channel message; stops a runaway
STDIN_WINDOW = 1000  # unacknowledged keystroke messages before we stop reading stdin
PING_INTERVAL = 300.0  # the plugin pings every 5 minutes to keep the websocket alive
# Reconnecting (the plugin's config.go): 5 attempts, 100 ms doubling up to 5 s.
RETRY_ATTEMPTS = 5
RETRY_INITIAL_DELAY = 0.1
RETRY_MAX_DELAY = 5.0
FALLBACK_SIZE = (300, 100)  # what the plugin sends when the terminal size is unknown
# Control signals the plugin forwards as bytes when they reach it (only outside raw mode).
SIGNAL_BYTES = {signal.SIGINT: b"\x03", signal.SIGQUIT: b"\x1c", signal.SIGTSTP: b"\x1a"}
END_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class UsageError(Exception):
    pass


class ClientError(Exception):
    """Something the user should read; printed without a traceback, exit status 1."""


# ---------------------------------------------------------------------------- arguments


def parse_args(argv: List[str]) -> argparse.Namespace:
    if argv and not argv[0].startswith("-"):
        return _parse_plugin_args(argv)
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Open an interactive shell on an SSM target over Session Manager.",
    )
    ap.add_argument(
        "--target",
        help="SSM target, e.g. sagemaker-training-job:JOB_algo-1 (with an inherited session: "
        "only its id for KMS encryption)",
    )
    src = ap.add_mutually_exclusive_group()
    src.add_argument(
        "--session-env", metavar="NAME", help="environment variable holding StartSession JSON"
    )
    src.add_argument(
        "--session-fd", metavar="FD", type=int, help="inherited fd to read StartSession JSON from"
    )
    ap.add_argument("--region")
    ap.add_argument("--profile")
    ap.add_argument("--endpoint-url", help="SSM API endpoint (default: boto3's)")
    ap.add_argument("--document-name", help="session document (default: the shell)")
    ap.add_argument("--reason", help="reason recorded with the session")
    ap.add_argument(
        "--no-terminate", action="store_true", help="do not call TerminateSession on exit"
    )
    ap.add_argument(
        "--connect-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end the session with a message when no shell is up within this time",
    )
    args = ap.parse_args(argv)
    if not (args.target or args.session_env or args.session_fd is not None):
        ap.error("give --target, --session-env or --session-fd")
    args.session_json = None
    # What the extension passes by environment (it keeps job names out of argv).
    args.target = args.target or os.environ.get(TARGET_VARIABLE) or None
    if args.connect_timeout is None and os.environ.get(TIMEOUT_VARIABLE):
        try:
            args.connect_timeout = float(os.environ[TIMEOUT_VARIABLE])
        except ValueError:
            ap.error(f"{TIMEOUT_VARIABLE} must be a number of seconds")
    return args


def _parse_plugin_args(argv: List[str]) -> argparse.Namespace:
    """session-manager-plugin's positional form: response region operation [profile params ep]."""
    if len(argv) < 3 or argv[2] != "StartSession":
        raise UsageError(f"{PROG}: expected <response> <region> StartSession [...]")
    args = argparse.Namespace(
        target=None,
        session_env=None,
        session_fd=None,
        region=argv[1] or None,
        profile=argv[3] if len(argv) > 3 and argv[3] else None,
        endpoint_url=argv[5] if len(argv) > 5 and argv[5] else None,
        document_name=None,
        reason=None,
        no_terminate=False,
        session_json=None,
        connect_timeout=None,
    )
    if argv[0].startswith("AWS_SSM_START_SESSION_RESPONSE"):
        args.session_env = argv[0]
    else:
        args.session_json = argv[0]
    if len(argv) > 4:
        try:
            args.target = json.loads(argv[4]).get("Target")
        except (ValueError, AttributeError):
            args.target = None
    return args


# ---------------------------------------------------------------------------- AWS calls


class Api:
    """The two or three SSM calls we make, with boto3 imported on first use."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                session = boto3.Session(
                    profile_name=self.args.profile, region_name=self.args.region
                )
                self._client = session.client(
                    "ssm",
                    endpoint_url=self.args.endpoint_url,
                    config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2}),
                )
            return self._client

    def start_session(self, target: str) -> Dict[str, Any]:
        params: Dict[str, Any] = {"Target": target}
        if self.args.document_name:
            params["DocumentName"] = self.args.document_name
        if self.args.reason:
            params["Reason"] = self.args.reason
        try:
            return self.client().start_session(**params)
        except Exception as exc:  # noqa: BLE001 - every boto failure becomes one message
            raise ClientError(describe_aws_error(exc, "StartSession", target)) from None

    def generate_data_key(self, key_id: str, context: Dict[str, str]) -> tuple:
        """kms:GenerateDataKey for a KMS-encrypted session: (CiphertextBlob, Plaintext)."""
        import boto3
        from botocore.config import Config

        session = boto3.Session(profile_name=self.args.profile, region_name=self.args.region)
        # The KMS endpoint is boto3's own (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, or AWS);
        # --endpoint-url is SSM's.
        kms = session.client(
            "kms", config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2})
        )
        try:
            answer = kms.generate_data_key(
                KeyId=key_id,
                NumberOfBytes=encryption.DATA_KEY_BYTES,
                EncryptionContext=context,
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes the action's error
            raise ClientError(describe_aws_error(exc, "GenerateDataKey", key_id)) from None
        return answer["CiphertextBlob"], answer["Plaintext"]

    def resume_session(self, session_id: str) -> Dict[str, str]:
        """A new token and stream URL for a session whose connection was lost."""
        try:
            answer = self.client().resume_session(SessionId=session_id)
        except Exception as exc:  # noqa: BLE001 - every boto failure becomes one message
            raise ClientError(describe_aws_error(exc, "ResumeSession", session_id)) from None
        if not answer.get("TokenValue"):
            raise ClientError(f"Session {session_id} timed out.")
        return {
            "SessionId": session_id,
            "TokenValue": answer["TokenValue"],
            "StreamUrl": answer.get("StreamUrl") or "",
        }

    def terminate_session(self, session_id: str) -> Optional[str]:
        try:
            self.client().terminate_session(SessionId=session_id)
        except Exception as exc:  # noqa: BLE001 - the session ends anyway; say why not cleanly
            return describe_aws_error(exc, "TerminateSession", session_id)
        return None


def describe_aws_error(exc: Exception, operation: str, subject: str) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code", "")
        message = response["Error"].get("Message", "")
        text = f"An error occurred ({code}) when calling the {operation} operation: {message}"
        if code == "TargetNotConnected":
            text += (
                f"\nIs the training job running with remote debug enabled, and does {subject}"
                " exist? SSM registers a host a minute or two after the job starts training."
            )
        return text
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return f"{operation} failed: no AWS credentials found ({exc})."
    if name == "NoRegionError":
        return f"{operation} failed: no AWS region configured; pass --region or set AWS_REGION."
    return f"{operation} failed: {exc}"


def load_session(args: argparse.Namespace) -> Dict[str, str]:
    """The StartSession response this run uses: inherited, or from our own StartSession."""
    raw: Optional[str] = args.session_json
    if args.session_env:
        raw = os.environ.pop(args.session_env, None)
        if raw is None:
            raise ClientError(f"environment variable {args.session_env} is not set")
    elif args.session_fd is not None:
        try:
            with os.fdopen(args.session_fd, "rb") as f:
                raw = f.read().decode()
        except OSError as exc:
            raise ClientError(f"cannot read the session from fd {args.session_fd}: {exc}") from None
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ClientError("the StartSession response is not JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data.get(k)
        for k in ("SessionId", "StreamUrl", "TokenValue")
    ):
        raise ClientError("the StartSession response needs SessionId, StreamUrl and TokenValue")
    return data


# ---------------------------------------------------------------------------- terminal


class Terminal:
    """Our own stdin/stdout: raw mode while the session runs, the window size."""

    def __init__(self, in_fd: int = 0, out_fd: int = 1):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self._saved = None

    def __enter__(self) -> Terminal:
        if os.isatty(self.in_fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.in_fd)
            # Raw like ssh: every key, ^C included, goes to the remote shell, whose own PTY
            # does the echo, line editing and newline translation.
            tty.setraw(self.in_fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.in_fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def size(self) -> tuple:
        for fd in (self.out_fd, self.in_fd):
            try:
                cols, rows = os.get_terminal_size(fd)
            except OSError:
                continue
            if cols and rows:
                return cols, rows
        return FALLBACK_SIZE


def wait_fds(fds: List[int], timeout: Optional[float], events: int = select.POLLIN) -> List[int]:
    """The fds among ``fds`` that are ready (hung up or in error counts as ready), waiting at
    most ``timeout`` seconds (None: for ever). poll, not select: the client also runs inside
    the Jupyter server (ssm/run.py), whose fds can be numbered above select's 1024."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, events | select.POLLHUP | select.POLLERR)
    return [fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)]


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            wait_fds([fd], None, select.POLLOUT)
            continue
        view = view[n:]


# ---------------------------------------------------------------------------- session


OPCODE_CONT, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING = 0x0, 0x2, 0x8, 0x9


class FrameReader:
    """Websocket messages from the server, parsed from large socket reads.

    websocket-client makes three small reads per frame; with one acknowledgement owed per
    1 KiB of shell output that capped throughput, so after its handshake the incoming
    side is read here (RFC 6455 5.2: server frames are never masked).

    With ``lock`` (the websocket's send lock), every read runs under it, without blocking:
    an SSL object must never read in one thread while another writes on it (OpenSSL does
    not allow it, and a write that fails that way leaves the session without input). The
    wait for data happens outside the lock, on the socket itself.
    """

    def __init__(self, sock, lock=None):
        self.sock = sock
        self.lock = lock
        self.buffer = bytearray()
        self._fragments: List[bytes] = []
        self._fragment_opcode = 0

    def read(self) -> List[tuple]:
        """Block until at least one complete message is in; return all complete ones."""
        while True:
            messages = self._parse()
            if messages:
                return messages
            data = self._recv() if self.lock is not None else self.sock.recv(RECV_SIZE)
            if not data:
                raise ConnectionError("Connection to remote host was lost.")
            self.buffer += data

    def _recv(self) -> bytes:
        import ssl

        sock = self.sock
        pending = getattr(sock, "pending", None)  # bytes OpenSSL decrypted and holds
        wait_for = "read"
        while True:
            if wait_for == "write":
                select.select([], [sock], [])
            elif not (pending and pending()):
                select.select([sock], [], [])
            with self.lock:
                sock.setblocking(False)
                try:
                    return sock.recv(RECV_SIZE)
                except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                    wait_for = "read"  # a record not yet whole: wait for the rest
                except ssl.SSLWantWriteError:
                    wait_for = "write"  # TLS itself must send first (a key update)
                finally:
                    sock.setblocking(True)

    def _parse(self) -> List[tuple]:
        buf = self.buffer
        pos = 0
        messages = []
        while len(buf) - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            if second & 0x80:
                raise ConnectionError("the server sent a masked frame")
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, start)[0]
                start += 2
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, start)[0]
                start += 8
            if length > MAX_MESSAGE:
                raise ConnectionError(f"a {length}-byte websocket frame is not a session message")
            if len(buf) - start < length:
                break
            payload = bytes(buf[start : start + length])
            pos = start + length
            opcode, fin = first & 0x0F, first & 0x80
            if opcode >= OPCODE_CLOSE:  # control frames may arrive between fragments
                messages.append((opcode, payload))
            elif opcode == OPCODE_CONT or not fin:
                if opcode != OPCODE_CONT:
                    self._fragment_opcode = opcode
                self._fragments.append(payload)
                if fin:
                    messages.append((self._fragment_opcode, b"".join(self._fragments)))
                    self._fragments = []
            else:
                messages.append((opcode, payload))
        del buf[:pos]
        return messages


class Session:
    """One connected data channel: a reader thread for the websocket, the caller's thread
    for stdin, signals and the resend timer."""

    def __init__(
        self,
        ws,
        info: Dict[str, str],
        terminal: Terminal,
        on_ready: Optional[Callable[[], None]] = None,
        connect_timeout: Optional[float] = None,
        resume: Optional[Callable[[str], Dict[str, str]]] = None,
        target: str = "",
        generate_data_key: Optional[encryption.GenerateDataKey] = None,
    ):
        self.ws = ws
        self.connect_timeout = connect_timeout
        self.resume = resume  # ResumeSession: a new token and stream URL
        self.connected = True
        self.reconnects = 0
        self.stream_url = info["StreamUrl"]
        self._resumes_without_data = 0  # a connection that is refused at once counts too
        self.on_ready = on_ready
        self.session_id = info["SessionId"]
        self.terminal = terminal
        self.lock = threading.Lock()  # guards the channel and orders our websocket sends
        self.channel = DataChannel(
            CLIENT,
            self._send_frame,
            session_id=self.session_id,
            target_id=target,
            generate_data_key=generate_data_key,
        )
        self.ready = False  # handshake complete: the shell handlers may run
        self.exit_code: Optional[int] = None
        self.exit_message = ""
        self._last_size: Optional[tuple] = None
        self._batch: Optional[List[bytes]] = None  # frames held back by the reader
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._reader = threading.Thread(target=self._read_loop, name="ssm-reader", daemon=True)

    # --- sending (always under self.lock)

    def _send_frame(self, frame: bytes) -> None:
        if self._batch is not None:
            self._batch.append(frame)
        elif self.connected:
            try:
                self.ws.send_bytes(frame)
            except Exception:  # noqa: BLE001 - the frame stays unacknowledged: resent later
                self._send_failed()

    def _send_failed(self) -> None:
        """A connection we cannot write to is lost, even if it still reads: shut it down,
        so that the reader notices and resumes the session (a new connection, where what
        was not acknowledged is sent again). Left as it was, the session would read on
        with no way to send a keystroke or an acknowledgement."""
        self.connected = False
        with contextlib.suppress(Exception):
            # socket.socket's own shutdown: SSLSocket's would drop its SSL object under
            # the reader's feet.
            socket.socket.shutdown(self.ws.sock, socket.SHUT_RDWR)

    def _send_batch(self, frames: List[bytes]) -> None:
        """Many websocket messages in one write: a 1 KiB output message costs one
        acknowledgement, and a syscall each would cap throughput."""
        import websocket

        if not self.connected:
            return
        binary = websocket.ABNF.OPCODE_BINARY
        data = b"".join(websocket.ABNF.create_frame(f, binary).format() for f in frames)
        try:
            with self.ws.lock:  # websocket-client's own send lock (send_close, ping use it)
                self.ws.sock.sendall(data)
        except OSError:
            self._send_failed()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full pipe: already awake
            os.write(self._wake_w, b"\0")

    def _finish(self, code: int, message: str = "") -> None:
        if self.exit_code is None:
            self.exit_code = code
            self.exit_message = message
        self._wake()

    # --- websocket side

    def _read_loop(self) -> None:
        while self.exit_code is None:
            try:
                self._read_connection()
            except Exception as exc:  # noqa: BLE001 - a broken connection: resume it
                if self.exit_code is not None:
                    return
                self.connected = False
                if not self._reconnect(exc):
                    return

    def _read_connection(self) -> None:
        reader = FrameReader(self.ws.sock, self.ws.lock)
        while self.exit_code is None:
            # Every message that has already arrived, answered together.
            frames = []
            for opcode, data in reader.read():
                if opcode == OPCODE_BINARY:
                    frames.append(data)
                    self._resumes_without_data = 0
                elif opcode == OPCODE_PING:
                    self.ws.pong(data)
                elif opcode == OPCODE_CLOSE:
                    raise ConnectionError("The service closed the session's connection.")
            unreadable = ""
            with self.lock:
                self._batch = []
                events: List[Any] = []
                for data in frames:
                    try:
                        events += self.channel.receive(data)
                    except p.MalformedPayload as exc:
                        unreadable = p.unreadable(exc)
                        break
                    except p.ProtocolError:
                        continue  # the plugin logs and drops such frames too
                    except Exception as exc:  # noqa: BLE001 - a parser we did not foresee
                        unreadable = p.unreadable(f"{type(exc).__name__}: {exc}")
                        break
                batch, self._batch = self._batch, None
                if batch:
                    self._send_batch(batch)
            self._on_events(events)
            if unreadable:
                # Not a lost connection: resuming would bring the same message again.
                self._finish(1, unreadable)
                return

    def _reconnect(self, lost: Exception) -> bool:
        """ResumeSession and a new data channel, with the plugin's retries and backoff."""
        with contextlib.suppress(Exception):
            self.ws.shutdown()
        if self.resume is None:
            self._finish(1, f"The session's connection failed: {lost or type(lost).__name__}")
            return False
        self._output(
            self.terminal.out_fd,
            b"\r\n[sm-debug] The session's connection was lost; reconnecting...\r\n",
        )
        delay = RETRY_INITIAL_DELAY
        problem = str(lost) or type(lost).__name__
        while self._resumes_without_data < RETRY_ATTEMPTS:
            if self.exit_code is not None:
                return False
            self._resumes_without_data += 1
            try:
                info = self.resume(self.session_id)
                info["StreamUrl"] = info.get("StreamUrl") or self.stream_url
                ws = connect(info, timeout=10)
            except ClientError as exc:
                problem = str(exc)
            else:
                with self.lock:
                    self.ws = ws
                    self.connected = True
                    self.reconnects += 1
                    self.channel.resend_all()  # input the agent may not have had
                self._output(self.terminal.out_fd, b"[sm-debug] Reconnected.\r\n")
                return True
            time.sleep(delay)
            delay = min(RETRY_MAX_DELAY, delay * 2)
        self._finish(
            1,
            f"The session's connection was lost and {RETRY_ATTEMPTS} attempts to resume it "
            f"failed: {problem}",
        )
        return False

    def _on_events(self, events: List[Any]) -> None:
        output = bytearray()  # consecutive shell output goes out in one write
        for event in events:
            if isinstance(event, StreamData) and event.payload_type == p.PayloadType.OUTPUT:
                if not self.ready:  # an agent without handshake starts with shell output
                    self._set_ready()
                output += event.payload
                continue
            if output:
                self._output(self.terminal.out_fd, bytes(output))
                output.clear()
            self._on_event(event)
        if output:
            self._output(self.terminal.out_fd, bytes(output))

    def _on_event(self, event: Any) -> None:
        if isinstance(event, StreamData):
            if event.payload_type == p.PayloadType.STDERR:
                self._output(2, event.payload)
        elif isinstance(event, HandshakeRequested):
            if event.response.errors:
                self._finish(1, "Session handshake failed: " + "; ".join(event.response.errors))
        elif isinstance(event, HandshakeCompleted):
            message = event.complete.customer_message
            if message:
                self._output(self.terminal.out_fd, message.encode() + b"\r\n")
            self._set_ready()
        elif isinstance(event, ChannelClosedEvent):
            closed = event.closed
            if closed.output:
                self._finish(0, f"SessionId: {self.session_id} : {closed.output}")
            else:
                self._finish(0, f"Exiting session with sessionId: {self.session_id}.")

    def _set_ready(self) -> None:
        self.ready = True
        self._wake()  # the main loop sends the first size and starts reading stdin
        if self.on_ready is not None:
            on_ready, self.on_ready = self.on_ready, None
            on_ready()

    def _output(self, fd: int, data: bytes) -> None:
        try:
            write_all(fd, data)
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EPIPE, errno.EBADF):
                self._finish(1, "")  # our terminal went away: nobody left to talk to
            else:
                raise

    # --- local side

    def run(self) -> int:
        self._reader.start()
        stdin_open = True
        last_ping = started = self.channel.clock()
        while self.exit_code is None:
            watch = [self._wake_r]
            if stdin_open and self.ready and self.channel.unacked < STDIN_WINDOW:
                watch.append(self.terminal.in_fd)
            try:
                readable = wait_fds(watch, RESEND_INTERVAL)
            except InterruptedError:
                readable = []
            if self._wake_r in readable:
                self._on_wake(os.read(self._wake_r, 256))
            if self.exit_code is not None:
                break
            if self.ready and self._last_size is None:
                self._send_size()
            if self.terminal.in_fd in readable:
                try:
                    data = os.read(self.terminal.in_fd, STDIN_CHUNK)
                except OSError:
                    data = b""
                if data:
                    with self.lock:
                        self.channel.send_data(data)
                else:
                    stdin_open = False  # keep showing output until the remote closes
            now = self.channel.clock()
            if (
                not self.ready
                and self.connect_timeout is not None
                and now - started > self.connect_timeout
            ):
                self._finish(1, no_shell_message(self.connect_timeout))
                break
            with self.lock:
                try:
                    if self.connected:
                        self.channel.tick()
                        if now - last_ping > PING_INTERVAL:
                            last_ping = now
                            self.ws.ping(b"keepalive")
                except ResendTimeout:
                    self._finish(1, "The target stopped acknowledging input; ending the session.")
                except Exception:  # noqa: BLE001 - the ping could not be sent
                    self._send_failed()
        return self.exit_code

    def _on_wake(self, data: bytes) -> None:
        for signum in data:
            if signum == 0:
                continue  # the reader thread: state changed
            if signum == signal.SIGWINCH:
                if self.ready:
                    self._send_size()
            elif signum in SIGNAL_BYTES:
                if self.ready:
                    with self.lock:
                        self.channel.send_data(SIGNAL_BYTES[signum])
            elif signum in END_SIGNALS:
                self._finish(128 + signum, "")

    def _send_size(self) -> None:
        size = self.terminal.size()
        if size != self._last_size:
            self._last_size = size
            with self.lock:
                self.channel.send_size(*size)

    def install_signals(self) -> List[Any]:
        """Route the signals we care about through the wake-up pipe; returns the undo list."""
        undo: List[Any] = [("wakeup", signal.set_wakeup_fd(self._wake_w))]
        for sig in (signal.SIGWINCH, *SIGNAL_BYTES, *END_SIGNALS):
            undo.append((sig, signal.signal(sig, _noop)))
        return undo

    def close(self) -> None:
        """Say goodbye on the websocket, briefly wait for the reader, then drop the socket."""
        with contextlib.suppress(Exception):  # already gone is fine
            self.ws.send_close()
        self._reader.join(timeout=1.0)
        with contextlib.suppress(Exception):
            self.ws.shutdown()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)


def no_shell_message(timeout: float) -> str:
    return (
        f"[sm-debug] The built-in SSM client got no shell within {timeout:g} s "
        "(c.SMDebug.ssm_connect_timeout); ending the session. Close this tab and attach again."
    )


def _noop(signum: int, frame: object) -> None:
    """The wake-up fd carries the signal number to the main loop, which acts on it."""


def restore_signals(undo: List[Any]) -> None:
    for what, previous in reversed(undo):
        if what == "wakeup":
            signal.set_wakeup_fd(previous)
        else:
            signal.signal(what, previous)


# ---------------------------------------------------------------------------- main


def tls_options() -> Dict[str, Any]:
    """Trust for a wss:// stream URL: AWS_CA_BUNDLE when set (as the AWS CLI and botocore
    take it), else the system's store (which honours SSL_CERT_FILE)."""
    bundle = os.environ.get("AWS_CA_BUNDLE")
    return {"ca_certs": bundle} if bundle else {}


def connect(info: Dict[str, str], timeout: float = 30):
    import websocket

    try:
        ws = websocket.create_connection(info["StreamUrl"], timeout=timeout, sslopt=tls_options())
    except Exception as exc:  # noqa: BLE001 - any failure to reach the stream is one message
        raise ClientError(f"Cannot open the session's data channel: {exc}") from None
    ws.settimeout(None)
    client_id = str(uuid.uuid4())
    ws.send(p.open_data_channel_message(info["TokenValue"], client_id, CLIENT_VERSION))
    return ws


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    api = Api(args)
    try:
        info = load_session(args)
        if not info:
            info = api.start_session(args.target)
    except ClientError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"\nStarting session with SessionId: {info['SessionId']}", flush=True)
    code, message = 1, ""
    try:
        code, message = run_session(
            info,
            connect_timeout=args.connect_timeout,
            resume=api.resume_session,
            target=args.target or "",
            generate_data_key=api.generate_data_key,
        )
    except ClientError as exc:
        message = str(exc)
    except KeyboardInterrupt:  # ^C before the terminal went raw
        code = 128 + signal.SIGINT
    finally:
        if message:
            print(f"\n\n{message}\n", file=sys.stdout if code == 0 else sys.stderr, flush=True)
        if not args.no_terminate:
            problem = api.terminate_session(info["SessionId"])
            if problem and code != 0:
                print(problem, file=sys.stderr)
    return code


def run_session(
    info: Dict[str, str],
    on_ready: Optional[Callable[[], None]] = None,
    connect_timeout: Optional[float] = None,
    resume: Optional[Callable[[str], Dict[str, str]]] = None,
    target: str = "",
    generate_data_key: Optional[encryption.GenerateDataKey] = None,
) -> tuple:
    """Connect and run the session until it ends; (exit status, message to print)."""
    ws = connect(info, connect_timeout or 30)
    terminal = Terminal()
    session = Session(
        ws,
        info,
        terminal,
        on_ready,
        connect_timeout,
        resume,
        target,
        generate_data_key,
    )
    undo = session.install_signals()
    try:
        with terminal:
            code = session.run()
    finally:
        restore_signals(undo)
        session.close()
    return code, session.exit_message


if __name__ == "__main__":
    sys.exit(main())
