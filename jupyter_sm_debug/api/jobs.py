"""Routes about jobs: the list, one job, its actions, a host's logs, the environment."""

from __future__ import annotations

import re

from jupyter_server.auth.decorator import authorized
from tornado import web

from .. import logs, names
from ..errors import SMDebugError
from .base import SMDebugHandler
from .spec import Body, Field, Query
from .target import require_host

LIST_TOKEN = re.compile(r"[\x20-\x7e]{1,8192}")
MAX_DESCRIBE = 100  # a page of the list at most


def _names_list(raw: str) -> list[str]:
    wanted = raw.split(",") if raw else []
    if not 1 <= len(wanted) <= MAX_DESCRIBE:
        raise SMDebugError(
            400,
            "invalid_names",
            f"names must list 1 to {MAX_DESCRIBE} job names, comma-separated.",
            "Send the names of the rows the list left undescribed.",
        )
    return [names.job_name(name) for name in dict.fromkeys(wanted)]


def _logs_token(token: str) -> str:
    logs.parse_token(token)  # malformed: 400 before any AWS call
    return token


LIST_QUERY = Query({
    "status": Field(
        "string", f"Unknown status (use one of: {', '.join(names.STATUSES)}).",
        f"Use one of: {', '.join(names.STATUSES)}.", code="invalid_status",
        pattern=re.compile("|".join(names.STATUSES)),
    ),
    # An empty value is refused like any other off-pattern one (the API document says 1-63
    # characters); leave the parameter out for no filter.
    "name_contains": Field(
        "string", "name_contains may hold only letters, digits and hyphens.",
        "Job names never contain other characters.", code="invalid_name_filter",
        pattern=names.NAME_CONTAINS,
    ),
    "max_results": Field(
        "int", "max_results must be a whole number from 1 to 100.",
        "SageMaker returns at most 100 jobs a page.", code="invalid_max_results",
        minimum=1, maximum=100, default=20,
    ),
    # AWS's tokens are printable ASCII; 8192 of anything else would not fit in a URL that
    # tornado reads (64 KiB of headers), so the request would get no answer at all.
    "next_token": Field(
        "string", "next_token is malformed.",
        "Pass back the next_token of the previous page unchanged.", code="invalid_next_token",
        pattern=LIST_TOKEN,
    ),
    "describe": Field(
        "bool", "describe must be true or false.", "Send describe=false or leave it out.",
        code="invalid_query", default=True,
    ),
})  # fmt: skip


class JobsHandler(SMDebugHandler):
    query_spec = LIST_QUERY

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.query()
        self.answer(await self.jobs.list_jobs(
            status=query.get("status"),
            name_contains=query.get("name_contains"),
            max_results=query["max_results"],
            next_token=query.get("next_token"),
            describe=query["describe"],
        ))  # fmt: skip


class DescriptionsHandler(SMDebugHandler):
    """The rows a `describe=false` list left undescribed, filled in one wave:
    `GET /sm-debug/descriptions?names=a,b,c`."""

    query_spec = Query({
        "names": Field(
            "string", f"names must list 1 to {MAX_DESCRIBE} job names, comma-separated.",
            "Send the names of the rows the list left undescribed.", code="invalid_names",
            required=True, check=_names_list,
        ),
    })  # fmt: skip

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.answer(await self.jobs.describe_many(self.query()["names"]))


class JobHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self, job: str) -> None:
        self.answer(await self.jobs.job(self.job))


class RemoteDebugHandler(SMDebugHandler):
    body_spec = Body({
        "enabled": Field(
            "bool", '"enabled" must be true or false.',
            'Send {"enabled": true} or {"enabled": false}.', required=True,
        ),
    })  # fmt: skip

    @web.authenticated
    @authorized
    async def put(self, job: str) -> None:
        enabled = self.body()["enabled"]
        self.answer(await self.jobs.set_remote_debug(self.job, enabled))


class DebugCopyHandler(SMDebugHandler):
    body_spec = Body({
        "hold_seconds": Field(
            "int", '"hold_seconds" must be a whole number from 0 to 86400.',
            "It is how long a failed container stays up for debugging.",
            minimum=0, maximum=86400, default=1800,
        ),
        # A given "name" must be a job name (null is no name: refused, not ignored).
        "name": Field(
            "string", "That is not a valid SageMaker training job name.",
            "Job names are 1-63 letters, digits and hyphens, starting with a letter or digit.",
            code="invalid_job_name", pattern=names.JOB_NAME, default=None,
        ),
        "dry_run": Field(
            "bool", '"dry_run" must be true or false.',
            "true only says how the copy would hold, without starting it.", default=False,
        ),
    })  # fmt: skip

    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        body = self.body()
        answer = await self.jobs.debug_copy(
            self.job, body["hold_seconds"], body["name"], body["dry_run"]
        )
        self.answer(answer, 200 if body["dry_run"] else 201)


class StopHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        # No body to read: a stop has no options.
        self.answer(await self.jobs.stop_job(self.job))


class HostLogsHandler(SMDebugHandler):
    # An empty value is the default here: the view pages with `next_token=` from the start.
    query_spec = Query({
        "next_token": Field(
            "string", check=_logs_token, default=None, blank_is_default=True,
            code="invalid_next_token", message="next_token is malformed.",
            hint="Pass back the next_token of the previous page unchanged.",
        ),
        "limit": Field(
            "int", "limit must be a whole number from 1 to 10000.",
            "CloudWatch returns at most 10000 events a page.", code="invalid_limit",
            minimum=1, maximum=10000, default=1000, blank_is_default=True,
        ),
        "stream": Field(
            "string", "Unknown log stream.",
            "Use stream=training (the container's output) or stream=ssm (the SSM agent).",
            code="invalid_stream", pattern=re.compile("|".join(map(re.escape, logs.STREAMS))),
            default="training", blank_is_default=True,
        ),
    })  # fmt: skip

    @web.authenticated
    @authorized
    async def get(self, job: str, host: str) -> None:
        query = self.query()
        require_host(await self.jobs.describe(self.job), self.job, self.host)
        self.answer(await self.jobs.host_logs(
            self.job, self.host, query["stream"], query["next_token"], query["limit"]
        ))  # fmt: skip


class EnvironmentHandler(SMDebugHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.answer(await self.jobs.environment())
