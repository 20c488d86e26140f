"""The one route table of /sm-debug."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from .. import proxy
from ..errors import SMDebugError
from . import forwards, hosts, jobs, kernels
from .base import SMDebugHandler

JOB = r"(?P<job>[^/]+)"
HOST = r"(?P<host>[^/]+)"
PORT = r"(?P<port>[^/]+)"


def _no_such_route():
    # A new decorated function per HTTP method: @authorized settles its action ("read" or
    # "write") at the first call, so one function shared by GET and PUT asked the
    # authorizer about whichever came first for every later request.
    @web.authenticated
    @authorized
    def method(self, path: str) -> None:
        raise SMDebugError(
            404,
            "no_such_route",
            f"There is no /sm-debug/{path} endpoint.",
            "See the REST API table in the README.",
        )

    return method


class NotFoundHandler(SMDebugHandler):
    """Any other /sm-debug URL: a JSON 404 rather than Jupyter's HTML page."""

    get = _no_such_route()
    put = _no_such_route()
    post = _no_such_route()
    delete = _no_such_route()
    patch = _no_such_route()


# (path under /sm-debug, handler); path arguments are checked by SMDebugHandler.prepare.
ROUTES = [
    ("jobs", jobs.JobsHandler),
    (f"jobs/{JOB}", jobs.JobHandler),
    (f"jobs/{JOB}/remote-debug", jobs.RemoteDebugHandler),
    (f"jobs/{JOB}/debug-copy", jobs.DebugCopyHandler),
    (f"jobs/{JOB}/stop", jobs.StopHandler),
    (f"jobs/{JOB}/hosts/{HOST}/logs", jobs.HostLogsHandler),
    (f"jobs/{JOB}/hosts/{HOST}/terminals", hosts.TerminalsHandler),
    (f"jobs/{JOB}/hosts/{HOST}/kernels", kernels.KernelsHandler),
    (f"jobs/{JOB}/stacks", hosts.StacksHandler),
    (f"jobs/{JOB}/run", hosts.RunHandler),
    (f"jobs/{JOB}/hosts/{HOST}/state", hosts.HostStateHandler),
    ("environment", jobs.EnvironmentHandler),
    (f"jobs/{JOB}/hosts/{HOST}/ports", forwards.PortsHandler),
    (f"jobs/{JOB}/hosts/{HOST}/ports/{PORT}", forwards.PortHandler),
    ("forwards", forwards.ForwardsHandler),
    ("descriptions", jobs.DescriptionsHandler),
]


def route_table(base_url: str) -> list[tuple]:
    base = url_path_join(base_url, "sm-debug")
    return [
        *((url_path_join(base, path) + "/?", handler) for path, handler in ROUTES),
        (url_path_join(base, "proxy", JOB, HOST, PORT) + r"(?P<path>/.*)?", proxy.ProxyHandler),
        (url_path_join(base, "(?P<path>.*)"), NotFoundHandler),
    ]
