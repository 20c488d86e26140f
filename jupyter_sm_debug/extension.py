"""Wiring of the server extension: one settings object, one service, one route table."""

from __future__ import annotations

from dataclasses import dataclass

from jupyter_server.utils import url_path_join

from . import forward_handlers, handlers, hosthandlers, proxy
from .config import SMDebug
from .forwards import ForwardRegistry
from .jobs import JobsService
from .terminals import TerminalSessions

JOB = r"(?P<job>[^/]+)"
HOST = r"(?P<host>[^/]+)"


@dataclass
class State:
    """What the handlers share, kept in web_app.settings["sm_debug"]."""

    config: SMDebug
    jobs: JobsService
    terminals: TerminalSessions
    forwards: ForwardRegistry


def route_table(base_url: str) -> list[tuple]:
    base = url_path_join(base_url, "sm-debug")
    return [
        (url_path_join(base, "jobs") + "/?", handlers.JobsHandler),
        (url_path_join(base, "jobs", JOB) + "/?", handlers.JobHandler),
        (url_path_join(base, "jobs", JOB, "remote-debug") + "/?", handlers.RemoteDebugHandler),
        (url_path_join(base, "jobs", JOB, "debug-copy") + "/?", handlers.DebugCopyHandler),
        (url_path_join(base, "jobs", JOB, "stop") + "/?", handlers.StopHandler),
        (
            url_path_join(base, "jobs", JOB, "hosts", r"(?P<host>[^/]+)", "logs") + "/?",
            handlers.HostLogsHandler,
        ),
        (
            url_path_join(base, "jobs", JOB, "hosts", r"(?P<host>[^/]+)", "terminals") + "/?",
            handlers.TerminalsHandler,
        ),
        (url_path_join(base, "jobs", JOB, "stacks") + "/?", hosthandlers.StacksHandler),
        (url_path_join(base, "jobs", JOB, "run") + "/?", hosthandlers.RunHandler),
        (
            url_path_join(base, "jobs", JOB, "hosts", r"(?P<host>[^/]+)", "state") + "/?",
            hosthandlers.HostStateHandler,
        ),
        (url_path_join(base, "environment") + "/?", handlers.EnvironmentHandler),
        (
            url_path_join(base, "jobs", JOB, "hosts", HOST, "ports") + "/?",
            forward_handlers.PortsHandler,
        ),
        (
            url_path_join(base, "jobs", JOB, "hosts", HOST, "ports", r"(?P<port>[^/]+)") + "/?",
            forward_handlers.PortHandler,
        ),
        (url_path_join(base, "forwards") + "/?", forward_handlers.ForwardsHandler),
        (
            url_path_join(base, "proxy", JOB, HOST, r"(?P<port>[^/]+)") + r"(?P<path>/.*)?",
            proxy.ProxyHandler,
        ),
        (url_path_join(base, "descriptions") + "/?", handlers.DescriptionsHandler),
        (url_path_join(base, "(?P<path>.*)"), handlers.NotFoundHandler),
    ]


def load(server_app) -> None:
    config = SMDebug(parent=server_app)
    web_app = server_app.web_app
    jobs = JobsService(config, server_app.log)
    state = State(
        config=config,
        jobs=jobs,
        terminals=TerminalSessions(web_app, server_app.log),
        forwards=ForwardRegistry(config, jobs, server_app.log),
    )
    web_app.settings["sm_debug"] = state
    web_app.add_handlers(".*$", route_table(web_app.settings["base_url"]))
    server_app.log.info("jupyter_sm_debug: /sm-debug API ready")
