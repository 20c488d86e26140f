"""A host's files over SSM: the files agent (agent.py) pushed into the host and reached by
streams of one port session (connect/pushed.py). The server's side of agent.py's protocol.

- Streams: a few authenticated streams, each carrying one operation at a time; a finished
  one waits in a small idle pool for the next. A long read or write holds its own stream,
  so a 100 MiB download never blocks a listing.
- Flow: smux v1 has no per-stream flow control (ssm/smux.py: one unread stream pauses the
  whole session), so a read asks for its chunks itself, at most READ_AHEAD of CHUNK bytes
  ahead of what its consumer took; nothing arrives that was not asked for.
- Everything the agent sends is untrusted and bounded: a reply's header and payload sizes,
  its id, its fields' types, a listing's count and each listed name (never "/", NUL, "."
  or ".."). A broken frame ends that stream with a 502, never a guess.
- Holds: the agent is started by a marked run (hold.tool_argv) and reached by a port
  session, which runs nothing under its SSM session worker; neither counts as a person's
  session, so the files of a held container never end (nor keep) its hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import posixpath
import struct
import time
from importlib import resources
from typing import Any, AsyncIterable, AsyncIterator

from ..errors import SMDebugError
from .base import CHUNK, MAX_ENTRIES, Entry, FileError, absolute, file_error, one_component

FRAME = struct.Struct(">II")
RECORD = struct.Struct(">BBHqd")  # agent.py's listing record
FLAG_WRITABLE, FLAG_SYMLINK = 1, 2
MAX_REPLY_HEADER = 64 * 1024
NAME_MAX = 255  # Linux's longest name; a longer listed name is refused
MAX_LISTING = MAX_ENTRIES * (RECORD.size + NAME_MAX)
READ_AHEAD = 7  # chunks asked for ahead of the consumer (7 x 256 KiB, under smux's 2 MiB pause)
MAX_STREAMS = 6  # streams open at once; more operations wait for one
MAX_IDLE = 3  # streams kept for the next operation
STREAM_MAX_AGE = 120.0  # an idle stream older than this is closed, not reused
TIMEOUT = 60.0  # for any one reply
SHUTDOWN_TIMEOUT = 10.0  # close() waits this long for the agent, then just ends the tunnel
# What EINVAL means when opening: the agent reads and appends to regular files only.
NOT_REGULAR = "it is not a regular file (a pipe, socket or device); use a terminal"
AGENT_IDLE_SECONDS = 900  # the agent ends itself after this long with no stream open


def agent_source() -> bytes:
    """agent.py's text, as pushed into a host."""
    return resources.files(__package__).joinpath("agent.py").read_bytes()


def opening_error(number: int, path: bytes, host: str) -> FileError:
    """file_error, where EINVAL says that only regular files are read or written."""
    return file_error(number, path, host, NOT_REGULAR if number == errno.EINVAL else "")


class AgentBroke(Exception):
    """The agent's answer broke the protocol, or the stream ended."""


def _wire(path: bytes) -> str:
    return path.decode("latin-1")


class _Stream:
    """One authenticated stream to the agent: frames out, bounded frames in."""

    def __init__(self, reader: asyncio.StreamReader, writer: Any):
        self.reader = reader
        self.writer = writer
        self.next_id = 1
        self.used = time.monotonic()
        self.closed = False

    def send(self, header: dict, payload: bytes = b"") -> int:
        request = self.next_id
        self.next_id += 1
        body = json.dumps({"id": request, **header}).encode()
        self.writer.write(FRAME.pack(len(body), len(payload)) + body + payload)
        return request

    async def reply(self, request: int, max_payload: int) -> tuple[dict, bytes]:
        try:
            head = await asyncio.wait_for(self.reader.readexactly(FRAME.size), TIMEOUT)
            header_size, payload_size = FRAME.unpack(head)
            if header_size > MAX_REPLY_HEADER or payload_size > max_payload:
                raise AgentBroke(f"a reply of {header_size} + {payload_size} bytes")
            body = await asyncio.wait_for(self.reader.readexactly(header_size), TIMEOUT)
            payload = await asyncio.wait_for(self.reader.readexactly(payload_size), TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError) as error:
            raise AgentBroke(f"the stream ended ({type(error).__name__})") from None
        try:
            header = json.loads(body)
        except ValueError:
            raise AgentBroke("a reply that is not JSON") from None
        if not isinstance(header, dict) or header.get("id") != request:
            raise AgentBroke("a reply to another request")
        number = header.get("errno")
        if number is not None and (type(number) is not int or not 0 <= number < 4096):
            raise AgentBroke("an errno that is not a number")
        if number is None and header.get("ok") is not True:
            raise AgentBroke("a reply that is neither ok nor an error")
        return header, payload

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()


