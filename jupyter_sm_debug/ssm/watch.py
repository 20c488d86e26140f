"""Run a session client (AWS's session-manager-plugin) in a PTY of its own and say in the
terminal when it fails to bring up the remote shell.

    python -m jupyter_sm_debug.ssm.watch --timeout 30 --label "session-manager-plugin 1.2.677.0" \\
        -- session-manager-plugin AWS_SSM_START_SESSION_RESPONSE us-east-1 StartSession ...

Everything is relayed unchanged both ways (window size included). A client that exits
before the remote shell showed anything, or shows nothing within ``--timeout`` seconds,
leaves a line saying so (an old plugin, for one, prints an error and exits 0, and a plugin
the service keeps refusing loops on "Starting session..." forever); a client still silent
at the timeout is ended.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty

STARTING = b"Starting session with SessionId"
RELAY = 64 * 1024
PREFIX = "[sm-debug]"


def _controlling_tty() -> None:  # pragma: no cover - runs in the child
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def copy_size(src: int, dst: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


class ShellSeen:
    """Whether the remote shell has shown anything: output after the client's own
    "Starting session with SessionId: ..." line (an error printed instead is not a shell)."""

    def __init__(self) -> None:
        self.head = b""
        self.seen = False

    def feed(self, data: bytes) -> None:
        if self.seen:
            return
        self.head = (self.head + data)[-65536:]
        at = self.head.find(STARTING)
        if at < 0:
            return
        end = self.head.find(b"\n", at)
        self.seen = end >= 0 and bool(self.head[end + 1 :].strip())


def say(line: str) -> None:
    write_all(1, f"\r\n{PREFIX} {line}\r\n".encode())


def run(argv: list[str], timeout: float, label: str) -> int:
    master, slave = os.openpty()
    if os.isatty(0):
        copy_size(0, slave)
    proc = subprocess.Popen(  # noqa: S603 - the argv our server built
        argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=_controlling_tty,  # noqa: PLW1509 - one ioctl
    )  # fmt: skip
    os.close(slave)
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    previous_wakeup = signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGWINCH, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, lambda *_: None)
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)  # the client's own PTY does the line discipline
    shell = ShellSeen()
    started = time.monotonic()
    warned = False
    stdin_open = True
    ending = None
    try:
        while True:
            watch = [master, wake_r] + ([0] if stdin_open else [])
            left = None if shell.seen or warned else max(0.0, started + timeout - time.monotonic())
            try:
                readable, _, _ = select.select(watch, [], [], left)
            except InterruptedError:
                readable = []
            if wake_r in readable:
                for signum in os.read(wake_r, 64):
                    if signum == signal.SIGWINCH:
                        copy_size(0, master)
                    elif signum in (signal.SIGTERM, signal.SIGHUP):
                        ending = signum
            if ending is not None:
                break
            if master in readable:
                try:
                    data = os.read(master, RELAY)
                except OSError:
                    data = b""
                if not data:
                    break  # the client and everything it started closed the PTY
                shell.feed(data)
                write_all(1, data)
            if 0 in readable:
                data = os.read(0, RELAY)
                if data:
                    write_all(master, data)
                else:
                    stdin_open = False
            if not shell.seen and not warned and time.monotonic() - started >= timeout:
                warned = True
                say(
                    f"{label} showed no shell within {timeout:g} s "
                    "(c.SMDebug.ssm_connect_timeout); ending it. Close this tab and attach "
                    "again, or try the other SSM client (c.SMDebug.ssm_client)."
                )
                break
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signal.set_wakeup_fd(previous_wakeup)
    code = _end(proc, ending or (signal.SIGTERM if warned else None))
    os.close(master)
    if ending is not None:
        return 128 + ending
    if warned:
        return 1
    if not shell.seen:
        say(
            f"{label} ended (exit status {code}) before the remote shell started; its "
            "output above says why."
        )
        return code or 1
    return code


def _end(proc: subprocess.Popen, sig: int | None) -> int:
    if sig is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        return proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jupyter_sm_debug.ssm.watch")
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--label", default="the session client")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the client's argv after --")
    return run(command, args.timeout, args.label)


if __name__ == "__main__":
    sys.exit(main())
