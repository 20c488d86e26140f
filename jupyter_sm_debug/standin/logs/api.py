"""CloudWatch Logs calls where moto 5.2.5 differs from AWS: each is checked or rewritten
here, then answered by moto."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Optional

from ..errors import StandInError
from ..service import Call, Response, Service
from .backend import stream_exists, streams_with_prefix

TARGET = "Logs_20140328"


def dispatch(standin, call: Call):
    if call.action == "FilterLogEvents":
        return _filter_log_events(standin, call)
    if call.action == "GetLogEvents":
        params = call.params
        if not stream_exists(
            standin.account_id, call.region, params.get("logGroupName", ""),
            params.get("logStreamName", ""),
        ):  # fmt: skip
            # moto says the *group* does not exist; AWS names what is missing.
            raise StandInError(
                "ResourceNotFoundException", "The specified log stream does not exist."
            )
        return None
    return _without_null_token(call)


def _without_null_token(call: Call) -> Response:
    """moto's answer, less its ``"nextToken": null`` (AWS leaves the member out when
    there is no further page)."""
    captured: dict = {}

    def keep(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    data = b"".join(call.moto(call.environ, keep))
    if captured.get("status", "").startswith("200"):
        with contextlib.suppress(ValueError, AttributeError):
            answer = json.loads(data)
            if answer.get("nextToken", "") is None:
                del answer["nextToken"]
                data = json.dumps(answer).encode()
    headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
    return Response(captured.get("status", "500 Internal Server Error"), headers, data)


def _filter_log_events(standin, call: Call) -> Optional[dict]:
    """moto 5.2.5 ignores logStreamNamePrefix: rewrite it to the logStreamNames it means."""
    params = call.params
    prefix = params.get("logStreamNamePrefix")
    if prefix is None:
        return None
    if params.get("logStreamNames"):
        raise StandInError(
            "InvalidParameterException",
            "Cannot specify both logStreamNames and logStreamNamePrefix.",
        )
    names = streams_with_prefix(
        standin.account_id, call.region, params.get("logGroupName", ""), prefix
    )
    if not names:
        return {"events": [], "searchedLogStreams": []}
    params = dict(params)
    del params["logStreamNamePrefix"]
    params["logStreamNames"] = names
    data = json.dumps(params).encode()
    call.environ["wsgi.input"] = io.BytesIO(data)
    call.environ["CONTENT_LENGTH"] = str(len(data))
    return None


SERVICE = Service(
    "logs", ("FilterLogEvents", "GetLogEvents", "DescribeLogStreams"), dispatch, prefix=TARGET
)