def _entry(fields: Any, path: bytes) -> Entry:
    """An Entry from the agent's fields, each checked."""
    if not isinstance(fields, dict):
        raise AgentBroke("an entry that is not an object")
    kind, size, mtime = fields.get("kind"), fields.get("size"), fields.get("mtime")
    if kind not in ("file", "directory"):
        raise AgentBroke("an entry of an unknown kind")
    if size is not None and (type(size) is not int or size < 0):
        raise AgentBroke("an entry with a bad size")
    if type(mtime) not in (int, float):
        raise AgentBroke("an entry with a bad time")
    name = posixpath.basename(path) or b"/"
    return Entry(name, path, kind, size, float(mtime), fields.get("writable") is True,
                 fields.get("symlink") is True)  # fmt: skip


def listable(name: bytes) -> bool:
    """Whether a kernel could list this name in a directory."""
    return one_component(name) and len(name) <= NAME_MAX


def parse_listing(folder: bytes, count: Any, payload: bytes) -> list[Entry]:
    """The records of a listing; any name a kernel would never list refuses the whole
    listing (a hostile agent's "../x" never becomes a path)."""
    if type(count) is not int or not 0 <= count <= MAX_ENTRIES:
        raise AgentBroke("a listing with a bad count")
    entries = []
    seen = set()
    pos = 0
    for _ in range(count):
        if len(payload) - pos < RECORD.size:
            raise AgentBroke("a cut listing")
        kind, flags, length, size, mtime = RECORD.unpack_from(payload, pos)
        pos += RECORD.size
        name = payload[pos : pos + length]
        pos += length
        if len(name) != length or kind > 1:
            raise AgentBroke("a cut listing")
        if not listable(name) or name in seen:
            raise AgentBroke(f"a listed name that cannot be one: {name[:40]!r}")
        seen.add(name)
        directory = kind == 1
        entries.append(Entry(
            name, posixpath.join(folder, name), "directory" if directory else "file",
            None if directory or size < 0 else size, mtime, bool(flags & FLAG_WRITABLE),
            bool(flags & FLAG_SYMLINK),
        ))  # fmt: skip
    if pos != len(payload):
        raise AgentBroke("bytes after the listing")
    return entries


