"""The pre-flight check the UI shows: region, identity, clients, versions, problems and
what to do about each."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TYPE_CHECKING

from .. import __version__
from ..connect.clients import ssh_problem
from ..connect.ssm import client_report
from ..errors import SMDebugError, from_boto

if TYPE_CHECKING:
    from ..config import SMDebug
    from .aws import AWS

ACCOUNT_TTL = 300.0  # seconds an identity answer (GetCallerIdentity) is reused


class Environment:
    def __init__(self, aws: AWS, config: SMDebug):
        self.aws = aws
        self.config = config
        self._account: tuple[float, dict] | None = None

    async def report(self) -> dict:
        import boto3
        import botocore
        import botocore.exceptions

        problems: list[dict] = []
        session = await self.aws.run(self.aws.session)
        region = session.region_name
        credentials = await self.aws.run(session.get_credentials)
        account = None
        if region is None:
            problems.append(from_boto(botocore.exceptions.NoRegionError()).to_json()["error"])
        if credentials is None:
            problems.append(from_boto(botocore.exceptions.NoCredentialsError()).to_json()["error"])
        if region and credentials:
            try:
                account = await self.account()
            except SMDebugError as error:
                problems.append(error.to_json()["error"])
        ssm_clients, ssm_problems = await self.aws.run(client_report, self.config.ssm_client)
        problems += ssm_problems
        problems += [problem for problem in [ssh_problem()] if problem]
        return {
            "region": region,
            "account": account,
            "credentials": {
                "found": credentials is not None,
                "method": getattr(credentials, "method", None),
            },
            "endpoint_url": await self.custom_endpoint() if region else None,
            "clients": {"ssh": shutil.which("ssh"), **ssm_clients},
            "default_transport": self.config.default_transport,
            "versions": {
                "jupyter_sm_debug": __version__,
                "boto3": boto3.__version__,
                "botocore": botocore.__version__,
                "python": sys.version.split()[0],
            },
            "problems": problems,
        }

    async def custom_endpoint(self) -> str | None:
        """The SageMaker endpoint when it is not AWS's own (e.g. the local stand-in)."""
        client = await self.aws.run(self.aws.client, "sagemaker")
        url = client.meta.endpoint_url
        return None if url.endswith(".amazonaws.com") or url.endswith(".amazonaws.com.cn") else url

    async def account(self) -> str | None:
        if self._account and time.monotonic() - self._account[0] < ACCOUNT_TTL:
            return self._account[1].get("Account")
        identity = await self.aws.call("sts", "get_caller_identity")
        self._account = (time.monotonic(), identity)
        return identity.get("Account")
