"""A host's files over SSH: an SFTP version 3 client of our own (sftp_wire.py) spoken over the
pipes of the OpenSSH client started as the `sftp` subsystem, with the same pinned host key
and hardened options as attach and run (connect/ssh/transport.py `files`).

Why this and not a Python SSH library (asyncssh): it reuses our pinned OpenSSH trust (one
SSH implementation, one host-key check, no new dependency with its own host-key handling),
SFTP is binary-safe (no base64 through a terminal), and it needs no Python in the container:
OpenSSH's sftp-server, or sshd's own internal-sftp, is the other end.

How the protocol's gaps are filled (docs/files.md):
- SFTP 3 reports most failures as SSH_FX_FAILURE: a follow-up lstat, a look into the
  directory or a statvfs@openssh.com tells EEXIST, ENOTEMPTY, EISDIR, EROFS and ENOSPC
  apart. The server's message text is untrusted and never read.
- `writable` is an approximation: SFTP does not say who the session is. Its uid and gid are
  read once from /proc/self (which the server process owns) and compared with the owner's
  bits, else the group's (supplementary groups are unknown), else the others'; root may
  write anything; without /proc the owner's bit is used.
- write() writes `.<name>.sm-debug-<random>` beside the file (created exclusively), gives it
  the original's mode, then renames it over the file with posix-rename@openssh.com (SFTP 3's
  RENAME never replaces), else removes the original first (not atomic, only then).
- rename() never replaces: the target is looked at first, and SFTP 3's RENAME itself fails
  on an existing target (OpenSSH links then unlinks a regular file).
- read() keeps at most WINDOW requests in flight: the reply data this process holds is
  bounded by WINDOW * the read size (4 MiB), however large the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import posixpath
import secrets
import stat as st
from collections import deque
from typing import AsyncIterable, AsyncIterator, Optional

from . import sftp_wire as w
from .base import CHUNK, MAX_ENTRIES, Entry, FileError, absolute, file_error
from .sftp_wire import Attrs, Connection, Reader, Status, WireError, check, expect, string, u32, u64

WINDOW = 16  # requests in flight per read, write or listing
SMALL_BLOCK = 32 * 1024  # what every SFTP server must accept (without limits@openssh.com)
REQUEST_TIMEOUT = 120.0  # seconds for one reply before the session is given up
START_TIMEOUT = 30.0
ST_RDONLY = 1  # statvfs f_flag
_ERRNO = {w.NO_SUCH_FILE: errno.ENOENT, w.PERMISSION_DENIED: errno.EACCES}


def _guarded(method):
    """A broken reply (WireError) ends the session: the caller gets host_connection_lost."""

    @functools.wraps(method)
    async def guarded(self, *args, **kwargs):
        try:
            return await method(self, *args, **kwargs)
        except WireError as error:
            await self.connection.close(str(error))
            raise self._lost() from None

    return guarded


class SFTPFileSystem:
    """One host's files through one SFTP session (files/base.py's FileSystem)."""

    def __init__(self, connection: Connection, host: str, on_close=None):
        self.connection = connection
        self.host = host
        self._on_close = on_close
        self._closed = False
        self.info: dict = {}  # the transport's (SSH: how the host key was verified)
        self.uid: Optional[int] = None
        self.gid: Optional[int] = None
        self.posix_rename = self.statvfs = False
        self.read_size = self.write_size = SMALL_BLOCK

    @_guarded
    async def start(self) -> None:
        """Extensions, limits and the session's uid, once after the version exchange."""
        ext = self.connection.extensions
        self.posix_rename = ext.get(b"posix-rename@openssh.com") == b"1"
        self.statvfs = ext.get(b"statvfs@openssh.com") == b"2"
        if ext.get(b"limits@openssh.com") == b"1":
            try:
                kind, reply = await self._call(w.EXTENDED, string(b"limits@openssh.com"))
                expect(kind, w.EXTENDED_REPLY, reply)
                _packet, read_max, write_max = reply.u64(), reply.u64(), reply.u64()
                self.read_size = max(SMALL_BLOCK, min(CHUNK, read_max or CHUNK))
                self.write_size = max(SMALL_BLOCK, min(CHUNK, write_max or CHUNK))
            except Status:
                pass
        try:
            me = await self._attrs(w.STAT, b"/proc/self")
            self.uid, self.gid = me.uid, me.gid
        except FileError:
            pass

    # -- plumbing -------------------------------------------------------------------------------

    def alive(self) -> bool:
        return not self._closed and self.connection.alive()

    def _lost(self) -> FileError:
        return FileError(
            502, "host_connection_lost",
            f"The SSH file session to {self.host} ended: {self.connection.broken or 'ssh exited'}.",
            "The host may have stopped or become unreachable; open its files again.",
        )  # fmt: skip

    async def _wait(self, request: int, future: asyncio.Future):
        try:
            return await asyncio.wait_for(asyncio.shield(future), REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            self.connection.forget(request)
            await self.connection.close()
            raise FileError(
                504, "host_timeout",
                f"{self.host} did not answer a file request within {REQUEST_TIMEOUT:g} s.",
                "The host may be overloaded or a file system may hang; try again.",
            ) from None  # fmt: skip
        except asyncio.CancelledError:
            self.connection.forget(request)
            raise
        except WireError:
            raise self._lost() from None

    def _send(self, kind: int, *fields: bytes) -> tuple[int, asyncio.Future]:
        try:
            return self.connection.send(kind, *fields)
        except WireError:
            raise self._lost() from None

    async def _call(self, kind: int, *fields: bytes) -> tuple[int, Reader]:
        return await self._wait(*self._send(kind, *fields))

    async def _status(self, kind: int, *fields: bytes) -> None:
        check(*await self._call(kind, *fields))

    def _error(self, status: Status, path: bytes, number: Optional[int] = None) -> FileError:
        number = number or _ERRNO.get(status.code)
        if status.code == w.BAD_MESSAGE and any(len(part) > 255 for part in path.split(b"/")):
            number = errno.ENAMETOOLONG  # OpenSSH's answer to ENAMETOOLONG
        if number is not None:
            return file_error(number, path, self.host)
        return file_error(errno.EIO, path, self.host, f"the host's SFTP server said {status}")

    async def _attrs(self, kind: int, path: bytes) -> Attrs:
        """STAT or LSTAT of `path` (FileError when it fails)."""
        try:
            reply_kind, reply = await self._call(kind, string(path))
            expect(reply_kind, w.ATTRS, reply)
            return reply.attrs()
        except Status as status:
            raise self._error(status, path) from None

    async def _exists(self, path: bytes) -> Optional[Attrs]:
        """lstat, or None when there is nothing at `path`."""
        try:
            return await self._attrs(w.LSTAT, path)
        except FileError as error:
            if error.code == "file_not_found":
                return None
            raise

    async def _fs_flags(self, path: bytes) -> Optional[tuple[int, int]]:
        """(f_flag, f_bavail) of the file system holding `path`, if the server says."""
        if not self.statvfs:
            return None
        try:
            kind, reply = await self._call(w.EXTENDED, string(b"statvfs@openssh.com"), string(path))
            expect(kind, w.EXTENDED_REPLY, reply)
            values = [reply.u64() for _ in range(11)]
        except (Status, FileError):
            return None
        return values[9], values[4]

    async def _why_failed(self, path: bytes, directory: bytes) -> Optional[int]:
        """EROFS or ENOSPC for a write-like SSH_FX_FAILURE under `directory`, if it is that."""
        flags = await self._fs_flags(directory)
        if flags is None:
            return None
        if flags[0] & ST_RDONLY:
            return errno.EROFS
        return errno.ENOSPC if flags[1] == 0 else None

    async def _close_handle(self, handle: bytes) -> None:
        with contextlib.suppress(Status, FileError):
            await self._status(w.CLOSE, string(handle))

    async def _open(self, path: bytes, flags: int, attrs: Attrs) -> bytes:
        kind, reply = await self._call(w.OPEN, string(path), u32(flags), attrs.pack())
        expect(kind, w.HANDLE, reply)
        return w.handle_of(reply)

    # -- entries --------------------------------------------------------------------------------

    def _writable(self, attrs: Attrs) -> bool:
        mode = attrs.permissions or 0
        if self.uid is None:
            return bool(mode & st.S_IWUSR)
        if self.uid == 0:
            return True
        if attrs.uid == self.uid:
            return bool(mode & st.S_IWUSR)
        if attrs.gid == self.gid:
            return bool(mode & st.S_IWGRP)
        return bool(mode & st.S_IWOTH)

    def _entry(self, path: bytes, attrs: Attrs, target: Optional[Attrs] = None) -> Entry:
        """`attrs` from lstat; `target` from stat when `path` is a symlink (None: broken)."""
        link = st.S_ISLNK(attrs.permissions or 0)
        shown = target if (link and target is not None) else attrs
        directory = st.S_ISDIR(shown.permissions or 0) and not (link and target is None)
        return Entry(
            name=posixpath.basename(path), path=path,
            kind="directory" if directory else "file",
            size=None if directory else shown.size, mtime=float(shown.mtime or 0),
            writable=self._writable(shown), symlink=link,
        )  # fmt: skip

    async def _followed(self, path: bytes, attrs: Attrs) -> Optional[Attrs]:
        """What a symlink points to (None: broken or unreadable); `attrs` otherwise."""
        if not st.S_ISLNK(attrs.permissions or 0):
            return attrs
        try:
            return await self._attrs(w.STAT, path)
        except FileError as error:
            if error.code in ("host_connection_lost", "host_timeout"):
                raise
            return None

    @_guarded
    async def stat(self, path: bytes) -> Entry:
        path = absolute(path)
        attrs = await self._attrs(w.LSTAT, path)
        return self._entry(path, attrs, await self._followed(path, attrs))

    @_guarded
    async def listdir(self, path: bytes) -> tuple[list[Entry], bool]:
        path = absolute(path)
        try:
            kind, reply = await self._call(w.OPENDIR, string(path))
            expect(kind, w.HANDLE, reply)
        except Status as status:
            if status.code == w.FAILURE or status.code == w.NO_SUCH_FILE:
                attrs = await self._attrs(w.STAT, path)  # ENOENT raised here
                if not st.S_ISDIR(attrs.permissions or 0):
                    raise file_error(errno.ENOTDIR, path, self.host) from None
            raise self._error(status, path) from None
        handle = w.handle_of(reply)
        found: list[tuple[bytes, Attrs]] = []
        truncated = False
        pending: deque = deque()
        try:
            done = False
            while not done or pending:
                while not done and len(pending) < 4:
                    pending.append(self._send(w.READDIR, string(handle)))
                request, future = pending.popleft()
                kind, reply = await self._wait(request, future)
                if done:
                    continue
                if kind == w.NAME:
                    for _ in range(reply.u32()):
                        name, _longname, attrs = reply.string(), reply.string(), reply.attrs()
                        if not w.valid_name(name):
                            continue
                        if len(found) >= MAX_ENTRIES:
                            truncated = done = True
                            break
                        found.append((name, attrs))
                else:
                    expect(kind, w.NAME, reply)
        except Status as status:
            if status.code != w.EOF:
                raise self._error(status, path) from None
        finally:
            for request, _ in pending:
                self.connection.forget(request)
            await self._close_handle(handle)
        targets: list = []
        for at in range(0, len(found), 256):  # symlinks' targets, 256 requests at a time
            batch = found[at : at + 256]
            targets += await asyncio.gather(
                *(self._followed(w.child(path, name), attrs) for name, attrs in batch)
            )
        entries = [
            self._entry(w.child(path, name), attrs, target)
            for (name, attrs), target in zip(found, targets)
        ]
        return entries, truncated

    # -- reading --------------------------------------------------------------------------------

    async def read(self, path: bytes, offset: int = 0) -> AsyncIterator[bytes]:
        inner = self._read(absolute(path), offset)
        try:
            async for chunk in inner:
                yield chunk
        except WireError as error:
            await self.connection.close(str(error))
            raise self._lost() from None
        finally:
            await inner.aclose()  # a reader that stops early: forget its requests, close

    async def _read(self, path: bytes, offset: int) -> AsyncIterator[bytes]:
        attrs = await self._attrs(w.STAT, path)
        mode = attrs.permissions or 0
        if st.S_ISDIR(mode):
            raise file_error(errno.EISDIR, path, self.host)
        if not st.S_ISREG(mode):
            raise FileError(
                400, "not_a_regular_file", f"{path.decode(errors='replace')[:500]} on "
                f"{self.host} is a device, pipe or socket, not a file.",
                "Read it in a terminal.",
            )  # fmt: skip
        try:
            handle = await self._open(path, w.F_READ, Attrs())
        except Status as status:
            raise self._error(status, path) from None
        block, position = self.read_size, max(0, offset)
        pending: deque = deque()
        try:
            while True:
                while len(pending) < WINDOW:
                    pending.append((position, self._send(w.READ, string(handle), u64(position),
                                                         u32(block))))  # fmt: skip
                    position += block
                start, (request, future) = pending.popleft()
                data = await self._data(path, request, future, block)
                if data is None:
                    return
                if data:
                    yield data
                if len(data) < block:  # a short read: fetch the gap before going on
                    at, end = start + len(data), start + block
                    while at < end:
                        more = await self._data(path, *self._send(
                            w.READ, string(handle), u64(at), u32(end - at)), end - at)  # fmt: skip
                        if not more:
                            return
                        yield more
                        at += len(more)
        finally:
            for _, (request, _) in pending:
                self.connection.forget(request)
            if self.alive():
                await self._close_handle(handle)

    async def _data(self, path, request, future, asked: int) -> Optional[bytes]:
        """The data of a READ reply; None at the end of the file."""
        kind, reply = await self._wait(request, future)
        try:
            expect(kind, w.DATA, reply)
        except Status as status:
            if status.code == w.EOF:
                return None
            raise self._error(status, path) from None
        data = reply.string()
        if len(data) > asked:
            await self.connection.close()
            raise self._lost()
        return data

    # -- writing --------------------------------------------------------------------------------

    @_guarded
    async def write(self, path: bytes, chunks: AsyncIterable[bytes], append: bool = False) -> Entry:
        path = absolute(path)
        if append:
            return await self._append(path, chunks)
        found = await self._exists(path)
        target = path
        if found is not None and st.S_ISLNK(found.permissions or 0):
            resolved = await self._realpath(path)  # write through the link, keep it
            if resolved is not None:
                target, found = resolved, await self._exists(resolved)
        if found is not None and st.S_ISDIR(found.permissions or 0):
            raise file_error(errno.EISDIR, path, self.host)
        directory, name = posixpath.split(target)
        temp = w.child(directory, b"." + name[:200] + b".sm-debug-" + secrets.token_hex(4).encode())
        keep = found is not None and not st.S_ISLNK(found.permissions or 0)
        try:
            handle = await self._open(
                temp,
                w.F_WRITE | w.F_CREAT | w.F_EXCL,
                Attrs(permissions=0o600) if keep else Attrs(),
            )
        except Status as status:
            raise await self._write_error(status, path, directory) from None
        try:
            try:
                await self._write_all(path, directory, handle, 0, chunks)
                if keep:
                    await self._copy_mode(handle, found)
            except BaseException:
                if self.alive():
                    await self._close_handle(handle)
                raise
            await self._status(w.CLOSE, string(handle))
            await self._replace(temp, target)
        except BaseException as error:
            if self.alive():
                with contextlib.suppress(Status, FileError):
                    await self._status(w.REMOVE, string(temp))
            if isinstance(error, Status):
                raise await self._write_error(error, path, directory) from None
            raise
        return await self.stat(path)

    async def _write_error(self, status: Status, path: bytes, directory: bytes) -> FileError:
        failed = await self._why_failed(path, directory) if status.code == w.FAILURE else None
        return self._error(status, path, failed)

    async def _append(self, path: bytes, chunks: AsyncIterable[bytes]) -> Entry:
        directory = posixpath.dirname(path)
        try:
            handle = await self._open(path, w.F_WRITE | w.F_APPEND | w.F_CREAT, Attrs())
        except Status as status:
            found = await self._exists(path) if status.code == w.FAILURE else None
            if found is not None and st.S_ISDIR(found.permissions or 0):
                raise file_error(errno.EISDIR, path, self.host) from None
            raise await self._write_error(status, path, directory) from None
        try:
            kind, reply = await self._call(w.FSTAT, string(handle))
            expect(kind, w.ATTRS, reply)
            size = reply.attrs().size or 0
            await self._write_all(path, directory, handle, size, chunks)
            await self._status(w.CLOSE, string(handle))
        except Status as status:
            raise await self._write_error(status, path, directory) from None
        except BaseException:
            if self.alive():
                await self._close_handle(handle)
            raise
        return await self.stat(path)

    async def _write_all(self, path, directory, handle, offset: int, chunks) -> None:
        """Every chunk at `offset` on, at most WINDOW writes in flight."""
        pending: deque = deque()

        async def settle(request, future) -> None:
            try:
                check(*await self._wait(request, future))
            except Status as status:
                raise await self._write_error(status, path, directory) from None

        try:
            async for chunk in chunks:
                view = memoryview(chunk)
                for start in range(0, len(view), self.write_size):
                    piece = bytes(view[start : start + self.write_size])
                    pending.append(self._send(w.WRITE, string(handle), u64(offset), string(piece)))
                    offset += len(piece)
                    await self.connection.drain()
                    while len(pending) >= WINDOW:
                        await settle(*pending.popleft())
            while pending:
                await settle(*pending.popleft())
        except WireError:
            raise self._lost() from None
        finally:
            for request, _ in pending:
                self.connection.forget(request)

    async def _copy_mode(self, handle: bytes, original: Attrs) -> None:
        """The original's permission bits on the new file, and its owner when we may."""
        mode = (original.permissions or 0o644) & 0o7777
        await self._status(w.FSETSTAT, string(handle), Attrs(permissions=mode).pack())
        if original.uid is not None and original.uid != self.uid and self.uid == 0:
            owner = Attrs(uid=original.uid, gid=original.gid)
            with contextlib.suppress(Status):  # else kept: the session's user owns it
                await self._status(w.FSETSTAT, string(handle), owner.pack())

    async def _replace(self, temp: bytes, target: bytes) -> None:
        try:
            if self.posix_rename:
                await self._status(w.EXTENDED, string(b"posix-rename@openssh.com"),
                                   string(temp), string(target))  # fmt: skip
                return
            try:
                await self._status(w.REMOVE, string(target))
            except Status as status:
                if status.code != w.NO_SUCH_FILE:
                    raise
            await self._status(w.RENAME, string(temp), string(target))
        except Status as status:
            raise self._error(status, target) from None

    async def _realpath(self, path: bytes) -> Optional[bytes]:
        try:
            kind, reply = await self._call(w.REALPATH, string(path))
            expect(kind, w.NAME, reply)
        except Status:
            return None
        if reply.u32() != 1:
            return None
        resolved = reply.string()
        return absolute(resolved) if resolved.startswith(b"/") and b"\0" not in resolved else None

    # -- the rest -------------------------------------------------------------------------------

    @_guarded
    async def mkdir(self, path: bytes) -> Entry:
        path = absolute(path)
        try:
            await self._status(w.MKDIR, string(path), Attrs().pack())
        except Status as status:
            failed = None
            if status.code == w.FAILURE:
                if await self._exists(path) is not None:
                    failed = errno.EEXIST
                else:
                    failed = await self._why_failed(path, posixpath.dirname(path))
            raise self._error(status, path, failed) from None
        return await self.stat(path)

    @_guarded
    async def rename(self, old: bytes, new: bytes) -> Entry:
        old, new = absolute(old), absolute(new)
        await self._attrs(w.LSTAT, old)  # ENOENT for the old name first
        if await self._exists(new) is not None:
            raise file_error(errno.EEXIST, new, self.host)
        try:
            await self._status(w.RENAME, string(old), string(new))
        except Status as status:
            failed = None
            if status.code == w.FAILURE:
                if await self._exists(new) is not None:
                    failed = errno.EEXIST
                else:
                    failed = await self._why_failed(new, posixpath.dirname(new))
            raise self._error(status, new, failed) from None
        return await self.stat(new)

    @_guarded
    async def remove(self, path: bytes) -> None:
        path = absolute(path)
        attrs = await self._attrs(w.LSTAT, path)
        directory = st.S_ISDIR(attrs.permissions or 0)
        try:
            await self._status(w.RMDIR if directory else w.REMOVE, string(path))
        except Status as status:
            failed = None
            if status.code == w.FAILURE and directory and await self._has_entries(path):
                failed = errno.ENOTEMPTY
            elif status.code == w.FAILURE:
                failed = await self._why_failed(path, posixpath.dirname(path))
            raise self._error(status, path, failed) from None

    async def _has_entries(self, path: bytes) -> bool:
        try:
            kind, reply = await self._call(w.OPENDIR, string(path))
            expect(kind, w.HANDLE, reply)
        except Status:
            return False
        handle = w.handle_of(reply)
        try:
            for _ in range(8):  # OpenSSH sends . and .. first, in batches of up to 100
                kind, reply = await self._call(w.READDIR, string(handle))
                expect(kind, w.NAME, reply)
                for _ in range(reply.u32()):
                    name, _longname, _attrs = reply.string(), reply.string(), reply.attrs()
                    if name not in (b".", b".."):
                        return True
            return False
        except Status:
            return False
        finally:
            await self._close_handle(handle)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.connection.close()
        finally:
            if self._on_close is not None:
                await self._on_close(self.connection)
