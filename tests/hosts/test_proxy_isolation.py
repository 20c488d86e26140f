"""Issue 22 findings 1 and 9: a forwarded app never acts with the Jupyter origin's authority.

A hostile app in a stand-in host answers with every header that would act on the whole
origin; the proxy must drop them, sandbox every answer into an opaque origin, refuse
service worker scripts, keep Jupyter's credentials and query parameters from the app, and
let the page's own requests in only with its forward's key."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from forward_apps import HostApp
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
ORIGIN_WIDE = [
    "Set-Cookie", "Service-Worker-Allowed", "Clear-Site-Data",
    "Content-Security-Policy-Report-Only", "Refresh",
    "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
    "Strict-Transport-Security", "Alt-Svc", "NEL", "Report-To",
]  # fmt: skip


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"isolate-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


@pytest.fixture(scope="module")
def app(standin, job):
    running = HostApp(standin, job, "algo-1", big_bytes=256)
    yield running
    running.stop()


@pytest.fixture
def fetch(jp_http_port, jp_auth_header):
    """A request to this server; (status, headers, body). Jupyter's auth unless auth=False."""

    async def call(url: str, method="GET", body=None, headers=None, auth=True):
        request = HTTPRequest(
            f"http://localhost:{jp_http_port}{url}", method=method, body=body,
            headers={**(jp_auth_header if auth else {}), **(headers or {})},
            follow_redirects=False, request_timeout=120, allow_nonstandard_methods=True,
        )  # fmt: skip
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        return response.code, response.headers, response.body

    return call


@pytest.fixture
def open_forward(api, job, app, jp_serverapp):
    """Opens the app's port over SSH; the tunnel ends with the test."""

    async def opened() -> dict:
        status, body = await api("POST", "jobs", job, "hosts", "algo-1", "ports",
                                 body={"port": app.port, "transport": "ssh"})  # fmt: skip
        assert status in (200, 201), body
        return body

    yield opened


async def keyed_url(fetch, forward) -> str:
    """The URL the tab's iframe ends up on: the first load comes back with the key."""
    code, headers, _ = await fetch(forward["url"], headers={"Sec-Fetch-Dest": "iframe"})
    assert code == 302, code
    location = headers["Location"]
    assert re.fullmatch(re.escape(forward["url"]) + r"k-[0-9a-f]{32}/", location), location
    return location


async def test_every_answer_is_sandboxed_and_origin_wide_headers_are_dropped(fetch, open_forward):
    forward = await open_forward()
    code, headers, page = await fetch(forward["url"] + "hostile")
    assert code == 200 and b"hostile" in page
    policies = headers.get_list("Content-Security-Policy")
    assert policies == [SANDBOX]
    for name in ORIGIN_WIDE[1:]:
        assert name not in headers, (name, headers.get_list(name))
    # Jupyter may set its own login cookie; none of the app's passes
    assert not [c for c in headers.get_list("Set-Cookie") if "planted" in c or "forged" in c]
    assert headers["X-App"] == "kept"
    assert headers["Referrer-Policy"] == "no-referrer"
    # errors are sandboxed too
    code, headers, _ = await fetch(forward["url"].replace(f"/{forward['port']}/", "/1/"))
    assert code == 404 and headers["Content-Security-Policy"] == SANDBOX


async def test_jupyter_credentials_and_query_never_reach_the_app(
    fetch, open_forward, jp_serverapp, jp_http_port
):
    forward = await open_forward()
    token = jp_serverapp.identity_provider.token
    url = forward["url"] + f"seen?%74oken=3&x=1&_xsrf=abc&tokens=2&token={token}"
    code, _, body = await fetch(
        url,
        auth=False,  # ?token= alone is Jupyter's login here
        headers={
            "Cookie": "_xsrf=2|abc; username-localhost=secret",
            "X-XSRFToken": "abc",
            "Referer": f"http://localhost:{jp_http_port}/lab?token={token}",
        },
    )
    assert code == 200, body
    seen = json.loads(body)
    assert seen["query"] == "x=1&tokens=2"
    assert token not in seen["uri"]
    names = {name.lower() for name, _ in seen["headers"]}
    assert not names & {"cookie", "authorization", "x-xsrftoken", "referer"}, names
    assert token not in json.dumps(seen["headers"])


async def test_a_service_worker_script_is_refused(fetch, open_forward):
    forward = await open_forward()
    code, headers, body = await fetch(
        forward["url"] + "sw.js", headers={"Service-Worker": "script"}
    )
    assert code == 403
    assert json.loads(body)["error"]["code"] == "service_worker_refused"
    url = await keyed_url(fetch, forward)
    code, _, body = await fetch(url + "sw.js", auth=False, headers={"Service-Worker": "script"})
    assert code == 403 and b"hello" not in body


