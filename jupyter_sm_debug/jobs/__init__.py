"""The SageMaker control plane for the handlers: `JobsService`, one per server.

It is a facade over the parts, each its own module:

- `aws`: the boto3 session, clients and the bounded pool every AWS call runs on;
- `cache`: job descriptions, kept as long as they can be trusted;
- `listing`: pages of jobs, rows, one job in full with its hold;
- `actions`: stop, remote debug, debug copy (with the hold plan from ECR);
- `environment`: the pre-flight report;
- `..logs.LogReader`: the one reader of the hosts' log streams (pages, the hold, and the
  SSH announcement, through `JobsService.logs`);
- `..connect.ssh_trust.SSHTrust`: what the SSH transport trusts about a job's hosts,
  forgotten when the cache sees the job finished.

What a description says (hosts, rows, attach state) is `..description`, which the
transports use too; it is re-exported here for the callers that import it from jobs.
"""

from __future__ import annotations

from ..connect.ssh_trust import SSHTrust
from ..description import attach_state, console_url, detail, hosts_of, summary
from ..logs import LogReader
from .actions import Actions, copy_name, debug_copy_request, public_plan
from .aws import AWS
from .cache import Descriptions
from .environment import Environment
from .listing import Listing

__all__ = [
    "JobsService",
    "attach_state",
    "console_url",
    "copy_name",
    "debug_copy_request",
    "detail",
    "hosts_of",
    "public_plan",
    "summary",
]


class JobsService:
    """Async facade over boto3 for the handlers and the transports. One per server."""

    def __init__(self, config, log):
        self.config = config
        self.log = log
        self.aws = AWS(config, log)
        self.logs = LogReader(self.aws)
        self.ssh_trust = SSHTrust()
        self.descriptions = Descriptions(self.aws, config)
        self.descriptions.on_finished.append(self.ssh_trust.forget_job)
        self.listing = Listing(self.aws, self.descriptions, self.logs, log)
        self.actions = Actions(self.aws, self.descriptions, self.listing)
        self.environment_report = Environment(self.aws, config)

    # -- AWS (the transports call these) -------------------------------------------------

    def session(self):
        return self.aws.session()

    def client(self, service: str):
        return self.aws.client(service)

    async def call(self, service: str, operation: str, **params) -> dict:
        return await self.aws.call(service, operation, **params)

    def close(self) -> None:
        self.aws.close()

    # -- jobs --------------------------------------------------------------------------

    async def describe(self, name: str, fresh: bool = False) -> dict:
        return await self.descriptions.describe(name, fresh)

    async def attach_description(self, name: str, transport: str) -> tuple[dict, bool]:
        return await self.descriptions.attach_description(name, transport)

    async def list_jobs(self, *args, **kwargs) -> dict:
        """See Listing.list_jobs (jobs/listing.py): its signature is the one to read."""
        return await self.listing.list_jobs(*args, **kwargs)

    async def describe_many(self, names: list[str]) -> dict:
        return await self.listing.describe_many(names)

    async def job(self, name: str) -> dict:
        return await self.listing.job(name)

    async def hold(self, description: dict) -> dict | None:
        return await self.listing.hold(description)

    async def host_logs(
        self, job: str, host: str, kind: str, next_token: str | None, limit: int
    ) -> dict:
        return await self.logs.page(job, host, kind, next_token, limit)

    # -- actions -----------------------------------------------------------------------

    async def stop_job(self, name: str) -> dict:
        return await self.actions.stop_job(name)

    async def set_remote_debug(self, name: str, enabled: bool) -> dict:
        return await self.actions.set_remote_debug(name, enabled)

    async def hold_plan(self, description: dict) -> dict:
        return await self.actions.hold_plan(description)

    async def debug_copy(
        self, name: str, hold_seconds: int, new_name: str | None = None, dry_run: bool = False
    ) -> dict:
        return await self.actions.debug_copy(name, hold_seconds, new_name, dry_run)

    # -- environment -------------------------------------------------------------------

    async def environment(self) -> dict:
        return await self.environment_report.report()

    async def custom_endpoint(self) -> str | None:
        return await self.environment_report.custom_endpoint()

    async def account(self) -> str | None:
        return await self.environment_report.account()
