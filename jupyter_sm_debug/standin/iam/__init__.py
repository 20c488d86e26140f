"""IAM: the account's SageMaker execution role (``backend``) and SimulatePrincipalPolicy
(``api``), which moto 5.2.5 lacks; see backend.py."""

from .api import simulate_principal_policy
from .backend import EXECUTION_ROLE, EXECUTION_ROLE_PATH, ensure_execution_role

__all__ = [
    "EXECUTION_ROLE",
    "EXECUTION_ROLE_PATH",
    "ensure_execution_role",
    "simulate_principal_policy",
]
