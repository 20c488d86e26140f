"""A host's files over plain shell commands, for a container with no Python (the files
agent cannot run there): every operation is one marked `run` of a POSIX sh script.

- Names never meet a shell's parser: the script is a constant, and each path travels as a
  positional argument, its bytes written as printf ``%b`` octal escapes (``\\0ooo``), so an
  argument is plain ASCII whatever the name (newline, leading dash, invalid UTF-8), and the
  script decodes it into a variable. Every path is absolute, so none starts with a dash.
- Errors are exit codes the scripts choose from their own tests, 100 + errno (decided on
  numbers, never on a command's words); any other failure is a generic 502 with the end of
  stderr shown.
- Data: a listing is NUL-separated (name, record) pairs; a read is ``tail -c +N | head -c
  SIZE`` per SHELL_PIECE; a save writes a random temporary sibling (``set -C``: never an
  existing name) a piece per run, then gives it the original's mode and ``mv``s it over
  the file, so a failed save leaves the original whole. Run carries bytes both ways in
  base64 (ssm/run.py), so everything is binary-safe, just slower than the agent.
- Rename: a regular file by ``ln`` then ``rm`` (ln refuses an existing name atomically);
  a directory or symlink by a check then ``mv``, whose race (a name created in between) is
  the one left.
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import secrets
from typing import Any, AsyncIterable, AsyncIterator

from ..errors import SMDebugError
from ..hold import tool_argv
from .agentfs import listable, opening_error
from .base import CHUNK, MAX_ENTRIES, Entry, absolute, file_error

SHELL_PIECE = 4 * 1024 * 1024  # bytes per read or write run
TIMEOUT = 120.0
CODE_BASE = 100  # an exit code of CODE_BASE + errno reports that errno

PRELUDE = (
    'dec() { _v=$(printf "%b" "$1"; echo x); _v=${_v%x}; }; '
    # One record of a path: kind, flags (w writable, l symlink, - none), size, mtime.
    'rec() { if [ -d "$1" ]; then k=d; else k=f; fi; fl=; [ -w "$1" ] && fl=w; '
    '[ -L "$1" ] && fl="${fl}l"; s=$(stat -L -c "%s %Y" "$1" 2>/dev/null '
    '|| stat -c "%s %Y" "$1" 2>/dev/null || echo "0 0"); '
    'printf "%s %s %s\\0" "$k" "${fl:--}" "$s"; }; '
    'exists() { [ -e "$1" ] || [ -L "$1" ]; }; '
    f"fail() {{ exit $(({CODE_BASE} + $1)); }}; "
)
ERRNOS = ("ENOENT", "EACCES", "EEXIST", "ENOTDIR", "EISDIR", "ENOTEMPTY", "EINVAL")
E = {name: getattr(errno, name) for name in ERRNOS}

_SCRIPTS = {
    "stat": 'dec "$1"; p=$_v; exists "$p" || fail {ENOENT}; rec "$p"',
    "listdir": (
        'dec "$1"; p=$_v; exists "$p" || fail {ENOENT}; [ -d "$p" ] || fail {ENOTDIR}; '
        '[ -r "$p" ] && [ -x "$p" ] || fail {EACCES}; n=0; '
        'for f in "$p"/* "$p"/.[!.]* "$p"/..?*; do exists "$f" || continue; n=$((n+1)); '
        f'if [ $n -gt {MAX_ENTRIES} ]; then printf "T\\0"; break; fi; '
        'printf "%s\\0" "${f##*/}"; rec "$f"; done'
    ),
    "read": (
        'dec "$1"; p=$_v; exists "$p" || fail {ENOENT}; [ -d "$p" ] && fail {EISDIR}; '
        '[ -f "$p" ] || fail {EINVAL}; [ -r "$p" ] || fail {EACCES}; '
        'tail -c +$(($2 + 1)) "$p" | head -c "$3"'
    ),
    # $1 the file, $2 the temporary name, $3 the folder, $4 "new" or "more"
    "piece": (
        'dec "$1"; t=$_v; dec "$2"; tmp=$_v; dec "$3"; d=$_v; [ -d "$t" ] && fail {EISDIR}; '
        'exists "$t" && [ ! -f "$t" ] && fail {EINVAL}; [ -d "$d" ] || fail {ENOENT}; '
        '[ -w "$d" ] || fail {EACCES}; '
        'if [ "$4" = new ]; then (set -C; cat > "$tmp") || exit 1; '
        'else [ -f "$tmp" ] && [ ! -L "$tmp" ] || fail {ENOENT}; cat >> "$tmp" || exit 1; fi'
    ),
    "commit": (
        'dec "$1"; t=$_v; dec "$2"; tmp=$_v; '
        'if [ -L "$t" ]; then r=$(readlink -f "$t"; echo x); t=${r%?x}; fi; '
        'exists "$t" && [ ! -f "$t" ] && { rm -f "$tmp"; fail {EINVAL}; }; '
        'if [ -e "$t" ]; then m=$(stat -L -c %a "$t") && chmod "$m" "$tmp"; fi; '
        'mv -f "$tmp" "$t" || { rm -f "$tmp"; exit 1; }; rec "$t"'
    ),
    "abort": 'dec "$2"; rm -f "$_v"',
    "append": (
        'dec "$1"; p=$_v; [ -d "$p" ] && fail {EISDIR}; '
        'exists "$p" && [ ! -f "$p" ] && fail {EINVAL}; dec "$3"; exists "$_v" || fail {ENOENT}; '
        'cat >> "$p" || exit 1; rec "$p"'
    ),
    "mkdir": (
        'dec "$1"; p=$_v; dec "$2"; d=$_v; exists "$p" && fail {EEXIST}; '
        '[ -d "$d" ] || fail {ENOENT}; [ -w "$d" ] || fail {EACCES}; mkdir "$p" || exit 1; rec "$p"'
    ),
    "rename": (
        'dec "$1"; o=$_v; dec "$2"; n=$_v; exists "$o" || fail {ENOENT}; '
        'exists "$n" && fail {EEXIST}; '
        'if [ -f "$o" ] && [ ! -L "$o" ] && ln "$o" "$n" 2>/dev/null; then rm -f "$o"; '
        'else exists "$n" && fail {EEXIST}; mv "$o" "$n" || exit 1; fi; rec "$n"'
    ),
    "remove": (
        'dec "$1"; p=$_v; exists "$p" || fail {ENOENT}; '
        'if [ -d "$p" ] && [ ! -L "$p" ]; then [ -z "$(ls -A "$p")" ] || fail {ENOTEMPTY}; '
        'rmdir "$p" || exit 1; else rm -f "$p" || exit 1; fi'
    ),
}


def _fill(script: str) -> str:
    for name, number in E.items():
        script = script.replace("{" + name + "}", str(number))
    return PRELUDE + script


SCRIPTS = {op: _fill(script) for op, script in _SCRIPTS.items()}


def octal(path: bytes) -> str:
    """A path as printf %b escapes: plain ASCII, whatever its bytes."""
    return "".join(f"\\0{byte:03o}" for byte in path)


def _record(path: bytes, raw: bytes) -> Entry:
    """An Entry from one "kind flags size mtime" record; a broken one is a 502."""
    try:
        kind, flags, size, mtime = raw.decode("ascii").split(" ")
        size_value, mtime_value = int(size), float(mtime)
    except (UnicodeDecodeError, ValueError):
        raise SMDebugError(
            502, "files_shell_failed", "The host's shell answered a file's details wrongly.",
            "The container's stat may be unusual; use a terminal.",
        ) from None  # fmt: skip
    if kind not in ("d", "f") or size_value < 0:
        raise SMDebugError(502, "files_shell_failed", "The host's shell answered wrongly.",
                           "Use a terminal.")  # fmt: skip
    directory = kind == "d"
    return Entry(posixpath.basename(path) or b"/", path, "directory" if directory else "file",
                 None if directory else size_value, mtime_value, "w" in flags,
                 "l" in flags)  # fmt: skip


class ShellFS:
    """`FileSystem` (files/base.py) by one marked run per operation. Nothing stays open in
    the host: `close` has nothing to end."""

    def __init__(self, target: Any, transport: Any):
        self.target = target
        self.transport = transport
        self.host = target.host
        self.pid = 0
        self._closed = False

    def alive(self) -> bool:
        return not self._closed

    async def _run(self, op: str, shown: bytes, *args: str, stdin: bytes = b"",
                   limit: int = 0) -> bytes:  # fmt: skip
        if self._closed:
            raise SMDebugError(409, "files_closed", f"The file session to {self.host} is "
                               "closed.", "Open the host's files again.")  # fmt: skip
        argv = tool_argv(["sh", "-c", SCRIPTS[op], "sm-debug-files", *args])
        target = self.target
        if limit:
            from dataclasses import replace

            target = replace(target, options={**target.options, "output_limit": limit})
        result = await self.transport.run(target, argv, TIMEOUT, stdin=stdin)
        if result.error:
            raise SMDebugError(502, result.error["code"], result.error["message"],
                               result.error["hint"])  # fmt: skip
        if result.timed_out:
            raise SMDebugError(504, "host_timeout", f"{self.host} did not answer in time.",
                               "The host may be overloaded; try again.")  # fmt: skip
        code = result.exit_code or 0
        if CODE_BASE < code < 256:
            raise opening_error(code - CODE_BASE, shown, self.host)
        if code != 0 or result.truncated:
            said = result.stderr.decode(errors="replace").strip()[-300:]
            raise file_error(errno.EIO, shown, self.host, said or f"exit {code}")
        return result.stdout

    async def stat(self, path: bytes) -> Entry:
        path = absolute(path)
        out = await self._run("stat", path, octal(path))
        return _record(path, out.rstrip(b"\0"))

    async def listdir(self, path: bytes) -> tuple[list[Entry], bool]:
        path = absolute(path)
        out = await self._run("listdir", path, octal(path), limit=MAX_ENTRIES * 400)
        items = out.split(b"\0")[:-1] if out else []
        truncated = len(items) % 2 == 1 and items[-1] == b"T"
        if truncated:
            items.pop()
        if len(items) % 2 or len(items) > 2 * MAX_ENTRIES:
            raise SMDebugError(502, "files_shell_failed", "The host's listing was cut or too "
                               "long.", "Use a terminal.")  # fmt: skip
        entries = []
        seen: set[bytes] = set()
        for name, raw in zip(items[::2], items[1::2]):
            if not listable(name) or name in seen:
                raise SMDebugError(502, "files_shell_failed", "The host listed an impossible "
                                   "name.", "Use a terminal.")  # fmt: skip
            seen.add(name)
            entries.append(_record(posixpath.join(path, name), raw))
        return entries, truncated

    async def read(self, path: bytes, offset: int = 0) -> AsyncIterator[bytes]:
        path = absolute(path)
        position = max(0, int(offset))
        while True:
            data = await self._run("read", path, octal(path), str(position), str(SHELL_PIECE),
                                   limit=SHELL_PIECE)  # fmt: skip
            for start in range(0, len(data), CHUNK):
                yield data[start : start + CHUNK]
            position += len(data)
            if len(data) < SHELL_PIECE:
                return

    async def write(self, path: bytes, chunks: AsyncIterable[bytes], append: bool = False) -> Entry:
        path = absolute(path)
        folder, name = posixpath.split(path)
        if append:
            out = b""
            async for piece in _pieces(chunks):
                out = await self._run("append", path, octal(path), "", octal(folder), stdin=piece)
            if not out:
                out = await self._run("append", path, octal(path), "", octal(folder))
            return _record(path, out.rstrip(b"\0"))
        temp = posixpath.join(folder, b"." + name[:40] + b"." + secrets.token_hex(6).encode()
                              + b".sm-debug-tmp")  # fmt: skip
        args = octal(path), octal(temp), octal(folder)
        try:
            step = "new"
            async for piece in _pieces(chunks):
                await self._run("piece", path, *args, step, stdin=piece)
                step = "more"
            if step == "new":
                await self._run("piece", path, *args, step)
            out = await self._run("commit", path, *args)
        except BaseException:
            # The first failure is the one to report.
            with contextlib.suppress(Exception):
                await self._run("abort", path, *args)
            raise
        return _record(path, out.rstrip(b"\0"))

    async def mkdir(self, path: bytes) -> Entry:
        path = absolute(path)
        out = await self._run("mkdir", path, octal(path), octal(posixpath.dirname(path)))
        return _record(path, out.rstrip(b"\0"))

    async def rename(self, old: bytes, new: bytes) -> Entry:
        old, new = absolute(old), absolute(new)
        try:
            out = await self._run("rename", old, octal(old), octal(new))
        except SMDebugError as error:
            if error.code == "file_exists":
                raise file_error(errno.EEXIST, new, self.host) from None
            raise
        return _record(new, out.rstrip(b"\0"))

    async def remove(self, path: bytes) -> None:
        path = absolute(path)
        await self._run("remove", path, octal(path))

    async def close(self) -> None:
        self._closed = True


async def _pieces(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The chunks regrouped into pieces of SHELL_PIECE bytes (the last one shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= SHELL_PIECE:
            yield bytes(buffer[:SHELL_PIECE])
            del buffer[:SHELL_PIECE]
    if buffer:
        yield bytes(buffer)
