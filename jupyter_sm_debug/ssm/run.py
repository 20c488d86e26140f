"""One command through an SSM shell session, driven by the program instead of a person.

SageMaker's remote debug targets offer shell sessions only (a PTY running a shell), so a
command is typed into that shell. What comes back is everything the PTY shows: prompts,
echo, ``\\r\\n``, and whatever any other process in the container writes to that terminal.
A marker protocol picks the command's results out of it:

1. ``stty -echo``, then a line that prints ``SMD<nonce>:0``. The nonce is random for each run
   (128 bits), and each line prints it from pieces (``printf 'SMD%s:...' <nonce>``), so the
   echo of a typed line can never look like a marker.
2. A line that prints ``SMD<nonce>:1`` and then reads the script (the argv, quoted for sh)
   and the command's stdin with ``head -c N | base64 -d`` into a private temp dir. We send
   those bytes only once the ``:1`` marker arrived: the shell has then left line editing,
   the terminal does not echo, and the base64 lines stay under the PTY's line limit.
3. The command runs with stdout and stderr to files; the shell prints ``:B <code> <sizes>``,
   stdout in base64, ``:S``, stderr in base64, ``:E``, removes the temp dir and exits.

Output from the container is not trusted (issue 22): another process may write to the
session's terminal at any time, as much as it likes. So

- every line of the results carries the nonce too: each base64 line is printed as
  ``SMD<nonce>.<base64>`` by ``awk`` with one write per line, and a terminal write is
  atomic with respect to other writers, so nothing can be spliced into one of our lines,
  and lines without the nonce (which the container cannot know in advance) are dropped;
- the scan is incremental (:class:`RunOutput`): each byte is looked at once, only the
  unfinished line is kept (its tail, past :data:`MAX_LINE`), and the decoded stdout and
  stderr are capped at the caller's ``limit``: a flood costs time, never memory.

The caller terminates the session at SSM afterwards, whatever happened.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import shlex
import threading
import time
from typing import Callable, Dict, Optional

from ..connect.types import RUN_OUTPUT_LIMIT, RunResult
from . import client

LINE = 76  # base64 characters per line typed into the PTY (its line limit is 4095)
MAX_LINE = 8192  # bytes of an unfinished line kept (its tail: our lines are short)
_SIZES = re.compile(rb"B (\d{1,4}) +(\d{1,20}) +(\d{1,20}) *")  # wc may pad with spaces


class _Decoded:
    """One stream's base64 lines, decoded as they come, kept up to ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0  # bytes decoded past the limit
        self._pending = b""  # base64 characters short of a group of 4
        self.bad = False

    def add(self, text: bytes) -> None:
        text = self._pending + text.strip()
        cut = len(text) - len(text) % 4
        self._pending = text[cut:]
        if not cut:
            return
        try:
            chunk = base64.b64decode(text[:cut], validate=True)
        except (binascii.Error, ValueError):
            self.bad = True
            return
        room = max(0, self.limit - len(self.data))
        self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - room)

    def finish(self) -> None:
        if self._pending:
            self.bad = True


