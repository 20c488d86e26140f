"""The base of every /sm-debug handler: path arguments checked before any method runs, bodies
and queries parsed by their specs, every failure answered by the one error renderer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler

from .. import errors, names
from ..errors import SMDebugError
from .spec import NO_QUERY, Body, Query

if TYPE_CHECKING:
    from ..config import SMDebug
    from ..extension import State
    from ..jobs import JobsService

AUTH_RESOURCE = "sm_debug"


class SMDebugHandler(APIHandler):
    auth_resource = AUTH_RESOURCE
    # What the route takes; a method parses them with self.body() and self.query().
    body_spec: Body | None = None
    query_spec: Query = NO_QUERY

    job: str = ""
    host: str = ""
    port: int = 0

    @property
    def state(self) -> State:
        return self.settings["sm_debug"]

    @property
    def jobs(self) -> JobsService:
        return self.state.jobs

    @property
    def config(self) -> SMDebug:
        return self.state.config

    async def prepare(self) -> None:
        await super().prepare()
        if self.current_user is None:
            return  # the method's @web.authenticated answers 403 before anything is read
        # Path arguments, one way for every route: a name that is not one is a 400 before
        # any AWS call or argv sees it.
        arguments = self.path_kwargs
        if "job" in arguments:
            self.job = names.job_name(arguments["job"])
        if "host" in arguments:
            names.host_index(arguments["host"])
            self.host = arguments["host"]
        if "port" in arguments:
            self.port = names.remote_port(arguments["port"], from_url=True)

    def body(self, spec: Body | None = None) -> dict:
        spec = spec or self.body_spec
        assert spec is not None, "the route has no body spec"
        return spec.parse(self.request.body, self.config)

    def query(self, spec: Query | None = None) -> dict:
        return (spec or self.query_spec).parse(self.request.query_arguments, self.config)

    def answer(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        errors.render(self, errors.of_exception(status_code, exc))

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
