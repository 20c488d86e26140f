"""What every service of the stand-in gives the router (router.py), as moto's services do:
a ``Service`` names the calls it answers, the botocore model to validate them against, and
one ``dispatch(standin, call)``. Dispatch answers a dict (JSON), a ``Response`` (any other
body), or None: moto answers the call (the service only checked or rewrote it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .errors import StandInError


@dataclass
class Call:
    """One AWS call, parsed once by the router."""

    environ: dict
    body: str
    protocol: str  # "json", "query" or "rest": how its answer and errors look
    prefix: str  # X-Amz-Target's service part ("" for query and rest calls)
    action: str
    region: str
    moto: Callable  # moto's WSGI app, for a service that passes a call on and edits the answer
    _params: Optional[dict] = field(default=None, repr=False)

    @property
    def params(self) -> dict:
        """The JSON body as an object (SerializationException if it is not one)."""
        if self._params is None:
            self._params = json_params(self.body)
        return self._params

    @property
    def base_url(self) -> str:
        return f"{self.environ.get('wsgi.url_scheme', 'http')}://{self.environ['HTTP_HOST']}"


@dataclass
class Response:
    """An answer that is not a JSON object: its status line, headers and body as sent."""

    status: str
    headers: list
    data: bytes


@dataclass(frozen=True)
class Service:
    name: str
    actions: tuple
    dispatch: Callable[[Any, Call], Any]  # (standin, call) -> dict | Response | None
    prefix: str = ""  # X-Amz-Target prefix of a JSON service; "" for a query service
    model: Optional[str] = None  # botocore service whose input shapes requests must match

    def handles(self, call: Call) -> bool:
        if call.action not in self.actions:
            return False
        if self.prefix:
            return call.protocol == "json" and call.prefix == self.prefix
        return call.protocol == "query"


def json_params(body: str) -> dict:
    try:
        params = json.loads(body) if body.strip() else {}
    except ValueError as error:
        raise StandInError(
            "SerializationException", "The request body is not valid JSON."
        ) from error
    if not isinstance(params, dict):
        raise StandInError("SerializationException", "The request body must be a JSON object.")
    return params