async def test_the_page_gets_its_forward_key_and_only_that_opens_the_app(fetch, open_forward, app):
    forward = await open_forward()
    url = await keyed_url(fetch, forward)
    # no Jupyter login, as from the opaque origin: the key lets the page's requests in
    code, _, page = await fetch(url + "some/page", auth=False)
    assert (code, page) == (200, b"hello from algo-1 /some/page")
    # writes need no Jupyter _xsrf with the key (an opaque origin sends Origin: null)
    code, _, echoed = await fetch(url + "echo", method="POST", body=b"abc", auth=False,
                                  headers={"Origin": "null"})  # fmt: skip
    assert (code, echoed) == (200, b"abc")
    # redirects stay under the key
    code, headers, _ = await fetch(url + "away", auth=False)
    assert code == 302 and headers["Location"] == url + "hello/after-redirect"
    # without the key or with another one: Jupyter's login decides
    code, _, page = await fetch(forward["url"] + "some/page", auth=False)
    assert code in (302, 403) and b"hello" not in page
    wrong = url[: -len("0/")] + ("1/" if url.endswith("0/") else "0/")
    code, _, page = await fetch(wrong + "some/page", auth=False)
    assert code == 404 and b"hello" not in page
    # the key is in no answer the app can make reach another forward or Jupyter
    code, _, page = await fetch(url.split("/sm-debug/")[0] + "/api/terminals", auth=False)
    assert code in (302, 403)


async def test_a_key_ends_with_its_forward(api, fetch, open_forward, job, app, jp_serverapp):
    forward = await open_forward()
    url = await keyed_url(fetch, forward)
    assert await jp_serverapp.web_app.settings["sm_debug"].forwards.close(job, "algo-1", app.port)
    status, again = await api(
        "POST", "jobs", job, "hosts", "algo-1", "ports", body={"port": app.port, "transport": "ssh"}
    )
    assert status == 201, again
    code, _, page = await fetch(url + "x", auth=False)
    assert code == 404 and b"hello" not in page
    assert await keyed_url(fetch, again) != url


async def test_websockets_from_the_page_need_the_key(fetch, open_forward, jp_http_port):
    forward = await open_forward()
    url = await keyed_url(fetch, forward)
    ws = await websocket_connect(
        HTTPRequest(f"ws://localhost:{jp_http_port}{url}ws", headers={"Origin": "null"})
    )
    await ws.write_message("from the opaque page")
    assert await ws.read_message() == "from the opaque page"
    ws.close()
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(
            HTTPRequest(
                f"ws://localhost:{jp_http_port}{forward['url']}ws", headers={"Origin": "null"}
            )
        )
    assert refused.value.code in (302, 403)


async def test_the_opaque_page_may_read_its_own_app_and_nothing_else(fetch, open_forward):
    forward = await open_forward()
    url = await keyed_url(fetch, forward)
    # its requests come from Origin: null; with the key they may read the answer
    code, headers, _ = await fetch(url + "seen", auth=False, headers={"Origin": "null"})
    assert code == 200 and headers["Access-Control-Allow-Origin"] == "null"
    assert "Access-Control-Allow-Credentials" not in headers
    # the proxy answers the page's preflight itself
    code, headers, body = await fetch(url + "seen", method="OPTIONS", auth=False, headers={
        "Origin": "null", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-xsrf-protected",
    })  # fmt: skip
    assert code == 204 and headers["Access-Control-Allow-Origin"] == "null"
    assert headers["Access-Control-Allow-Methods"] == "POST"
    assert headers["Access-Control-Allow-Headers"] == "x-xsrf-protected"
    # no CORS for another origin, nor without the key
    code, headers, _ = await fetch(
        url + "seen", auth=False, headers={"Origin": "https://x.example"}
    )
    assert "Access-Control-Allow-Origin" not in headers
    code, headers, _ = await fetch(forward["url"] + "seen", headers={"Origin": "null"})
    assert "Access-Control-Allow-Origin" not in headers


async def test_pages_get_the_storage_shim_after_their_head(fetch, open_forward):
    forward = await open_forward()
    url = await keyed_url(fetch, forward)
    code, headers, page = await fetch(url + "hostile", auth=False,
                                      headers={"Sec-Fetch-Dest": "iframe"})  # fmt: skip
    assert code == 200
    assert page.startswith(b"<!doctype html><script>/* sm-debug:") and page.endswith(
        b"<p>hostile</p>"
    )
    assert "Content-Length" not in headers or int(headers["Content-Length"]) == len(page)
    # not into what a script fetches
    code, _, page = await fetch(url + "hostile", auth=False)
    assert page == b"<!doctype html><p>hostile</p>"


async def test_head_and_redirect_to_the_slash(fetch, open_forward):
    forward = await open_forward()
    code, headers, body = await fetch(forward["url"] + "big", method="HEAD")
    assert code == 405 and body == b""  # the app's own answer (tornado maps no HEAD)
    code, headers, _ = await fetch(forward["url"].rstrip("/") + "?_xsrf=x&a=1")
    assert code == 302 and headers["Location"] == forward["url"] + "?a=1"
