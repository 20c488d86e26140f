"""SFTP version 3 on the wire (draft-ietf-secsh-filexfer-02), client side: packets, attributes
and one connection over a process's stdin/stdout (the OpenSSH client started as the `sftp`
subsystem). Requests carry ids and are pipelined: `send` returns at once with a future, the
one reader task settles futures as replies come, in any order.

Everything the server sends is untrusted: a packet longer than MAX_PACKET ends the
connection, a reply whose id nobody asked for ends it, a malformed field ends it. Status
messages are kept out of every decision (and out of what a user sees).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from dataclasses import dataclass
from typing import Optional

from .base import one_component

VERSION = 3
# Packet types.
INIT, FXP_VERSION, OPEN, CLOSE, READ, WRITE, LSTAT, FSTAT = 1, 2, 3, 4, 5, 6, 7, 8
SETSTAT, FSETSTAT, OPENDIR, READDIR, REMOVE, MKDIR, RMDIR = 9, 10, 11, 12, 13, 14, 15
REALPATH, STAT, RENAME, READLINK, SYMLINK = 16, 17, 18, 19, 20
STATUS, HANDLE, DATA, NAME, ATTRS, EXTENDED, EXTENDED_REPLY = 101, 102, 103, 104, 105, 200, 201
# Status codes.
OK, EOF, NO_SUCH_FILE, PERMISSION_DENIED, FAILURE = 0, 1, 2, 3, 4
BAD_MESSAGE, NO_CONNECTION, CONNECTION_LOST, OP_UNSUPPORTED = 5, 6, 7, 8
STATUS_NAMES = {
    OK: "SSH_FX_OK", EOF: "SSH_FX_EOF", NO_SUCH_FILE: "SSH_FX_NO_SUCH_FILE",
    PERMISSION_DENIED: "SSH_FX_PERMISSION_DENIED", FAILURE: "SSH_FX_FAILURE",
    BAD_MESSAGE: "SSH_FX_BAD_MESSAGE", NO_CONNECTION: "SSH_FX_NO_CONNECTION",
    CONNECTION_LOST: "SSH_FX_CONNECTION_LOST", OP_UNSUPPORTED: "SSH_FX_OP_UNSUPPORTED",
}  # fmt: skip
# Open flags.
F_READ, F_WRITE, F_APPEND, F_CREAT, F_TRUNC, F_EXCL = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
# Attribute flags.
A_SIZE, A_UIDGID, A_PERMISSIONS, A_ACMODTIME, A_EXTENDED = 0x1, 0x2, 0x4, 0x8, 0x80000000

MAX_PACKET = (1 << 20) + 1024  # the longest reply we accept: 1 MiB of data and a header
MAX_HANDLE = 256  # the draft's bound on a handle's length
MAX_EXTENSIONS = 64  # extension pairs kept from the version packet or an attribute block
MAX_NAME = 4096  # bytes of one listed name kept (Linux allows 255)


class WireError(Exception):
    """The server broke the protocol (or the connection ended): the connection is unusable."""


class Status(Exception):
    """A request answered with a status other than OK (EOF included)."""

    def __init__(self, code: int):
        super().__init__(STATUS_NAMES.get(code, f"SSH_FX_{code}"))
        self.code = code


@dataclass
class Attrs:
    size: Optional[int] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    permissions: Optional[int] = None
    atime: Optional[int] = None
    mtime: Optional[int] = None

    def pack(self) -> bytes:
        flags, body = 0, b""
        if self.size is not None:
            flags |= A_SIZE
            body += struct.pack(">Q", self.size)
        if self.uid is not None and self.gid is not None:
            flags |= A_UIDGID
            body += struct.pack(">II", self.uid, self.gid)
        if self.permissions is not None:
            flags |= A_PERMISSIONS
            body += struct.pack(">I", self.permissions)
        if self.atime is not None and self.mtime is not None:
            flags |= A_ACMODTIME
            body += struct.pack(">II", self.atime, self.mtime)
        return struct.pack(">I", flags) + body


def string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


class Reader:
    """Fields of one reply, read in order; a field past the end is a WireError."""

    def __init__(self, data: bytes, position: int = 0):
        self.data, self.position = data, position

    def take(self, count: int) -> bytes:
        end = self.position + count
        if count < 0 or end > len(self.data):
            raise WireError("a reply ended in the middle of a field")
        value = self.data[self.position : end]
        self.position = end
        return value

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self.take(8))[0]

    def string(self) -> bytes:
        return self.take(self.u32())

    def attrs(self) -> Attrs:
        flags, attrs = self.u32(), Attrs()
        if flags & A_SIZE:
            attrs.size = self.u64()
        if flags & A_UIDGID:
            attrs.uid, attrs.gid = self.u32(), self.u32()
        if flags & A_PERMISSIONS:
            attrs.permissions = self.u32()
        if flags & A_ACMODTIME:
            attrs.atime, attrs.mtime = self.u32(), self.u32()
        if flags & A_EXTENDED:
            count = self.u32()
            if count > MAX_EXTENSIONS:
                raise WireError("too many extended attributes")
            for _ in range(2 * count):
                self.string()  # none is used
        return attrs


class Connection:
    """One SFTP session over a process's pipes. `start()` does the version exchange;
    `send()` pipelines a request; `close()` ends the process. After the connection breaks,
    every waiting and every later request fails with WireError."""

    def __init__(self, process, end_process):
        self.process = process
        self._end_process = end_process
        self._ids = itertools.count(1)
        self._waiting: dict[int, Optional[asyncio.Future]] = {}
        self._reader: Optional[asyncio.Task] = None
        self._stderr: Optional[asyncio.Task] = None
        self.stderr_tail = b""
        self.broken: Optional[str] = None
        self.extensions: dict[bytes, bytes] = {}
        self._draining = asyncio.Lock()  # one drain at a time (Python 3.9's may not share)

    # -- life -----------------------------------------------------------------------------------

    async def start(self, timeout: float) -> None:
        """The version exchange; WireError when the server does not answer with SFTP 3."""
        self._stderr = asyncio.ensure_future(self._drain_stderr())
        self._write(bytes([INIT]) + u32(VERSION))
        try:
            kind, body = await asyncio.wait_for(self._packet(), timeout)
        except asyncio.TimeoutError:
            raise WireError("no SFTP version answer") from None
        if kind != FXP_VERSION:
            raise WireError("the server did not answer with a version packet")
        reply = Reader(body)
        if reply.u32() != VERSION:
            raise WireError("the server does not speak SFTP version 3")
        while reply.position < len(body) and len(self.extensions) < MAX_EXTENSIONS:
            name = reply.string()
            self.extensions[name] = reply.string()
        self._reader = asyncio.ensure_future(self._read_replies())

    def alive(self) -> bool:
        return self.broken is None and self.process.returncode is None

    async def close(self, reason: str = "the connection was closed") -> None:
        """EOF to the server (it ends, then ssh), the process's end, every waiter failed."""
        self._break(reason)
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.process.wait(), 5)
        await self._end_process(self.process)
        if self._reader is not None:
            self._reader.cancel()
        if self._stderr is not None:  # ssh's last words (why it failed) reach EOF soon
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr, 2)

    # -- requests -------------------------------------------------------------------------------

    def send(self, kind: int, *fields: bytes) -> tuple[int, asyncio.Future]:
        """Sends one request now: (its id, the future of its reply (type, Reader))."""
        if not self.alive():
            raise WireError(self.broken or "the SSH process has ended")
        request = next(self._ids) & 0xFFFFFFFF
        future = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        self._write(bytes([kind]) + u32(request) + b"".join(fields))
        return request, future

    def forget(self, request: int) -> None:
        """Nobody waits for this reply any more: it is read and dropped when it comes."""
        future = self._waiting.get(request)
        if future is not None:
            self._waiting[request] = None
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning

    async def drain(self) -> None:
        """Waits while the pipe to ssh is full (flow control for pipelined writes)."""
        try:
            async with self._draining:
                await self.process.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._break(f"the SSH process stopped reading ({type(exc).__name__})")
            raise WireError(self.broken) from None

    def _write(self, body: bytes) -> None:
        try:
            self.process.stdin.write(u32(len(body)) + body)
        except (ConnectionError, RuntimeError, AttributeError):
            self._break("the SSH process stopped reading")
            raise WireError(self.broken) from None

    # -- replies --------------------------------------------------------------------------------

    async def _packet(self) -> tuple[int, bytes]:
        stdout = self.process.stdout
        try:
            length = struct.unpack(">I", await stdout.readexactly(4))[0]
            if length < 1 or length > MAX_PACKET:
                raise WireError(f"a reply of {length} bytes (the limit is {MAX_PACKET})")
            body = await stdout.readexactly(length)
        except asyncio.IncompleteReadError:
            raise WireError("the SSH connection ended") from None
        return body[0], body[1:]

    async def _read_replies(self) -> None:
        try:
            while True:
                kind, body = await self._packet()
                reply = Reader(body)
                request = reply.u32()
                if request not in self._waiting:
                    raise WireError("a reply to a request that was never sent")
                future = self._waiting.pop(request)
                if future is not None and not future.done():
                    future.set_result((kind, reply))
        except WireError as exc:
            self._break(str(exc))
        except (ConnectionError, OSError) as exc:
            self._break(f"the SSH connection failed ({type(exc).__name__})")
        if self.process.returncode is None:
            await self._end_process(self.process)

    async def _drain_stderr(self) -> None:
        stderr = self.process.stderr
        if stderr is None:
            return
        while True:
            chunk = await stderr.read(4096)
            if not chunk:
                return
            self.stderr_tail = (self.stderr_tail + chunk)[-4096:]

    def _break(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if future is not None and not future.done():
                future.set_exception(WireError(self.broken))
                future.exception()  # a forgotten waiter must not warn


def check(kind: int, reply: Reader) -> None:
    """A reply that must be a status: returns on OK, raises Status otherwise."""
    expect(kind, STATUS, reply)


def expect(kind: int, wanted: int, reply: Reader) -> None:
    """A reply of `wanted` type, else Status (a status other than OK, or OK where something
    else was wanted) or WireError (any other type)."""
    if kind == STATUS:
        code = reply.u32()
        if wanted == STATUS and code == OK:
            return
        raise Status(code)
    if kind != wanted:
        raise WireError(f"a reply of type {kind} where {wanted} was expected")


def handle_of(reply: Reader) -> bytes:
    """The handle an OPEN or OPENDIR answered with (the draft bounds its length)."""
    handle = reply.string()
    if not 0 < len(handle) <= MAX_HANDLE:
        raise WireError("a handle of a length the protocol does not allow")
    return handle


def valid_name(name: bytes) -> bool:
    """A name a listing may hold: one component, never '.', '..', '/' or NUL."""
    return one_component(name) and len(name) <= MAX_NAME


def child(directory: bytes, name: bytes) -> bytes:
    """The path of a listed (valid) name in a normalised directory."""
    return directory.rstrip(b"/") + b"/" + name
