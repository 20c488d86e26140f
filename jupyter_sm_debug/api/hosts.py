"""Routes that reach into a job's hosts: a terminal, stacks, host state, run on all hosts.

Each builds its HostTarget(s) with api.target and hands them to the verb; none of them
knows which transport carries it.
"""

from __future__ import annotations

import re

from jupyter_server.auth.decorator import authorized
from tornado import web

from .. import hoststate, stacks
from ..connect import CannotAttach
from ..errors import SMDebugError
from ..hostrun import answer_json, result_json, run_on_hosts, stream_share
from ..terminals import terminal_name
from .base import SMDebugHandler
from .spec import Body, Field, Query
from .target import host_targets, require_reachable, transport_of

SSM_DOCUMENT_NAME = re.compile(r"[a-zA-Z0-9_.:/-]{3,128}")  # SSM's DocumentName pattern
HOST_NAME = re.compile(r"algo-[1-9][0-9]{0,4}")
MAX_TIMEOUT = 600.0
MAX_ARGS = 256
MAX_COMMAND_BYTES = 64 * 1024


def transport_field(verb: str) -> Field:
    """The transport to use: one of the registry's that can do `verb`."""

    def check(name):
        transport_of(name, verb)  # 400 invalid_transport, naming the choices
        return name

    return Field("any", check=check, default=lambda config: config.default_transport)


TIMEOUT = Field(
    "number", f'"timeout" must be a number of seconds, above 0 and at most {MAX_TIMEOUT:g}.',
    'Send e.g. {"timeout": 30}.', code="invalid_timeout",
    minimum=0, exclusive_minimum=True, maximum=MAX_TIMEOUT,
    default=lambda config: config.run_timeout,
)  # fmt: skip
HOSTS = Field(
    "strings", '"hosts" must be a non-empty list of the job\'s hosts.',
    'Send e.g. {"hosts": ["algo-1"]}.', code="invalid_hosts",
    min_items=1, pattern=HOST_NAME, default=None,
)  # fmt: skip


# -- a terminal -------------------------------------------------------------------------------


def _host_key_needs_address(body: dict) -> dict:
    if "host_key" in body and not body.get("address"):
        raise SMDebugError(
            400,
            "invalid_body",
            '"host_key" must be a string, given with "address".',
            'Send {"address": "10.0.1.7:22", "host_key": "ssh-ed25519 AAAA..."}.',
        )
    return body


ATTACH_BODY = Body(
    {
        "transport": transport_field("attach"),
        "address": Field(
            "string", '"address" must be a string.',
            'Send {"address": "10.0.1.7:22"} or leave it out.',
        ),
        "host_key": Field(
            "string", '"host_key" must be a string, given with "address".',
            'Send {"address": "10.0.1.7:22", "host_key": "ssh-ed25519 AAAA..."}.',
        ),
        "replace": Field(
            "bool", '"replace" must be true or false.',
            "true ends a live terminal of this host that runs to another target.",
            default=False,
        ),
        "document": Field(
            "string", '"document" must be an SSM document name.',
            'Send {"document": "My-Session-Document"} (3-128 of A-Z a-z 0-9 _ - . : /) '
            "or leave it out.", pattern=SSM_DOCUMENT_NAME,
        ),
    },
    check=_host_key_needs_address,
)  # fmt: skip


def changed(before: dict, after: dict) -> bool:
    """Whether a job moved on between two descriptions (status, remote debug, an update)."""
    keys = ("TrainingJobStatus", "SecondaryStatus", "LastModifiedTime", "RemoteDebugConfig")
    return any(before.get(key) != after.get(key) for key in keys)


