"""A host's entries as Jupyter Contents models, the shape jupyter_server's
FileContentsManager answers (services/contents/filemanager.py: `_base_model`, `_dir_model`,
`_file_model`), so the front end can be a `Contents.IDrive`:

    {name, path, type, format, content, created, last_modified, size, writable, mimetype,
     hash, hash_algorithm}

plus `symlink` (the entry is a symbolic link; type is what it points to) and, on a
directory with content, `truncated` (the listing stopped at MAX_ENTRIES). Times are ISO 8601
UTC with "Z", as jupyter_server writes them; a host gives no creation time, so `created` is
the modification time. A `.ipynb` is a file like any other (type "file", format "text"):
this drive has no notebook type, and a notebook from a container is data here.
"""

from __future__ import annotations

import base64
import mimetypes
from datetime import datetime, timezone

from ..errors import SMDebugError
from .base import Entry
from .names import to_wire, wire_path

EPOCH = "1970-01-01T00:00:00Z"


def iso_time(seconds: float) -> str:
    """ISO 8601 UTC with "Z" (the epoch for a time a host made up that cannot be one)."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return EPOCH


def guess_mimetype(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0]


def base_model(entry: Entry) -> dict:
    """The model without content, of a file or a directory."""
    name = to_wire(entry.name) if entry.path != b"/" else ""
    time = iso_time(entry.mtime)
    directory = entry.kind == "directory"
    return {
        "name": name,
        "path": wire_path(entry.path),
        "type": "directory" if directory else "file",
        "format": None,
        "content": None,
        "created": time,
        "last_modified": time,
        "size": None if directory else entry.size,
        "writable": bool(entry.writable),
        "mimetype": None if directory else guess_mimetype(name),
        "hash": None,
        "hash_algorithm": None,
        "symlink": bool(entry.symlink),
    }


def directory_model(entry: Entry, entries: list[Entry] | None, truncated: bool = False) -> dict:
    """A directory's model; with `entries` its listing (format "json"), directories first
    then by name, as a file browser shows them."""
    model = base_model(entry)
    if entries is not None:
        children = sorted(entries, key=lambda e: (e.kind != "directory", e.name))
        model.update(
            content=[base_model(child) for child in children],
            format="json",
            truncated=truncated,
        )
    return model


def is_text(data: bytes) -> bool:
    """Whether a file's bytes are shown as text: UTF-8 without a NUL."""
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def not_text(entry: Entry, host: str) -> SMDebugError:
    return SMDebugError(
        400,
        "not_text",
        f"{to_wire(entry.path)} on {host} is not UTF-8 text.",
        "Open it with format=base64, or download it.",
    )


def file_model(
    entry: Entry, data: bytes | None, fmt: str | None, host: str, digest: str | None = None
) -> dict:
    """A file's model; with `data` its content as text or base64 (`fmt`, or text when the
    bytes are text and base64 when not). 400 not_text when text is asked of binary bytes."""
    model = base_model(entry)
    if data is not None:
        text = is_text(data)
        if fmt == "text" and not text:
            raise not_text(entry, host)
        fmt = fmt or ("text" if text else "base64")
        content = data.decode("utf-8") if fmt == "text" else base64.b64encode(data).decode()
        model.update(
            content=content,
            format=fmt,
            size=len(data),
            mimetype=model["mimetype"]
            or ("text/plain" if fmt == "text" else "application/octet-stream"),
        )
    if digest is not None:
        model.update(hash=digest, hash_algorithm="sha256")
    return model


def model_of(entry: Entry) -> dict:
    """The model without content of whatever `entry` is (what a write answers)."""
    return base_model(entry)
