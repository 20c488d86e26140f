"""The shipped OpenAPI document describes exactly the routes the server registers."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import jupyter_sm_debug
from jupyter_sm_debug.api.routes import route_table

SPEC = Path(jupyter_sm_debug.__file__).with_name("openapi.yaml")


def spec() -> dict:
    return yaml.safe_load(SPEC.read_text())


def test_every_route_is_documented_and_every_documented_path_is_served():
    served = set()
    for pattern, _handler in route_table("/"):
        if "(?P<path>" in pattern:  # the JSON 404 catch-all
            continue
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).removesuffix("/?")
        served.add(path)
    assert served == set(spec()["paths"])


def test_every_operation_documents_the_error_shape():
    for path, operations in spec()["paths"].items():
        for method, operation in operations.items():
            errors = [code for code in operation["responses"] if code.startswith(("4", "5"))]
            assert errors, (method, path)
            for code in errors:
                assert operation["responses"][code] == {"$ref": "#/components/responses/Error"}


def test_the_document_ships_in_the_package():
    assert SPEC.is_file()


# -- the request specs (api/spec.py) and the document say the same --------------------------

KINDS = {"bool": "boolean", "int": "integer", "number": "number", "string": "string"}


def operations():
    """(path, method, operation, handler class) for every documented operation."""
    handlers = {}
    for pattern, handler in route_table("/"):
        if "(?P<path>" not in pattern:
            handlers[re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).removesuffix("/?")] = handler
    for path, methods in spec()["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation, handlers[path]


def check_field(where, name, field, schema):
    if field.kind == "any":  # the transport: the registry's names
        assert schema.get("enum") == ["ssm", "ssh"], (where, name, schema)
        return
    if field.kind == "strings":
        assert schema["type"] == "array" and schema["items"]["type"] == "string", (where, name)
        assert schema.get("minItems", 0) == field.min_items, (where, name)
        assert schema.get("maxItems") == field.max_items, (where, name)
        return
    assert schema["type"] == KINDS[field.kind], (where, name, schema)
    if field.kind in ("int", "number"):
        assert schema.get("minimum") == field.minimum, (where, name)
        assert schema.get("maximum") == field.maximum, (where, name)
        assert bool(schema.get("exclusiveMinimum")) == field.exclusive_minimum, (where, name)


def test_every_body_is_specified_as_documented_and_refuses_other_keys():
    checked = 0
    for path, method, operation, handler in operations():
        body = operation.get("requestBody")
        spec_ = getattr(handler, "body_spec", None)
        where = f"{method} {path}"
        if body is None:
            assert spec_ is None, where
            continue
        assert spec_ is not None, where
        schema = body["content"]["application/json"]["schema"]
        # One policy for unknown keys: refused (400), so the document allows none.
        assert schema.get("additionalProperties") is False, where
        assert set(schema["properties"]) == set(spec_.fields), where
        assert set(schema.get("required", [])) == {
            name for name, field in spec_.fields.items() if field.required
        }, where
        for name, field in spec_.fields.items():
            check_field(where, name, field, schema["properties"][name])
        checked += 1
    assert checked == 7


def test_every_query_is_specified_as_documented():
    for path, method, operation, handler in operations():
        documented = {
            p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "query"
        }
        fields = handler.query_spec.fields if method == "get" else {}
        assert set(documented) == set(fields), f"{method} {path}"
        for name, field in fields.items():
            schema = documented[name]["schema"]
            if field.kind == "bool":  # a query's booleans are the words true and false
                assert schema.get("enum") == ["true", "false"], (path, name)
            elif field.kind != "any" and field.check is None:
                check_field(f"{method} {path}", name, field, schema)
