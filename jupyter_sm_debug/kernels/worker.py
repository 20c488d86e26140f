"""One interpreter in the host: the kernel's namespace (a standard-library program for
Python 3.6+, started by agent.py as ``python -c "import sys;exec(sys.stdin.read())" FD``
with this text on stdin; never imported by the server).

Frames (4-byte length + JSON) on the socket FD, from the kernel:
``execute {code, rid}``, ``complete {code, cursor, rid}``, ``inspect {code, cursor, detail,
rid}``, ``input_reply {value | eof}``, ``interrupt`` (SIGINT to the main thread while a cell
runs: KeyboardInterrupt, namespace kept), ``shutdown`` (the process group is killed).
To the kernel: ``started``, ``stream {name, text}``, ``display_data {data}``,
``execute_result {data}``, ``error {ename, evalue, traceback}``, ``input_request {prompt,
password}``, ``done {rid, status}``, ``reply {rid, ...}``, ``bye``.
"""

# Python 3.6+, whatever the user's code raises: exec is the point, and no failure of an
# object's repr or doc may end the cell.
# ruff: noqa: BLE001, S102, S307, S110, S112
import ast
import base64
import builtins
import contextlib
import inspect
import io
import json
import linecache
import os
import queue
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import warnings

sock = None  # the stream to the agent (a socketpair end), set by main()
send_lock = threading.Lock()
STREAM_CHUNK = 64 * 1024
FLUSH_SECONDS = 0.02


def send(*messages):
    """Frames in one write (a cell's last ones together: one packet, not one each)."""
    out = []
    for message in messages:
        data = json.dumps(message).encode("utf-8")
        out.append(struct.pack(">I", len(data)) + data)
    with send_lock:
        sock.sendall(b"".join(out))


def recv_exact(n):
    parts = []
    while n:
        part = sock.recv(min(n, 1 << 20))
        if not part:
            return None
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


class Stream(io.TextIOBase):
    """sys.stdout/sys.stderr: text sent as stream frames, coalesced (at most every
    FLUSH_SECONDS, or at STREAM_CHUNK), in order with every other frame."""

    def __init__(self, name):
        self.name = name
        self.parts = []
        self.size = 0
        self.lock = threading.Lock()

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self.lock:
            self.parts.append(text)
            self.size += len(text)
            full = self.size >= STREAM_CHUNK
        if full:
            self.flush()
        return len(text)

    def flush(self):
        with self.lock:
            text, self.parts, self.size = "".join(self.parts), [], 0
        if text:
            for i in range(0, len(text), STREAM_CHUNK):
                send({"op": "stream", "name": self.name, "text": text[i : i + STREAM_CHUNK]})

    def isatty(self):
        return False

    def fileno(self):
        return 1 if self.name == "stdout" else 2


stdout, stderr = Stream("stdout"), Stream("stderr")


def flush_all():
    stdout.flush()
    stderr.flush()


def flusher():
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush_all()
        except OSError:
            return


