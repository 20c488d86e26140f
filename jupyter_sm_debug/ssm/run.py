"""One command through an SSM shell session, driven by the program instead of a person.

SageMaker's remote debug targets offer shell sessions only (a PTY running a shell), so a
command is typed into that shell. What comes back is everything the PTY shows: prompts,
echo, ``\\r\\n``. A marker protocol picks the command's results out of it:

1. ``stty -echo``, then a line that prints ``SMD<token>:0``. The token is random, and each
   line prints it from pieces (``printf 'SMD%s:...' <token>``), so the echo of a typed line
   can never look like a marker.
2. A line that prints ``SMD<token>:1`` and then reads the script (the argv, quoted for sh)
   and the command's stdin with ``head -c N | base64 -d`` into a private temp dir. We send
   those bytes only once the ``:1`` marker arrived: the shell has then left line editing,
   the terminal does not echo, and the base64 lines stay under the PTY's line limit.
3. The command runs with stdout and stderr to files; the shell prints ``:B <code> <sizes>``,
   base64 of stdout, ``:S``, base64 of stderr, ``:E``, removes the temp dir and exits.

The caller terminates the session at SSM afterwards, whatever happened.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
import threading
import time
from typing import Callable, Dict, Optional

from ..connect import RUN_OUTPUT_LIMIT, RunResult
from . import client

LINE = 76  # base64 characters per line typed into the PTY (its line limit is 4095)


class _Capture(client.Session):
    """The built-in client's session with its output kept in memory, not written to fds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received = bytearray()
        self.arrived = threading.Condition()

    def _output(self, fd: int, data: bytes) -> None:
        with self.arrived:
            self.received += data
            self.arrived.notify_all()

    def _finish(self, code: int, message: str = "") -> None:
        super()._finish(code, message)
        with self.arrived:
            self.arrived.notify_all()


def _lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + LINE] + b"\n" for i in range(0, len(encoded), LINE))


def script_line(token: str, script_size: int, stdin_size: int, limit: int) -> bytes:
    mark = f"printf 'SMD%s:%s\\n' {token}"
    # One line: everything after the :1 marker runs without another prompt in between.
    return (
        f'{mark} 1; P=$(mktemp -d) && head -c {script_size} | base64 -d > "$P/s"'
        f' && head -c {stdin_size} | base64 -d > "$P/i"'
        f' && (sh "$P/s" < "$P/i" > "$P/o" 2> "$P/e"; echo $? > "$P/c");'
        f' printf \'SMD%s:B %s %s %s\\n\' {token} "$(cat "$P/c" 2>/dev/null || echo 255)"'
        f' "$(wc -c < "$P/o")" "$(wc -c < "$P/e")";'
        f' head -c {limit} "$P/o" | base64; {mark} S;'
        f' head -c {limit} "$P/e" | base64; {mark} E; rm -rf "$P"; exit\n'
    ).encode()


def parse(received: bytes, token: str) -> Optional[tuple[int, bytes, bytes, bool]]:
    """(exit code, stdout, stderr, truncated) once the :E marker is in; None before."""
    text = received.replace(b"\r", b"")
    pattern = re.compile(
        rb"SMD" + token.encode() + rb":B (\d+) (\d+) (\d+)\n(.*?)SMD" + token.encode()
        + rb":S\n(.*?)SMD" + token.encode() + rb":E\n",
        re.S,
    )  # fmt: skip
    match = pattern.search(text)
    if not match:
        return None
    code, out_size, err_size = (int(g) for g in match.group(1, 2, 3))
    out = base64.b64decode(b"".join(match.group(4).split()))
    err = base64.b64decode(b"".join(match.group(5).split()))
    return code, out, err, out_size > len(out) or err_size > len(err)


def run_in_session(
    info: Dict[str, str],
    argv: list[str],
    timeout: float,
    stdin: bytes = b"",
    target: str = "",
    generate_data_key=None,
    resume: Optional[Callable[[str], Dict[str, str]]] = None,
    limit: int = RUN_OUTPUT_LIMIT,
) -> RunResult:
    """Blocking: connect to a started session, run `argv`, close the connection. Never
    longer than `timeout` seconds (then `timed_out`)."""
    started = time.monotonic()
    deadline = started + timeout
    token = secrets.token_hex(8)
    feed_r, feed_w = os.pipe()
    try:
        ws = client.connect(info, timeout=max(1.0, min(30.0, timeout)))
    except client.ClientError as exc:
        os.close(feed_r)
        os.close(feed_w)
        return _failed("session_connect_failed", str(exc), started)
    session = _Capture(
        ws, info, client.Terminal(feed_r, feed_w), None, timeout, resume, target,
        generate_data_key,
    )  # fmt: skip
    runner = threading.Thread(target=session.run, name="ssm-run", daemon=True)
    writer: Optional[threading.Thread] = None
    try:
        runner.start()

        def wait_for(marker: bytes) -> bool:
            with session.arrived:
                while marker not in session.received.replace(b"\r", b""):
                    left = deadline - time.monotonic()
                    if left <= 0 or session.exit_code is not None:
                        return False
                    session.arrived.wait(min(left, 0.5))
            return True

        def send(data: bytes) -> None:
            # Through the client's stdin pipe: it keeps its window of unacknowledged input.
            view = memoryview(data)
            while view and session.exit_code is None:
                try:
                    written = os.write(feed_w, view[: 64 * 1024])
                except OSError:
                    return
                view = view[written:]

        prefix = f"SMD{token}:".encode()
        send(f"stty -echo 2>/dev/null; printf 'SMD%s:%s\\n' {token} 0\n".encode())
        if not wait_for(prefix + b"0\n"):
            return _unfinished(session, started, deadline, "no shell answered")
        script = (shlex.join(argv) + "\n").encode()
        payload_script, payload_stdin = _lines(script), _lines(stdin)
        send(script_line(token, len(payload_script), len(payload_stdin), limit))
        if not wait_for(prefix + b"1\n"):
            return _unfinished(session, started, deadline, "the shell did not take the command")
        writer = threading.Thread(
            target=send, args=(payload_script + payload_stdin,), name="ssm-run-in", daemon=True
        )
        writer.start()
        if not wait_for(prefix + b"E\n"):
            return _unfinished(session, started, deadline, "the command did not finish")
        with session.arrived:
            parsed = parse(bytes(session.received), token)
        if parsed is None:
            return _failed("session_garbled", "The session's output could not be read.", started)
        code, out, err, truncated = parsed
        return RunResult(code, out, err, truncated=truncated, seconds=time.monotonic() - started)
    finally:
        session._finish(0)
        runner.join(timeout=2.0)
        session.close()
        os.close(feed_w)  # the writer (if still sending) stops on EBADF/EPIPE
        if writer is not None:
            writer.join(timeout=1.0)
        os.close(feed_r)


def _failed(code: str, message: str, started: float) -> RunResult:
    return RunResult(
        None,
        error={"code": code, "message": message, "hint": "Retry; check that SSM reaches the host."},
        seconds=time.monotonic() - started,
    )


def _unfinished(session: _Capture, started: float, deadline: float, what: str) -> RunResult:
    if time.monotonic() >= deadline:
        return RunResult(None, timed_out=True, seconds=time.monotonic() - started)
    message = session.exit_message or f"The session ended before {what}."
    return _failed("session_ended", message, started)
