"""REST handlers that run something on a job's hosts: stacks, host state, run on all hosts.

Thin, like handlers.py: validate, call stacks.py / hoststate.py / hostrun.py, answer.
"""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from . import hoststate, names, stacks
from .errors import SMDebugError
from .handlers import SMDebugHandler
from .hostrun import ALL, choose_hosts, choose_timeout, choose_transport, run_on_hosts
from .jobs import attach_state

MAX_ARGS = 256
MAX_COMMAND_BYTES = 64 * 1024


def check_keys(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SMDebugError(
            400,
            "invalid_body",
            f"Unknown field(s): {', '.join(map(repr, unknown))[:200]}.",
            f"Send only: {', '.join(sorted(allowed))}.",
        )


def command_argv(body: dict) -> list[str]:
    """The user's command: {"argv": [...]} as is, or {"shell": "..."} as `sh -c`."""
    has_argv, has_shell = "argv" in body, "shell" in body
    if has_argv == has_shell:
        raise SMDebugError(
            400,
            "invalid_command",
            'Give exactly one of "argv" (a list of strings) and "shell" (a string).',
            'Send {"argv": ["nvidia-smi"]} or {"shell": "df -h | head"}.',
        )
    if has_shell:
        shell = body["shell"]
        if not isinstance(shell, str) or not shell.strip():
            raise SMDebugError(
                400, "invalid_command", '"shell" must be a non-empty string.',
                'Send {"shell": "df -h | head"}.',
            )  # fmt: skip
        argv = ["sh", "-c", shell]
    else:
        argv = body["argv"]
        if (
            not isinstance(argv, list)
            or not argv
            or len(argv) > MAX_ARGS
            or not all(isinstance(a, str) for a in argv)
            or not argv[0]
        ):
            raise SMDebugError(
                400,
                "invalid_command",
                f'"argv" must be a list of 1 to {MAX_ARGS} strings, the first not empty.',
                'Send {"argv": ["py-spy", "dump", "--pid", "1"]}.',
            )
    if any("\0" in a for a in argv) or sum(len(a.encode()) for a in argv) > MAX_COMMAND_BYTES:
        raise SMDebugError(
            400,
            "invalid_command",
            f"The command has a NUL byte or is longer than {MAX_COMMAND_BYTES} bytes.",
            "Send a shorter command; copy a long script to the host instead.",
        )
    return argv


class HostsHandler(SMDebugHandler):
    async def target(self, job: str, given: dict) -> tuple:
        """(description, transport, timeout) once the job is known and reachable. A field
        that is present must be valid (null or "" is not "the default")."""
        state = self.settings["sm_debug"]
        transport = choose_transport(given.get("transport", state.config.default_transport))
        timeout = choose_timeout(given.get("timeout", state.config.run_timeout))
        description = await self.jobs.describe(job, fresh=True)
        reach = attach_state(description)[transport]
        if not reach["ok"]:
            raise SMDebugError(409, "not_attachable", reach["reason"], "Pick a running job.")
        return description, transport, timeout

    def hosts(self, description: dict, given: dict) -> list[str]:
        return choose_hosts(description, given.get("hosts", ALL))


class StacksHandler(HostsHandler):
    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        job = names.job_name(job)
        body = self.json_body()
        check_keys(body, {"hosts", "transport", "timeout"})
        state = self.settings["sm_debug"]
        description, transport, timeout = await self.target(job, body)
        hosts = self.hosts(description, body)
        answer = await stacks.dump(
            self.jobs, state.config, job, description, hosts, transport, timeout
        )
        self.finish(json.dumps(answer))


class HostStateHandler(HostsHandler):
    @web.authenticated
    @authorized
    async def get(self, job: str, host: str) -> None:
        job = names.job_name(job)
        names.host_index(host)
        transport = self.query("transport")
        query = {} if transport is None else {"transport": transport}
        state = self.settings["sm_debug"]
        description, transport, timeout = await self.target(job, query)
        (host,) = choose_hosts(description, [host])
        answer = await hoststate.host_state(
            self.jobs, state.config, job, description, host, transport, timeout
        )
        self.finish(json.dumps(answer))


class RunHandler(HostsHandler):
    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        job = names.job_name(job)
        body = self.json_body()
        check_keys(body, {"argv", "shell", "hosts", "transport", "timeout"})
        argv = command_argv(body)
        state = self.settings["sm_debug"]
        description, transport, timeout = await self.target(job, body)
        hosts = self.hosts(description, body)
        results = await run_on_hosts(
            self.jobs, state.config, job, description, hosts, transport, argv, timeout
        )
        self.finish(
            json.dumps({
                "job": job,
                "transport": transport,
                "argv": argv,
                "hosts": {host: result.as_json() for host, result in results.items()},
            })
        )  # fmt: skip
