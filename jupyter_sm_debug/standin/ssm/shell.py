"""The stand-in's SSM agent for shell sessions (Standard_Stream): a shell in a PTY.

Like amazon-ssm-agent for shell sessions: no handshake unless the session is KMS-encrypted
(or a knob asks for one); shell output read 1024 bytes at a time at most once a millisecond
(its ``writePump``), so throughput matches what clients see on AWS; an incomplete UTF-8
character at the end of a read is held back for the next message (``processStdoutData``),
so a message may carry up to 3 bytes more than 1024 and never ends inside a character
(an invalid byte further in goes out as it is); reading stops while
``pause_publication`` is in force and resumes on start_publication or any incoming data or
acknowledgement. Unlike the agent, a full outgoing buffer stops the reading instead of
dropping messages.

A Standard_Stream document's ``kmsKeyId`` makes the session KMS-encrypted (handshake,
``kms:Decrypt`` of the client's data key against the stand-in's KMS, the encryption
challenge, AES-GCM output), and its ``shellProfile.linux`` runs at the start of the shell as
the agent types it. ``idleSessionTimeout`` (minutes without keystrokes, on the stand-in's
clock) ends the session as the service does.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
import time
from typing import Any, Optional

import tornado.ioloop

from ...ssm import protocol as p
from ...ssm.channel import EncryptionConfirmed, HandshakeAnswered, StreamData
from .. import container
from ..errors import StandInError
from .agent import AgentBase
from .sessions import SsmSession

READ_LIMIT = 64 * 1024  # bytes of shell output taken per event-loop turn
PACE_BURST = 16 * 1024  # output allowance saved up while the shell is quiet
PACE_WAKE = 4 * 1024  # allowance worth waking up for while output is throttled
CLOSE_DRAIN_TIMEOUT = 5.0  # seconds to wait for the last output to be acknowledged
HANGUP_GRACE = 2.0  # seconds between SIGHUP and SIGKILL of the shell's process group
DEFAULT_SIZE = (80, 24)


def _make_controlling_tty() -> None:  # pragma: no cover - runs in the child
    # After setsid (start_new_session) the PTY becomes the shell's controlling terminal,
    # so job control, ^C and SIGWINCH work like in a real session.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    container.default_signals()


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _rune_length(buf: bytes, i: int) -> int:
    """Bytes of the valid UTF-8 character at ``buf[i]``, or 0 (invalid or cut short)."""
    lead = buf[i]
    n = 1 if lead < 0x80 else 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else (
        4 if 0xF0 <= lead <= 0xF4 else 0
    )  # fmt: skip
    if n <= 1:
        return n
    try:
        buf[i : i + n].decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return n


def utf8_complete(buf: bytes) -> int:
    """How much of ``buf`` the agent sends now: up to an undecodable byte in its last
    3 bytes (an incomplete character, or one that may yet turn out to be), as the agent's
    ``processStdoutData`` stops at a RuneError within utf8.UTFMax of the end."""
    try:
        buf.decode("utf-8")
        return len(buf)
    except UnicodeDecodeError:
        pass
    # Any byte that is not a continuation byte starts a character (or is invalid on its
    # own), so the scan may begin at the last such byte before the final four.
    i = max(0, len(buf) - 4)
    while i > 0 and 0x80 <= buf[i] <= 0xBF:
        i -= 1
    while i < len(buf):
        n = _rune_length(buf, i)
        if n == 0:
            if len(buf) - i < 4:
                return i
            n = 1  # an invalid byte further in goes out as it is
        i += n
    return len(buf)


class Agent(AgentBase):
    """The SSM agent of a shell session on its host: the shell in a PTY and the agent's
    side of the data channel (lifecycle and resume: ``AgentBase``)."""

    def __init__(self, standin: Any, session: SsmSession, loop: Any) -> None:
        super().__init__(standin, session, loop)
        self.proc: Optional[subprocess.Popen] = None
        self.master_fd: Optional[int] = None
        self._pty_events = 0
        self._reading = False
        self._shell_done = False
        self._pty_input = bytearray()
        self._closing_since: Optional[float] = None
        self._allowance = float(PACE_BURST)
        self._refilled = time.monotonic()
        self._pace_wake: Optional[object] = None
        self._last_input = standin.now()
        self._unprocessed = b""  # an incomplete UTF-8 character held back (processStdoutData)

    # ------------------------------------------------------------ handshake and start

    def _start(self) -> None:
        kms_key_id = self.session.kms_key_id or self.registry.kms_key_id
        # The agent runs a handshake for a shell only when the session is KMS-encrypted.
        if kms_key_id or self.registry.always_handshake:
            self.channel.request_handshake(kms_key_id=kms_key_id)
            return
        self.channel.skip_handshake()
        self._begin_shell()

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

    def _on_event(self, event: Any) -> None:
        if isinstance(event, StreamData):
            self._on_stream(event)
        elif isinstance(event, HandshakeAnswered):
            self._on_handshake(event)
        elif isinstance(event, EncryptionConfirmed):
            self._on_encryption(event)

    def _received(self) -> None:
        self._update_pty_events()
        self._maybe_finish_close()

    def _resumed(self) -> None:
        self._update_pty_events()

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
        if self._reading and unacked >= p.SEND_WINDOW:
            self._reading = False
        elif not self._reading and not self._shell_done and unacked <= p.SEND_WINDOW // 2:
            self._reading = True
        want_read = self._reading and not self._shell_done and not self.channel.paused
        if want_read and self.registry.pace and self._budget() < p.STREAM_DATA_PAYLOAD_SIZE:
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
            READ_LIMIT, max(1, p.SEND_WINDOW - self.channel.unacked) * size, max(1, self._budget())
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
        if chunks or (eof and self._unprocessed):
            data = b"".join(chunks)
            with self.batched():
                for start in range(0, len(data), size):
                    buf = self._unprocessed + data[start : start + size]
                    cut = len(buf) if eof and start + size >= len(data) else utf8_complete(buf)
                    self._unprocessed = buf[cut:]
                    if cut:
                        self.channel.send_data(buf[:cut])
                if not data and self._unprocessed:
                    self.channel.send_data(self._unprocessed)
                    self._unprocessed = b""
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

    def _idle_end(self) -> str:
        idle = self.session.idle_timeout
        if idle is not None and self.standin.now() - self._last_input > idle:
            return f"Your session timed out after {int(idle // 60)} minute(s) of inactivity."
        return ""

    def _after_tick(self) -> None:
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

    def _release(self) -> None:
        if self._pace_wake is not None:
            self.loop.remove_timeout(self._pace_wake)
            self._pace_wake = None
        self._kill_shell()

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


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the shell leads its own group
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)