def fd_reader(fd, stream):
    """Output written to the file descriptors (subprocesses, C libraries) as stream text."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        stream.write(data.decode("utf-8", "replace"))


requests = queue.Queue()
replies = queue.Queue()
# busy: a cell's code runs (SIGINT reaches it); taken: a request left the queue and is not
# done; stop: an interrupt came for a cell that had not started yet.
state = {"busy": False, "taken": False, "stop": False}
state_lock = threading.Lock()


def reader():
    # SIGINT is for the main thread: it interrupts the running cell.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    main = threading.main_thread().ident
    while True:
        head = recv_exact(4)
        body = recv_exact(struct.unpack(">I", head)[0]) if head else None
        if body is None:
            os._exit(0)
        message = json.loads(body.decode("utf-8"))
        op = message.get("op")
        if op == "interrupt":
            with state_lock:
                if state["busy"]:
                    signal.pthread_kill(main, signal.SIGINT)
                elif state["taken"] or not requests.empty():
                    state["stop"] = True
        elif op == "input_reply":
            replies.put(message)
        elif op == "shutdown":
            try:
                flush_all()
                send({"op": "bye"})
            finally:
                os.killpg(os.getpgid(0), signal.SIGKILL)
        else:
            requests.put(message)


def ask(prompt, password):
    flush_all()
    while not replies.empty():
        replies.get_nowait()
    send({"op": "input_request", "prompt": str(prompt), "password": password})
    while True:
        try:
            reply = replies.get(timeout=0.2)
            break
        except queue.Empty:
            continue
    if reply.get("eof"):
        raise EOFError("EOF when reading a line")
    return str(reply.get("value", ""))


def input_(prompt=""):
    return ask(prompt, False)


def getpass_(prompt="Password: ", stream=None):
    return ask(prompt, True)


class Stdin(io.TextIOBase):
    def readable(self):
        return True

    def readline(self, size=-1):
        return ask("", False) + "\n"

    def read(self, size=-1):
        return self.readline()


def b64(data):
    return base64.b64encode(data).decode("ascii")


REPRS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
)


def method(obj, name):
    if inspect.isclass(obj):
        return None
    try:
        found = getattr(type(obj), name, None)
    except Exception:
        return None
    return getattr(obj, name, None) if callable(found) else None


def bundle(obj):
    """The object's representations, as IPython's formatters would give them."""
    data = {}
    make = method(obj, "_repr_mimebundle_")
    if make is not None:
        try:
            found = make()
            if isinstance(found, tuple):
                found = found[0]
            if isinstance(found, dict):
                data.update(found)
        except Exception:
            pass
    for name, mime in REPRS:
        make = method(obj, name)
        if make is None or mime in data:
            continue
        try:
            value = make()
        except Exception:
            continue
        if isinstance(value, tuple):
            value = value[0]
        if value is not None:
            data[mime] = value
    for mime in ("image/png", "image/jpeg"):
        if isinstance(data.get(mime), bytes):
            data[mime] = b64(data[mime])
    try:
        data["text/plain"] = repr(obj)
    except Exception as error:
        data["text/plain"] = f"<{type(obj).__name__} object (repr failed: {error})>"
    clean = {}
    for mime, value in data.items():
        if isinstance(value, (str, dict, list)):
            clean[str(mime)] = value
    return clean


def display(*objs, **kwargs):
    flush_all()
    for obj in objs:
        send({"op": "display_data", "data": bundle(obj)})


def figures():
    """Open matplotlib figures as PNG, then closed (when the cell used pyplot)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        for number in plt.get_fignums():
            buffer = io.BytesIO()
            plt.figure(number).savefig(buffer, format="png", bbox_inches="tight")
            send(
                {
                    "op": "display_data",
                    "data": {
                        "image/png": b64(buffer.getvalue()),
                        "text/plain": f"<Figure {number}>",
                    },
                }
            )
        plt.close("all")
    except Exception as error:
        stderr.write(f"could not draw the figures: {error}\n")


namespace = {"__name__": "__main__", "__builtins__": builtins, "display": display}
count = [0]


def cell_error(kind, value, tb):
    lines = traceback.format_exception(kind, value, tb)
    return {
        "ename": kind.__name__,
        "evalue": str(value),
        "traceback": [line.rstrip("\n") for line in lines],
    }


def execute(code):
    count[0] += 1
    filename = f"<cell {count[0]}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        tree = ast.parse(code, filename, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        body = compile(tree, filename, "exec")
        tail = compile(last, filename, "eval") if last is not None else None
    except (SyntaxError, ValueError, OverflowError) as error:
        return cell_error(type(error), error, None), None
    with state_lock:
        stop, state["busy"] = state["stop"], not state["stop"]
    if stop:
        return cell_error(KeyboardInterrupt, KeyboardInterrupt(), None), None
    try:
        try:
            exec(body, namespace)
            value = eval(tail, namespace) if tail is not None else None
        finally:
            with state_lock:
                state["busy"] = False
    except BaseException as error:
        if isinstance(error, SystemExit) and not error.code:
            return None, None
        tb = error.__traceback__.tb_next if error.__traceback__ is not None else None
        return cell_error(type(error), error, tb), None
    finally:
        flush_all()
        figures()
    if value is None:
        return None, None
    namespace["_"] = value
    builtins._ = value
    return None, {"op": "execute_result", "data": bundle(value)}


