"""SSM transport: SageMaker remote debug sessions through AWS Systems Manager.

The server calls StartSession itself, so a host that SSM cannot reach is a clear 409 before
any terminal opens, then hands the session (StreamUrl + TokenValue) to the session client
through an environment variable — never an argv, which any local user could read with ps.
The client is AWS's session-manager-plugin when installed, else the built-in one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from ..errors import SMDebugError
from ..jobs import attach_state
from . import AttachRequest, CannotAttach, Session, base_environment

SESSION_VARIABLE = "AWS_SSM_START_SESSION_RESPONSE"  # the name the plugin itself accepts


def target_id(job: str, host: str) -> str:
    return f"sagemaker-training-job:{job}_{host}"


def aws_environment() -> dict[str, str]:
    """What a client needs to call AWS (TerminateSession) like the server does: profile,
    region, endpoint, and the credential sources (keys, container/role credentials)."""
    return {name: value for name, value in os.environ.items() if name.startswith("AWS_")}


def choose_client(preference: str) -> tuple[str, str | None]:
    plugin = shutil.which("session-manager-plugin")
    if preference == "plugin" and plugin is None:
        raise CannotAttach(
            "plugin_missing",
            "c.SMDebug.ssm_client is 'plugin' but session-manager-plugin is not installed.",
            "Install the Session Manager plugin, or set c.SMDebug.ssm_client = 'auto' to use "
            "the built-in client.",
            status=503,
        )
    if preference == "builtin" or plugin is None:
        return "builtin", None
    return "plugin", plugin


class SSMTransport:
    name = "ssm"

    async def prepare(self, request: AttachRequest) -> Session:
        state = attach_state(request.description)["ssm"]
        if not state["ok"]:
            hint = (
                "Flip the Remote debug switch on this job, then Attach."
                if "Remote debug" in state["reason"]
                else "Pick a running job (Downloading or Training)."
            )
            raise CannotAttach("not_attachable", state["reason"], hint)
        kind, plugin = choose_client(request.config.ssm_client)
        target = target_id(request.job, request.host)
        try:
            response = await request.jobs.call("ssm", "start_session", Target=target)
        except SMDebugError as error:
            if "TargetNotConnected" in error.message or "not connected" in error.message:
                raise CannotAttach(
                    "target_not_connected",
                    f"SSM cannot reach {request.host} of {request.job} yet.",
                    "SSM registers a host a minute or two after training starts: wait and "
                    "retry. If it persists, check that the job's role allows ssmmessages:*.",
                ) from None
            raise
        response.pop("ResponseMetadata", None)
        session_id = response.get("SessionId")

        async def terminate() -> None:
            # The client ends the session itself when it can; one killed before it got
            # that far (a terminal closed at once) would leave it open at SSM until the
            # idle timeout. Terminating a session twice is harmless.
            try:
                await request.jobs.call("ssm", "terminate_session", SessionId=session_id)
            except SMDebugError as error:
                request.jobs.log.info("sm-debug: TerminateSession %s: %s", session_id, error.code)

        ssm = request.jobs.client("ssm")
        region = ssm.meta.region_name
        endpoint = ssm.meta.endpoint_url
        env = {**base_environment(), **aws_environment(), SESSION_VARIABLE: json.dumps(response)}
        if kind == "plugin":
            # The plugin's own calling convention (as the AWS CLI uses it), with the session
            # passed by variable name rather than as JSON in the argv.
            argv = [
                plugin,
                SESSION_VARIABLE,
                region,
                "StartSession",
                request.config.profile or "",
                json.dumps({"Target": target}),
                endpoint,
            ]
        else:
            argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client",
                    "--session-env", SESSION_VARIABLE, "--region", region,
                    "--endpoint-url", endpoint]  # fmt: skip
            if request.config.profile:
                argv += ["--profile", request.config.profile]
        return Session(argv=argv, env=env, target=f"{target} ({kind})", on_end=terminate)
