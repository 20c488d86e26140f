"""POST /sm-debug/jobs/{job}/hosts/{host}/kernels: a Python kernel in the host, started
by the Jupyter server's own kernel manager (kernels/service.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import SMDebugHandler
from .hosts import transport_field
from .spec import Body
from .target import host_targets, transport_of


class KernelsHandler(SMDebugHandler):
    body_spec = Body({"transport": transport_field("forward")})

    @web.authenticated
    @authorized
    async def post(self, job: str, host: str) -> None:
        body = self.body()
        transport_of(body["transport"], "run")  # the agent starts with a run
        (target,), _ = await host_targets(self, body["transport"], "forward", [self.host])
        self.answer(await self.state.kernels.start(target), 201)
