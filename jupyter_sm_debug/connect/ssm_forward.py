"""SSM's forward-a-port verb: a port-forwarding session (AWS-StartPortForwardingSession,
portNumber) to the host, served on this server's loopback.

The built-in client (ssm/portforward.py) runs in the server's own event loop: one session,
smux inside, one local listener for every browser connection. With c.SMDebug.ssm_client =
"plugin", AWS's session-manager-plugin runs it instead, in its port-forwarding mode with a
localPortNumber we choose (the StartSession response in an environment variable, as for
Attach). The server calls StartSession, and TerminateSession when the forward ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from ..description import attach_state
from ..errors import SMDebugError
from ..ssm.portforward import PortForwardClient, PortForwardError
from . import AttachRequest, CannotAttach, Tunnel, base_environment
from .ssh import end_process, free_local_port, wait_listening
from .ssm import (
    PLUGIN,
    SESSION_VARIABLE,
    aws_environment,
    choose_client,
    plugin_missing,
    start_session,
    target_id,
)

PORT_DOCUMENT = "AWS-StartPortForwardingSession"
PLUGIN_READY_TIMEOUT = 30.0


async def start_port_session(request: AttachRequest, port: int, local_port: int = 0) -> dict:
    """StartSession of the port document. localPortNumber goes in the session itself: the
    agent hands the document's properties to the client, and the plugin listens there."""
    target = target_id(request.job, request.host)
    parameters = {"portNumber": [str(port)]}
    if local_port:
        parameters["localPortNumber"] = [str(local_port)]
    params = {"Target": target, "DocumentName": PORT_DOCUMENT, "Parameters": parameters}
    response = await start_session(request, params)
    response.pop("ResponseMetadata", None)
    return {"response": response, "params": params, "target": target}


class SSMForwarder:
    name = "ssm"

    async def forward(self, request: AttachRequest, remote_port: int) -> Tunnel:
        state = attach_state(request.description)["ssm"]
        if not state["ok"]:
            raise CannotAttach("not_attachable", state["reason"], "Turn on Remote debug first.")
        loop = asyncio.get_running_loop()
        choice = await loop.run_in_executor(None, choose_client, request.config.ssm_client)
        if choice.kind is None:
            raise plugin_missing()
        local_port = free_local_port() if choice.kind == "plugin" else 0
        started = await start_port_session(request, remote_port, local_port)
        response, target = started["response"], started["target"]
        session_id = response["SessionId"]

        async def terminate() -> None:
            with contextlib.suppress(SMDebugError):
                await request.jobs.call("ssm", "terminate_session", SessionId=session_id)

        if choice.kind == "plugin":
            return await self._plugin(request, remote_port, local_port, choice, started, terminate)
        client = PortForwardClient(response, target=target, log=request.jobs.log)
        try:
            local_port = await client.start()
        except PortForwardError as error:
            await terminate()
            raise CannotAttach(
                "forward_failed",
                f"SSM could not forward port {remote_port} of {request.host}: {error}",
                "Check that the job's SSM agent runs (Remote debug on) and try again.",
            ) from None

        async def close() -> None:
            await client.close()
            await terminate()

        return Tunnel(
            local_port=local_port,
            remote_port=remote_port,
            target=f"{target} (builtin, session {session_id})",
            close=close,
            alive=lambda: client.alive,
            info={"session_id": session_id, "client": "builtin"},
        )

    async def _plugin(
        self, request, remote_port, local_port, choice, started, terminate
    ) -> Tunnel:  # fmt: skip
        ssm = request.jobs.client("ssm")
        params = started["params"]
        env = {
            **base_environment(),
            **aws_environment(),
            SESSION_VARIABLE: json.dumps(started["response"]),
            "SSM_PLUGIN_LOCAL_HOST": "127.0.0.1",
        }
        argv = [
            choice.plugin, SESSION_VARIABLE, ssm.meta.region_name, "StartSession",
            request.config.profile or "", json.dumps(params), ssm.meta.endpoint_url,
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=env, start_new_session=True,
        )  # fmt: skip
        if not await wait_listening(local_port, process, PLUGIN_READY_TIMEOUT):
            await end_process(process)
            await terminate()
            raise CannotAttach(
                "forward_failed",
                f"{PLUGIN} did not open port {remote_port} of {request.host}.",
                "Try c.SMDebug.ssm_client = 'builtin'.",
            )

        async def close() -> None:
            await end_process(process)
            await terminate()

        return Tunnel(
            local_port=local_port,
            remote_port=remote_port,
            target=f"{started['target']} (plugin, session {started['response']['SessionId']})",
            close=close,
            alive=lambda: process.returncode is None,
            pids=[process.pid],
            info={"session_id": started["response"]["SessionId"], "client": "plugin"},
        )


__all__ = ["SSMForwarder"]
