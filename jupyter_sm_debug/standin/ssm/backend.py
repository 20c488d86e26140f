"""SSM's API calls: StartSession, ResumeSession and TerminateSession (see the package)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
from typing import Any, Optional

from ...ssm import protocol as p
from ..errors import StandInError
from .gateway import DataChannelHandler
from .sessions import SessionRegistry, SsmSession, registry

# Names others use from here: the route's handler (server.py) and the sessions (tests).
__all__ = [
    "DataChannelHandler", "SHELL_DOCUMENT", "SessionRegistry", "SsmSession", "drop_connections",
    "handle", "registry", "resume_session", "start_session", "terminate_session",
]  # fmt: skip

TARGET = re.compile(
    r"sagemaker-training-job:(?P<job>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})_(?P<host>algo-[1-9][0-9]{0,4})"
)
SHELL_DOCUMENT = p.SHELL_DOCUMENT


# ---------------------------------------------------------------------------- API


def handle(action: str, params: dict, standin: Any) -> dict:
    """Answer one SSM API call of the JSON protocol (``X-Amz-Target: AmazonSSM.<action>``)."""
    if action == "StartSession":
        return start_session(params, standin)
    if action == "TerminateSession":
        return terminate_session(params, standin)
    if action == "ResumeSession":
        return resume_session(params, standin)
    raise StandInError(
        "InvalidAction", f"The stand-in's SSM does not implement {action}.", status=400
    )


def _not_connected(target: str) -> StandInError:
    return StandInError("TargetNotConnected", f"{target} is not connected.")


def start_session(params: dict, standin: Any) -> dict:
    target = params.get("Target")
    if not isinstance(target, str) or not target:
        raise StandInError("ValidationException", "Target is required.")
    document = params.get("DocumentName") or SHELL_DOCUMENT
    port = None
    if document == p.PORT_DOCUMENT:
        inputs, port = {}, port_parameter(params.get("Parameters"))
        local_port = local_port_parameter(params.get("Parameters"))
    else:
        inputs = session_document_inputs(standin, document)
    match = TARGET.fullmatch(target)
    if not match:
        raise _not_connected(target)
    job, host = match.group("job"), match.group("host")
    check_target(standin, job, host, target)

    session_id = f"standin-{secrets.token_hex(9)[:17]}"
    token = secrets.token_urlsafe(48)
    # The real StreamUrl carries the gateway cell; clients pass it through untouched.
    cell = secrets.token_urlsafe(12)
    url = (
        f"{_ws_base(standin)}/v1/data-channel/{session_id}"
        f"?role=publish_subscribe&cell-number={cell}"
    )
    session = SsmSession(session_id, token, target, job, host, url, document=document)
    session.inputs = inputs
    session.port = port
    if port is not None:
        session.local_port = local_port
    reg = registry(standin)
    with reg.lock:
        reg.sessions[session_id] = session
    return {"SessionId": session_id, "TokenValue": token, "StreamUrl": url}


def port_parameter(parameters: Any) -> int:
    """portNumber of AWS-StartPortForwardingSession ({"portNumber": ["6006"]}): 1-65535;
    localPortNumber is the client's business."""
    values = parameters.get("portNumber") if isinstance(parameters, dict) else None
    value = values[0] if isinstance(values, list) and len(values) == 1 else None
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]{0,4}", value):
        raise StandInError(
            "InvalidParameters", "portNumber must be one port number from 1 to 65535."
        )
    if int(value) > 65535:
        raise StandInError("InvalidParameters", "portNumber must be from 1 to 65535.")
    return int(value)


def local_port_parameter(parameters: dict) -> str:
    """localPortNumber, "" when not given: the document's properties carry it to the
    client (the plugin listens where the handshake says, not where its argv says)."""
    values = parameters.get("localPortNumber")
    if values is None:
        return ""
    value = values[0] if isinstance(values, list) and len(values) == 1 else None
    if not isinstance(value, str) or not re.fullmatch(r"0|[1-9][0-9]{0,4}", value):
        raise StandInError("InvalidParameters", "localPortNumber must be a port number.")
    if int(value) > 65535:
        raise StandInError("InvalidParameters", "localPortNumber must be from 0 to 65535.")
    return value


