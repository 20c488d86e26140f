"""SSM transport: SageMaker remote debug sessions through AWS Systems Manager.

Every verb is one session inside `ssm_session` (StartSession … always TerminateSession):
- attach: the server calls StartSession itself, so a host that SSM cannot reach is a clear
  409 before any terminal opens, then hands the session (StreamUrl + TokenValue) to the
  session client (clients.py) through an environment variable, never an argv;
- run: the built-in client types one command into the session's shell (ssm/run.py);
- files: the files agent (files/agent.py) pushed by a marked run and reached by a forward
  (files/agentfs.py), one agent and one port session per FileSystem;
- forward: a port session (AWS-StartPortForwardingSession) run in the server's own event
  loop by the built-in client, whose every connection is one smux stream opened straight
  from the proxy (`Tunnel.connect`): no listener on this machine. AWS's plugin is never used
  for forwards, since it can only listen on a TCP port that any local user may reach
  (docs/ports.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, AsyncIterator

from ..description import attach_state
from ..errors import SMDebugError
from .clients import (
    PACKAGE_PARENT,
    PLUGIN,
    SESSION_VARIABLE,
    ClientChoice,
    aws_environment,
    choose_client,
    client_report,
    plugin_argv,
    plugin_missing,
    plugin_version,
    target_id,
    version_text,
)
from .process import threads
from .types import (
    RUN_OUTPUT_LIMIT,
    CannotAttach,
    HostTarget,
    RunResult,
    Session,
    Tunnel,
    base_environment,
)

if TYPE_CHECKING:
    from ..files.base import FileSystem

PORT_DOCUMENT = "AWS-StartPortForwardingSession"


async def start_session(target: HostTarget, params: dict) -> dict:
    """StartSession for any SSM verb (attach, run, forward), its refusals said plainly
    (decided by AWS's error code)."""
    try:
        response = await target.jobs.call("ssm", "start_session", **params)
    except SMDebugError as error:
        if error.aws_code == "TargetNotConnected":
            raise CannotAttach(
                "target_not_connected",
                f"SSM cannot reach {target.host} of {target.job} yet.",
                "SSM registers a host a minute or two after training starts: wait and "
                "retry. If it persists, check that the job's role allows ssmmessages:*.",
            ) from None
        if error.aws_code == "InvalidDocument":
            raise CannotAttach(
                "invalid_document",
                f"SSM cannot start a session with document {params.get('DocumentName')}: "
                f"{error.message}",
                "Name a SessionManagerRunShell-type (Standard_Stream) session document that "
                "exists in this account and region, or leave c.SMDebug.ssm_document unset.",
                status=400,
            ) from None
        raise
    response.pop("ResponseMetadata", None)
    return response


async def terminate_session(target: HostTarget, session_id: str) -> None:
    """Harmless twice (the client may have ended the session itself); never raises."""
    try:
        await target.jobs.call("ssm", "terminate_session", SessionId=session_id)
    except SMDebugError as error:
        target.jobs.log.info("sm-debug: TerminateSession %s: %s", session_id, error.code)


@contextlib.asynccontextmanager
async def ssm_session(target: HostTarget, params: dict) -> AsyncIterator[dict]:
    """StartSession, then TerminateSession however the block ends: the one place a
    session of any verb is ended. A verb whose session outlives the call (attach, forward)
    hands the end on with an AsyncExitStack's pop_all."""
    response = await start_session(target, params)
    try:
        yield response
    finally:
        await terminate_session(target, response.get("SessionId", ""))


def shell_params(target: HostTarget) -> dict:
    """StartSession of a shell: the request's document, else c.SMDebug.ssm_document."""
    params = {"Target": target_id(target.job, target.host)}
    document = target.options.get("document") or target.config.ssm_document
    if document:
        params["DocumentName"] = document
    return params


def port_params(target: HostTarget, port: int) -> dict:
    return {
        "Target": target_id(target.job, target.host),
        "DocumentName": PORT_DOCUMENT,
        "Parameters": {"portNumber": [str(port)]},
    }


def require_attachable(target: HostTarget) -> None:
    state = attach_state(target.description)["ssm"]
    if not state["ok"]:
        hint = (
            "Flip the Remote debug switch on this job, then Attach."
            if "Remote debug" in state["reason"]
            else "Pick a running job (Downloading or Training)."
        )
        raise CannotAttach("not_attachable", state["reason"], hint)


async def chosen_client(target: HostTarget) -> ClientChoice:
    loop = asyncio.get_running_loop()
    choice = await loop.run_in_executor(None, choose_client, target.config.ssm_client)
    if choice.kind is None:
        raise plugin_missing()
    if choice.problem:
        target.jobs.log.warning("sm-debug: %s", choice.problem["message"])
    return choice


def data_key(target: HostTarget):
    """kms:GenerateDataKey for a KMS-encrypted session of any kind (run, forward), as the
    attach's client asks for it: 64 bytes (ssm/encryption.kms_data_key)."""
    from ..ssm.encryption import kms_data_key

    def generate(key_id: str, context: dict) -> tuple:
        return kms_data_key(target.jobs.client("kms"), key_id, context)

    return generate


class SSMTransport:
    name = "ssm"
    capabilities = frozenset({"attach", "run", "forward", "files"})

    async def attach(self, target: HostTarget) -> Session:
        require_attachable(target)
        choice = await chosen_client(target)
        params = shell_params(target)
        async with contextlib.AsyncExitStack() as stack:
            response = await stack.enter_async_context(ssm_session(target, params))
            argv, env = self._client_argv(target, choice, params, response)
            end = stack.pop_all()  # the terminal's end terminates the session
        return Session(
            argv=argv,
            env=env,
            target=f"{params['Target']} ({choice.kind})",
            on_end=end.aclose,
        )

    def _client_argv(self, target, choice, params, response) -> tuple[list[str], dict]:
        ssm = target.jobs.client("ssm")
        env = {
            **base_environment(),
            **aws_environment(),
            "PYTHONPATH": PACKAGE_PARENT,
            SESSION_VARIABLE: json.dumps(response),
        }
        timeout = f"{target.config.ssm_connect_timeout:g}"
        if choice.kind == "plugin":
            # The watcher says in the tab when the plugin ends or shows no shell within
            # ssm_connect_timeout.
            label = f"{PLUGIN} {version_text(choice.version)}"
            argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.watch",
                    "--timeout", timeout, "--label", label, "--",
                    *plugin_argv(choice.plugin, ssm.meta.region_name, target.config.profile,
                                 params, ssm.meta.endpoint_url)]  # fmt: skip
            return argv, env
        argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client",
                "--session-env", SESSION_VARIABLE, "--region", ssm.meta.region_name,
                "--endpoint-url", ssm.meta.endpoint_url]  # fmt: skip
        # By environment: job names stay out of argv (and the timeout with them).
        env["SM_DEBUG_SSM_TARGET"] = params["Target"]
        env["SM_DEBUG_SSM_CONNECT_TIMEOUT"] = timeout
        if target.config.profile:
            argv += ["--profile", target.config.profile]
        return argv, env

    async def run(
        self, target: HostTarget, argv: list[str], timeout: float, stdin: bytes = b""
    ) -> RunResult:
        """The command typed into the session's shell by the built-in client (ssm/run.py:
        marker protocol, no echo), in the same session document as Attach."""
        from ..ssm.run import run_in_session

        started = time.monotonic()
        require_attachable(target)
        params = shell_params(target)
        ssm = target.jobs.client("ssm")

        def resume(sid: str) -> dict:
            answer = ssm.resume_session(SessionId=sid)
            return {"SessionId": sid, "TokenValue": answer.get("TokenValue", ""),
                    "StreamUrl": answer.get("StreamUrl", "")}  # fmt: skip

        async with ssm_session(target, params) as response:
            left = max(0.5, timeout - (time.monotonic() - started))
            result = await asyncio.get_running_loop().run_in_executor(
                threads(),
                lambda: run_in_session(
                    response, argv, left, stdin, target=params["Target"],
                    generate_data_key=data_key(target), resume=resume,
                    limit=target.options.get("output_limit", RUN_OUTPUT_LIMIT),
                ),
            )  # fmt: skip
        result.seconds = time.monotonic() - started
        return result

    async def files(self, target: HostTarget) -> FileSystem:
        """The host's files through a pushed standard-library agent (files/agentfs.py).
        Neither its marked run nor its port session counts as a person's session, so it
        never ends or keeps a hold. A host with no Python gets plain shell commands, one
        marked run each (files/shellfs.py)."""
        from ..files.agentfs import AGENT_IDLE_SECONDS, AgentFS, agent_source
        from ..files.shellfs import ShellFS
        from .launch import NoPython, launch

        require_attachable(target)
        try:
            pushed = await launch(target, agent_source(), self, idle_seconds=AGENT_IDLE_SECONDS)
            return AgentFS(pushed, target.host)
        except NoPython:
            target.jobs.log.info("sm-debug: %s has no Python: files by shell commands", target.host)
            return ShellFS(target, self)

    async def forward(self, target: HostTarget, remote_port: int) -> Tunnel:
        from ..ssm.portforward import PortForwardClient, PortForwardError

        require_attachable(target)
        # Always the built-in client, whatever c.SMDebug.ssm_client says: the plugin can
        # only listen on a TCP port (docs/ports.md).
        params = port_params(target, remote_port)
        async with contextlib.AsyncExitStack() as stack:
            response = await stack.enter_async_context(ssm_session(target, params))
            client = PortForwardClient(
                response, target=params["Target"], log=target.jobs.log,
                generate_data_key=data_key(target),
            )  # fmt: skip
            stack.push_async_callback(client.close)
            try:
                await client.connect()
            except PortForwardError as error:
                raise CannotAttach(
                    "forward_failed",
                    f"SSM could not forward port {remote_port} of {target.host}: {error}",
                    "Check that the job's SSM agent runs (Remote debug on) and try again.",
                ) from None
            end = stack.pop_all()

        async def connect():
            try:
                return await client.open_stream()
            except PortForwardError as error:
                raise ConnectionError(str(error)) from None

        session_id = response.get("SessionId", "")
        info = {"session_id": session_id, "client": "builtin"}
        if target.config.ssm_client == "plugin":
            info["note"] = (
                f"Forwards use the built-in client, not {PLUGIN}: the plugin can only "
                "listen on a TCP port that every local user can reach."
            )
        return Tunnel(
            local_port=0,
            remote_port=remote_port,
            target=f"{params['Target']} (builtin, session {session_id})",
            close=end.aclose,
            alive=lambda: client.alive,
            connect=connect,
            info=info,
        )


__all__ = [
    "PORT_DOCUMENT",
    "SESSION_VARIABLE",
    "SSMTransport",
    "choose_client",
    "client_report",
    "plugin_version",
    "ssm_session",
    "start_session",
]
