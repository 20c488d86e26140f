"""The files agent: the container's side of a host's files over SSM (agentfs.py is ours).

A standard-library program for Python 3.6+, pushed into the host by connect/pushed.py (its
source travels on the run's stdin and runs as ``serve(listener, token, idle_seconds)``), so
this module imports nothing of jupyter_sm_debug and stays one self-contained file.

Each connection: the token line, answered ``OK\\n`` (else closed), then frames both ways::

    header length:u32 BE  payload length:u32 BE  header (JSON object, UTF-8)  payload

A request's header has ``id``, ``op`` and its fields; a path is the name's bytes decoded as
latin-1 (reversible, any bytes). Every request gets exactly one reply with the same id,
``{"id", "ok": true, ...}`` or ``{"id", "errno": N}``, except ``data`` (a write's bytes),
which gets none: its error comes back at ``commit``. Requests on one connection are served
in order by the connection's thread; connections are served by threads of their own.
Errors are errno numbers only: the server decides on numbers, never on text.

Operations: stat, lstat, listdir (records in the payload, names raw), open/pread/close (a
read in chunks the client asks for, so it never holds more than it asked), wopen/data/
commit/abort (a write to a temporary sibling, fsync, os.replace; or an append in place),
mkdir, rename (never replaces: see rename()), remove, shutdown.

Paths are handled as bytes with os functions only, never through a shell.
"""

import contextlib
import errno
import hmac
import json
import os
import socket
import stat as st
import struct
import sys
import tempfile
import threading
import time

CHUNK = 256 * 1024  # files/base.py's CHUNK: the largest data or pread payload
MAX_ENTRIES = 20000  # files/base.py's MAX_ENTRIES
MAX_HEADER = 1024 * 1024  # a request's header; larger is refused and the connection closed
FRAME = struct.Struct(">II")
RECORD = struct.Struct(">BBHqd")  # listdir: kind, flags, name length, size, mtime; then name
FLAG_WRITABLE, FLAG_SYMLINK = 1, 2
TEMP_SUFFIX = b".sm-debug-tmp"
TOKEN_TIMEOUT = 20.0

_state = {"open": 0, "last": time.time()}
_lock = threading.Lock()
_temps = set()  # temporary files of writes in progress, removed on shutdown
_umask = 0o022
_rename_noreplace = []  # [function] once looked up, [] while unknown


class Refused(Exception):
    """The peer broke the protocol: the connection is closed."""


def _read_exact(sock, size):
    data = bytearray()
    while len(data) < size:
        part = sock.recv(min(size - len(data), 1 << 20))
        if not part:
            if data:
                raise Refused("cut frame")
            return None
        data += part
    return bytes(data)


def _read_frame(sock):
    head = _read_exact(sock, FRAME.size)
    if head is None:
        return None
    header_size, payload_size = FRAME.unpack(head)
    if header_size > MAX_HEADER or payload_size > CHUNK:
        raise Refused("frame too large")
    header = json.loads(_read_exact(sock, header_size).decode("utf-8"))
    payload = _read_exact(sock, payload_size) if payload_size else b""
    if not isinstance(header, dict) or not isinstance(header.get("id"), int):
        raise Refused("not a request")
    return header, payload


def _send(sock, header, payload=b""):
    body = json.dumps(header).encode("utf-8")
    sock.sendall(FRAME.pack(len(body), len(payload)) + body + payload)


def _path(header, key="path"):
    value = header.get(key)
    if not isinstance(value, str):
        raise OSError(errno.EINVAL, "no path")
    path = value.encode("latin-1")
    if not path.startswith(b"/") or b"\0" in path:
        raise OSError(errno.EINVAL, "not an absolute path")
    return path


def _kind(mode):
    return "directory" if st.S_ISDIR(mode) else "file"


def _entry(path, follow=True):
    """Entry fields for a path: a symlink is what it points to ("file" when broken)."""
    link = os.lstat(path)
    symlink = st.S_ISLNK(link.st_mode)
    info = link
    if symlink and follow:
        try:
            info = os.stat(path)
        except OSError:
            info = link
    directory = st.S_ISDIR(info.st_mode)
    return {
        "kind": _kind(info.st_mode),
        "size": None if directory else info.st_size,
        "mtime": info.st_mtime,
        "writable": os.access(path, os.W_OK),
        "symlink": symlink,
    }


def op_stat(header, payload, conn):
    return {"entry": _entry(_path(header))}, b""


def op_lstat(header, payload, conn):
    return {"entry": _entry(_path(header), follow=False)}, b""


def op_listdir(header, payload, conn):
    path = _path(header)
    limit = min(int(header.get("max", MAX_ENTRIES)), MAX_ENTRIES)
    records = []
    truncated = False
    with os.scandir(path) as entries:
        for item in entries:
            if len(records) >= limit:
                truncated = True
                break
            name = item.name
            try:
                info = item.stat(follow_symlinks=True)
            except OSError:
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue  # gone since the listing started
            flags = FLAG_SYMLINK if item.is_symlink() else 0
            if os.access(item.path, os.W_OK):
                flags |= FLAG_WRITABLE
            directory = st.S_ISDIR(info.st_mode)
            size = -1 if directory else info.st_size
            records.append(
                RECORD.pack(1 if directory else 0, flags, len(name), size, info.st_mtime) + name
            )
    return {"count": len(records), "truncated": truncated}, b"".join(records)


