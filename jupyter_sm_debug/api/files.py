"""Routes of a host's files, shaped like Jupyter's Contents API (/api/contents) on the host's
`/`, so the front end is a `Contents.IDrive` (docs/files.md):

    GET    .../files/{path}   a directory's model, or a file's (content=1: with its content);
                              download=1 streams the bytes as an attachment
    PUT    .../files/{path}   {type, format, content, chunk?}: write a file (chunked uploads
                              as jupyter_server's LargeFileManager takes them) or make a
                              directory
    PATCH  .../files/{path}   {path}: rename, never over an existing name
    DELETE .../files/{path}   a file, a link or an empty directory
    POST   .../files/{path}   {type?, ext?, copy_from?}: a new untitled file or directory in
                              the directory {path}, or a copy of copy_from there

Paths are relative to the host's `/` (files/names.py: bytes names on the wire). Every
request checks the job, host and transport like the other host routes (api/target.py);
FilesService pools the host's FileSystem.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from typing import AsyncIterator
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import SMDebugError
from ..files.base import Entry, FileError, FileSystem
from ..files.models import directory_model, file_model, model_of
from ..files.names import basename, join, parent, request_path, safe_name, to_wire
from .base import SMDebugHandler
from .hosts import transport_field
from .spec import Body, Field, Query
from .target import host_targets, require_reachable

UPLOAD_SUFFIX = b".sm-debug-upload"  # a chunked upload's temporary sibling: .~<name><this>
OLD_SUFFIX = b".sm-debug-old"  # the replaced file while an upload's last chunk lands
MAX_CHUNK_NUMBER = 1_000_000
MAX_UNTITLED = 1000
EXTENSION = re.compile(r"(\.[A-Za-z0-9_+-]{1,16}){0,2}")


def flag(name: str, default: int = 0) -> Field:
    return Field(
        "int", f'"{name}" must be 0 or 1.', f"Send {name}=1 or {name}=0, or leave it out.",
        code="invalid_query", minimum=0, maximum=1, default=default,
    )  # fmt: skip


def choice(name: str, values: tuple[str, ...], code: str, query: bool, **extra) -> Field:
    shown = " or ".join(values)
    return Field(
        "string", f'"{name}" must be {shown}.',
        f"Send {name}={values[0]}." if query else f'Send {{"{name}": "{values[0]}"}}.',
        code=code, pattern=re.compile("|".join(values)), doc={"enum": list(values)}, **extra,
    )  # fmt: skip


TRANSPORT = transport_field("files")
GET_QUERY = Query(
    {
        "transport": TRANSPORT,
        "content": flag("content", default=1),
        "format": choice("format", ("text", "base64"), "invalid_query", True),
        "type": choice("type", ("file", "directory"), "invalid_query", True),
        "hash": flag("hash"),
        "download": flag("download"),
    }
)
WRITE_QUERY = Query({"transport": TRANSPORT})


def _chunk_number(value: int) -> int:
    if value == 0 or value < -1:
        raise SMDebugError(
            400,
            "invalid_chunk",
            '"chunk" must be 1 for the first part of an upload, 2, 3... for the next and -1 '
            "for the last.",
            "Upload as JupyterLab does, or leave chunk out to write the whole file at once.",
        )
    return value


def _content_rules(body: dict) -> dict:
    if body["type"] == "directory":
        if "content" in body or "chunk" in body:
            raise SMDebugError(
                400, "invalid_body", "A directory has no content or chunk.",
                'Send {"type": "directory"} to make one.',
            )  # fmt: skip
        return body
    if not isinstance(body.get("content"), str):
        raise SMDebugError(
            400, "invalid_body", 'A file needs "content", a string.',
            'Send {"type": "file", "format": "text", "content": "..."}.',
        )  # fmt: skip
    return body


PUT_BODY = Body(
    {
        "type": choice("type", ("file", "directory"), "invalid_body", False, required=True),
        "format": choice("format", ("text", "base64"), "invalid_body", False),
        "content": Field(
            "string", '"content" must be a string: the text, or the bytes in base64.',
            'Send {"type": "file", "format": "text", "content": "..."}.',
        ),
        "chunk": Field(
            "int", '"chunk" must be 1, 2, 3... or -1 (the last).',
            "Leave chunk out to write the whole file at once.", code="invalid_chunk",
            minimum=-1, maximum=MAX_CHUNK_NUMBER, check=_chunk_number,
        ),
        "name": Field(
            "string", '"name" must be a string.',
            "It is ignored (JupyterLab's uploader sends it); the URL names the file.",
        ),
    },
    check=_content_rules,
)  # fmt: skip
PATCH_BODY = Body(
    {
        "path": Field(
            "string", '"path" must be the new path, relative to the host\'s "/".',
            'Send {"path": "opt/ml/code/new_name.py"}.', code="invalid_path", required=True,
        ),
    }
)  # fmt: skip
POST_BODY = Body(
    {
        "type": choice("type", ("file", "directory"), "invalid_body", False, default="file"),
        "ext": Field(
            "string", '"ext" must be a file extension such as ".txt" (or "").',
            'Send {"type": "file", "ext": ".py"}.', pattern=EXTENSION, default="",
        ),
        "copy_from": Field(
            "string", '"copy_from" must be the path of a file, relative to the host\'s "/".',
            'Send {"copy_from": "opt/ml/code/train.py"}.', code="invalid_path",
        ),
    }
)  # fmt: skip


def too_large(size: int, limit: int, host: str, what: str = "open") -> SMDebugError:
    return SMDebugError(
        413,
        "file_too_large",
        f"The file is {size:,} bytes; the most the browser may {what} at once is {limit:,}.",
        "Download it (download=1 streams any size), or upload it in chunks."
        if what == "save"
        else "Download it instead: download=1 streams any size.",
    )


def lost(host: str, error: BaseException) -> SMDebugError:
    return SMDebugError(
        502,
        "host_connection_lost",
        f"The connection to {host} ended during the file operation ({type(error).__name__}).",
        "Try again; if the job has stopped, its files are gone with it.",
    )


def decode_content(body: dict, host: str) -> bytes:
    content = body["content"]
    if body.get("format", "text") == "base64":
        try:
            return base64.b64decode(content.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            raise SMDebugError(
                400, "invalid_content", '"content" is not valid base64.',
                'Send the bytes in standard base64, or use "format": "text".',
            ) from None  # fmt: skip
    try:
        return content.encode("utf-8")
    except UnicodeEncodeError:
        raise SMDebugError(
            400, "invalid_content", '"content" is not valid Unicode (a lone surrogate).',
            'Send the bytes with "format": "base64".',
        ) from None  # fmt: skip


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class FilesHandler(SMDebugHandler):
    query_spec = GET_QUERY
    # What each method takes (tests/rest/test_openapi.py holds openapi.yaml to these).
    query_specs = {"get": GET_QUERY, "put": WRITE_QUERY, "patch": WRITE_QUERY,
                   "delete": WRITE_QUERY, "post": WRITE_QUERY}  # fmt: skip
    body_specs = {"put": PUT_BODY, "patch": PATCH_BODY, "post": POST_BODY}

    def file_path(self) -> bytes:
        return request_path(self.path_kwargs.get("path") or "")

    def not_root(self, path: bytes, what: str) -> bytes:
        if path == b"/":
            raise SMDebugError(
                400, "invalid_path", f"The host's root directory cannot be {what}.",
                "Name a path under it, e.g. tmp/x.",
            )  # fmt: skip
        return path

    async def on_host(self, transport: str, operation) -> None:
        """Run `operation(fs)` with the host's FileSystem. The job's description may come
        from the cache (a file browser makes many requests; each need not describe the
        job): when the host then fails, a fresh one says whether the job ended (409
        not_attachable with its hint). A connection that breaks under an operation is a
        502 that says so, never a traceback."""
        (target,), cached = await host_targets(self, transport, "files", [self.host], cached=True)
        try:
            async with self.state.files.use(target) as fs:
                await operation(fs)
        except (StreamClosedError, asyncio.CancelledError):
            raise
        except SMDebugError as error:
            if cached and error.status >= 500:
                await self.ended(transport)
            raise
        except (OSError, EOFError, asyncio.IncompleteReadError) as error:
            if cached:
                await self.ended(transport)
            raise lost(self.host, error) from error

    async def ended(self, transport: str) -> None:
        """409 not_attachable if the job, described now, cannot be reached any more."""
        require_reachable(await self.jobs.describe(self.job, fresh=True), transport)

    # -- GET ---------------------------------------------------------------------------------

    @web.authenticated
    @authorized
    async def get(self, job: str, host: str, path: str = "") -> None:
        query = self.query(GET_QUERY)
        where = self.file_path()

        async def operation(fs: FileSystem) -> None:
            entry = await fs.stat(where)
            wanted = query.get("type")
            if wanted and wanted != entry.kind:
                raise FileError(
                    400, f"not_a_{wanted}", f"{to_wire(where)} on {self.host} is a {entry.kind}.",
                    f"Open it as a {entry.kind}.",
                )  # fmt: skip
            if query["download"]:
                await self.download(fs, entry)
            elif entry.kind == "directory":
                await self.list_directory(fs, entry, bool(query["content"]))
            else:
                await self.open_file(fs, entry, query)

        await self.on_host(query["transport"], operation)

    async def list_directory(self, fs: FileSystem, entry: Entry, content: bool) -> None:
        if not content:
            self.answer(directory_model(entry, None))
            return
        entries, truncated = await fs.listdir(entry.path)
        # A backend refuses names that are no names; a hostile host gets no second chance.
        kept = [e for e in entries if safe_name(e.name) and e.path == join(entry.path, e.name)]
        self.answer(directory_model(entry, kept, truncated or len(kept) < len(entries)))

    async def open_file(self, fs: FileSystem, entry: Entry, query: dict) -> None:
        limit = self.config.files_max_open_bytes
        if not query["content"] and not query["hash"]:
            self.answer(file_model(entry, None, None, self.host))
            return
        if entry.size is not None and entry.size > limit:
            raise too_large(entry.size, limit, self.host)
        data = bytearray()
        async for chunk in fs.read(entry.path):
            data += chunk
            if len(data) > limit:  # it grew since stat
                raise too_large(len(data), limit, self.host)
        digest = hashlib.sha256(data).hexdigest() if query["hash"] else None
        content = bytes(data) if query["content"] else None  # hash=1 content=0: the hash only
        self.answer(file_model(entry, content, query.get("format"), self.host, digest))

    async def download(self, fs: FileSystem, entry: Entry) -> None:
        """The file's bytes as an attachment, chunk by chunk as the host sends them: the
        server holds one chunk at a time, whatever the size."""
        if entry.kind == "directory":
            raise FileError(
                400, "is_a_directory", f"{to_wire(entry.path)} on {self.host} is a directory.",
                "Download its files one by one, or pack them with tar in a terminal.",
            )  # fmt: skip
        name = basename(entry.path).decode("utf-8", "replace")
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox")
        self.set_header("Cache-Control", "no-store")
        chunks = fs.read(entry.path)
        sent = False
        try:
            async for chunk in chunks:
                self.write(chunk)
                await self.flush()
                sent = True
        except StreamClosedError:
            return  # the browser went away; the read ends with the generator
        except Exception as error:
            if not sent:
                raise  # nothing sent yet: the error's JSON answer
            # Headers and part of the file are out: ending the response normally would hand
            # the browser a short file that looks whole. Cut the connection instead.
            shown = to_wire(entry.path)[:200]
            reason = getattr(error, "code", type(error).__name__)
            self.log.info("sm-debug: download of %s from %s broke off: %s", shown, self.host,
                          reason)  # fmt: skip
            self.request.connection.stream.close()
            return
        finally:
            await chunks.aclose()
        self.finish()

    # -- PUT: write a file or make a directory ---------------------------------------------

    @web.authenticated
    @authorized
    async def put(self, job: str, host: str, path: str = "") -> None:
        query = self.query(WRITE_QUERY)
        limit = self.config.files_max_open_bytes
        if len(self.request.body) > 2 * limit + (1 << 20):
            raise too_large(len(self.request.body), limit, self.host, "save")
        body = self.body(PUT_BODY)
        where = self.not_root(self.file_path(), "written")
        data = b""
        if body["type"] == "file":
            data = decode_content(body, self.host)
            if len(data) > limit:
                raise too_large(len(data), limit, self.host, "save")

        async def operation(fs: FileSystem) -> None:
            if body["type"] == "directory":
                await self.make_directory(fs, where)
            elif body.get("chunk") is None:
                # Whether it existed (200 or 201) is asked before the write, never beside it:
                # over SSM each runs on its own stream and the host may finish the write's
                # rename first (a new file then answered 200, seen under load in CI).
                existed = await self.existing(fs, where)
                entry = await fs.write(where, once(data))
                self.answer(model_of(entry), 200 if existed else 201)
            else:
                await self.upload_chunk(fs, where, data, body["chunk"])

        await self.on_host(query["transport"], operation)

    async def existing(self, fs: FileSystem, path: bytes) -> Entry | None:
        """The entry at `path` (None when there is none); a directory cannot be written."""
        try:
            entry = await fs.stat(path)
        except FileError as error:
            if error.code == "file_not_found":
                return None
            raise
        if entry.kind == "directory":
            raise FileError(
                400, "is_a_directory", f"{to_wire(path)} on {self.host} is a directory.",
                "Save the file under another name.",
            )  # fmt: skip
        return entry

    async def make_directory(self, fs: FileSystem, path: bytes) -> None:
        try:
            entry = await fs.mkdir(path)
        except FileError as error:
            if error.code != "file_exists":
                raise
            entry = await fs.stat(path)
            if entry.kind != "directory":
                raise
            self.answer(model_of(entry), 200)  # as Jupyter: saving a directory that is there
            return
        self.answer(model_of(entry), 201)

    async def upload_chunk(self, fs: FileSystem, path: bytes, data: bytes, chunk: int) -> None:
        """Jupyter's chunked upload: chunk 1 starts a temporary sibling, 2..n add to it, -1
        adds the last part and puts it in the file's place (the old file stays whole until
        then)."""
        temporary = join(parent(path), b".~" + basename(path) + UPLOAD_SUFFIX)
        if chunk == 1:
            await self.existing(fs, path)
            entry = await fs.write(temporary, once(data))
        else:
            try:
                await fs.stat(temporary)
            except FileError as error:
                if error.code != "file_not_found":
                    raise
                raise SMDebugError(
                    409, "upload_interrupted",
                    f"The upload of {to_wire(path)} on {self.host} has no first part (chunk 1).",
                    "Upload the file again from the start.",
                ) from None  # fmt: skip
            entry = await fs.write(temporary, once(data), append=True)
        if chunk != -1:
            shown = Entry(basename(path), path, "file", entry.size, entry.mtime, entry.writable)
            self.answer(model_of(shown), 201 if chunk == 1 else 200)
            return
        existed = await self.existing(fs, path)
        entry = await self.replace(fs, temporary, path)
        self.answer(model_of(entry), 200 if existed else 201)

    async def replace(self, fs: FileSystem, new: bytes, path: bytes) -> Entry:
        """Rename `new` to `path`, over the file there if there is one: that file is moved
        aside first and back if the rename fails, so a failure never loses it."""
        try:
            return await fs.rename(new, path)
        except FileError as error:
            if error.code != "file_exists":
                raise
        old = join(parent(path), b".~" + basename(path) + OLD_SUFFIX)
        await self.remove_quietly(fs, old)
        await fs.rename(path, old)
        try:
            entry = await fs.rename(new, path)
        except BaseException:
            await fs.rename(old, path)
            raise
        await self.remove_quietly(fs, old)
        return entry

    async def remove_quietly(self, fs: FileSystem, path: bytes) -> None:
        try:
            await fs.remove(path)
        except FileError as error:
            if error.code != "file_not_found":
                raise

    # -- PATCH: rename -----------------------------------------------------------------------

    @web.authenticated
    @authorized
    async def patch(self, job: str, host: str, path: str = "") -> None:
        query = self.query(WRITE_QUERY)
        body = self.body(PATCH_BODY)
        old = self.not_root(self.file_path(), "renamed")
        new = self.not_root(request_path(body["path"]), "replaced")

        async def operation(fs: FileSystem) -> None:
            self.answer(model_of(await fs.rename(old, new)))

        await self.on_host(query["transport"], operation)

    # -- DELETE ------------------------------------------------------------------------------

    @web.authenticated
    @authorized
    async def delete(self, job: str, host: str, path: str = "") -> None:
        query = self.query(WRITE_QUERY)
        where = self.not_root(self.file_path(), "deleted")

        async def operation(fs: FileSystem) -> None:
            await fs.remove(where)
            self.set_status(204)
            self.finish()

        await self.on_host(query["transport"], operation)

    # -- POST: new untitled file or directory, or a copy ------------------------------------

    @web.authenticated
    @authorized
    async def post(self, job: str, host: str, path: str = "") -> None:
        query = self.query(WRITE_QUERY)
        body = self.body(POST_BODY)
        directory = self.file_path()
        source = request_path(body["copy_from"]) if "copy_from" in body else None

        async def operation(fs: FileSystem) -> None:
            if (await fs.stat(directory)).kind != "directory":
                raise FileError(
                    400, "not_a_directory", f"{to_wire(directory)} on {self.host} is a file.",
                    "POST to the directory the new file goes in.",
                )  # fmt: skip
            if source is not None:
                entry = await self.copy(fs, source, directory)
            else:
                entry = await self.untitled(fs, directory, body["type"], body["ext"])
            self.answer(model_of(entry), 201)

        await self.on_host(query["transport"], operation)

    async def untitled(self, fs: FileSystem, directory: bytes, kind: str, ext: str) -> Entry:
        """The first free one of "untitled.txt", "untitled1.txt"... or "Untitled Folder",
        "Untitled Folder 1"..., taken without ever replacing what is there (mkdir, or a
        rename that never overwrites)."""
        stem, insert = ("Untitled Folder", " ") if kind == "directory" else ("untitled", "")
        ext_bytes = ext.encode() if kind == "file" else b""
        temporary = join(directory, b".~untitled" + UPLOAD_SUFFIX)
        if kind == "file":
            await fs.write(temporary, once(b""))
        try:
            for n in range(MAX_UNTITLED):
                name = stem.encode() + (f"{insert}{n}".encode() if n else b"") + ext_bytes
                try:
                    if kind == "directory":
                        return await fs.mkdir(join(directory, name))
                    return await fs.rename(temporary, join(directory, name))
                except FileError as error:
                    if error.code != "file_exists":
                        raise
        finally:
            if kind == "file":
                await self.remove_quietly(fs, temporary)
        raise SMDebugError(
            409, "file_exists", f"{MAX_UNTITLED} untitled names are taken in this directory.",
            "Rename or delete some of them.",
        )  # fmt: skip

    async def copy(self, fs: FileSystem, source: bytes, directory: bytes) -> Entry:
        """A copy of the file `source` in `directory`, named as Jupyter names copies
        ("a-Copy1.txt", "a-Copy2.txt"...), streamed through the server chunk by chunk."""
        entry = await fs.stat(source)
        if entry.kind == "directory":
            raise FileError(
                400, "is_a_directory", f"{to_wire(source)} on {self.host} is a directory.",
                "Copy files one by one, or use cp -r in a terminal.",
            )  # fmt: skip
        name = basename(source)
        stem, dot, ext = name.rpartition(b".")
        if not stem:  # no extension, or a dot file
            stem, dot, ext = name, b"", b""
        temporary = join(directory, b".~" + name + UPLOAD_SUFFIX)
        await fs.write(temporary, fs.read(source))
        try:
            for n in range(1, MAX_UNTITLED):
                copy = stem + f"-Copy{n}".encode() + dot + ext
                try:
                    return await fs.rename(temporary, join(directory, copy))
                except FileError as error:
                    if error.code != "file_exists":
                        raise
        finally:
            await self.remove_quietly(fs, temporary)
        raise SMDebugError(
            409, "file_exists", f"{MAX_UNTITLED} copies of this name are taken here.",
            "Rename or delete some of them.",
        )  # fmt: skip
