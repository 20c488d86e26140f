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