class TerminalsHandler(SMDebugHandler):
    body_spec = ATTACH_BODY

    @web.authenticated
    @authorized
    async def post(self, job: str, host: str) -> None:
        body = self.body()
        name = body["transport"]
        options = {
            **({"address": body["address"], "host_key": body.get("host_key")}
               if body.get("address") else {}),
            **({"document": body["document"]} if body.get("document") else {}),
        }  # fmt: skip
        # From the cache the list filled when it says the job is attachable (no round trip);
        # a stale one is caught below, when the transport's own call fails.
        (target,), cached = await host_targets(self, name, "attach", [self.host], options, True)
        transport = transport_of(name, "attach")
        try:
            session = await transport.attach(target)
        except CannotAttach:
            if not cached:
                raise
            # The cached description may be out of date (the job ended, remote debug went
            # off): say so from a current one, or try once more if it changed.
            current = await self.jobs.describe(self.job, fresh=True)
            if not changed(target.description, current):
                raise
            target.description = current
            require_reachable(current, name)
            session = await transport.attach(target)
        terminal, reused, live = await self.state.terminals.open(
            terminal_name(self.job, self.host, name), session, replace=body["replace"]
        )
        answer = {
            "terminal": {"name": terminal},
            "transport": name,
            "target": live.target,  # where the terminal really is
            "reused": reused,
        }
        self.answer({**live.info, **answer}, 200 if reused else 201)


# -- stacks, host state, run ------------------------------------------------------------------


class StacksHandler(SMDebugHandler):
    body_spec = Body({"hosts": HOSTS, "transport": transport_field("run"), "timeout": TIMEOUT})

    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        body = self.body()
        targets, _ = await host_targets(self, body["transport"], "run", body["hosts"])
        self.answer(await stacks.dump(targets, body["timeout"]))


class HostStateHandler(SMDebugHandler):
    query_spec = Query({"transport": transport_field("run")})

    @web.authenticated
    @authorized
    async def get(self, job: str, host: str) -> None:
        query = self.query()
        targets, _ = await host_targets(self, query["transport"], "run", [self.host])
        self.answer(await hoststate.host_state(targets[0], self.config.run_timeout))


def command_argv(body: dict) -> dict:
    """The user's command: {"argv": [...]} as is, or {"shell": "..."} as `sh -c`."""
    if ("argv" in body) == ("shell" in body):
        raise SMDebugError(
            400,
            "invalid_command",
            'Give exactly one of "argv" (a list of strings) and "shell" (a string).',
            'Send {"argv": ["nvidia-smi"]} or {"shell": "df -h | head"}.',
        )
    argv = ["sh", "-c", body.pop("shell")] if "shell" in body else body["argv"]
    if not argv[0]:
        raise ARGV.refuse("argv")
    if any("\0" in a for a in argv) or sum(len(a.encode()) for a in argv) > MAX_COMMAND_BYTES:
        raise SMDebugError(
            400,
            "invalid_command",
            f"The command has a NUL byte or is longer than {MAX_COMMAND_BYTES} bytes.",
            "Send a shorter command; copy a long script to the host instead.",
        )
    body["argv"] = argv
    return body


ARGV = Field(
    "strings", f'"argv" must be a list of 1 to {MAX_ARGS} strings, the first not empty.',
    'Send {"argv": ["py-spy", "dump", "--pid", "1"]}.', code="invalid_command",
    min_items=1, max_items=MAX_ARGS,
)  # fmt: skip
RUN_BODY = Body(
    {
        "argv": ARGV,
        "shell": Field(
            "string", '"shell" must be a non-empty string.', 'Send {"shell": "df -h | head"}.',
            code="invalid_command", pattern=re.compile(r"(?s).*\S.*"),
        ),
        "hosts": HOSTS,
        "transport": transport_field("run"),
        "timeout": TIMEOUT,
    },
    check=command_argv,
)  # fmt: skip


class RunHandler(SMDebugHandler):
    body_spec = RUN_BODY

    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        body = self.body()
        argv = body["argv"]
        targets, _ = await host_targets(self, body["transport"], "run", body["hosts"])
        head = {"job": self.job, "transport": body["transport"], "argv": argv}
        share = stream_share(len(targets), reserved=len(answer_json(head).encode()))
        results = await run_on_hosts(targets, argv, body["timeout"], output_limit=share)
        hosts = {host: result_json(result, share) for host, result in results.items()}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(answer_json({**head, "hosts": hosts}))
