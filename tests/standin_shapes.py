"""Strict check of a raw awsJson response body against a botocore output shape.

boto3 silently drops members it does not know and does not check enums, so tests look at the
bytes on the wire instead.
"""

from __future__ import annotations

import json

import botocore.session

_session = botocore.session.get_session()


SCALARS = {
    "integer": int,
    "long": int,
    "float": (int, float),
    "double": (int, float),
    "timestamp": (int, float),
    "boolean": bool,
}


def output_shape(service: str, operation: str):
    return _session.get_service_model(service).operation_model(operation).output_shape


def problems(value, shape, path: str = "$") -> list[str]:
    kind = shape.type_name
    found: list[str] = []
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        for key in set(value) - set(shape.members):
            found.append(f"{path}.{key}: not in shape {shape.name}")
        for key in shape.required_members:
            if key not in value:
                found.append(f"{path}.{key}: required by {shape.name}, missing")
        for key, item in value.items():
            if key in shape.members:
                found += problems(item, shape.members[key], f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected list"]
        for index, item in enumerate(value):
            found += problems(item, shape.member, f"{path}[{index}]")
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected map"]
        for key, item in value.items():
            found += problems(key, shape.key, f"{path}<key>")
            found += problems(item, shape.value, f"{path}[{key}]")
    elif kind == "string":
        if not isinstance(value, str):
            found.append(f"{path}: expected string, got {value!r}")
        elif shape.enum and value not in shape.enum:
            found.append(f"{path}: {value!r} not in enum {shape.name}")
    elif kind in SCALARS:
        # Timestamps travel as epoch seconds in awsJson; bool is an int in Python, not here.
        wrong_bool = isinstance(value, bool) and kind != "boolean"
        if wrong_bool or not isinstance(value, SCALARS[kind]):
            found.append(f"{path}: expected {kind}, got {value!r}")
    return found


def check(service: str, operation: str, raw: bytes) -> list[str]:
    shape = output_shape(service, operation)
    body = json.loads(raw) if raw.strip() else {}
    if shape is None:
        return [] if body == {} else [f"$: {operation} has no output, got {body!r}"]
    return problems(body, shape)
