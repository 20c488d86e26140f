"""Nothing let in: every /sm-debug route refuses requests without valid Jupyter credentials,
cookie-authenticated writes need the XSRF token, and authorization goes through
jupyter_server's Authorizer with the resource ``sm_debug`` (action read for GET, write for
PUT/POST), like every Jupyter extension's handlers."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from hardening_helpers import (
    assert_error,
    end_created_jobs,  # noqa: F401 - module fixture: stops the jobs made here
    raw_client,
    running_job,
    session_clients,
)
from jupyter_server.auth.authorizer import Authorizer


class DenySMDebug(Authorizer):
    """Allows everything but the sm_debug resource (or only its writes)."""

    calls: list = []
    deny_actions = {"read", "write", "execute"}

    def is_authorized(self, handler, user, action, resource):
        DenySMDebug.calls.append((action, resource, handler.request.method))
        return not (resource == "sm_debug" and action in self.deny_actions)


class DenySMDebugWrites(DenySMDebug):
    deny_actions = {"write"}


@pytest.fixture
def jp_server_config(jp_server_config, request):
    """conftest's server, with a denying authorizer for the tests that ask for one."""
    for name, authorizer in (("deny_all", DenySMDebug), ("deny_writes", DenySMDebugWrites)):
        if name in request.fixturenames:
            DenySMDebug.calls = []
            return {
                **jp_server_config,
                "ServerApp": {**jp_server_config["ServerApp"], "authorizer_class": authorizer},
            }
    return jp_server_config


@pytest.fixture
def deny_all():
    """Marker fixture: the server's authorizer denies the sm_debug resource."""


@pytest.fixture
def deny_writes():
    """Marker fixture: the server's authorizer denies writes to the sm_debug resource."""


@pytest.fixture
def raw(http_server_client, jp_base_url, jp_auth_header):
    return raw_client(http_server_client, jp_base_url, jp_auth_header)


@pytest.fixture(scope="module")
def job(standin) -> str:
    return running_job(standin, "authz", hosts=2)


def every_route(job: str) -> list[tuple[str, str, object]]:
    """Every documented operation, plus the JSON 404 catch-all with each method."""
    base = f"/sm-debug/jobs/{job}"
    routes = [
        ("GET", "/sm-debug/jobs", None),
        ("GET", "/sm-debug/jobs?status=InProgress", None),
        ("GET", base, None),
        ("PUT", f"{base}/remote-debug", {"enabled": False}),
        ("POST", f"{base}/debug-copy", {"name": f"{job}-copy"}),
        ("POST", f"{base}/hosts/algo-1/terminals", {"transport": "ssh"}),
        ("POST", f"{base}/hosts/algo-2/terminals", {"transport": "ssm"}),
        ("GET", "/sm-debug/environment", None),
    ]
    routes += [(method, "/sm-debug/no-such-route", {}) for method in ("GET", "PUT", "POST")]
    routes += [("DELETE", "/sm-debug/no-such-route", None), ("PATCH", "/sm-debug/x", {})]
    return [(m, p, None if m in ("GET", "DELETE") else b) for m, p, b in routes]


def no_side_effects(standin, job, terminal_manager, terminals_before, clients_before):
    assert set(terminal_manager.terminals) == terminals_before
    assert session_clients(standin) - clients_before == set()
    assert standin.job(f"{job}-copy") is None  # no debug copy
    assert standin.job(job)["RemoteDebugConfig"] == {"EnableRemoteDebug": True}


CREDENTIALS = {
    "none": {},
    "wrong token": {"Authorization": "token not-the-token"},
    "bearer": {"Authorization": "Bearer not-the-token"},
    "basic": {"Authorization": "Basic cm9vdDpyb290"},
    "forged cookie": {"Cookie": "username-127-0-0-1=forged; _xsrf=x"},
}


async def test_every_route_refuses_unauthenticated_requests(raw, job, standin, terminal_manager):
    terminals, clients = set(terminal_manager.terminals), session_clients(standin)
    refused = 0
    for label, headers in CREDENTIALS.items():  # noqa: B007 - named for the traceback
        for method, path, body in every_route(job):
            status, answer, _ = await raw(method, path, body, headers=headers, auth=False)
            assert_error(status, answer, 403, "forbidden")
            refused += 1
    # A wrong token in the query string is no better.
    for method, path, body in every_route(job):
        sep = "&" if "?" in path else "?"
        status, answer, _ = await raw(
            method, f"{path}{sep}{urlencode({'token': 'wrong'})}", body, auth=False
        )
        assert_error(status, answer, 403, "forbidden")
        refused += 1
    no_side_effects(standin, job, terminal_manager, terminals, clients)
    assert refused == 6 * len(every_route(job))