class RunOutput:
    """The results of one run, scanned out of the PTY's output incrementally.

    ``feed`` takes output in any chunking; ``seen`` holds the markers met so far (b"0",
    b"1", b"E"); once b"E" is in, ``result()`` gives (exit code, stdout, stderr, truncated)
    or None when what arrived does not hold together.
    """

    def __init__(self, nonce: str, limit: int = RUN_OUTPUT_LIMIT) -> None:
        self.prefix = f"SMD{nonce}".encode()  # what every line of ours holds
        self.marker = f"SMD{nonce}:".encode()
        self.tag = f"SMD{nonce}.".encode()
        self.limit = limit
        self.seen: set[bytes] = set()
        self.sizes: Optional[tuple[int, int, int]] = None
        self.out = _Decoded(limit)
        self.err = _Decoded(limit)
        self._current: Optional[_Decoded] = None
        self._partial = bytearray()
        self.ignored = 0  # bytes of output that were not ours

    def feed(self, data: bytes) -> None:
        if b"E" in self.seen:
            return  # done: nothing after :E matters
        # The common case of a flood: nothing of ours in the chunk (nor across its start),
        # so no line of it needs a look; only the unfinished line's tail is kept.
        n = len(self.prefix)
        probe = bytes(self._partial[-n:]) + data[:n]
        if (
            self.prefix not in data
            and self.prefix not in probe
            and self.prefix not in self._partial
        ):
            end = data.rfind(b"\n")
            if end >= 0:
                self.ignored += len(self._partial) + end + 1
                self._partial.clear()
                data = data[end + 1 :]
            self._keep(data)
            return
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._keep(data[start:])
                return
            if self._partial:
                self._partial += data[start:end]
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = data[start:end]
            self._line(line.replace(b"\r", b""))
            start = end + 1
            if b"E" in self.seen:
                return

    def _keep(self, data: bytes) -> None:
        """The unfinished line grows by ``data``; past MAX_LINE only its tail is kept."""
        if len(data) > MAX_LINE:
            self.ignored += len(self._partial) + len(data) - MAX_LINE // 2
            self._partial[:] = data[-(MAX_LINE // 2) :]
            return
        self._partial += data
        if len(self._partial) > MAX_LINE:
            # Our lines are short and written whole: only the tail can hold one.
            self.ignored += len(self._partial) - MAX_LINE // 2
            del self._partial[: len(self._partial) - MAX_LINE // 2]

    def _line(self, line: bytes) -> None:
        at = line.find(self.tag)
        if at >= 0 and self._current is not None:
            self._current.add(line[at + len(self.tag) :])
            return
        at = line.find(self.marker)
        if at < 0:
            self.ignored += len(line) + 1  # not ours: a prompt, a notice, the container
            return
        rest = line[at + len(self.marker) :]
        if rest in (b"0", b"1"):
            self.seen.add(rest)
        elif rest == b"S" and self._current is self.out:
            self._current = self.err
        elif rest == b"E" and self._current is self.err:
            self._current = None
            self.seen.add(b"E")
        elif self.sizes is None and (match := _SIZES.fullmatch(rest)):
            self.sizes = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
            self._current = self.out

    def result(self) -> Optional[tuple[int, bytes, bytes, bool]]:
        if b"E" not in self.seen or self.sizes is None:
            return None
        self.out.finish()
        self.err.finish()
        if self.out.bad or self.err.bad:
            return None
        code, out_size, err_size = self.sizes
        out, err = bytes(self.out.data), bytes(self.err.data)
        truncated = out_size > len(out) or err_size > len(err)
        if len(out) < min(out_size, self.limit) or len(err) < min(err_size, self.limit):
            return None  # lines of ours went missing
        return code, out, err, truncated


class _Capture(client.Session):
    """The built-in client's session with its output scanned as it arrives, not kept."""

    def __init__(self, *args, output: RunOutput, **kwargs):
        super().__init__(*args, **kwargs)
        self.output = output
        self.arrived = threading.Condition()
        self.notices: list[str] = []

    def _notice(self, text: str) -> None:
        """The client's notices (reconnecting, reconnected) are not the run's output."""
        self.notices.append(text)

    def _customer_message(self, text: str) -> None:
        self.notices.append(text)  # the agent's message to a person, not the run's output

    def _output(self, fd: int, data: bytes) -> None:
        with self.arrived:
            self.output.feed(data)
            self.arrived.notify_all()

    def _finish(self, code: int, message: str = "") -> None:
        super()._finish(code, message)
        with self.arrived:
            self.arrived.notify_all()


def _lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + LINE] + b"\n" for i in range(0, len(encoded), LINE))


def script_line(nonce: str, script_size: int, stdin_size: int, limit: int) -> bytes:
    mark = f"printf 'SMD%s:%s\\n' {nonce}"
    # Each base64 line of the results in one write, tagged with the nonce (see above).
    tag = f'| base64 | awk \'{{ print "SMD" "{nonce}" "." $0; fflush() }}\''
    # One line: everything after the :1 marker runs without another prompt in between.
    return (
        f'{mark} 1; P=$(mktemp -d) && head -c {script_size} | base64 -d > "$P/s"'
        f' && head -c {stdin_size} | base64 -d > "$P/i"'
        f' && (sh "$P/s" < "$P/i" > "$P/o" 2> "$P/e"; echo $? > "$P/c");'
        f' printf \'SMD%s:B %s %s %s\\n\' {nonce} "$(cat "$P/c" 2>/dev/null || echo 255)"'
        f' "$(wc -c < "$P/o")" "$(wc -c < "$P/e")";'
        f' head -c {limit} "$P/o" {tag}; {mark} S;'
        f' head -c {limit} "$P/e" {tag}; {mark} E; rm -rf "$P"; exit\n'
    ).encode()


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
    nonce = secrets.token_hex(16)  # per run; the container cannot know it in advance
    output = RunOutput(nonce, limit)
    feed_r, feed_w = os.pipe()
    try:
        ws = client.connect(info, timeout=max(1.0, min(30.0, timeout)))
    except client.ClientError as exc:
        os.close(feed_r)
        os.close(feed_w)
        return _failed("session_connect_failed", str(exc), started)
    session = _Capture(
        ws, info, client.Terminal(feed_r, feed_w), None, timeout, resume, target,
        generate_data_key, output=output,
    )  # fmt: skip
    runner = threading.Thread(target=session.run, name="ssm-run", daemon=True)
    writer: Optional[threading.Thread] = None
    try:
        runner.start()

        def wait_for(marker: bytes) -> bool:
            with session.arrived:
                while marker not in output.seen:
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

        send(f"stty -echo 2>/dev/null; printf 'SMD%s:%s\\n' {nonce} 0\n".encode())
        if not wait_for(b"0"):
            return _unfinished(session, started, deadline, "no shell answered")
        script = (shlex.join(argv) + "\n").encode()
        payload_script, payload_stdin = _lines(script), _lines(stdin)
        send(script_line(nonce, len(payload_script), len(payload_stdin), limit))
        if not wait_for(b"1"):
            return _unfinished(session, started, deadline, "the shell did not take the command")
        writer = threading.Thread(
            target=send, args=(payload_script + payload_stdin,), name="ssm-run-in", daemon=True
        )
        writer.start()
        if not wait_for(b"E"):
            return _unfinished(session, started, deadline, "the command did not finish")
        with session.arrived:
            parsed = output.result()
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
