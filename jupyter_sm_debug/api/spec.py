"""Declarative specs of request bodies and query strings: what each field is, its default and
bounds, and the code, message and hint of the 400 when it is not.

One policy for every route: a field that is present must be valid (null or "" is not "the
default"), a body must be a JSON object, and a key or query parameter the route does not
take is refused with a 400 that names it. Booleans are parsed here, once.

Why not validate against openapi.yaml at run time: the document is for clients and
schemathesis; its schemas cannot say which error code and hint a field answers with, nor
the rules that span fields (exactly one of argv and shell; host_key only with address) or
defaults that come from the server's configuration. The specs here are the checks, and
tests/test_openapi.py holds the document to them (same fields, types and bounds, no
additional properties), so the two cannot drift.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import SMDebugError

MISSING: Any = object()
BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class Field:
    """One body field or query parameter.

    kind: "bool", "int", "number", "string", "strings" (a list of strings) or "any"; `check` (a
    function of the value that returns it, or raises its own SMDebugError) runs after the
    type and bounds. `default` may be a function of the server's config.
    """

    kind: str
    message: str = ""  # what the value must be, e.g. '"enabled" must be true or false.'
    hint: str = ""
    code: str = "invalid_body"
    required: bool = False
    default: Any = MISSING
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: bool = False
    pattern: Optional[re.Pattern] = None  # a string (or each string of a list) must match
    min_items: int = 0
    max_items: Optional[int] = None
    check: Optional[Callable[[Any], Any]] = None
    blank_is_default: bool = False  # query only: "name=" is the default (logs' paging)
    doc: dict = field(default_factory=dict)  # openapi.yaml extras, e.g. {"enum": [...]}

    def refuse(self, name: str) -> SMDebugError:
        message = self.message or f'"{name}" is not valid.'
        return SMDebugError(400, self.code, message, self.hint)

    def parse(self, name: str, value: Any) -> Any:
        """The value, checked (a JSON value)."""
        if not self._typed(value) or not self._bounded(value):
            raise self.refuse(name)
        return self.check(value) if self.check else value

    def parse_text(self, name: str, text: str) -> Any:
        """A query parameter's text as this field's kind."""
        if self.kind == "bool":
            if text not in BOOLEANS:
                raise self.refuse(name)
            return self.parse(name, BOOLEANS[text])
        if self.kind == "int":
            # ASCII digits only: str.isdigit() accepts "²", which int() refuses, and a
            # 5000-digit number exceeds int()'s limit; both were 500s.
            digits = len(str(int(self.maximum))) if self.maximum is not None else 18
            if not re.fullmatch(f"[0-9]{{1,{digits}}}", text):
                raise self.refuse(name)
            return self.parse(name, int(text))
        return self.parse(name, text)

    def _typed(self, value: Any) -> bool:
        if self.kind == "any":  # the check decides
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind == "string":
            return isinstance(value, str)
        if self.kind == "strings":
            return isinstance(value, list) and all(isinstance(item, str) for item in value)
        raise ValueError(f"unknown field kind {self.kind!r}")

    def _bounded(self, value: Any) -> bool:
        if self.kind in ("int", "number"):
            if value != value:  # NaN
                return False
            if self.minimum is not None and (
                value <= self.minimum if self.exclusive_minimum else value < self.minimum
            ):
                return False
            return self.maximum is None or value <= self.maximum
        if self.kind == "string":
            return self.pattern is None or bool(self.pattern.fullmatch(value))
        if self.kind == "strings":
            if len(value) < self.min_items or (
                self.max_items is not None and len(value) > self.max_items
            ):
                return False
            return self.pattern is None or all(self.pattern.fullmatch(v) for v in value)
        return True


def parse_fields(fields: dict[str, Field], given: dict, parse, config: Any) -> dict:
    """Each field's value: parsed when given, its default when not (a required one: 400)."""
    values: dict = {}
    for name, spec in fields.items():
        if name in given:
            values[name] = parse(spec, name, given[name])
        elif spec.required:
            raise spec.refuse(name)
        else:
            default = spec.default(config) if callable(spec.default) else spec.default
            if default is not MISSING:
                values[name] = default
    return values


def refuse_unknown(given, fields: dict, what: str = "field") -> None:
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise SMDebugError(
            400,
            "invalid_body" if what == "field" else "invalid_query",
            f"Unknown {what}(s): {', '.join(map(repr, unknown))}"[:240] + ".",
            f"Send only: {', '.join(fields) or 'nothing'}.",
        )


@dataclass(frozen=True)
class Body:
    """A JSON object body: its fields, and an optional check of the whole (rules that span
    fields), which gets the parsed dict and returns it."""

    fields: dict[str, Field]
    check: Optional[Callable[[dict], dict]] = None

    def parse(self, raw: bytes, config: Any = None) -> dict:
        body = json_object(raw)
        refuse_unknown(body, self.fields)
        values = parse_fields(self.fields, body, Field.parse, config)
        return self.check(values) if self.check else values


NO_BODY = Body({})


def json_object(raw: bytes) -> dict:
    if not raw:
        # Every body is required (openapi.yaml); {} asks for the defaults.
        raise SMDebugError(
            400,
            "invalid_body",
            "The request has no body.",
            "Send a JSON object; {} takes the defaults.",
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a deeply nested body ("[[[[...") is bad input, not a crash.
        body = None
    if not isinstance(body, dict):
        raise SMDebugError(
            400,
            "invalid_body",
            "The request body is not a JSON object.",
            'Send JSON such as {"enabled": true}.',
        )
    return body


@dataclass(frozen=True)
class Query:
    """A route's query parameters. jupyter_server's own token/_xsrf are not ours to refuse,
    nor the bare timestamp JupyterLab's ServerConnection appends to GETs to defeat caches."""

    fields: dict[str, Field]

    def parse(self, arguments: dict[str, list[bytes]], config: Any = None) -> dict:
        ours = {
            name: values
            for name, values in arguments.items()
            if name not in ("token", "_xsrf") and not (name.isascii() and name.isdigit())
        }
        unknown = set(ours) - set(self.fields)
        if unknown:
            raise SMDebugError(
                400,
                "invalid_query",
                f"Unknown query parameter(s): {', '.join(sorted(map(repr, unknown)))}."[:240],
                f"Use only {', '.join(self.fields) or 'none'}.",
            )
        given = {}
        for name, spec in self.fields.items():
            text = one_text(name, ours[name]) if name in ours else None
            if text is not None and not (text == "" and spec.blank_is_default):
                given[name] = text
        return parse_fields(self.fields, given, Field.parse_text, config)


NO_QUERY = Query({})


def one_text(name: str, values: list[bytes]) -> str:
    if len(values) > 1:
        raise SMDebugError(
            400, "invalid_query", f"{name} is given more than once.", f"Send {name} once."
        )
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise SMDebugError(
            400, "invalid_query", f"{name} is not UTF-8.", f"Send {name} as UTF-8."
        ) from None
