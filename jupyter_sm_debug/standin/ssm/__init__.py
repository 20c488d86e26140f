"""SSM Session Manager for the local stand-in, laid out like the other services: `api.py`
(its SERVICE entry in the router), `backend.py` (the API calls), `gateway.py` (the data
channel websocket), `agent.py` with `shell.py` and `port.py` (the agent's session kinds),
`sessions.py` (the registry, knobs and faults) and `looks.py` (what a held host sees).

``handle(action, params, standin)`` answers StartSession, ResumeSession and TerminateSession
like SSM does for SageMaker remote-debug targets (``sagemaker-training-job:<job>_algo-<n>``).
The StreamUrl it hands out is the gateway's websocket (``gateway.DataChannelHandler``),
``wss://`` like AWS's (the stand-in's own CA, see ``tls.py``); the gateway hands each
connection to the session's agent (``agent.AgentBase``: ``shell.Agent`` for a shell,
``port.PortAgent`` for port forwarding), which outlives any one connection, so a client
that lost its websocket resumes the same session (ResumeSession, new token, reconnect).
Sessions and the per-stand-in registry with its knobs and faults: ``sessions``.

Session documents come from the stand-in's SSM (moto: CreateDocument/UpdateDocument):
StartSession's DocumentName, else the account's ``SSM-SessionManagerRunShell`` (where Session
Manager keeps its preferences) when it exists. ``runAsEnabled``/``runAsDefaultUser`` are not
applied: the SSM agent in a SageMaker container runs in container mode, where it ignores
them too. Not done: session types other than shells and port forwarding.
"""

from __future__ import annotations

from .backend import (
    SHELL_DOCUMENT,
    DataChannelHandler,
    SessionRegistry,
    SsmSession,
    drop_connections,
    handle,
    registry,
    resume_session,
    start_session,
    terminate_session,
)

__all__ = [
    "DataChannelHandler", "SHELL_DOCUMENT", "SessionRegistry", "SsmSession", "drop_connections",
    "handle", "registry", "resume_session", "start_session", "terminate_session",
]  # fmt: skip
