"""The tornado application: the SSM data channel (websocket) and the WSGI front, one port."""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading

import tornado.httpserver
import tornado.ioloop
import tornado.web
import tornado.wsgi

from .router import Router

log = logging.getLogger(__name__)


class _WSGIContainer(tornado.wsgi.WSGIContainer):
    # tornado logs every 4xx as a warning; throttling benchmarks would flood the log.
    def _log(self, status_code, request):
        # The path only: a presigned query carries the session token and the signature.
        log.debug("%d %s %s", status_code, request.method, request.path)

    def environ(self, request):
        environ = super().environ(request)
        environ["RAW_URI"] = request.uri  # SigV4 signs the path as sent, not as unquoted
        return environ


def _data_channel_route(standin) -> list:
    try:
        module = importlib.import_module(f"{__package__}.ssm")
    except ModuleNotFoundError as error:
        if error.name != f"{__package__}.ssm":
            raise
        return []
    handler = getattr(module, "DataChannelHandler", None)
    if handler is None:
        return []
    return [(r"/v1/data-channel/(.*)", handler, {"standin": standin})]


def make_application(standin, executor) -> tornado.web.Application:
    from moto.server import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)
    front = Router(standin, moto_app)
    fallback = _WSGIContainer(front, executor=executor)
    routes = [
        *_data_channel_route(standin),
        (r".*", tornado.web.FallbackHandler, {"fallback": fallback}),
    ]
    return tornado.web.Application(routes)


class _Servers:
    """The plain and the TLS server of one application, stopped together."""

    def __init__(self, *servers) -> None:
        self.servers = servers

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def serve(
    application, sockets, ready: threading.Event, box: dict, tls: tuple | None = None
) -> None:
    """Thread body: own asyncio loop, serve until the loop is stopped. ``tls``: an
    (ssl context, sockets) pair to serve the same application over TLS as well."""
    try:
        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = tornado.ioloop.IOLoop.current()
        server = tornado.httpserver.HTTPServer(application)
        server.add_sockets(sockets)
        servers = [server]
        if tls is not None:
            context, tls_sockets = tls
            secure = tornado.httpserver.HTTPServer(application, ssl_options=context)
            secure.add_sockets(tls_sockets)
            servers.append(secure)
        box["loop"], box["server"] = loop, _Servers(*servers)
    except BaseException as error:
        box["error"] = error
        raise
    finally:
        ready.set()
    try:
        loop.start()
    finally:
        loop.close(all_fds=True)
