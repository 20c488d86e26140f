"""The router: the stand-in's WSGI entry for AWS calls and its control routes.

Every AWS call goes through the same steps: authenticate (SigV4 with the stand-in's
credentials), faults (latency, down, throttling, expired), then the first registered
service that handles it (``SERVICES``: each package's ``api.SERVICE``) validates it against
its botocore model, dispatches it, and the answer is serialised in the call's protocol.
Calls no service takes, and those a service passes on, are moto's server app's.
"""

from __future__ import annotations

import datetime
import http
import io
import json
import logging
import re
import time
import uuid
from typing import Any, Callable, Optional
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from . import awsmodel, ecr, iam, logs, sagemaker, sigv4
from .errors import StandInError
from .service import Call, Response, Service
from .ssm import api as ssm_service

log = logging.getLogger(__name__)

# In the order they are asked; the first that handles a call answers it.
SERVICES: tuple[Service, ...] = (
    sagemaker.api.SERVICE,
    ssm_service.SERVICE,
    ecr.SERVICE,
    iam.api.SERVICE,
    logs.SERVICE,
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


class Router:
    def __init__(self, standin, moto_app: Callable):
        self.standin = standin
        self.moto_app = moto_app

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "")
        control = path == "/_standin" or path.startswith("/_standin/")
        try:
            if path.startswith(ecr.BLOB_PATH):
                # An ECR download URL: its random path is its credential, as with S3's.
                return self._blob(start_response, path[len(ecr.BLOB_PATH) :])
            refused = self._authenticate(environ, start_response, control)
            if refused is not None:
                return refused
            if control:
                return self._control(environ, start_response, path)
            return self._aws(environ, start_response)
        except NotImplementedError as missing:
            # moto lacks this operation: say so as AWS says an action it does not know, in
            # the service's own protocol, so botocore raises ClientError (never a parse error).
            protocol = _protocol(environ)
            code = "InvalidAction" if protocol == "query" else "UnknownOperationException"
            message = f"The stand-in does not implement this operation ({missing})."
            return self._error(start_response, protocol, StandInError(code, message, 400))
        except Exception:  # noqa: BLE001 - a bug must answer 500 like AWS, not drop the socket
            log.exception("stand-in failed on %s %s", environ.get("REQUEST_METHOD"), path)
            error = StandInError("InternalFailure", "The stand-in failed; see its log.", 500)
            return self._error(start_response, _protocol(environ), error)

    def _authenticate(self, environ: dict, start_response: Callable, control: bool):
        """None if the request is signed with the stand-in's credentials, else the refusal
        (AWS's error in the service's protocol; plain JSON on a control route)."""
        try:
            sigv4.verify(environ, _read_raw(environ), self.standin.credentials)
        except sigv4.AuthError as refused:
            json_code, query_code, status = sigv4.ERRORS[refused.kind]
            if control:
                why = refused.message.rstrip(".")
                message = f"{why}: sign control requests like AWS calls (SigV4)."
                return self._plain(start_response, status, {"error": message})
            protocol = _protocol(environ)
            code = query_code if protocol == "query" else json_code
            if protocol == "json" and environ.get("HTTP_X_AMZ_TARGET", "").startswith("SageMaker."):
                status = 400  # SageMaker answers its auth errors with 400, as it does any
            error = StandInError(code, refused.message, status)
            return self._error(start_response, protocol, error)
        return None

    def _aws(self, environ: dict, start_response: Callable):
        body = _read_body(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            protocol = "json"
            prefix, _, action = target.partition(".")
        else:
            prefix = ""
            action = _query_action(environ, body)
            protocol = "query" if action else "rest"
        internal = environ.get("HTTP_X_STANDIN_INTERNAL")
        if not internal or internal != self.standin.internal_token:
            refused = self._faults(start_response, protocol, action)
            if refused is not None:
                return refused
        region = _region(environ) or self.standin.region
        call = Call(environ, body, protocol, prefix, action, region, self.moto_app)
        try:
            for service in SERVICES:
                if not service.handles(call):
                    continue
                if service.model:
                    awsmodel.validate(service.model, action, call.params)
                answer = service.dispatch(self.standin, call)
                if answer is not None:
                    return self._serialise(start_response, answer)
                break
        except StandInError as error:
            return self._error(start_response, protocol, error)
        return self.moto_app(environ, start_response)

    def _faults(self, start_response: Callable, protocol: str, action: str):
        """None if the call goes on, else the fault's answer (after the latency)."""
        faults = self.standin.faults
        latency, down, throttled = faults.take(action)
        if latency:
            time.sleep(latency)
        if down:
            error = StandInError("ServiceUnavailable", "Service Unavailable", 503)
            return self._error(start_response, protocol, error)
        if throttled:
            code = "ThrottlingException" if protocol == "json" else "Throttling"
            return self._error(start_response, protocol, StandInError(code, "Rate exceeded"))
        if faults.expired:
            code = "ExpiredTokenException" if protocol == "json" else "ExpiredToken"
            message = "The security token included in the request is expired"
            return self._error(start_response, protocol, StandInError(code, message))
        return None

    def _serialise(self, start_response: Callable, answer: Any):
        if isinstance(answer, Response):
            headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(answer.data))))
            start_response(answer.status, headers)
            return [answer.data]
        return self._json(start_response, answer)

    # -- control routes -----------------------------------------------------------------------

    def _control(self, environ: dict, start_response: Callable, path: str):
        method = environ.get("REQUEST_METHOD", "GET")
        route = path[len("/_standin") :].strip("/")
        routes = {
            "state": ("GET", lambda _: self.standin.state()),
            "clock": ("POST", self._clock),
            "faults": ("POST", lambda body: self.standin.faults.update(**body)),
            "reset": ("POST", lambda _: self._reset()),
            "kill-host": ("POST", self._kill_host),
            "ssm-drop": ("POST", self._ssm_drop),
            "jobs": ("POST", self._create_jobs),
        }
        if route == "faults" and method == "GET":
            return self._plain(start_response, 200, self.standin.faults.snapshot())
        if route not in routes:
            return self._plain(
                start_response, 404, {"error": f"no stand-in route /_standin/{route}"}
            )
        wanted, action = routes[route]
        if method != wanted:
            return self._plain(
                start_response, 405, {"error": f"use {wanted} for /_standin/{route}"}
            )
        body: Any = {}
        if method == "POST":
            raw = _read_body(environ)
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return self._plain(start_response, 400, {"error": "the body must be JSON"})
            if not isinstance(body, dict):
                return self._plain(start_response, 400, {"error": "the body must be a JSON object"})
        try:
            result = action(body)
        except (ValueError, TypeError) as error:
            return self._plain(start_response, 400, {"error": str(error)})
        return self._plain(start_response, 200, result)

    def _clock(self, body: dict) -> dict:
        advance = body.get("advance", 0)
        if isinstance(advance, bool) or not isinstance(advance, (int, float)):
            raise ValueError("advance must be a number of seconds")
        self.standin.advance(advance)
        return {"mode": self.standin.clock_mode, "now": self.standin.now()}

    def _kill_host(self, body: dict) -> dict:
        job, host = body.get("job"), body.get("host")
        if not isinstance(job, str) or not isinstance(host, str):
            raise ValueError('give the host as {"job": "...", "host": "algo-N"}')
        try:
            self.standin.kill_host(job, host, body.get("region"))
        except StandInError as error:
            raise ValueError(error.message) from None
        return {"killed": f"{job}/{host}"}

    def _ssm_drop(self, body: dict) -> dict:
        """Fault: cut SSM data-channel websockets (all, or {"session_id": ...}); the
        sessions' shells go on and wait for their clients to resume."""
        session_id = body.get("session_id")
        if session_id is not None and not isinstance(session_id, str):
            raise ValueError('give the session as {"session_id": "..."} or nothing for all')
        from . import ssm

        return {"dropped": ssm.drop_connections(self.standin, session_id)}

    def _create_jobs(self, body: dict) -> dict:
        """Seed many jobs in one call: {"jobs": [{"name", ...create_job's arguments}]}."""
        specs = body.get("jobs")
        if not isinstance(specs, list) or not all(
            isinstance(spec, dict) and isinstance(spec.get("name"), str) for spec in specs
        ):
            raise ValueError('give the jobs as {"jobs": [{"name": "...", ...}, ...]}')
        try:
            return {"created": len(self.standin.create_jobs(specs))}
        except StandInError as error:
            raise ValueError(error.message) from None

    def _reset(self) -> dict:
        self.standin.reset()
        return {"reset": True, "jobs": len(self.standin.backends.sagemaker.all())}

    def _blob(self, start_response: Callable, token: str):
        data = self.standin.backends.ecr.blob(token)
        if data is None:
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [
                b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            ]
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))],
        )
        return [data]

    # -- responses ------------------------------------------------------------------------------

    def _plain(self, start_response: Callable, status: int, payload: Any):
        data = json.dumps(payload, default=_json_default).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        start_response(_status_line(status), headers)
        return [data]

    def _json(self, start_response: Callable, payload: dict):
        data = json.dumps(payload, default=_json_default).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(data))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [data]

    def _error(self, start_response: Callable, protocol: str, error: StandInError):
        request_id = str(uuid.uuid4())
        headers = [("x-amzn-RequestId", request_id)]
        if protocol == "query":
            kind = "Receiver" if error.status >= 500 else "Sender"
            data = (
                f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>"
                f"<Message>{escape(error.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            headers.append(("Content-Type", "text/xml"))
        else:
            data = json.dumps({"__type": error.code, "message": error.message}).encode()
            headers.append(("Content-Type", "application/x-amz-json-1.1"))
            if protocol == "rest":
                headers.append(("x-amzn-ErrorType", error.code))
        headers.append(("Content-Length", str(len(data))))
        start_response(_status_line(error.status), headers)
        return [data]


def _read_raw(environ: dict) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    data = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(data)  # read again by the handler, or by moto
    environ["CONTENT_LENGTH"] = str(len(data))
    return data


def _read_body(environ: dict) -> str:
    return _read_raw(environ).decode("utf-8", "replace")


def _protocol(environ: dict) -> str:
    """The wire protocol of the service called: how its errors must look."""
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    if "Action=" in environ.get("QUERY_STRING", "") or environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return "query"
    return "rest"


def _query_action(environ: dict, body: str) -> str:
    actions = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not actions and environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        actions = parse_qs(body).get("Action")
    return actions[0] if actions else ""


def _region(environ: dict) -> Optional[str]:
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None
