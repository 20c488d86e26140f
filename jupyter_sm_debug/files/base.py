"""What every file backend gives: `FileSystem`, its `Entry`, and `FileError` with one code
per failure a user can meet. Paths are absolute POSIX paths as bytes (a container's names
need not be UTF-8); the REST layer converts them for the browser."""

from __future__ import annotations

import errno as errno_codes
import posixpath
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator, Protocol

from ..errors import SMDebugError

CHUNK = 256 * 1024  # bytes per read or write message, both backends
MAX_ENTRIES = 20000  # a directory listing is cut here (and says so)
MAX_PATH = 4096  # Linux's PATH_MAX


def one_component(name: bytes) -> bool:
    """Whether a name a host listed can be one entry of its directory: a hostile host may
    send a slash, a NUL, "." or ".."; each backend adds its own length bound."""
    return bool(name) and b"/" not in name and b"\0" not in name and name not in (b".", b"..")


@dataclass
class Entry:
    name: bytes
    path: bytes  # absolute, normalised, no trailing slash (b"/" for the root)
    kind: str  # "file" or "directory" (a symlink is what it points to; "file" if broken)
    size: int | None
    mtime: float  # seconds since the epoch
    writable: bool
    symlink: bool = False


class FileError(SMDebugError):
    """A file operation failed for a reason the user can act on."""


def absolute(path: bytes) -> bytes:
    """A backend's path: absolute, without NUL, at most MAX_PATH bytes, normalised (no
    ".", ".." or doubled slashes); a 400 otherwise."""
    if not isinstance(path, bytes) or not path.startswith(b"/") or b"\0" in path:
        raise FileError(
            400, "invalid_path", "A path must be absolute and must not contain NUL.",
            "Give the path from the root, e.g. /opt/ml/code/train.py.",
        )  # fmt: skip
    if len(path) > MAX_PATH:
        raise FileError(400, "invalid_path", "The path is too long.", "Use a shorter path.")
    return b"/" + posixpath.normpath(path).lstrip(b"/")  # normpath keeps a leading //


# (status, code, message template, hint) per errno the backends report.
_ERRNO = {
    errno_codes.ENOENT: (404, "file_not_found", "{path} does not exist on {host}.",
                         "Check the path; the file may have been removed."),
    errno_codes.EACCES: (403, "permission_denied", "{host} refused access to {path}.",
                         "The session's user may not read or write it."),
    errno_codes.EPERM: (403, "permission_denied", "{host} refused access to {path}.",
                        "The session's user may not read or write it."),
    errno_codes.EEXIST: (409, "file_exists", "{path} already exists on {host}.",
                         "Choose another name, or delete it first."),
    errno_codes.ENOTDIR: (400, "not_a_directory", "{path} is not a directory on {host}.",
                          "Open it as a file."),
    errno_codes.EISDIR: (400, "is_a_directory", "{path} is a directory on {host}.",
                         "Open it in the file browser."),
    errno_codes.ENOTEMPTY: (409, "directory_not_empty", "{path} is not empty on {host}.",
                            "Delete what is inside first, or use a terminal."),
    errno_codes.ENOSPC: (507, "no_space", "{host} has no space left to write {path}.",
                         "Free space in the container (df -h in a terminal) and retry."),
    errno_codes.EROFS: (403, "read_only", "{path} is on a read-only filesystem on {host}.",
                        "Write somewhere else, e.g. /tmp or /opt/ml/output."),
    errno_codes.ENAMETOOLONG: (400, "name_too_long", "A name in {path} is too long on {host}.",
                               "Use a shorter name."),
}  # fmt: skip


def file_error(number: int, path: bytes, host: str, detail: str = "") -> FileError:
    """The FileError for an errno a backend reported for `path` on `host`."""
    shown = path.decode(errors="replace")[:500]
    if number in _ERRNO:
        status, code, message, hint = _ERRNO[number]
        return FileError(status, code, message.format(path=shown, host=host), hint)
    text = detail or errno_codes.errorcode.get(number, str(number))
    return FileError(
        500 if number == 0 else 502, "file_operation_failed",
        f"{host} could not complete the operation on {shown}: {text[:300]}",
        "Try again; if it persists, look in a terminal on the host.",
    )  # fmt: skip


class FileSystem(Protocol):
    """One host's files over one transport. Every method raises FileError (or the
    transport's SMDebugError when the host cannot be reached)."""

    host: str

    def alive(self) -> bool: ...

    async def stat(self, path: bytes) -> Entry: ...

    async def listdir(self, path: bytes) -> tuple[list[Entry], bool]:
        """The entries (not . and ..) and whether MAX_ENTRIES cut the list."""
        ...

    def read(self, path: bytes, offset: int = 0) -> AsyncIterator[bytes]:
        """The file's bytes from `offset`, in chunks of at most CHUNK, as they come."""
        ...

    async def write(self, path: bytes, chunks: AsyncIterable[bytes], append: bool = False) -> Entry:
        """Replace the file with `chunks`: written to a temporary sibling, then renamed over
        it, so a failed save leaves the original whole (keeps the original's mode). With
        `append`, add to the end of the file in place (creating it)."""
        ...

    async def mkdir(self, path: bytes) -> Entry: ...

    async def rename(self, old: bytes, new: bytes) -> Entry:
        """Never replaces an existing `new` (FileError file_exists)."""
        ...

    async def remove(self, path: bytes) -> None:
        """A file, a symlink or an empty directory (directory_not_empty otherwise)."""
        ...

    async def close(self) -> None: ...
