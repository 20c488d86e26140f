"""The browser's way to a forwarded port: /sm-debug/proxy/{job}/{host}/{port}/{path}.

The container is not trusted, so its pages never run with the Jupyter origin's authority
(docs/ports.md, "Threat model"):

- Every proxied answer carries `Content-Security-Policy: sandbox ...` without
  `allow-same-origin` (`SANDBOX`): the browser gives the page an opaque origin, in the
  tab's iframe (itself sandboxed the same way) and opened on its own alike. It can read no
  Jupyter cookie, no Jupyter page, call no Jupyter API with the user's cookie, store no
  cookie and register no service worker on the Jupyter origin.
- Upstream headers that act on the origin rather than on the one answer are dropped
  (`STRIPPED`: cookies, service-worker scope, Clear-Site-Data, CSP, Refresh, CORS, HSTS,
  Alt-Svc, reporting), as are hop-by-hop headers; a service worker's script fetch
  (`Service-Worker: script`) is refused.
- Jupyter's credentials never reach the app: no Cookie, Authorization, XSRF header or
  Referer, and no `token`/`_xsrf` in the query.

An opaque origin sends no SameSite=Lax cookie, so the page's own requests cannot carry
Jupyter's login. The tab's first load does (the parent is Jupyter's page): it is redirected
to `{prefix}k-{key}/`, where `key` is an HMAC of this forward (job, host, port, when it was
opened) under a secret of this server process. The page's relative URLs keep the key; a
request with the current key is the forward's, a request without one needs Jupyter's auth.
The key opens this one forward only, until it closes, and only to someone who was shown it.
The page's keyed requests come from `Origin: null`: they get CORS answers for `null` (no
credentials), and pages get `proxy_shim`'s storage and worker shim first in their head.

HTTP is spoken to the app by `proxy_client` over `connect.open_stream(tunnel)`: request
and response bodies stream both ways with every write awaited, so a slow reader slows the
app rather than the server's memory, and there is no body size limit. A websocket upgrade
is passed through as bytes once authenticated (a cross-origin one needs the key).

Paths: the upstream sees the path below the prefix (and key). Redirects to absolute paths
(`Location: /x`) are rewritten under the prefix, and X-Forwarded-Prefix tells apps that
honour it where they live. Why not jupyter-server-proxy: docs/ports.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import re
import secrets
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import ensure_async
from tornado import iostream, web

from . import errors, names
from .connect import open_stream
from .errors import SMDebugError
from .forwards import proxy_url
from .names import remote_port
from .proxy_client import Exchange, UpstreamError, header_items
from .proxy_shim import HEAD_TAG, SNIFF, with_shim

# Scripts, forms, popups (which inherit the sandbox), alert/confirm and downloads: what
# dashboards and profilers use. Not allow-same-origin (the page would be Jupyter's), not
# allow-top-navigation (it could replace JupyterLab), not allow-popups-to-escape-sandbox.
SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection",
}  # fmt: skip
# Jupyter's credentials are for Jupyter, never for the app in the container.
PRIVATE_HEADERS = {"cookie", "authorization", "x-xsrftoken", "x-csrftoken", "referer"}
# Answer headers whose effect outlives the answer or reaches the whole origin.
STRIPPED = {
    "set-cookie", "set-cookie2", "service-worker-allowed", "clear-site-data",
    "content-security-policy", "content-security-policy-report-only", "refresh",
    "strict-transport-security", "alt-svc", "nel", "report-to", "reporting-endpoints",
    "origin-agent-cluster", "x-content-type-options",
}  # fmt: skip
JUPYTER_QUERY = {"token", "_xsrf"}
KEY = re.compile(r"/k-([0-9a-f]{32})(/.*)?", re.S)
SECRET = secrets.token_bytes(32)  # keys end with the server process
CONNECT_TIMEOUT = 15.0
ANSWER_TIMEOUT = 3600.0  # a profiler trace over a slow tunnel takes its time
NAVIGATION = {"document", "iframe", "frame"}


def forward_key(forward) -> str:
    message = f"{forward.job}\0{forward.host}\0{forward.port}\0{forward.created!r}"
    return hmac.new(SECRET, message.encode(), hashlib.sha256).hexdigest()[:32]


def app_query(query: str) -> str:
    """The query without Jupyter's own parameters, the rest exactly as sent."""
    kept = [
        item
        for item in query.split("&")
        if item and unquote_plus(item.split("=", 1)[0]) not in JUPYTER_QUERY
    ]
    return "&".join(kept)


