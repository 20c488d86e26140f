"""The stand-in's IAM additions: the account's SageMaker execution role, and
SimulatePrincipalPolicy, which moto 5.2.5 lacks and SDK v3 ModelTrainer calls as it is built.

The simulation evaluates the principal's own policies as IAM does (inline and attached,
Allow and Deny statements, ``*`` and ``?`` wildcards in actions and resources): an explicit
Deny is "explicitDeny", an Allow "allowed", no matching statement "implicitDeny". A role or
user that does not exist is NoSuchEntity (404), as on AWS. The execution role the stand-in
makes has a policy allowing everything (the stand-in enforces no IAM policy itself). The
answer is IAM's own XML (a query service), one result per action and resource.
"""

from __future__ import annotations

import fnmatch
import json
import re

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
    role = backend.get_role(EXECUTION_ROLE)
    if "standin-all" not in role.policies:
        backend.put_role_policy(EXECUTION_ROLE, "standin-all", json.dumps(_ALLOW_ALL))


_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _documents(principal) -> list[dict]:
    """The policy documents of a moto role or user: inline, then attached (managed)."""
    texts = list((getattr(principal, "policies", None) or {}).values())
    for policy in (getattr(principal, "managed_policies", None) or {}).values():
        version = getattr(policy, "default_version", None)
        texts.append(getattr(version, "document", None) or getattr(policy, "document", "{}"))
    documents = []
    for text in texts:
        try:
            documents.append(json.loads(text) if isinstance(text, str) else dict(text))
        except (TypeError, ValueError):
            continue
    return documents


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches(patterns: list[str], value: str, case: bool) -> bool:
    for pattern in patterns:
        regex = fnmatch.translate(pattern)
        if re.fullmatch(regex, value, 0 if case else re.IGNORECASE):
            return True
    return False


def _decision(documents: list[dict], action: str, resource: str) -> str:
    decision = "implicitDeny"
    for document in documents:
        statements = document.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if not _matches(_listed(statement.get("Action")), action, case=False):
                continue
            if not _matches(_listed(statement.get("Resource")), resource, case=True):
                continue
            if statement.get("Effect") == "Deny":
                return "explicitDeny"
            if statement.get("Effect") == "Allow":
                decision = "allowed"
    return decision