NAME = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*\.?$")


def complete(code, cursor):
    import rlcompleter

    match = NAME.search(code[:cursor])
    text = match.group(0) if match else ""
    completer = rlcompleter.Completer(namespace)
    found = []
    for i in range(2000):
        try:
            one = completer.complete(text, i)
        except Exception:
            break
        if one is None:
            break
        one = one.rstrip("(")
        if one not in found:
            found.append(one)
    return {"matches": found, "cursor_start": cursor - len(text), "cursor_end": cursor}


def lookup(name):
    parts = name.split(".")
    if parts[0] in namespace:
        obj = namespace[parts[0]]
    elif hasattr(builtins, parts[0]):
        obj = getattr(builtins, parts[0])
    else:
        raise LookupError(name)
    for part in parts[1:]:
        obj = getattr(obj, part)
    return obj


def describe(code, cursor, detail):
    left = re.search(r"[\w.]*$", code[:cursor]).group(0)
    right = re.match(r"\w*", code[cursor:]).group(0)
    name = (left + right).strip(".")
    if not name:
        return {"found": False}
    try:
        obj = lookup(name)
    except Exception:
        return {"found": False}
    lines = ["Name:      " + name, "Type:      " + type(obj).__name__]
    try:
        text = repr(obj)
        lines.append("String form: " + (text if len(text) < 500 else text[:500] + "..."))
    except Exception:
        pass
    with contextlib.suppress(TypeError, ValueError):
        lines.append(f"Signature: {name}{inspect.signature(obj)}")
    with contextlib.suppress(TypeError):
        lines.append("File:      " + inspect.getfile(obj))
    doc = inspect.getdoc(obj)
    if doc:
        lines += ["Docstring:", doc]
    if detail:
        with contextlib.suppress(OSError, TypeError):
            lines += ["Source:", inspect.getsource(obj)]
    return {"found": True, "data": {"text/plain": "\n".join(lines)}}


def main():
    global sock
    sock = socket.fromfd(int(sys.argv[1]), socket.AF_UNIX, socket.SOCK_STREAM)
    os.close(int(sys.argv[1]))
    sys.argv = [""]
    warnings.filterwarnings("ignore", message=".*non-interactive.*")
    builtins.input = input_
    import getpass

    getpass.getpass = getpass_
    for fd, stream in ((1, stdout), (2, stderr)):
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        threading.Thread(target=fd_reader, args=(r, stream), daemon=True).start()
    sys.stdout, sys.stderr, sys.stdin = stdout, stderr, Stdin()
    threading.Thread(target=reader, daemon=True).start()
    threading.Thread(target=flusher, daemon=True).start()
    send(
        {
            "op": "started",
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "cwd": os.getcwd(),
        }
    )
    while True:
        try:
            message = requests.get(timeout=1.0)
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            continue
        op, rid = message.get("op"), message.get("rid")
        with state_lock:
            state["taken"] = True
        try:
            if op == "execute":
                error, result = execute(message.get("code", ""))
                last = [result] if result else []
                if error:
                    last.append({"op": "error", **error})
                flush_all()
                send(*last, {"op": "done", "rid": rid, "status": "error" if error else "ok"})
            elif op == "complete":
                send({"op": "reply", "rid": rid, **complete(message["code"], message["cursor"])})
            elif op == "inspect":
                found = describe(message["code"], message["cursor"], message.get("detail", 0))
                send({"op": "reply", "rid": rid, **found})
            else:
                send({"op": "reply", "rid": rid, "unknown": op})
        except KeyboardInterrupt:
            flush_all()
            stopped = {"op": "error", "ename": "KeyboardInterrupt", "evalue": ""}
            stopped["traceback"] = ["KeyboardInterrupt"]
            send(stopped, {"op": "done", "rid": rid, "status": "error"})
        finally:
            with state_lock:
                state.update(busy=False, taken=False, stop=False)


if __name__ == "__main__":
    main()