def stripped(name: str) -> bool:
    lowered = name.lower()
    return lowered in HOP_BY_HOP or lowered in STRIPPED or lowered.startswith("access-control-")


def _verb():
    """One method per HTTP verb. The forward's key stands in for Jupyter's login (checked
    in prepare()), so Jupyter must not demand a login before it."""

    @allow_unauthenticated
    async def method(self, job: str, host: str, port: str, path: str | None) -> None:
        await self.relay()

    return method


@web.stream_request_body
class ProxyHandler(JupyterHandler):
    auth_resource = "sm_debug"

    def initialize(self) -> None:
        self.target = None  # (forward, key or "", path below prefix and key)
        self.exchange: Exchange | None = None
        self.send_failed = False
        self.started = False
        self.held = False

    @property
    def forwards(self):
        return self.settings["sm_debug"].forwards

    def compute_etag(self) -> None:
        return None  # the app's own ETag, if any, passes through

    # -- who may ask --------------------------------------------------------------------------

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

    def find_target(self):
        """(forward, key the request carries or "", the app's path), once per request."""
        if self.target is None:
            kwargs = self.path_kwargs
            forward = self.resolve(kwargs["job"], kwargs["host"], kwargs["port"])
            prefix = proxy_url(self.base_url, forward.job, forward.host, forward.port)
            raw = self.request.path  # still percent-encoded, as the app must see it
            below = "/" + raw[len(prefix) :] if raw.startswith(prefix) else "/"
            key, matched = "", KEY.fullmatch(below)
            if matched:
                if not hmac.compare_digest(matched.group(1), forward_key(forward)):
                    raise SMDebugError(
                        404,
                        "forward_not_found",
                        f"This link to port {forward.port} of {forward.host} is from a "
                        "forward that has ended.",
                        "Open the port again with “Open port…” on the host.",
                    )
                key, below = matched.group(1), matched.group(2) or ""
            self.target = (forward, key, below)
        return self.target

    def prefix(self) -> str:
        """This request's proxy prefix, with its key if it came with one (no final /)."""
        forward, key, _ = self.find_target()
        prefix = proxy_url(self.base_url, forward.job, forward.host, forward.port).rstrip("/")
        return f"{prefix}/k-{key}" if key else prefix

    def check_xsrf_cookie(self) -> None:
        """A request with the forward's key needs no Jupyter _xsrf (the key is secret to
        the page). Without it, same-origin requests pass and a cross-site form still needs
        Jupyter's token."""
        if self.find_target()[1]:
            return None
        origin = self.request.headers.get("Origin") or self.request.headers.get("Referer")
        if origin and urlsplit(origin).netloc == self.request.host:
            return None
        return super().check_xsrf_cookie()

    async def prepare(self) -> None:
        forward, key, below = self.find_target()
        await super().prepare()  # Jupyter's user (or None), host check, XSRF
        if self._finished:
            return
        if self.request.headers.get("Service-Worker", "").lower() == "script":
            raise SMDebugError(
                403,
                "service_worker_refused",
                "A forwarded app cannot install a service worker.",
                "Service workers would outlive the forward; the app works without one.",
            )
        if not key:
            if not self.current_user:  # as @web.authenticated: login page or 403
                if self.request.method in ("GET", "HEAD"):
                    url = self.get_login_url()
                    return self.redirect(f"{url}?next={quote(self.request.uri, safe='')}")
                raise web.HTTPError(403)
            action = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}.get(
                self.request.method, "write"
            )
            allowed = await ensure_async(
                self.authorizer.is_authorized(self, self.current_user, action, self.auth_resource)
            )
            if not allowed:
                raise web.HTTPError(403, f"Not authorized to {action} {self.auth_resource}.")
        if key and self.preflight():
            return None
        if self.request.method == "GET" and self.path_kwargs.get("path") is None:
            return self.redirect(self.request.path + "/" + self.query())  # relative URLs
        if key and not below:
            return self.redirect(self.request.path + "/" + self.query())
        if not key and self.navigation():
            return self.redirect(f"{self.prefix()}/k-{forward_key(forward)}{below}{self.query()}")
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            return None  # get() passes it through
        self.request.connection.set_max_body_size(1 << 62)  # streamed, so no limit
        await self.open_exchange(forward, below)

    def from_the_page(self) -> bool:
        """A request the opaque page made with its key: cross-origin to the browser, so
        it needs CORS answers (for no other origin, and never with credentials)."""
        return bool(self.find_target()[1]) and self.request.headers.get("Origin") == "null"

    def allow_the_page(self) -> None:
        if self.from_the_page():
            self.set_header("Access-Control-Allow-Origin", "null")
            self.set_header("Access-Control-Expose-Headers", "*")
            self.add_header("Vary", "Origin")

    def preflight(self) -> bool:
        """Answers the page's CORS preflight here (the app never sees it)."""
        headers = self.request.headers
        if self.request.method != "OPTIONS" or not self.from_the_page():
            return False
        method = headers.get("Access-Control-Request-Method")
        if not method:
            return False
        self.set_status(204)
        self.allow_the_page()
        self.set_header("Access-Control-Allow-Methods", method)
        requested = headers.get("Access-Control-Request-Headers")
        if requested:
            self.set_header("Access-Control-Allow-Headers", requested)
        self.set_header("Access-Control-Max-Age", "600")
        self.set_header("Content-Security-Policy", SANDBOX)
        self.finish()
        return True

    def navigation(self) -> bool:
        """The browser loads a page to show (the tab's iframe, a new browser tab): it
        must come back with the key in its URL, and gets the storage shim."""
        headers = self.request.headers
        return self.request.method == "GET" and (
            headers.get("Sec-Fetch-Dest", "") in NAVIGATION
            or headers.get("Sec-Fetch-Mode", "") == "navigate"
        )

    def query(self) -> str:
        kept = app_query(self.request.query)
        return f"?{kept}" if kept else ""

    # -- errors as pages the iframe shows, or JSON for scripts ------------------------------------

    def answer_error(self, error: SMDebugError) -> None:
        if "text/html" not in self.request.headers.get("Accept", ""):
            return errors.render(self, error, {"Content-Security-Policy": SANDBOX})
        self.clear()
        self.set_status(error.status)
        self.set_header("Content-Security-Policy", SANDBOX)
        with contextlib.suppress(SMDebugError):  # an unknown forward has no page
            self.allow_the_page()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            "<!doctype html><html><head><title>sm-debug</title></head><body "
            'style="font-family:sans-serif;margin:2em"><h2>'
            f"{html.escape(error.message)}</h2><p>{html.escape(error.hint)}</p></body></html>"
        )

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.answer_error(errors.of_exception(status_code, exc))

    def unreachable(self, forward) -> None:
        self.answer_error(
            SMDebugError(
                502,
                "nothing_listens",
                f"nothing listens on {forward.port} in {forward.host}",
                f"Start the app in {forward.host} (e.g. tensorboard --logdir ... --port "
                f"{forward.port} --bind_all), then reload.",
            )
        )

    # -- HTTP ---------------------------------------------------------------------------------

    get = _verb()
    post = _verb()
    put = _verb()
    patch = _verb()
    delete = _verb()
    options = _verb()
    head = _verb()

    def upstream_headers(self, forward) -> list[tuple[str, str]]:
        connection = {
            token.strip().lower() for token in self.request.headers.get("Connection", "").split(",")
        }
        dropped = HOP_BY_HOP | PRIVATE_HEADERS | connection | {"host", "content-length"}
        headers = [
            (name, value)
            for name, value in self.request.headers.get_all()
            if name.lower() not in dropped
        ]
        if self.navigation():  # a page gets the shim: ask for it uncompressed
            headers = [(n, v) for n, v in headers if n.lower() != "accept-encoding"]
            headers.append(("Accept-Encoding", "identity"))
        headers.insert(0, ("Host", f"127.0.0.1:{forward.port}"))
        if "Origin" in self.request.headers:  # checked here; the app checks its own
            headers = [(n, v) for n, v in headers if n.lower() != "origin"]
            headers.append(("Origin", f"http://127.0.0.1:{forward.port}"))
        headers.append(("X-Forwarded-Prefix", self.prefix()))
        headers.append(("X-Forwarded-Host", self.request.host))
        headers.append(("X-Forwarded-Proto", self.request.protocol))
        return headers

    def rewrite_location(self, forward, location: str) -> str:
        parts = urlsplit(location)
        upstream = ("", f"127.0.0.1:{forward.port}", f"localhost:{forward.port}")
        if parts.netloc in upstream and parts.path.startswith("/"):
            return urlunsplit(("", "", self.prefix() + parts.path, parts.query, parts.fragment))
        return location

    def hold(self, forward) -> None:
        if not self.held:
            self.held = True
            self.forwards.touch(forward, +1)

    def release(self) -> None:
        if self.held:
            self.held = False
            self.forwards.touch(self.find_target()[0], -1)

    def on_finish(self) -> None:
        self.release()
        if self.exchange is not None:
            self.exchange.close()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self.exchange is not None:
            self.exchange.close()  # the reader went away: end the app's side too

    async def open_exchange(self, forward, below: str) -> None:
        """Connect and send the request head; the body follows as it arrives."""
        headers = self.upstream_headers(forward)
        length = self.request.headers.get("Content-Length")
        if length is not None:
            headers.append(("Content-Length", length))
        elif "chunked" in self.request.headers.get("Transfer-Encoding", "").lower():
            headers.append(("Transfer-Encoding", "chunked"))
        headers.append(("Connection", "close"))
        self.hold(forward)
        try:
            reader, writer = await asyncio.wait_for(open_stream(forward.tunnel), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError, SMDebugError, EOFError):
            return self.unreachable(forward)
        self.exchange = Exchange(reader, writer)
        try:
            await self.exchange.send_head(self.request.method, below + self.query(), headers)
        except UpstreamError:
            return self.unreachable(forward)

    async def data_received(self, chunk: bytes) -> None:
        if self.exchange is None or self.send_failed or self._finished:
            return
        try:
            await self.exchange.send_body(chunk)
        except UpstreamError:
            self.send_failed = True  # the app may still answer (e.g. 413)

    async def relay(self) -> None:
        forward, _, below = self.find_target()
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.pass_websocket(forward, below)
        exchange = self.exchange
        try:
            if not self.send_failed:
                with contextlib.suppress(UpstreamError):
                    await exchange.end()
            response = await asyncio.wait_for(exchange.response(), ANSWER_TIMEOUT)
        except (UpstreamError, asyncio.TimeoutError):
            return self.unreachable(forward)
        self.answer_head(forward, response)
        shim = self.wants_shim(response)
        if shim:
            self.clear_header("Content-Length")  # it grows: tornado chunks it
        sniffed = b""
        try:
            while (data := await asyncio.wait_for(exchange.body(), ANSWER_TIMEOUT)) is not None:
                if shim:
                    sniffed += data
                    if len(sniffed) < SNIFF and not HEAD_TAG.search(sniffed):
                        continue
                    data, sniffed, shim = with_shim(sniffed), b"", False
                self.started = True
                self.write(data)
                await self.flush()  # backpressure: the next read waits for the browser
            if shim:
                self.write(with_shim(sniffed))
        except iostream.StreamClosedError:
            return  # the browser went away
        except (UpstreamError, asyncio.TimeoutError):
            self.request.connection.close()  # cut mid-body: let the browser see it
            self._finished = True
            return
        self.finish()

    def wants_shim(self, response) -> bool:
        headers = {name.lower(): value for name, value in header_items(response)}
        return (
            self.navigation()
            and response.status_code == 200
            and headers.get("content-type", "").lower().startswith("text/html")
            and headers.get("content-encoding", "identity").lower() == "identity"
        )

    def answer_head(self, forward, response) -> None:
        reason = response.reason.decode("latin-1") or "Unknown"
        self.set_status(response.status_code, reason)
        for name in list(self._headers):  # Jupyter's CORS answer is for Jupyter's API
            if name.lower().startswith("access-control-") or name in ("Content-Type", "Server"):
                self.clear_header(name)
        seen = set()
        for name, value in header_items(response):
            lowered = name.lower()
            if stripped(name):
                continue
            if lowered == "location":
                value = self.rewrite_location(forward, value)
            # the app's Date, Content-Type, ... replace tornado's; repeated ones add up
            (self.add_header if lowered in seen else self.set_header)(name, value)
            seen.add(lowered)
        self.set_header("Content-Security-Policy", SANDBOX)
        self.set_header("Referrer-Policy", "no-referrer")  # the key stays in this page
        self.allow_the_page()

    # -- websockets ---------------------------------------------------------------------------

    async def pass_websocket(self, forward, path: str) -> None:
        if not self.find_target()[1] and not self.check_origin():
            raise web.HTTPError(403, "Cross-origin websocket refused.")
        try:
            reader, writer = await asyncio.wait_for(open_stream(forward.tunnel), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError, SMDebugError, EOFError):
            return self.unreachable(forward)
        headers = self.upstream_headers(forward)
        lines = [f"GET {path}{self.query()} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines += ["Connection: Upgrade", "Upgrade: websocket", "", ""]
        try:
            writer.write("\r\n".join(lines).encode("latin-1"))
            await writer.drain()
            # The upgrade answer decides: anything but 101 (or nothing) is an error page.
            head, rest = await asyncio.wait_for(read_head(reader), CONNECT_TIMEOUT)
        except (UpstreamError, asyncio.TimeoutError, OSError):
            with contextlib.suppress(Exception):
                writer.close()
            return self.unreachable(forward)
        stream = self.request.connection.detach()
        self._finished = True  # tornado: this handler answers no more
        self.forwards.touch(forward, +1)
        try:
            await stream.write(filter_head(head) + rest)
            await pipe(stream, reader, writer)
        finally:
            self.forwards.touch(forward, -1)


async def read_head(reader) -> tuple[bytes, bytes]:
    """The answer's status line and headers, and whatever bytes came after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > 65536:
            raise UpstreamError("answer head too long")
        more = await reader.read(65536)
        if not more:
            raise UpstreamError("closed before answering")
        data += more
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def filter_head(head: bytes) -> bytes:
    """An upgrade answer's head without the headers that act on the origin."""
    status, *lines = head.split(b"\r\n")
    kept = [status]
    for line in lines:
        name = line.split(b":", 1)[0].decode("latin-1").strip()
        lowered = name.lower()
        if lowered in ("connection", "upgrade") or not stripped(name):
            kept.append(line)
    return b"\r\n".join(kept) + b"\r\n\r\n"


async def pipe(stream: iostream.IOStream, reader, writer) -> None:
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
            if getattr(writer, "can_write_eof", lambda: False)():
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