# Opening never waits (a FIFO without a writer would hold the thread for good), and only a
# regular file is read or appended to (a device such as /dev/zero never ends).
OPEN_FLAGS = os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


def _open_regular(path, flags):
    """An fd of a regular file, opened without waiting (EINVAL for anything else: a socket,
    or a FIFO opened for writing with no reader, answers ENXIO at open)."""
    try:
        fd = os.open(path, flags | OPEN_FLAGS, 0o666)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise OSError(errno.EINVAL, "not a regular file") from None
        raise
    return fd, _regular(fd)


def _regular(fd):
    """fd's stat when it is a regular file; closes it and raises otherwise."""
    try:
        info = os.fstat(fd)
        if st.S_ISDIR(info.st_mode):
            raise OSError(errno.EISDIR, "a directory")
        if not st.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return info


def op_open(header, payload, conn):
    fd, info = _open_regular(_path(header), os.O_RDONLY)
    handle = conn.add({"fd": fd})
    return {"handle": handle, "size": info.st_size}, b""


def op_pread(header, payload, conn):
    item = conn.handle(header)
    size = min(int(header.get("size", CHUNK)), CHUNK)
    offset = int(header.get("offset", 0))
    if offset < 0:
        raise OSError(errno.EINVAL, "negative offset")
    return {}, os.pread(item["fd"], size, offset)


def op_close(header, payload, conn):
    conn.drop(conn.handle(header))
    return {}, b""


def op_wopen(header, payload, conn):
    path = _path(header)
    if header.get("append"):
        fd, _ = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return {"handle": conn.add({"fd": fd, "temp": None, "target": path})}, b""
    # The file a symlink names is the one replaced (the link stays a link).
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        original = os.stat(target)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise
        original = None
    if original is not None and st.S_ISDIR(original.st_mode):
        raise OSError(errno.EISDIR, "a directory")
    if original is not None and not st.S_ISREG(original.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")  # never replace /dev/null
    folder, name = os.path.split(target)
    fd, temp = tempfile.mkstemp(
        suffix=TEMP_SUFFIX, prefix=b"." + name[:40] + b".", dir=folder or b"/"
    )
    with _lock:
        _temps.add(temp)
    item = {"fd": fd, "temp": temp, "target": target}
    try:
        if original is not None:
            # Owner first (a chown clears set-id bits), then the mode. Not root: the file
            # becomes the session user's, as with any editor's save.
            with contextlib.suppress(OSError):
                os.fchown(fd, original.st_uid, original.st_gid)
            os.fchmod(fd, st.S_IMODE(original.st_mode))
        else:
            os.fchmod(fd, 0o666 & ~_umask)
    except BaseException:
        _discard(item)
        raise
    return {"handle": conn.add(item)}, b""


def op_data(header, payload, conn):
    """No reply, whatever happens: a lost handle or a failed write answers at commit."""
    handle = header.get("handle")
    item = conn.handles.get(handle) if isinstance(handle, int) else None
    if item is None or item.get("error") or item.get("fd") is None:
        return None
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(item["fd"], view) :]
    except OSError as error:
        item["error"] = error.errno or errno.EIO
    return None


def op_commit(header, payload, conn):
    item = conn.handle(header)
    conn.handles.pop(header.get("handle"), None)
    try:
        if item.get("error"):
            raise OSError(item["error"], "write failed")
        os.fsync(item["fd"])
        os.close(item["fd"])
        item["fd"] = None
        if item["temp"] is not None:
            os.replace(item["temp"], item["target"])
            with _lock:
                _temps.discard(item["temp"])
            item["temp"] = None
            _sync_folder(os.path.dirname(item["target"]) or b"/")
    finally:
        _discard(item)
    return {"entry": _entry(_path(header, "path"))}, b""


def op_abort(header, payload, conn):
    conn.drop(conn.handle(header))
    return {}, b""


def op_mkdir(header, payload, conn):
    path = _path(header)
    os.mkdir(path, 0o777)
    return {"entry": _entry(path)}, b""


def op_rename(header, payload, conn):
    old, new = _path(header, "old"), _path(header, "new")
    rename(old, new)
    return {"entry": _entry(new)}, b""


def op_remove(header, payload, conn):
    path = _path(header)
    if st.S_ISDIR(os.lstat(path).st_mode):
        os.rmdir(path)
    else:
        os.unlink(path)
    return {}, b""