async def cookie_login(raw, jp_serverapp) -> dict:
    """Log in through /login with the token as password, as a browser does; returns the
    cookies (the login cookie and _xsrf)."""
    status, _, headers = await raw("GET", "/login", auth=False)
    assert status == 200
    cookies = cookies_of(headers)
    xsrf = cookies["_xsrf"]
    token = jp_serverapp.identity_provider.token
    status, _, headers = await raw(
        "POST",
        "/login",
        urlencode({"_xsrf": xsrf, "password": token}),
        headers={
            "Cookie": f"_xsrf={xsrf}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        auth=False,
    )
    assert status in (200, 302), status
    cookies.update(cookies_of(headers))
    assert any(name.startswith("username-") for name in cookies), cookies
    return cookies


def cookies_of(headers) -> dict:
    found = {}
    for value in headers.get_list("Set-Cookie"):
        match = re.match(r"([^=]+)=([^;]*)", value)
        if match:
            found[match.group(1)] = match.group(2)
    return found


async def test_cookie_writes_need_the_xsrf_token(raw, jp_serverapp, job, standin, terminal_manager):
    cookies = await cookie_login(raw, jp_serverapp)
    jar = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}

    # The cookie does authenticate: reads work without any token.
    status, answer, _ = await raw("GET", f"/sm-debug/jobs/{job}", headers=jar, auth=False)
    assert status == 200, answer

    terminals, clients = set(terminal_manager.terminals), session_clients(standin)
    writes = [(m, p, b) for m, p, b in every_route(job) if m not in ("GET", "DELETE")]
    for method, path, body in writes:
        status, answer, _ = await raw(method, path, body, headers=jar, auth=False)
        assert_error(status, answer, 403, "forbidden")
        assert "_xsrf" in answer["error"]["message"]
        # A wrong XSRF token is refused the same way.
        wrong = {**jar, "X-XSRFToken": "not-the-xsrf-token"}
        status, answer, _ = await raw(method, path, body, headers=wrong, auth=False)
        assert_error(status, answer, 403, "forbidden")
    no_side_effects(standin, job, terminal_manager, terminals, clients)

    # With the XSRF token (as JupyterLab sends it) the same write goes through.
    with_xsrf = {**jar, "X-XSRFToken": cookies["_xsrf"]}
    status, answer, _ = await raw(
        "PUT", f"/sm-debug/jobs/{job}/remote-debug", {"enabled": True}, headers=with_xsrf,
        auth=False,
    )  # fmt: skip
    assert status == 200, answer


async def test_an_authorizer_denying_sm_debug_closes_every_route(
    deny_all, raw, job, standin, terminal_manager, jp_fetch
):
    terminals, clients = set(terminal_manager.terminals), session_clients(standin)
    routes = every_route(job)
    for method, path, body in routes:
        status, answer, _ = await raw(method, path, body)
        assert_error(status, answer, 403, "forbidden")
    no_side_effects(standin, job, terminal_manager, terminals, clients)
    # Every route asked the authorizer about sm_debug, reads as "read", writes as "write".
    asked = [(action, method) for action, resource, method in DenySMDebug.calls
             if resource == "sm_debug"]  # fmt: skip
    assert len(asked) == len(routes)
    assert {action for action, method in asked if method == "GET"} == {"read"}
    assert {action for action, method in asked if method in ("PUT", "POST", "PATCH")} == {"write"}
    # The rest of the server is still there for this user.
    response = await jp_fetch("api", "status")
    assert response.code == 200
    response = await jp_fetch("api", "terminals")
    assert response.code == 200


async def test_an_authorizer_denying_writes_leaves_reads(
    deny_writes, raw, job, standin, terminal_manager
):
    terminals, clients = set(terminal_manager.terminals), session_clients(standin)
    for method, path, body in every_route(job):
        status, answer, _ = await raw(method, path, body)
        if method == "GET" and "no-such-route" not in path:
            assert status == 200, (path, answer)
        elif method == "GET":
            assert_error(status, answer, 404, "no_such_route")
        else:
            assert_error(status, answer, 403, "forbidden")
    no_side_effects(standin, job, terminal_manager, terminals, clients)
