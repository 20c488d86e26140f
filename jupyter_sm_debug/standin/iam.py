"""The stand-in's IAM additions: the account's SageMaker execution role, and
SimulatePrincipalPolicy, which moto 5.2.5 lacks and SDK v3 ModelTrainer calls as it is built.

The stand-in enforces no IAM policy (its SigV4 check admits its own credentials only), so a
simulation answers what the stand-in will do: every action on every resource is "allowed"
for a role that exists; a role that does not exist is NoSuchEntity, as on AWS. The answer
is IAM's own XML (a query service), one result per action and resource.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .errors import StandInError

EXECUTION_ROLE = "SageMakerExecutionRole"
EXECUTION_ROLE_PATH = "/service-role/"
_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _backend(account_id: str):
    from moto.iam.models import iam_backends

    return iam_backends[account_id]["global"]


def ensure_execution_role(account_id: str) -> None:
    """The role the stand-in's jobs run as, trusting SageMaker (moto's IAM is per process)."""
    from moto.iam.exceptions import NotFoundException

    backend = _backend(account_id)
    try:
        backend.get_role(EXECUTION_ROLE)
    except NotFoundException:
        backend.create_role(
            role_name=EXECUTION_ROLE,
            assume_role_policy_document=json.dumps(_TRUST),
            path=EXECUTION_ROLE_PATH,
            permissions_boundary=None,
            description="The stand-in's SageMaker execution role",
            tags=[],
            max_session_duration=None,
        )


def _members(params: dict, name: str) -> list[str]:
    found = []
    index = 1
    while f"{name}.member.{index}" in params:
        found.append(params[f"{name}.member.{index}"])
        index += 1
    return found


def simulate_principal_policy(body: str, account_id: str) -> bytes:
    from moto.iam.exceptions import NotFoundException

    params = {key: values[0] for key, values in parse_qs(body).items()}
    source = params.get("PolicySourceArn", "")
    actions = _members(params, "ActionNames")
    resources = _members(params, "ResourceArns") or ["*"]
    if not source or not actions:
        raise StandInError("ValidationError", "PolicySourceArn and ActionNames are required.")
    if ":role/" in source:
        try:
            _backend(account_id).get_role(source.rsplit("/", 1)[-1])
        except NotFoundException:
            raise StandInError(
                "NoSuchEntity", f"The role with name {source} cannot be found.", 404
            ) from None
    results = "".join(
        "<member>"
        f"<EvalActionName>{escape(action)}</EvalActionName>"
        f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
        "<EvalDecision>allowed</EvalDecision>"
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