def rename(old, new):
    """Rename without ever replacing `new` (EEXIST if it exists).

    First Linux's renameat2(RENAME_NOREPLACE) through ctypes: atomic, for files and
    directories alike. Where it is missing (old glibc without the symbol, a kernel before
    3.15 or a filesystem that answers EINVAL), a file or symlink moves by os.link + unlink
    (link refuses an existing name atomically; follow_symlinks=False links the symlink
    itself), and a directory, which cannot be hard linked, by an existence check then
    os.rename: a name created between the two would be replaced if it is an empty
    directory (rename refuses a non-empty one and a file over a directory), the only race
    left, and only on hosts without renameat2."""
    function = _noreplace()
    if function is not None and function(old, new):
        return
    if not st.S_ISDIR(os.lstat(old).st_mode):
        try:
            os.link(old, new, follow_symlinks=False)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.ENOSYS):
                raise
        else:
            os.unlink(old)
            return
    try:
        os.lstat(new)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise
    else:
        raise OSError(errno.EEXIST, "exists")
    os.rename(old, new)


def _noreplace():
    """A function renaming with RENAME_NOREPLACE that answers True when it did, False when
    the system cannot (then the fallback runs); None when unavailable."""
    if _rename_noreplace:
        return _rename_noreplace[0]
    function = None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
        call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        call.argtypes += [ctypes.c_uint]

        def function(old, new):
            if call(-100, old, -100, new, 1) == 0:  # AT_FDCWD, RENAME_NOREPLACE
                return True
            number = ctypes.get_errno()
            if number in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
                return False
            raise OSError(number, os.strerror(number))

    except Exception:  # noqa: BLE001 - no ctypes, no libc symbol: the fallback
        function = None
    _rename_noreplace.append(function)
    return function


def _sync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(item):
    fd, temp = item.get("fd"), item.get("temp")
    item["fd"] = item["temp"] = None
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    if temp is not None:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        with _lock:
            _temps.discard(temp)


def op_shutdown(header, payload, conn):
    with _lock:
        temps = list(_temps)
    for temp in temps:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    _send(conn.sock, {"id": header["id"], "ok": True})
    os._exit(0)


OPS = {
    "stat": op_stat, "lstat": op_lstat, "listdir": op_listdir, "open": op_open,
    "pread": op_pread, "close": op_close, "wopen": op_wopen, "data": op_data,
    "commit": op_commit, "abort": op_abort, "mkdir": op_mkdir, "rename": op_rename,
    "remove": op_remove, "shutdown": op_shutdown,
}  # fmt: skip


class Connection:
    MAX_HANDLES = 64

    def __init__(self, sock):
        self.sock = sock
        self.handles = {}
        self.next = 1

    def add(self, item):
        if len(self.handles) >= self.MAX_HANDLES:
            _discard(item)
            raise OSError(errno.EMFILE, "too many handles")
        handle, self.next = self.next, self.next + 1
        self.handles[handle] = item
        return handle

    def handle(self, header):
        handle = header.get("handle")
        item = self.handles.get(handle) if isinstance(handle, int) else None
        if item is None:
            raise OSError(errno.EBADF, "no such handle")
        return item

    def drop(self, item):
        for key, value in list(self.handles.items()):
            if value is item:
                del self.handles[key]
        _discard(item)

    def close(self):
        for item in list(self.handles.values()):
            _discard(item)  # an unfinished write leaves no temporary file
        self.handles.clear()
        with contextlib.suppress(OSError):
            self.sock.close()


def _serve_connection(sock, token, idle):
    conn = Connection(sock)
    try:
        sock.settimeout(TOKEN_TIMEOUT)
        line = b""
        while not line.endswith(b"\n"):
            part = sock.recv(1)
            if not part or len(line) > 256:
                return
            line += part
        if not hmac.compare_digest(line.strip(), token.encode()):
            return
        sock.sendall(b"OK\n")
        # A connection silent for the idle time is closed, so a lost client frees us.
        sock.settimeout(max(idle, 1))
        while True:
            frame = _read_frame(sock)
            if frame is None:
                return
            header, payload = frame
            op = header.get("op")
            handler = OPS.get(op) if isinstance(op, str) else None
            try:
                if handler is None:
                    raise OSError(errno.ENOSYS, "unknown operation")
                answer = handler(header, payload, conn)
            except OSError as error:
                _send(sock, {"id": header["id"], "errno": error.errno or errno.EIO})
                continue
            except (ValueError, TypeError, KeyError, OverflowError):
                _send(sock, {"id": header["id"], "errno": errno.EINVAL})
                continue
            if answer is not None:
                fields, data = answer
                fields.update(id=header["id"], ok=True)
                _send(sock, fields, data)
    except (OSError, Refused, ValueError):
        return
    finally:
        conn.close()
        with _lock:
            _state["open"] -= 1
            _state["last"] = time.time()


def serve(listener, token, idle_seconds):
    """Serve connections until a shutdown, or until idle_seconds pass with none open."""
    global _umask
    _umask = os.umask(0o022)
    os.umask(_umask)
    listener.settimeout(0.5)
    while True:
        with _lock:
            if not _state["open"] and time.time() - _state["last"] >= idle_seconds:
                return
        try:
            sock, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        with _lock:
            _state["open"] += 1
        thread = threading.Thread(target=_serve_connection, args=(sock, token, idle_seconds))
        thread.daemon = True
        thread.start()


if __name__ == "__main__" and len(sys.argv) == 3:  # a local try: agent.py TOKEN IDLE
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    print(server.getsockname()[1], flush=True)
    serve(server, sys.argv[1], int(sys.argv[2]))
