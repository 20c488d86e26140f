"""What a kernel in a container may show in the notebook: its outputs are untrusted.

No script from a container ever reaches the Jupyter origin: only the mimetypes in ALLOWED
pass (``application/javascript``, ``text/javascript``, widget and vendor types are dropped),
HTML is rebuilt from an allowlist of tags and attributes (no ``<script>``, ``<style>``,
``<iframe>``, ``<object>``, ``<embed>``, ``<svg>``, no event-handler attribute, no URL but
http(s) or an inline image), SVG is dropped (it can carry scripts), and
every message is bounded (MAX_MESSAGE). JupyterLab sanitises untrusted HTML too; this does
not rely on it.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from html.parser import HTMLParser
from typing import Any

MAX_MESSAGE = 8 * 1024 * 1024  # bytes of one output message's data
MAX_TRACEBACK_LINES = 200
MAX_LINE = 16 * 1024
MAX_NAME = 1024


def words(text: str) -> frozenset:
    return frozenset(text.split())


TAGS = words(
    "a abbr b blockquote br caption center code col colgroup dd del details div dl dt em "
    "figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp "
    "small span strong sub summary sup table tbody td tfoot th thead tr tt u ul var"
)
VOID = frozenset({"br", "hr", "img", "col"})
# Elements dropped with everything inside them.
DROPPED = words(
    "script style iframe frame frameset object embed applet svg math template noscript "
    "textarea select option button form input link meta base title head audio video "
    "source track canvas portal"
)
ATTRIBUTES = words(
    "align alt border cellpadding cellspacing class colspan color dir height href lang "
    "open rowspan size src start style title type valign width"
)
SAFE_SCHEME = re.compile(r"(?:https?://|data:image/(?:png|jpeg|gif);base64,)", re.I)
UNSAFE_STYLE = re.compile(r"url|expression|javascript|@import|behavior|binding|\\|/\*", re.I)
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
ALLOWED = frozenset(
    {"text/plain", "text/html", "text/markdown", "text/latex", "application/json", *IMAGE_TYPES}
)


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping: list[str] = []  # the dropped elements we are inside of

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Any]]) -> None:
        if self.skipping:
            if tag == self.skipping[-1] or tag in DROPPED and tag not in VOID:
                self.skipping.append(tag)
            return
        if tag in DROPPED:
            if tag not in ("link", "meta", "base", "input", "source", "track"):
                self.skipping.append(tag)
            return
        if tag not in TAGS:
            return
        kept = []
        for name, value in attrs:
            name = name.lower()
            value = "" if value is None else str(value)
            if name not in ATTRIBUTES:
                continue
            if name in ("href", "src") and not safe_url(value):
                continue
            if name == "style" and UNSAFE_STYLE.search(value):
                continue
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        if tag == "a":
            kept.append(' rel="noopener noreferrer" target="_blank"')
        self.out.append(f"<{tag}{''.join(kept)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, Any]]) -> None:
        self.handle_starttag(tag, attrs)
        if not self.skipping and tag in TAGS and tag not in VOID:
            self.out.append(f"</{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in TAGS and tag not in VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False))


def safe_url(value: str) -> bool:
    """http(s) or an inline image. Never a relative URL: it would reach the Jupyter
    server itself, with the user's cookies (a GET /logout, say)."""
    url = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(value))
    return bool(SAFE_SCHEME.match(url))


def clean_html(text: str) -> str:
    """HTML rebuilt from the allowlist: what is not known to be inert is left out."""
    cleaner = _Cleaner()
    cleaner.feed(text)
    cleaner.close()
    return "".join(cleaner.out)


def _valid_image(value: Any) -> bool:
    if not isinstance(value, str) or not BASE64.fullmatch(value):
        return False
    try:
        base64.b64decode(value[:64].strip() + "=" * 4, validate=False)
    except (binascii.Error, ValueError):
        return False
    return True


def clean_bundle(data: Any) -> dict:
    """A mime bundle safe to show: allowed types only, HTML rebuilt, within MAX_MESSAGE."""
    if not isinstance(data, dict):
        return {"text/plain": "[sm-debug: an output that was not a mime bundle was dropped]"}
    kept: dict[str, Any] = {}
    dropped = []
    for mime, value in data.items():
        mime = str(mime)[:MAX_NAME]
        if mime not in ALLOWED:
            dropped.append(mime)
        elif mime == "text/html" and isinstance(value, str):
            kept[mime] = clean_html(value)
        elif mime == "text/markdown" and isinstance(value, str):
            if "<" in value or "javascript:" in value.lower():
                dropped.append(mime)  # raw HTML in markdown: its text/plain stays
            else:
                kept[mime] = value
        elif mime == "text/latex" and isinstance(value, str):
            if re.search(r"\\(?:href|url|html|class|style|cssId|data)", value):
                dropped.append(mime)
            else:
                kept[mime] = value
        elif mime in IMAGE_TYPES:
            if _valid_image(value):
                kept[mime] = "".join(value.split())
            else:
                dropped.append(mime)
        elif (
            mime == "application/json"
            and isinstance(value, (dict, list))
            or mime == "text/plain"
            and isinstance(value, str)
        ):
            kept[mime] = value
        else:
            dropped.append(mime)
    if "text/plain" not in kept:
        note = "[sm-debug: no plain-text form"
        if dropped:
            note += "; dropped " + ", ".join(sorted(set(dropped)))[:500]
            note += " (a container's scripts never run in JupyterLab)"
        kept["text/plain"] = note + "]"
    return bound_bundle(kept)


def bound_bundle(data: dict) -> dict:
    """Within MAX_MESSAGE: the richest forms go first when the whole is too big."""
    size = len(json.dumps(data))
    if size <= MAX_MESSAGE:
        return data
    for mime in ("image/gif", "image/jpeg", "image/png", "text/html", "application/json",
                 "text/latex", "text/markdown"):  # fmt: skip
        if mime in data:
            size -= len(json.dumps(data.pop(mime)))
            if size <= MAX_MESSAGE:
                break
    plain = data.get("text/plain", "")
    if len(plain.encode()) > MAX_MESSAGE // 2:
        data["text/plain"] = cut(plain, MAX_MESSAGE // 2)
    data["text/plain"] = data.get("text/plain", "") + (
        f"\n[sm-debug: output larger than {MAX_MESSAGE >> 20} MiB shortened]"
    )
    return data


def cut(text: Any, limit: int) -> str:
    """A str of at most `limit` bytes of UTF-8."""
    text = text if isinstance(text, str) else str(text)
    if len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore") + "\n[... cut]"


def clean_error(message: dict) -> dict:
    lines = message.get("traceback")
    lines = lines if isinstance(lines, list) else []
    return {
        "ename": cut(message.get("ename", "Error"), MAX_NAME),
        "evalue": cut(message.get("evalue", ""), MAX_LINE),
        "traceback": [cut(line, MAX_LINE) for line in lines[-MAX_TRACEBACK_LINES:]],
    }
