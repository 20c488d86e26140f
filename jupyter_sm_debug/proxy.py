"""The browser's way to a forwarded port: /sm-debug/proxy/{job}/{host}/{port}/{path}.

Behind Jupyter's own authentication (a login redirect or 403 without it). HTTP is proxied
with tornado's client, streaming (a large download never sits in memory whole); a websocket
upgrade is passed through as bytes once Jupyter has authenticated it and its Origin is this
server, so subprotocols, binary frames and compression are the app's and the browser's.

Why not jupyter-server-proxy: its LocalProxyHandler can be subclassed for a port resolved
per request, but its buffered proxy holds whole responses in memory (only event streams
stream), it reports a dead upstream as 599/500 rather than our 502, its context path and
headers name /proxy/, and installing it enables its own /proxy/{any local port} route for
every user, and pulls aiohttp and simpervisor. What we need is the 200 lines below.

Paths: the upstream sees the path below the prefix (TensorBoard and most apps use relative
URLs, which then just work). Redirects to absolute paths (`Location: /x`) are rewritten
under the prefix, and X-Forwarded-Prefix tells apps that honour it (Flask/werkzeug, Bokeh,
Dash) where they live. An app that writes absolute paths into its pages needs its own
base-path option set to the prefix (`--path_prefix`, `--base-url`, ...): see docs/ports.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
from urllib.parse import urlsplit, urlunsplit

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import httpclient, iostream, web

from . import names
from .errors import SMDebugError
from .forward_handlers import remote_port
from .forwards import proxy_url

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection",
}  # fmt: skip
# Jupyter's credentials are for Jupyter, never for the app in the container.
PRIVATE_HEADERS = {"cookie", "authorization", "x-xsrftoken", "x-csrftoken"}
CONNECT_TIMEOUT = 15.0
REQUEST_TIMEOUT = 3600.0  # a profiler trace over a slow tunnel takes its time


def _forwarding():
    """A new decorated method per HTTP verb: @authorized settles its action (read or
    write) at its first call, so one function shared by OPTIONS and POST would ask the
    authorizer about whichever came first (see handlers._no_such_route)."""

    @web.authenticated
    @authorized
    async def method(self, job: str, host: str, port: str, path: str | None) -> None:
        forward = self.resolve(job, host, port)
        await self.proxy_http(forward, self.upstream_path(forward))

    return method


class ProxyHandler(JupyterHandler):
    auth_resource = "sm_debug"

    def initialize(self) -> None:
        self.forward = None
        self.started = False

    @property
    def forwards(self):
        return self.settings["sm_debug"].forwards

    def compute_etag(self) -> None:
        return None  # the app's own ETag, if any, passes through

    def check_xsrf_cookie(self) -> None:
        """The app's own pages cannot send Jupyter's _xsrf. Same-origin requests (the
        iframe) pass; a cross-site form still needs the token."""
        origin = self.request.headers.get("Origin") or self.request.headers.get("Referer")
        if origin and urlsplit(origin).netloc == self.request.host:
            return None
        return super().check_xsrf_cookie()

    # -- errors as pages the iframe shows, or JSON for scripts ------------------------------------

    def answer_error(self, status: int, code: str, message: str, hint: str) -> None:
        self.clear()
        self.set_status(status)
        if "text/html" in self.request.headers.get("Accept", ""):
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.finish(
                "<!doctype html><html><head><title>sm-debug</title></head><body "
                'style="font-family:sans-serif;margin:2em"><h2>'
                f"{html.escape(message)}</h2><p>{html.escape(hint)}</p></body></html>"
            )
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": {"code": code, "message": message, "hint": hint}}))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SMDebugError):
            return self.answer_error(exc.status, exc.code, exc.message, exc.hint)
        if status_code < 500:
            message = getattr(exc, "log_message", None) or "Request refused."
            return self.answer_error(status_code, "refused", message, "")
        return self.answer_error(
            500, "internal_error", "Unexpected server error.", "See the Jupyter server log."
        )

    def resolve(self, job: str, host: str, port: str):
        job = names.job_name(job)
        names.host_index(host)
        number = remote_port(port, from_url=True)
        forward = self.forwards.get(job, host, number)
        if forward is None:
            raise SMDebugError(
                404,
                "forward_not_found",
                f"Port {number} of {host} is not open (any more).",
                "Open it again with “Open port…” on the host (forwards end when idle, when "
                "the job ends, or when closed).",
            )
        return forward

    # -- HTTP ---------------------------------------------------------------------------------

    @web.authenticated
    @authorized
    async def get(self, job: str, host: str, port: str, path: str | None) -> None:
        if path is None:  # /proxy/job/host/6006 → /proxy/job/host/6006/ (relative URLs)
            query = f"?{self.request.query}" if self.request.query else ""
            return self.redirect(self.request.path + "/" + query)
        forward = self.resolve(job, host, port)
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.pass_websocket(forward, self.upstream_path(forward))
        await self.proxy_http(forward, self.upstream_path(forward))

    post = _forwarding()
    put = _forwarding()
    patch = _forwarding()
    delete = _forwarding()
    options = _forwarding()
    head = _forwarding()

    def upstream_path(self, forward) -> str:
        """The request's path below the prefix as the browser sent it (still
        percent-encoded: tornado's path arguments are decoded, and a decoded %3F or
        space would change or break the app's URL)."""
        prefix = proxy_url(self.base_url, forward.job, forward.host, forward.port)
        raw = self.request.path
        if raw.startswith(prefix):
            return "/" + raw[len(prefix) :]
        return "/"

    def upstream_headers(self, forward) -> dict:
        headers = {
            name: value
            for name, value in self.request.headers.get_all()
            if name.lower() not in HOP_BY_HOP | PRIVATE_HEADERS
        }
        prefix = proxy_url(self.base_url, forward.job, forward.host, forward.port).rstrip("/")
        headers["Host"] = f"127.0.0.1:{forward.port}"
        if "Origin" in headers:  # already checked against this server; the app checks its own
            headers["Origin"] = f"http://127.0.0.1:{forward.port}"
        headers["X-Forwarded-Prefix"] = prefix
        headers["X-Forwarded-Host"] = self.request.host
        headers["X-Forwarded-Proto"] = self.request.protocol
        return headers

    def unreachable(self, forward) -> None:
        self.answer_error(
            502,
            "nothing_listens",
            f"nothing listens on {forward.port} in {forward.host}",
            f"Start the app in {forward.host} (e.g. tensorboard --logdir ... --port "
            f"{forward.port} --bind_all), then reload.",
        )

    def rewrite_location(self, forward, location: str) -> str:
        parts = urlsplit(location)
        upstream = ("", f"127.0.0.1:{forward.port}", f"localhost:{forward.port}")
        if parts.netloc in upstream and parts.path.startswith("/"):
            prefix = proxy_url(self.base_url, forward.job, forward.host, forward.port)
            path = prefix.rstrip("/") + parts.path
            return urlunsplit(("", "", path, parts.query, parts.fragment))
        return location

    async def proxy_http(self, forward, path: str) -> None:
        registry = self.forwards
        registry.touch(forward, +1)
        try:
            await self._proxy_http(forward, path)
        finally:
            registry.touch(forward, -1)

    async def _proxy_http(self, forward, path: str) -> None:
        query = f"?{self.request.query}" if self.request.query else ""
        url = f"http://127.0.0.1:{forward.tunnel.local_port}{path}{query}"
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None
        if self.request.method in ("POST", "PUT", "PATCH") and body is None:
            body = b""
        if self.request.method == "DELETE" and self.request.body:
            body = self.request.body

        def on_header(line: str) -> None:
            line = line.rstrip("\r\n")
            if line.startswith("HTTP/"):
                fields = line.split(" ", 2)
                self.set_status(int(fields[1]), fields[2] if len(fields) > 2 else None)
                self.clear_header("Content-Type")
                self.clear_header("Server")
                return
            if not line or ":" not in line:
                return
            name, value = line.split(":", 1)
            name, value = name.strip(), value.strip()
            lowered = name.lower()
            if lowered in HOP_BY_HOP:
                return
            if lowered == "location":
                value = self.rewrite_location(forward, value)
            if lowered == "set-cookie":
                self.add_header(name, value)
            else:
                self.set_header(name, value)

        def on_chunk(chunk: bytes) -> None:
            self.started = True
            self.write(chunk)
            self.flush()

        client = httpclient.AsyncHTTPClient(force_instance=True, max_clients=1)
        request = httpclient.HTTPRequest(
            url,
            method=self.request.method,
            headers=self.upstream_headers(forward),
            body=body,
            follow_redirects=False,
            decompress_response=False,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
            header_callback=on_header,
            streaming_callback=on_chunk,
            allow_nonstandard_methods=True,
        )
        try:
            response = await client.fetch(request, raise_error=False)
            code = response.code
        except (OSError, httpclient.HTTPClientError):  # reset before any answer
            code = 599
        finally:
            client.close()
        if code == 599:  # no HTTP answer: refused, closed, timed out
            if self.started:
                self.request.connection.close()  # cut mid-body: let the browser see it
                return
            return self.unreachable(forward)
        self.finish()

    # -- websockets ---------------------------------------------------------------------------

    async def pass_websocket(self, forward, path: str) -> None:
        if not self.check_origin():
            raise web.HTTPError(403, "Cross-origin websocket refused.")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", forward.tunnel.local_port)
        except OSError:
            return self.unreachable(forward)
        query = f"?{self.request.query}" if self.request.query else ""
        headers = self.upstream_headers(forward)
        lines = [f"GET {path}{query} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Connection: Upgrade", "Upgrade: websocket", "", ""]
        writer.write("\r\n".join(lines).encode("latin-1"))
        await writer.drain()
        # The upgrade answer decides: anything but 101 (or nothing) is an error page.
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            asyncio.TimeoutError,
            OSError,
        ):
            writer.close()
            return self.unreachable(forward)
        stream = self.request.connection.detach()
        self._finished = True  # tornado: this handler answers no more
        self.forwards.touch(forward, +1)
        try:
            await stream.write(head)
            await pipe(stream, reader, writer)
        finally:
            self.forwards.touch(forward, -1)


async def pipe(stream: iostream.IOStream, reader: asyncio.StreamReader, writer) -> None:
    """Bytes both ways until either side closes."""

    async def browser_to_app() -> None:
        try:
            while True:
                data = await stream.read_bytes(65536, partial=True)
                writer.write(data)
                await writer.drain()
        except (iostream.StreamClosedError, OSError):
            pass
        finally:
            if writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()

    async def app_to_browser() -> None:
        try:
            while data := await reader.read(65536):
                await stream.write(data)
        except (iostream.StreamClosedError, OSError):
            pass

    tasks = [asyncio.ensure_future(browser_to_app()), asyncio.ensure_future(app_to_browser())]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    stream.close()
    writer.close()
