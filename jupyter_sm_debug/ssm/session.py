"""The built-in client's session: one shell session's data channel, driven from this
process's terminal (or, for ``run.py``, from pipes). A reader thread reads the websocket,
the caller's thread reads stdin, signals and runs the resend timer; ``channel.DataChannel``
keeps the protocol's state. websocket-client opens the connection (the HTTP upgrade, TLS
options, proxies); from then on every frame is read and written with ``wsframe``.

The command line around it is ``client.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

from . import encryption, wsframe
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

STDIN_CHUNK = 1024  # the plugin's StdinBufferLimit
RECV_SIZE = 256 * 1024
OPCODE_CONT, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING = (
    wsframe.OP_CONT, wsframe.OP_BINARY, wsframe.OP_CLOSE, wsframe.OP_PING,
)  # fmt: skip
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


class ClientError(Exception):
    """Something the user should read; printed without a traceback, exit status 1."""


# ---------------------------------------------------------------------------- terminal


class Terminal:
    """Our own stdin/stdout: raw mode while the session runs, the window size."""

    def __init__(self, in_fd: int = 0, out_fd: int = 1, notice_fd: int = 2):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.notice_fd = notice_fd  # the client's own notices: never in the session's data
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


class FrameReader:
    """Websocket messages from the server, parsed (``wsframe``) from large socket reads.

    websocket-client makes three small reads per frame; with one acknowledgement owed per
    1 KiB of shell output that capped throughput, so after its handshake the incoming
    side is read here.

    With ``lock`` (the websocket's send lock), every read runs under it, without blocking:
    an SSL object must never read in one thread while another writes on it (OpenSSL does
    not allow it, and a write that fails that way leaves the session without input). The
    wait for data happens outside the lock, on the socket itself.
    """

    def __init__(self, sock, lock=None):
        self.sock = sock
        self.lock = lock
        self.parser = wsframe.FrameParser(from_server=True)

    def read(self) -> List[tuple]:
        """Block until at least one complete message is in; return all complete ones."""
        messages = self.parser.feed()
        while not messages:
            data = self._recv() if self.lock is not None else self.sock.recv(RECV_SIZE)
            if not data:
                raise ConnectionError("Connection to remote host was lost.")
            messages = self.parser.feed(data)
        return messages

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
        self._line_open = False  # the terminal's last output did not end a line
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
            self._write(wsframe.encode(wsframe.OP_BINARY, frame))

    def _write(self, data: bytes) -> None:
        """Websocket frames, already framed, in one write. A failure leaves what was not
        acknowledged to be resent on the next connection."""
        try:
            with self.ws.lock:  # websocket-client's send lock: one writer on the SSL object
                self.ws.sock.sendall(data)
        except Exception:  # noqa: BLE001 - an SSL error as much as an OSError
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
        if self.connected:
            self._write(b"".join(wsframe.encode(wsframe.OP_BINARY, f) for f in frames))

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
                    self._write(wsframe.encode(wsframe.OP_PONG, data))
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
        self._notice("The session's connection was lost; reconnecting...")
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
                self._notice("Reconnected.")
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
                self._customer_message(message)
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

    def _customer_message(self, text: str) -> None:
        """HandshakeComplete's CustomerMessage ("This session is encrypted using AWS
        KMS."), a line on stdout as the plugin's handleHandshakeComplete prints it."""
        self._output(self.terminal.out_fd, text.encode() + b"\r\n")

    def _notice(self, text: str) -> None:
        """A notice of the client's own (a lost connection, a resume): never part of the
        session's data. It goes to the terminal's notice fd (stderr), as a whole line of
        its own: after a line break when the shell's output stopped mid-line."""
        start = b"\r\n" if self._line_open else b""
        with contextlib.suppress(OSError):
            write_all(self.terminal.notice_fd, start + f"[sm-debug] {text}\r\n".encode())
        self._line_open = False

    def _output(self, fd: int, data: bytes) -> None:
        if data:
            self._line_open = not data.endswith(b"\n")
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
                            self._write(wsframe.encode(wsframe.OP_PING, b"keepalive"))
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
        if self.connected:  # already gone is fine
            self._write(wsframe.encode(wsframe.OP_CLOSE, wsframe.close_payload()))
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