def session_document_inputs(standin: Any, name: str) -> dict:
    """The inputs of a Standard_Stream session document in the stand-in's SSM; {} for the
    default shell document when the account never wrote its preferences."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z0-9_\-.:/]{3,128}", name):
        raise StandInError("ValidationException", "DocumentName is not a valid document name.")
    from moto.ssm.models import ssm_backends

    backend = ssm_backends[standin.account_id][standin.region]
    try:
        info = backend.get_document(name, None, None, "JSON")
    except Exception:  # noqa: BLE001 - moto's own "not found" errors
        if name == SHELL_DOCUMENT:
            return {}  # AWS's own default: no preferences set
        raise StandInError("InvalidDocument", f"Document {name} does not exist.") from None
    try:
        content = json.loads(info.get("Content") or "{}")
    except ValueError:
        content = {}
    if info.get("DocumentType") != "Session" or content.get("sessionType") != "Standard_Stream":
        raise StandInError(
            "InvalidDocument",
            f"Document {name} is not a Standard_Stream session document: the stand-in runs "
            "interactive shells only.",
        )
    inputs = content.get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def check_target(standin: Any, job: str, host: str, target: str) -> None:
    """TargetNotConnected unless the host's container runs with its SSM agent.

    SageMaker starts the agent only with remote debug on (``RemoteDebugConfig``), and only
    while the container is up: the stand-in's ``host_env`` raises ``HostNotLive`` (already
    a TargetNotConnected) for a host that is not running or does not exist.
    """
    describe = getattr(standin, "job", None)
    if describe is not None:
        description = describe(job)
        if not description or not (description.get("RemoteDebugConfig") or {}).get(
            "EnableRemoteDebug"
        ):
            raise _not_connected(target)
    standin.host_env(job, host)


def terminate_session(params: dict, standin: Any) -> dict:
    session_id = params.get("SessionId")
    if not isinstance(session_id, str) or not session_id:
        raise StandInError("ValidationException", "SessionId is required.")
    reg = registry(standin)
    with reg.lock:
        session = reg.sessions.get(session_id)
        if session is None or session.status == "Terminated":
            # SSM answers with the id for sessions that are gone already.
            return {"SessionId": session_id}
        session.status = "Terminated"
        agent = session.agent
    if agent is not None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: the stand-in stopped
            agent.loop.add_callback(agent.end, "")
    return {"SessionId": session_id}


def resume_session(params: dict, standin: Any) -> dict:
    """A new token (and the same StreamUrl) for a session that is not terminated: its
    client lost the data channel, or has not opened it yet."""
    session_id = params.get("SessionId")
    reg = registry(standin)
    with reg.lock:
        session = reg.sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or session.status == "Terminated":
            raise StandInError("DoesNotExistException", f"Session {session_id} is not active.")
        session.token = secrets.token_urlsafe(48)
        session.token_used = False
        return {
            "SessionId": session.session_id,
            "TokenValue": session.token,
            "StreamUrl": session.stream_url,
        }


def _ws_base(standin: Any) -> str:
    """wss:// on the stand-in's TLS port, like AWS (ws:// only for a stand-in without one)."""
    url = getattr(standin, "tls_url", None)
    if not isinstance(url, str):
        url = getattr(standin, "url", None) or f"http://127.0.0.1:{standin.port}"
    return "ws" + url[len("http") :].rstrip("/")


def drop_connections(standin: Any, session_id: Optional[str] = None) -> list:
    """Fault: cut the data-channel websocket of connected sessions (all, or one) without a
    close frame, as a network failure does; the agent side goes on and waits for the
    client to resume. Returns the ids of the sessions cut."""
    reg = registry(standin)
    with reg.lock:
        agents = [
            s.agent
            for s in reg.sessions.values()
            if s.agent is not None and s.status == "Connected"
            and (session_id is None or s.session_id == session_id)
        ]  # fmt: skip
    cut = []
    for agent in agents:
        done = threading.Event()

        def drop(agent=agent, done=done):
            try:
                if agent.drop_connection():
                    cut.append(agent.session.session_id)
            finally:
                done.set()

        try:
            agent.loop.add_callback(drop)
        except RuntimeError:
            continue
        done.wait(5)
    return cut
