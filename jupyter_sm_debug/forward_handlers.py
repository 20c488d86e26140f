"""REST handlers for port forwards: open, end and list them. Thin, like handlers.py."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from . import names
from .connect import AttachRequest
from .errors import SMDebugError
from .handlers import SMDebugHandler, require_host


def remote_port(value, from_url: bool = False) -> int:
    """1-65535: a JSON number, or digits in a URL; anything else is a 400."""
    if (
        from_url
        and isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= 5
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SMDebugError(
            400,
            "invalid_port",
            "The port must be a whole number from 1 to 65535.",
            "Give the port the app listens on in the container, e.g. 6006 for TensorBoard.",
        )
    return value


async def checked_host(handler: SMDebugHandler, job: str, host: str) -> tuple[str, dict]:
    job = names.job_name(job)
    index = names.host_index(host)
    description = await handler.jobs.describe(job, fresh=True)
    require_host(description, job, host, index)
    return job, description


class PortsHandler(SMDebugHandler):
    @property
    def forwards(self):
        return self.settings["sm_debug"].forwards

    @web.authenticated
    @authorized
    async def post(self, job: str, host: str) -> None:
        body = self.json_body()
        port = remote_port(body.get("port"))
        state = self.settings["sm_debug"]
        transport = body.get("transport", state.config.default_transport)
        if not isinstance(transport, str) or transport not in ("ssh", "ssm"):
            raise SMDebugError(
                400, "invalid_transport", f"Unknown transport {transport!r}.", "Use ssh or ssm."
            )
        job, description = await checked_host(self, job, host)
        request = AttachRequest(
            job=job, host=host, description=description, config=state.config, jobs=self.jobs
        )
        forward, reused = await self.forwards.open(request, port, transport)
        self.set_status(200 if reused else 201)
        self.finish(json.dumps({**forward.to_json(self.base_url), "reused": reused}))


class PortHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def delete(self, job: str, host: str, port: str) -> None:
        job = names.job_name(job)
        names.host_index(host)
        number = remote_port(port, from_url=True)
        if not await self.settings["sm_debug"].forwards.close(job, host, number):
            raise SMDebugError(
                404,
                "forward_not_found",
                f"No forward of port {number} of {host} in {job} is open.",
                "GET /sm-debug/forwards lists the open ones.",
            )
        self.set_status(204)
        self.finish()


class ForwardsHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        forwards = self.settings["sm_debug"].forwards.all()
        self.finish(json.dumps({"forwards": [f.to_json(self.base_url) for f in forwards]}))
