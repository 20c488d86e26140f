"""Local stand-in for the AWS parts jupyter-sm-debug talks to (SageMaker training jobs, SSM
sessions, CloudWatch Logs, STS...), reached through real boto3 over HTTP.

    from jupyter_sm_debug.standin import StandIn
    with StandIn(clock="manual", seed="demo") as standin:
        os.environ.update(standin.client_env())
        ...

Importing this package is cheap: moto, boto3 and tornado load on start().
"""

from .core import StandIn
from .errors import HostNotLive, StandInError

__all__ = ["HostNotLive", "StandIn", "StandInError"]
