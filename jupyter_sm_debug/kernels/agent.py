"""The kernel agent: a standard-library program (Python 3.6+) pushed into a host with
connect/pushed.py. It must not import jupyter_sm_debug: its source is sent as is.

``serve(listener, token, idle)`` answers each authenticated stream's first frame:

- ``{"op": "start"}``: a fresh interpreter (a new ``sys.executable`` running WORKER, in its
  own session, with the training's environment and working directory). The agent relays
  whole frames between the stream and the worker, so a dropped stream can be replaced by
  ``{"op": "attach", "id", "key"}`` within GRACE seconds without losing the namespace;
  after GRACE with no stream, or when the worker ends, its process group is killed.
- ``{"op": "shutdown"}``: every worker's process group killed, then the agent exits.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. The worker's
messages are described in WORKER; the agent reads only their lengths.
"""

import contextlib
import hmac
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

GRACE = 120  # seconds a worker waits for its stream to come back
MAX_FRAME = 64 * 1024 * 1024
COALESCE = 1 << 20  # bytes of frames sent in one write at most
CODE_DIRS = ("/opt/ml/code", "/opt/ml")

WORKER = None  # worker.py's text, added by program() when the agent is pushed

WORKER_ARGV0 = "import sys;exec(sys.stdin.read())"


def read_frame(conn):
    """One whole frame (header included) from a socket, or None at EOF/error."""
    try:
        head = _exact(conn, 4)
        if head is None:
            return None
        size = struct.unpack(">I", head)[0]
        if size > MAX_FRAME:
            return None
        body = _exact(conn, size)
    except OSError:
        return None
    return None if body is None else head + body


def _exact(conn, n):
    parts = []
    while n:
        part = conn.recv(min(n, 1 << 20))
        if not part:
            return None
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def frame(message):
    data = json.dumps(message).encode("utf-8")
    return struct.pack(">I", len(data)) + data


def training_environment():
    """The session's environment with the training's (PID 1's) on top, where readable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_DEBUG_")}
    env.pop("SM_DEBUG_TOOL", None)
    try:
        with open("/proc/1/environ", "rb") as handle:
            raw = handle.read(1 << 20)
        for item in raw.split(b"\0"):
            key, sep, value = item.partition(b"=")
            if sep and key:
                env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    except OSError:
        pass
    env.setdefault("MPLBACKEND", "Agg")
    if env.get("MPLBACKEND", "").lower() not in (
        "agg",
        "module://matplotlib_inline.backend_inline",
    ):
        env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


def working_directory():
    for path in CODE_DIRS:
        if os.path.isdir(path):
            return path
    return os.environ.get("HOME") or "/"


class Worker:
    """One interpreter, and the stream that currently reaches it (None while detached)."""

    def __init__(self, number):
        self.id = number
        self.key = secrets.token_hex(16)
        self.inner, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER_ARGV0, str(theirs.fileno())],
            stdin=subprocess.PIPE,
            pass_fds=(theirs.fileno(),),
            env=training_environment(),
            cwd=working_directory(),
            start_new_session=True,
        )
        theirs.close()
        self.process.stdin.write(WORKER.encode("utf-8"))
        self.process.stdin.close()
        self.lock = threading.Condition()
        self.conn = None
        self.detached_at = time.time()
        self.ended = False

    def attach(self, conn):
        with self.lock:
            old, self.conn = self.conn, conn
            self.lock.notify_all()
        if old is not None:
            _close(old)
        threading.Thread(target=self.inbound, args=(conn,), daemon=True).start()

    def detach(self, conn):
        with self.lock:
            if self.conn is conn:
                self.conn = None
                self.detached_at = time.time()
        _close(conn)

    def inbound(self, conn):
        """Stream → worker, a whole frame at a time."""
        while True:
            data = read_frame(conn)
            if data is None:
                self.detach(conn)
                return
            try:
                self.inner.sendall(data)
            except OSError:
                self.detach(conn)
                return

    def outbound(self):
        """Worker → stream, whole frames; a frame whose stream broke is sent again to the
        next one. Ends the worker's process group when it ends."""
        pending = None
        while not self.ended:
            if pending is None:
                pending = read_frame(self.inner)
                if pending is None:
                    break
                # The frames already there go in the same write (one packet, not one
                # each: a lone small write waits for an ACK behind Nagle's rule in ssh).
                while len(pending) < COALESCE and select.select([self.inner], [], [], 0)[0]:
                    more = read_frame(self.inner)
                    if more is None:
                        break
                    pending += more
            with self.lock:
                while self.conn is None and not self.ended:
                    self.lock.wait(1.0)
                conn = self.conn
            if conn is None:
                break
            try:
                conn.sendall(pending)
                pending = None
            except OSError:
                self.detach(conn)
        self.end()

    def end(self):
        with self.lock:
            self.ended = True
            conn, self.conn = self.conn, None
            self.lock.notify_all()
        if conn is not None:
            _close(conn)
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        _close(self.inner)


def _close(conn):
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        conn.close()


def serve(listener, token, idle):
    workers = {}
    lock = threading.Lock()
    last = [time.time()]
    counter = [0]

    def one(conn):
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(30)
            line = b""
            while not line.endswith(b"\n") and len(line) < 256:
                part = conn.recv(1)
                if not part:
                    break
                line += part
            if not hmac.compare_digest(line.strip(), token.encode()):
                _close(conn)
                return
            conn.sendall(b"OK\n")
            data = read_frame(conn)
            conn.settimeout(None)
            request = json.loads(data[4:].decode("utf-8")) if data else {}
        except (OSError, ValueError):
            _close(conn)
            return
        op = request.get("op") if isinstance(request, dict) else None
        if op == "start":
            with lock:
                counter[0] += 1
                worker = Worker(counter[0])
                workers[worker.id] = worker
            conn.sendall(frame({"op": "attached", "id": worker.id, "key": worker.key}))
            worker.attach(conn)
            threading.Thread(target=worker.outbound, daemon=True).start()
        elif op == "attach":
            with lock:
                worker = workers.get(request.get("id"))
            if (
                worker is None
                or worker.ended
                or not hmac.compare_digest(str(request.get("key", "")), worker.key)
            ):
                conn.sendall(frame({"op": "gone"}))
                _close(conn)
                return
            conn.sendall(frame({"op": "attached", "id": worker.id, "key": worker.key}))
            worker.attach(conn)
        elif op == "shutdown":
            with lock:
                everyone = list(workers.values())
            for worker in everyone:
                worker.end()
            try:
                conn.sendall(frame({"op": "bye"}))
            finally:
                os._exit(0)
        else:
            _close(conn)

    listener.settimeout(0.5)
    while True:
        with lock:
            for number, worker in list(workers.items()):
                if worker.ended:
                    del workers[number]
                elif worker.conn is None and time.time() - worker.detached_at > GRACE:
                    threading.Thread(target=worker.end, daemon=True).start()
            if workers:
                last[0] = time.time()
        if not workers and time.time() - last[0] > idle:
            return
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        last[0] = time.time()
        threading.Thread(target=one, args=(conn,), daemon=True).start()


def program():
    """The text pushed into the host: this program with worker.py's text as WORKER."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(__file__, encoding="utf-8") as handle:
        own = handle.read()
    with open(os.path.join(here, "worker.py"), encoding="utf-8") as handle:
        worker = handle.read()
    return (own + "\nWORKER = " + repr(worker) + "\n").encode("utf-8")
