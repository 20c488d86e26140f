"""A host's file names on the wire, and the rules of a request's path.

A container's names are bytes and need not be UTF-8; REST paths and JSON are text. The
mapping (`to_wire`, `from_wire`) is reversible for every byte string:

- valid UTF-8 is itself;
- each byte b of an invalid sequence (0x80-0xFF) is the private-use character
  chr(0xF700 + b), U+F780..U+F7FF;
- a real character U+F780..U+F7FF is escaped the same way, byte by byte of its UTF-8, so
  that what the wire shows as U+F780..U+F7FF is always a byte.

So `from_wire(to_wire(b)) == b` for every b. The other way round a client may send a name
in U+F780..U+F7FF to mean those bytes (that is how it renames a file with such a name).

A request's path is relative to the drive's root, `/` of the host: "opt/ml/x" or "" for the
root. It is normalised as text (".", empty segments, and ".." by dropping the segment
before), never leaving the root: ".." beyond it is a 400. No symlink is followed here; the
host's kernel does that, inside the host.
"""

from __future__ import annotations

from ..errors import SMDebugError
from .base import MAX_PATH, one_component

ESCAPE_BASE = 0xF700
ESCAPED = range(0xF780, 0xF800)  # the characters that stand for one byte each

# Surrogates from surrogateescape (U+DC80..U+DCFF) and real U+F780..U+F7FF, to our escapes.
_FROM_SURROGATE = {0xDC00 + b: ESCAPE_BASE + b for b in range(0x80, 0x100)}


def _escape_char(char: str) -> str:
    return "".join(chr(ESCAPE_BASE + b) for b in char.encode())


_ESCAPE_REAL = {c: _escape_char(chr(c)) for c in ESCAPED}
_TO_WIRE = {**_FROM_SURROGATE, **_ESCAPE_REAL}


def to_wire(name: bytes) -> str:
    """The text that stands for `name` (a name or a path) in REST and JSON."""
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        # Each byte of an invalid sequence becomes U+DC80..U+DCFF, then our escape.
        return name.decode("utf-8", "surrogateescape").translate(_TO_WIRE)
    if any("\uf780" <= char <= "\uf7ff" for char in text):
        return text.translate(_TO_WIRE)
    return text


def from_wire(text: str) -> bytes:
    """The bytes `text` stands for (ValueError for a lone surrogate, which is no name)."""
    if not any("\uf780" <= c <= "\uf7ff" for c in text):
        return text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a surrogate
    out = bytearray()
    for char in text:
        code = ord(char)
        if 0xF780 <= code <= 0xF7FF:
            out.append(code - ESCAPE_BASE)
        else:
            out += char.encode("utf-8")
    return bytes(out)


# -- a request's path ------------------------------------------------------------------------


def bad_path(message: str, hint: str = "") -> SMDebugError:
    return SMDebugError(
        400,
        "invalid_path",
        message,
        hint or 'Give a path relative to the host\'s "/", e.g. opt/ml/output/failure.',
    )


def request_path(text: str) -> bytes:
    """The absolute, normalised path (bytes) a request's path (relative to `/`) names."""
    if "\0" in text:
        raise bad_path("A path may not contain a NUL character.")
    segments: list[str] = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                raise bad_path(f"{text[:200]!r} goes above the host's root.")
            segments.pop()
            continue
        segments.append(segment)
    try:
        path = b"/" + b"/".join(from_wire(segment) for segment in segments)
    except UnicodeEncodeError:
        raise bad_path("The path is not valid Unicode (a lone surrogate).") from None
    if b"\0" in path:
        raise bad_path("A path may not contain a NUL byte.")
    if len(path) > MAX_PATH:
        raise bad_path(f"The path is longer than {MAX_PATH} bytes.", "Use a shorter path.")
    return path


def wire_path(path: bytes) -> str:
    """A host's absolute path as the drive shows it: relative to `/`, "" for the root."""
    return to_wire(path.strip(b"/"))


def join(directory: bytes, name: bytes) -> bytes:
    return directory.rstrip(b"/") + b"/" + name


def parent(path: bytes) -> bytes:
    head = path.rstrip(b"/").rsplit(b"/", 1)[0]
    return head or b"/"


def basename(path: bytes) -> bytes:
    return path.rstrip(b"/").rsplit(b"/", 1)[-1]


def safe_name(name: bytes) -> bool:
    """Whether a name a host listed can be one entry of its directory (a hostile host may
    send a slash, a NUL, "." or ".."): the backends refuse these; the REST layer checks
    again before it builds a path from one."""
    return one_component(name)