class AgentFS:
    """`FileSystem` (files/base.py) over a pushed files agent. `pushed` is a
    connect.pushed.Pushed (or anything with its open, close, alive and pid)."""

    def __init__(self, pushed: Any, host: str):
        self.pushed = pushed
        self.host = host
        self.pid: int = getattr(pushed, "pid", 0)
        self._idle: list[_Stream] = []
        self._slots = asyncio.Semaphore(MAX_STREAMS)
        self._closed = False
        self._lost = ""

    def alive(self) -> bool:
        return not self._closed and not self._lost and self.pushed.alive()

    # -- streams ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _stream(self) -> AsyncIterator[_Stream]:
        """A stream for one operation; back to the pool only if the operation ended on a
        frame boundary (a stream left mid-reply is closed)."""
        if self._closed:
            raise SMDebugError(409, "files_closed", f"The file session to {self.host} is "
                               "closed.", "Open the host's files again.")  # fmt: skip
        async with self._slots:
            stream = None
            while self._idle and stream is None:
                candidate = self._idle.pop()
                fresh = time.monotonic() - candidate.used < STREAM_MAX_AGE
                if fresh and not candidate.reader.at_eof() and not candidate.closed:
                    stream = candidate
                else:
                    candidate.close()
            if stream is None:
                try:
                    stream = _Stream(*await self.pushed.open(timeout=TIMEOUT))
                except (OSError, asyncio.TimeoutError) as error:
                    raise self._lost_error(f"no stream ({type(error).__name__})") from None
            try:
                yield stream
            except AgentBroke as error:
                stream.close()
                raise self._lost_error(str(error)) from None
            except FileError:
                self._release(stream)  # an errno reply ends on a frame boundary
                raise
            except BaseException:
                stream.close()
                raise
            else:
                self._release(stream)

    def _release(self, stream: _Stream) -> None:
        if not stream.closed and not self._closed and len(self._idle) < MAX_IDLE:
            stream.used = time.monotonic()
            self._idle.append(stream)
        else:
            stream.close()

    def _lost_error(self, why: str) -> SMDebugError:
        if not self.pushed.alive():
            self._lost = why
            return SMDebugError(
                502, "files_session_lost", f"The file session to {self.host} ended.",
                "The host may have stopped; open its files again.",
            )  # fmt: skip
        return SMDebugError(
            502, "files_agent_failed", f"The files agent in {self.host} answered wrongly: {why}",
            "Try again; the next request opens a new stream.",
        )  # fmt: skip

    async def _call(
        self, op: str, shown: bytes, parse: Any = None, max_payload: int = 0, **fields: Any
    ) -> Any:
        """One request and its reply, read by `parse(header, payload)` while the stream is
        held (a reply it refuses closes the stream); an errno reply raises its FileError
        for `shown`."""
        async with self._stream() as stream:
            request = stream.send({"op": op, **fields})
            await stream.writer.drain()
            header, data = await stream.reply(request, max_payload)
            if header.get("errno") is not None:
                raise file_error(header["errno"], shown, self.host)
            return parse(header, data) if parse is not None else None

    # -- FileSystem --------------------------------------------------------------------------

    async def stat(self, path: bytes) -> Entry:
        path = absolute(path)
        return await self._call("stat", path, self._entry_of(path), path=_wire(path))

    async def listdir(self, path: bytes) -> tuple[list[Entry], bool]:
        path = absolute(path)

        def parse(header: dict, data: bytes) -> tuple[list[Entry], bool]:
            return parse_listing(path, header.get("count"), data), header.get("truncated") is True

        return await self._call(
            "listdir", path, parse, MAX_LISTING, path=_wire(path), max=MAX_ENTRIES
        )

    async def read(self, path: bytes, offset: int = 0) -> AsyncIterator[bytes]:
        path = absolute(path)
        async with self._stream() as stream:
            request = stream.send({"op": "open", "path": _wire(path)})
            await stream.writer.drain()
            header, _ = await stream.reply(request, 0)
            if header.get("errno") is not None:
                raise opening_error(header["errno"], path, self.host)
            handle = header.get("handle")
            if type(handle) is not int:
                raise AgentBroke("a handle that is not a number")
            asked: list[int] = []  # request ids, oldest first
            position = max(0, int(offset))
            ended = False
            try:
                while not ended or asked:
                    while not ended and len(asked) < READ_AHEAD:
                        asked.append(stream.send(
                            {"op": "pread", "handle": handle, "offset": position, "size": CHUNK}
                        ))  # fmt: skip
                        position += CHUNK
                    await stream.writer.drain()
                    header, data = await stream.reply(asked.pop(0), CHUNK)
                    if header.get("errno") is not None:
                        raise file_error(header["errno"], path, self.host)
                    if ended:
                        continue  # what was asked past the end answers empty
                    if len(data) < CHUNK:
                        ended = True  # the file's end (or it shrank): ask no more
                    if data:
                        yield data
                request = stream.send({"op": "close", "handle": handle})
                await stream.writer.drain()
                await stream.reply(request, 0)
            except BaseException:
                # Left mid-stream (the consumer stopped, an error): replies may still come.
                stream.close()
                raise

    async def write(self, path: bytes, chunks: AsyncIterable[bytes], append: bool = False) -> Entry:
        path = absolute(path)
        async with self._stream() as stream:
            request = stream.send({"op": "wopen", "path": _wire(path), "append": bool(append)})
            await stream.writer.drain()
            header, _ = await stream.reply(request, 0)
            if header.get("errno") is not None:
                raise opening_error(header["errno"], path, self.host)
            handle = header.get("handle")
            if type(handle) is not int:
                raise AgentBroke("a handle that is not a number")
            try:
                async for chunk in chunks:
                    for start in range(0, len(chunk), CHUNK):
                        stream.send({"op": "data", "handle": handle}, chunk[start : start + CHUNK])
                        await stream.writer.drain()
            except BaseException:
                # The original stays whole: the temporary file goes (the agent also drops
                # it if this stream ends first).
                with contextlib.suppress(Exception):
                    request = stream.send({"op": "abort", "handle": handle})
                    await stream.writer.drain()
                    await asyncio.wait_for(stream.reply(request, 0), 10)
                stream.close()
                raise
            request = stream.send({"op": "commit", "handle": handle, "path": _wire(path)})
            await stream.writer.drain()
            header, _ = await stream.reply(request, 0)
            if header.get("errno") is not None:
                raise file_error(header["errno"], path, self.host)
            return _entry(header.get("entry"), path)

    async def mkdir(self, path: bytes) -> Entry:
        path = absolute(path)
        return await self._call("mkdir", path, self._entry_of(path), path=_wire(path))

    async def rename(self, old: bytes, new: bytes) -> Entry:
        old, new = absolute(old), absolute(new)
        try:
            return await self._call(
                "rename", old, self._entry_of(new), old=_wire(old), new=_wire(new)
            )
        except SMDebugError as error:
            if error.code == "file_exists":
                raise file_error(errno.EEXIST, new, self.host) from None  # names the new path
            raise

    async def remove(self, path: bytes) -> None:
        path = absolute(path)
        await self._call("remove", path, path=_wire(path))

    async def close(self) -> None:
        """Ask the agent to end (it removes any unfinished write's temporary file), then
        close every stream and the tunnel. The agent's idle rule ends it anyway if the
        shutdown cannot reach it."""
        if self._closed:
            return
        if self.alive():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._shutdown(), SHUTDOWN_TIMEOUT)
        self._closed = True
        for stream in self._idle:
            stream.close()
        self._idle.clear()
        await self.pushed.close()

    async def _shutdown(self) -> None:
        async with self._stream() as stream:
            request = stream.send({"op": "shutdown"})
            await stream.writer.drain()
            await stream.reply(request, 0)

    @staticmethod
    def _entry_of(path: bytes) -> Any:
        return lambda header, data: _entry(header.get("entry"), path)


__all__ = ["AgentFS", "agent_source", "listable", "opening_error", "parse_listing"]
