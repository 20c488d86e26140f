"""The data channel's handshake payloads (HandshakeRequest, HandshakeResponse,
HandshakeComplete) and the KMS encryption challenge, as session-manager-plugin's
datachannel and amazon-ssm-agent's session/datachannel encode and parse them; the frames
that carry them are ``protocol.py``'s."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Dict, List

from .protocol import ActionType, ProtocolError, _json, _load, _parser


@dataclass
class RequestedAction:
    action_type: str
    parameters: Any = None


@dataclass
class HandshakeRequest:
    agent_version: str
    actions: List[RequestedAction]


@dataclass
class ProcessedAction:
    action_type: str
    status: int
    result: Any = None
    error: str = ""


@dataclass
class HandshakeResponse:
    client_version: str
    actions: List[ProcessedAction]
    errors: List[str] = field(default_factory=list)


@dataclass
class HandshakeComplete:
    time_to_complete_ns: int = 0  # Go time.Duration: nanoseconds
    customer_message: str = ""


def session_type_action(session_type: str, properties: Any = None) -> RequestedAction:
    return RequestedAction(
        ActionType.SESSION_TYPE, {"SessionType": session_type, "Properties": properties}
    )


def kms_action(kms_key_id: str, challenge: str = "") -> RequestedAction:
    """The KMSEncryption action as the agent's ``buildHandshakeRequestPayload`` builds it:
    the key id and its block cipher's random challenge (base64 of 16 random bytes)."""
    params = {"KMSKeyId": kms_key_id}
    if challenge:
        params["Challenge"] = challenge
    return RequestedAction(ActionType.KMS_ENCRYPTION, params)


def handshake_request_payload(req: HandshakeRequest) -> bytes:
    return _json(
        {
            "AgentVersion": req.agent_version,
            "RequestedClientActions": [
                {"ActionType": a.action_type, "ActionParameters": a.parameters} for a in req.actions
            ],
        }
    )


@_parser
def parse_handshake_request(payload: bytes) -> HandshakeRequest:
    obj = _load(payload, "HandshakeRequest")
    actions = obj.get("RequestedClientActions") or []
    if not isinstance(actions, list):
        raise ProtocolError("RequestedClientActions is not a list")
    parsed = []
    for a in actions:
        if not isinstance(a, dict) or not isinstance(a.get("ActionType"), str):
            raise ProtocolError("a requested client action has no ActionType")
        parsed.append(RequestedAction(a["ActionType"], a.get("ActionParameters")))
    return HandshakeRequest(str(obj.get("AgentVersion") or ""), parsed)


def handshake_response_payload(resp: HandshakeResponse) -> bytes:
    return _json(
        {
            "ClientVersion": resp.client_version,
            "ProcessedClientActions": [
                {
                    "ActionType": a.action_type,
                    "ActionStatus": int(a.status),
                    "ActionResult": a.result,
                    "Error": a.error,
                }
                for a in resp.actions
            ],
            # Go marshals a nil slice as null; the agent accepts both.
            "Errors": resp.errors or None,
        }
    )


@_parser
def parse_handshake_response(payload: bytes) -> HandshakeResponse:
    obj = _load(payload, "HandshakeResponse")
    actions = []
    for a in obj.get("ProcessedClientActions") or []:
        if not isinstance(a, dict):
            raise ProtocolError("a processed client action is not an object")
        actions.append(
            ProcessedAction(
                str(a.get("ActionType") or ""),
                int(a.get("ActionStatus") or 0),
                a.get("ActionResult"),
                str(a.get("Error") or ""),
            )
        )
    errors = [str(e) for e in obj.get("Errors") or []]
    return HandshakeResponse(str(obj.get("ClientVersion") or ""), actions, errors)


def kms_encryption_result(ciphertext_key: bytes) -> Dict[str, Any]:
    """The KMSEncryption action's ActionResult: Go marshals []byte as base64."""
    return {
        "KMSCipherTextKey": base64.b64encode(ciphertext_key).decode(),
        "KMSCipherTextHash": None,
    }


@_parser
def parse_kms_encryption_result(result: Any) -> bytes:
    key = result.get("KMSCipherTextKey") if isinstance(result, dict) else None
    if not isinstance(key, str) or not key:
        raise ProtocolError("the KMSEncryption result has no KMSCipherTextKey")
    try:
        return base64.b64decode(key, validate=True)
    except ValueError:
        raise ProtocolError("KMSCipherTextKey is not base64") from None


def challenge_payload(challenge: bytes) -> bytes:
    """EncChallengeRequest and EncChallengeResponse: {"Challenge": base64}."""
    return _json({"Challenge": base64.b64encode(challenge).decode()})


@_parser
def parse_challenge(payload: bytes) -> bytes:
    obj = _load(payload, "encryption challenge")
    value = obj.get("Challenge")
    if not isinstance(value, str):
        raise ProtocolError("the encryption challenge has no Challenge")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise ProtocolError("the Challenge is not base64") from None


def handshake_complete_payload(done: HandshakeComplete) -> bytes:
    return _json(
        {
            "HandshakeTimeToComplete": int(done.time_to_complete_ns),
            "CustomerMessage": done.customer_message,
        }
    )


@_parser
def parse_handshake_complete(payload: bytes) -> HandshakeComplete:
    obj = _load(payload, "HandshakeComplete")
    ttc = obj.get("HandshakeTimeToComplete") or 0
    return HandshakeComplete(
        int(ttc) if isinstance(ttc, (int, float)) else 0,
        str(obj.get("CustomerMessage") or ""),
    )
