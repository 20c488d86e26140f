"""REST handlers for /sm-debug. Thin: parse and validate, authorize, call, answer.

All AWS knowledge lives in jobs.py (and connect/ for attaching); every failure leaves
here as one JSON shape, ``{"error": {"code", "message", "hint"}}``.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from . import logs, names
from .connect import AttachRequest, CannotAttach, transports
from .errors import SMDebugError
from .jobs import JobsService, attach_state, hosts_of
from .terminals import terminal_name

AUTH_RESOURCE = "sm_debug"
SSM_DOCUMENT_NAME = re.compile(r"[a-zA-Z0-9_.:/-]{3,128}")  # SSM's DocumentName pattern

HTTP_CODES = {
    400: ("bad_request", "Check the request and try again."),
    401: ("unauthenticated", "Log in to Jupyter again (the session or token expired)."),
    403: ("forbidden", "Reload the page; your Jupyter session may lack permission for this."),
    404: ("not_found", "Check the URL."),
    405: ("method_not_allowed", "See the REST API table in the README."),
}


class SMDebugHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def jobs(self) -> JobsService:
        return self.settings["sm_debug"].jobs

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SMDebugError):
            error = exc
        elif status_code < 500:
            code, hint = HTTP_CODES.get(status_code, ("error", ""))
            message = getattr(exc, "log_message", None) or HTTPStatus(status_code).phrase
            error = SMDebugError(status_code, code, message, hint)
        else:
            error = SMDebugError(
                500, "internal_error", "Unexpected server error.", "See the Jupyter server log."
            )
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error.to_json()))

    def log_exception(self, typ, value, tb) -> None:
        # Expected failures are the user's news, not the server's: one line, no traceback.
        if isinstance(value, SMDebugError):
            self.log.info(
                "sm-debug %s %s: %s %s",
                self.request.method,
                self.request.path,
                value.status,
                value.code,
            )
        else:
            super().log_exception(typ, value, tb)

    def json_body(self) -> dict:
        if not self.request.body:
            # Every body is required (openapi.yaml); {} asks for the defaults.
            raise SMDebugError(
                400,
                "invalid_body",
                "The request has no body.",
                "Send a JSON object; {} takes the defaults.",
            )
        try:
            body = json.loads(self.request.body)
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

    def query(self, name: str) -> str | None:
        values = self.request.query_arguments.get(name)
        if not values:
            return None
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

    def only_query(self, allowed: tuple[str, ...]) -> None:
        """Refuse query parameters a route does not take. jupyter_server's own token/xsrf
        are not ours to refuse, nor the bare timestamp JupyterLab's ServerConnection
        appends to GETs to defeat caches."""
        unknown = {
            name
            for name in set(self.request.query_arguments) - {*allowed, "token", "_xsrf"}
            if not name.isascii() or not name.isdigit()
        }
        if unknown:
            raise SMDebugError(
                400,
                "invalid_query",
                f"Unknown query parameter(s): {', '.join(sorted(map(repr, unknown)))}.",
                f"Use only {', '.join(allowed)}.",
            )


def require_host(description: dict, job: str, host: str, index: int) -> None:
    """404 unless the job runs host algo-<index>."""
    count = len(hosts_of(description))
    if index > count:
        raise SMDebugError(
            404,
            "host_not_found",
            f"{job} has no host {host}.",
            f"It runs {count} host(s): algo-1 to algo-{count}.",
        )


LIST_QUERY = ("status", "name_contains", "max_results", "next_token", "describe")
LIST_TOKEN = re.compile(r"[\x20-\x7e]{1,8192}")
BOOLEANS = {"true": True, "false": False}


def boolean_query(handler: SMDebugHandler, name: str, default: bool) -> bool:
    raw = handler.query(name)
    if raw is None:
        return default
    if raw not in BOOLEANS:
        raise SMDebugError(
            400,
            "invalid_query",
            f"{name} must be true or false.",
            f"Send {name}=false or leave it out.",
        )
    return BOOLEANS[raw]


class JobsHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.only_query(LIST_QUERY)
        status = self.query("status")
        if status is not None and status not in names.STATUSES:
            raise SMDebugError(
                400,
                "invalid_status",
                f"Unknown status {status!r}.",
                f"Use one of: {', '.join(names.STATUSES)}.",
            )
        name_contains = self.query("name_contains")
        # An empty value is refused like any other off-pattern one (the API document says
        # 1-63 characters); leave the parameter out for no filter.
        if name_contains is not None and not names.NAME_CONTAINS.fullmatch(name_contains):
            raise SMDebugError(
                400,
                "invalid_name_filter",
                "name_contains may hold only letters, digits and hyphens.",
                "Job names never contain other characters.",
            )
        raw_max = self.query("max_results")
        raw_max = "20" if raw_max is None else raw_max
        # ASCII digits only: str.isdigit() accepts "²", which int() refuses, and a
        # 5000-digit number exceeds int()'s limit; both were 500s.
        if not re.fullmatch(r"[0-9]{1,3}", raw_max) or not 1 <= int(raw_max) <= 100:
            raise SMDebugError(
                400,
                "invalid_max_results",
                "max_results must be a whole number from 1 to 100.",
                "SageMaker returns at most 100 jobs a page.",
            )
        next_token = self.query("next_token")
        # AWS's tokens are printable ASCII; 8192 of anything else would not fit in a URL
        # that tornado reads (64 KiB of headers), so the request would get no answer at all.
        if next_token is not None and not LIST_TOKEN.fullmatch(next_token):
            raise SMDebugError(
                400,
                "invalid_next_token",
                "next_token is malformed.",
                "Pass back the next_token of the previous page unchanged.",
            )
        page = await self.jobs.list_jobs(
            status=status,
            name_contains=name_contains or None,
            max_results=int(raw_max),
            next_token=next_token,
            describe=boolean_query(self, "describe", True),
        )
        self.finish(json.dumps(page))


MAX_DESCRIBE = 100  # a page of the list at most


class DescriptionsHandler(SMDebugHandler):
    """The rows a `describe=false` list left undescribed, filled in one wave:
    `GET /sm-debug/descriptions?names=a,b,c`."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.only_query(("names",))
        raw = self.query("names")
        wanted = raw.split(",") if raw else []
        if not 1 <= len(wanted) <= MAX_DESCRIBE:
            raise SMDebugError(
                400,
                "invalid_names",
                f"names must list 1 to {MAX_DESCRIBE} job names, comma-separated.",
                "Send the names of the rows the list left undescribed.",
            )
        jobs = [names.job_name(name) for name in dict.fromkeys(wanted)]
        self.finish(json.dumps(await self.jobs.describe_many(jobs)))


class JobHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self, job: str) -> None:
        job = names.job_name(job)
        self.finish(json.dumps(await self.jobs.job(job)))


class RemoteDebugHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def put(self, job: str) -> None:
        job = names.job_name(job)
        enabled = self.json_body().get("enabled")
        if not isinstance(enabled, bool):
            raise SMDebugError(
                400,
                "invalid_body",
                '"enabled" must be true or false.',
                'Send {"enabled": true} or {"enabled": false}.',
            )
        self.finish(json.dumps(await self.jobs.set_remote_debug(job, enabled)))


class DebugCopyHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        job = names.job_name(job)
        body = self.json_body()
        hold = body.get("hold_seconds", 1800)
        if isinstance(hold, bool) or not isinstance(hold, int) or not 0 <= hold <= 86400:
            raise SMDebugError(
                400,
                "invalid_body",
                '"hold_seconds" must be a whole number from 0 to 86400.',
                "It is how long a failed container stays up for debugging.",
            )
        # A given "name" must be a job name (null is no name: refused, not ignored).
        new_name = names.job_name(body["name"]) if "name" in body else None
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise SMDebugError(
                400,
                "invalid_body",
                '"dry_run" must be true or false.',
                "true only says how the copy would hold, without starting it.",
            )
        answer = await self.jobs.debug_copy(job, hold, new_name, dry_run)
        self.set_status(200 if dry_run else 201)
        self.finish(json.dumps(answer))


class StopHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        # No body to read: a stop has no options.
        job = names.job_name(job)
        self.finish(json.dumps(await self.jobs.stop_job(job)))


LOGS_QUERY = ("next_token", "limit", "stream")


class HostLogsHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self, job: str, host: str) -> None:
        job = names.job_name(job)
        index = names.host_index(host)
        self.only_query(LOGS_QUERY)
        stream = self.query("stream") or "training"
        if stream not in logs.STREAMS:
            raise SMDebugError(
                400,
                "invalid_stream",
                f"Unknown log stream {stream!r}.",
                "Use stream=training (the container's output) or stream=ssm (the SSM agent).",
            )
        raw_limit = self.query("limit") or "1000"
        if not re.fullmatch(r"[0-9]{1,5}", raw_limit) or not 1 <= int(raw_limit) <= 10000:
            raise SMDebugError(
                400,
                "invalid_limit",
                "limit must be a whole number from 1 to 10000.",
                "CloudWatch returns at most 10000 events a page.",
            )
        next_token = self.query("next_token") or None  # empty: from the start
        if next_token is not None:
            logs.parse_token(next_token)  # malformed: 400 before any AWS call
        require_host(await self.jobs.describe(job), job, host, index)
        page = await self.jobs.host_logs(job, host, stream, next_token, int(raw_limit))
        self.finish(json.dumps(page))


class TerminalsHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def post(self, job: str, host: str) -> None:
        job = names.job_name(job)
        index = names.host_index(host)
        body = self.json_body()
        state = self.settings["sm_debug"]
        available = transports()
        transport_name = body.get("transport", state.config.default_transport)
        # Only a string can name a transport (a list in the dict lookup was a 500).
        if not isinstance(transport_name, str) or transport_name not in available:
            raise SMDebugError(
                400,
                "invalid_transport",
                f"Unknown transport {transport_name!r}.",
                f"Use one of: {', '.join(sorted(available))}.",
            )
        address = body.get("address")
        if "address" in body and not isinstance(address, str):
            raise SMDebugError(
                400,
                "invalid_body",
                '"address" must be a string.',
                'Send {"address": "10.0.1.7:22"} or leave it out.',
            )
        host_key = body.get("host_key")
        if "host_key" in body and (not isinstance(host_key, str) or not address):
            raise SMDebugError(
                400,
                "invalid_body",
                '"host_key" must be a string, given with "address".',
                'Send {"address": "10.0.1.7:22", "host_key": "ssh-ed25519 AAAA..."}.',
            )
        replace = body.get("replace", False)
        if not isinstance(replace, bool):
            raise SMDebugError(
                400,
                "invalid_body",
                '"replace" must be true or false.',
                "true ends a live terminal of this host that runs to another target.",
            )
        document = body.get("document")
        if "document" in body and (
            not isinstance(document, str) or not SSM_DOCUMENT_NAME.fullmatch(document)
        ):
            raise SMDebugError(
                400,
                "invalid_body",
                '"document" must be an SSM document name.',
                'Send {"document": "My-Session-Document"} (3-128 of A-Z a-z 0-9 _ - . : /) '
                "or leave it out.",
            )
        # From the cache the list filled when it says the job is attachable (no round trip);
        # a stale one is caught below, when the transport's own call fails.
        description, cached = await self.jobs.attach_description(job, transport_name)
        require_host(description, job, host, index)
        request = AttachRequest(
            job=job,
            host=host,
            description=description,
            config=state.config,
            jobs=self.jobs,
            options={
                **({"address": address, "host_key": host_key} if address else {}),
                **({"document": document} if document else {}),
            },
        )
        transport = available[transport_name]
        try:
            session = await transport.prepare(request)
        except CannotAttach:
            if not cached:
                raise
            # The cached description may be out of date (the job ended, remote debug went
            # off): say so from a current one, or try once more if it changed.
            stale = request.description
            request.description = await self.jobs.describe(job, fresh=True)
            if not changed(stale, request.description):
                raise
            now = attach_state(request.description)[transport_name]
            if not now["ok"]:
                hint = (
                    "Flip the Remote debug switch on this job, then Attach."
                    if "Remote debug" in now["reason"]
                    else "Pick a running job (Downloading or Training)."
                )
                raise CannotAttach("not_attachable", now["reason"], hint) from None
            session = await transport.prepare(request)
        name, reused, live = await state.terminals.open(
            terminal_name(job, host, transport_name), session, replace=replace
        )
        self.set_status(200 if reused else 201)
        answer = {
            "terminal": {"name": name},
            "transport": transport_name,
            "target": live.target,  # where the terminal really is
            "reused": reused,
        }
        self.finish(json.dumps({**live.info, **answer}))


def changed(before: dict, after: dict) -> bool:
    """Whether a job moved on between two descriptions (status, remote debug, an update)."""
    keys = ("TrainingJobStatus", "SecondaryStatus", "LastModifiedTime", "RemoteDebugConfig")
    return any(before.get(key) != after.get(key) for key in keys)


class EnvironmentHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(json.dumps(await self.jobs.environment()))


def _no_such_route():
    # A new decorated function per HTTP method: @authorized settles its action ("read" or
    # "write") at the first call, so one function shared by GET and PUT asked the
    # authorizer about whichever came first for every later request.
    @web.authenticated
    @authorized
    def method(self, path: str) -> None:
        raise SMDebugError(
            404,
            "no_such_route",
            f"There is no /sm-debug/{path} endpoint.",
            "See the REST API table in the README.",
        )

    return method


class NotFoundHandler(SMDebugHandler):
    """Any other /sm-debug URL: a JSON 404 rather than Jupyter's HTML page."""

    get = _no_such_route()
    put = _no_such_route()
    post = _no_such_route()
    delete = _no_such_route()
    patch = _no_such_route()
