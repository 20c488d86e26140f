"""Server-side request validation against botocore's own service models.

botocore's ``ParamValidator`` checks what a client checks (types, required members, minimums,
unknown members). AWS checks more on the server: maximums, enums and patterns, which a boto3
client lets through. Both are reported like AWS does::

    1 validation error detected: Value '1000' at 'maxResults' failed to satisfy constraint:
    Member must have value less than or equal to 100
"""

from __future__ import annotations

import re
import threading
from functools import cache
from typing import Any

from .errors import validation_error

_load_lock = threading.Lock()


@cache
def service_model(service: str):
    import botocore.session

    # The loader is not thread-safe and loading is slow: once per service and process.
    with _load_lock:
        return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str):
    model = service_model(service)
    if operation not in model.operation_names:
        return None
    return model.operation_model(operation)


@cache
def _compiled(pattern: str):
    # AWS patterns are Java regexes matched against the whole value. The few that use
    # \p{...} classes (tag keys and values) have no `re` equivalent: those are skipped.
    if "\\p{" in pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _aws_path(botocore_name: str) -> str:
    """``ResourceConfig.InstanceGroups[0].InstanceType`` -> AWS's
    ``resourceConfig.instanceGroups.1.member.instanceType``."""
    parts = []
    for piece in botocore_name.strip(".").split("."):
        match = re.fullmatch(r"([^\[]*)((?:\[\d+\])*)", piece)
        if not match:
            parts.append(piece)
            continue
        head, indexes = match.groups()
        if head:
            parts.append(_camel(head))
        for index in re.findall(r"\[(\d+)\]", indexes):
            parts += [str(int(index) + 1), "member"]
    return ".".join(parts)


def _value(value: Any) -> str:
    if value is None:
        return "null"
    text = str(value)
    if len(text) > 100:
        text = text[:97] + "..."
    return f"'{text}'"


def _from_botocore(error: tuple) -> str:
    kind, name, extra = error
    if kind == "missing required field":
        path = _aws_path(f"{name}.{extra['required_name']}")
        return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"
    path = _aws_path(name) or "input"
    if kind == "invalid length":
        return (
            f"Value {_value(extra['param'])} at '{path}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {extra['min_allowed']}"
        )
    if kind == "invalid range":
        return (
            f"Value {_value(extra['param'])} at '{path}' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {extra['min_allowed']}"
        )
    if kind == "unknown field":
        where = "" if path == "input" else f" at '{path}'"
        return f"Unknown parameter '{extra['unknown_param']}'{where}"
    if kind == "invalid type":
        return f"Value {_value(extra.get('param'))} at '{path}' is not of the expected type"
    return f"Invalid value at '{path}' ({kind})"


def _server_side(value: Any, shape, path: str, out: list[str]) -> None:
    """Maximums, enums and patterns: what botocore leaves to the server."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure" and isinstance(value, dict):
        for key, member in shape.members.items():
            if key in value and value[key] is not None:
                _server_side(value[key], member, f"{path}.{_camel(key)}".lstrip("."), out)
        return
    if kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            out.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {meta['max']}"
            )
        for index, item in enumerate(value):
            _server_side(item, shape.member, f"{path}.{index + 1}.member", out)
        return
    if kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            out.append(
                f"Value at '{path}' failed to satisfy constraint: "
                f"Map must have at most {meta['max']} entries"
            )
        for key, item in value.items():
            _server_side(key, shape.key, f"{path}.key", out)
            _server_side(item, shape.value, f"{path}.{key}", out)
        return
    if kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            out.append(
                f"Value {_value(value)} at '{path}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {meta['max']}"
            )
        if shape.enum and value not in shape.enum:
            out.append(
                f"Value {_value(value)} at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            out.append(
                f"Value {_value(value)} at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        return
    number = isinstance(value, int) and not isinstance(value, bool)
    if kind in ("integer", "long") and number and "max" in meta and value > meta["max"]:
        out.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {meta['max']}"
        )


def validate(service: str, operation: str, params: Any) -> None:
    """Raise ValidationException (AWS wording) if ``params`` does not fit the input shape."""
    from botocore.validate import ParamValidator

    op = operation_model(service, operation)
    if op is None or op.input_shape is None:
        return
    if not isinstance(params, dict):
        raise validation_error("The request body must be a JSON object.")
    report = ParamValidator().validate(params, op.input_shape)
    errors = getattr(report, "_errors", None)
    if report.has_errors():
        if isinstance(errors, list):
            messages = [_from_botocore(error) for error in errors]
        else:  # botocore changed its internals: its own wording is still right
            messages = [report.generate_report()]
    else:
        messages = []
        _server_side(params, op.input_shape, "", messages)
    if messages:
        count = len(messages)
        noun = "error" if count == 1 else "errors"
        raise validation_error(f"{count} validation {noun} detected: " + "; ".join(messages))


def output_members(service: str, operation: str) -> frozenset[str]:
    op = operation_model(service, operation)
    if op is None or op.output_shape is None:
        return frozenset()
    return frozenset(op.output_shape.members)


def shape_members(service: str, shape_name: str) -> frozenset[str]:
    return frozenset(service_model(service).shape_for(shape_name).members)
