"""IAM's API here: SimulatePrincipalPolicy, parsed from its query body and answered in
IAM's XML (the rest of IAM is moto's)."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from ..errors import StandInError
from ..service import Call, Response, Service
from .backend import _backend, _decision, _documents


def _members(params: dict, name: str) -> list[str]:
    found = []
    index = 1
    while f"{name}.member.{index}" in params:
        found.append(params[f"{name}.member.{index}"])
        index += 1
    return found


def simulate_principal_policy(body: str, account_id: str) -> bytes:
    from moto.iam.exceptions import NoSuchEntity, NotFoundException

    params = {key: values[0] for key, values in parse_qs(body).items()}
    source = params.get("PolicySourceArn", "")
    actions = _members(params, "ActionNames")
    resources = _members(params, "ResourceArns") or ["*"]
    if not source or not actions:
        raise StandInError("ValidationError", "PolicySourceArn and ActionNames are required.")
    kind = "role" if ":role/" in source else "user" if ":user/" in source else None
    if kind is None:
        raise StandInError("InvalidInput", f"Invalid ARN {source}: not a role or a user.")
    name = source.rsplit("/", 1)[-1]
    backend = _backend(account_id)
    try:
        principal = backend.get_role(name) if kind == "role" else backend.get_user(name)
    except (NotFoundException, NoSuchEntity):
        raise StandInError(
            "NoSuchEntity", f"The {kind} with name {name} cannot be found.", 404
        ) from None
    documents = _documents(principal)
    results = "".join(
        "<member>"
        f"<EvalActionName>{escape(action)}</EvalActionName>"
        f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
        f"<EvalDecision>{_decision(documents, action, resource)}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/>"
        "</member>"
        for action in actions
        for resource in resources
    )
    return (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
        f"<EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    ).encode()


def dispatch(standin, call: Call) -> Response:
    answer = simulate_principal_policy(call.body, standin.account_id)
    return Response("200 OK", [("Content-Type", "text/xml")], answer)


SERVICE = Service("iam", ("SimulatePrincipalPolicy",), dispatch)
