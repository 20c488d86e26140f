"""Routes of port forwards: open one, end one, list them."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import SMDebugError
from .base import SMDebugHandler
from .hosts import transport_field
from .spec import Body, Field
from .target import host_targets


class PortsHandler(SMDebugHandler):
    body_spec = Body({
        "port": Field(
            "int", "The port must be a whole number from 1 to 65535.",
            "Give the port the app listens on in the container, e.g. 6006 for TensorBoard.",
            code="invalid_port", required=True, minimum=1, maximum=65535,
        ),
        "transport": transport_field("forward"),
    })  # fmt: skip

    @web.authenticated
    @authorized
    async def post(self, job: str, host: str) -> None:
        body = self.body()
        (target,), _ = await host_targets(self, body["transport"], "forward", [self.host])
        forward, reused = await self.state.forwards.open(target, body["port"], target.transport)
        self.answer({**forward.to_json(self.base_url), "reused": reused}, 200 if reused else 201)


class PortHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def delete(self, job: str, host: str, port: str) -> None:
        if not await self.state.forwards.close(self.job, self.host, self.port):
            raise SMDebugError(
                404,
                "forward_not_found",
                f"No forward of port {self.port} of {self.host} in {self.job} is open.",
                "GET /sm-debug/forwards lists the open ones.",
            )
        self.set_status(204)
        self.finish()


class ForwardsHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        forwards = self.state.forwards.all()
        self.answer({"forwards": [f.to_json(self.base_url) for f in forwards]})
