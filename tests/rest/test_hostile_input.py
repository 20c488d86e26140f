"""Hostile job and host names (and bodies) on every route: a 400/404 in the one error shape,
never a terminal, never a process; and every argv the server does build is made of
validated parts only."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import sys
import tempfile
from urllib.parse import quote

import pytest
import terminado.management
from hardening_helpers import (
    alive,
    assert_error,
    async_wait_until,
    descendants,
    describe_processes,
    end_created_jobs,  # noqa: F401 - module fixture: stops the jobs made here
    environ_of,
    other_jobs_processes,
    raw_client,
    running_job,
    session_clients,
)

from jupyter_sm_debug.connect.ssh import DNS_NAME, USER_NAME
from jupyter_sm_debug.connect.ssm import SESSION_VARIABLE

pytestmark = pytest.mark.usefixtures("standin")
TRIED: dict[str, int] = {}  # route -> hostile inputs sent (reported by the last test)


def count(route: str) -> None:
    TRIED[route] = TRIED.get(route, 0) + 1


@pytest.fixture
def raw(http_server_client, jp_base_url, jp_auth_header):
    return raw_client(http_server_client, jp_base_url, jp_auth_header)


@pytest.fixture(scope="module")
def job(standin) -> str:
    """A running 2-host job of our own, remote debug on: every valid attach would work."""
    return running_job(standin, "hardened", hosts=2)


@pytest.fixture
def spawns(monkeypatch):
    """Every PTY process terminado starts, as it starts it."""
    seen: list = []
    original = terminado.management.PtyProcessUnicode.spawn

    def spy(*args, **kwargs):
        seen.append(kwargs.get("argv", args[0] if args else None))
        return original(*args, **kwargs)

    monkeypatch.setattr(terminado.management.PtyProcessUnicode, "spawn", spy)
    return seen


def hostile_job_names(job: str) -> list[str]:
    """Decoded values; each is sent percent-encoded as the {job} path segment."""
    return [
        f"{job};id",
        "$(touch /tmp/sm-debug-pwned)",
        f"{job}$(id)",
        "`id`",
        f"{job}`reboot`",
        f"{job} x",
        f" {job}",
        f"{job}\n",
        f"{job}\r\nX-Injected: 1",
        "a\nb",
        f"../{job}",
        "../../../../etc/passwd",
        "..",
        ".",
        "%2e%2e",
        "%2e%2e%2f",
        f"{job}\x00",
        "\x00",
        job.replace("a", "\u0430", 1),  # Cyrillic а
        chr(ord(job[0]) - ord("a") + ord("\uff41")) + job[1:],  # fullwidth first letter
        "\uff48\uff41\uff52\uff44",  # fullwidth "hard"
        f"{job}\u200b",  # zero-width space
        f"\u202e{job}",  # right-to-left override
        "jöb",
        "x" * 64,
        (job + "-" + "y" * 63)[:64],
        "z" * 5000,
        f"-{job}",
        f"{job}-",
        "a_b",
        "a.b",
        "a/b",
        "a\\b",
        "*",
        "'",
        '"',
        "{job}",
        "%",
    ]


# Literal path segments (not encoded again): traversal, encoded dots, broken escapes.
RAW_JOB_SEGMENTS = ["..", "%2e%2e", "%2E%2E%2F..", "%252e%252e", "%ff", "%00", "%0a", "%zz", "."]


def hostile_host_names() -> list[str]:
    return [
        "algo-0",
        "algo-999",
        "algo-3",  # one past the last host of the 2-host job
        "algo-00001",
        "algo-01",
        "algo-123456",
        "ALGO-1",
        "algo-1;id",
        "algo-1$(id)",
        "algo-1`id`",
        "algo-1 ",
        " algo-1",
        "algo-1\n",
        "algo-1\x00",
        "../algo-1",
        "%2e%2e",
        "..",
        "\u0430lgo-1",  # Cyrillic а
        "algo-\uff11",  # fullwidth 1
        "algo-\u0661",  # Arabic-Indic 1 (a \d digit, not [0-9])
        "algo-¹",
        "algo--1",
        "algo-1" + "0" * 60,
        "h" * 64,
        "algo-1/../algo-2",
    ]


def segment(value: str) -> str:
    return quote(value, safe="")


def routes(job_segment: str) -> list[tuple[str, str, object]]:
    base = f"/sm-debug/jobs/{job_segment}"
    return [
        ("GET", base, None),
        ("PUT", f"{base}/remote-debug", {"enabled": True}),
        ("POST", f"{base}/debug-copy", {}),
        ("POST", f"{base}/hosts/algo-1/terminals", {"transport": "ssh"}),
        ("POST", f"{base}/hosts/algo-1/terminals", {"transport": "ssm"}),
    ]


def check_refusal(status, body, problems, label) -> None:
    try:
        assert_error(status, body, (400, 404))
        if status == 404:
            assert body["error"]["code"] in ("job_not_found", "host_not_found", "no_such_route")
    except AssertionError as error:
        problems.append(f"{label}: {error}")


def processes_now(standin, job: str) -> set:
    """This process's descendants and the stand-in's session clients, by pid, but for the
    processes other jobs' hosts run."""
    return (descendants() | session_clients(standin)) - other_jobs_processes(standin, job)


async def assert_nothing_new_left(standin, job: str, before: set) -> None:
    """Nothing the requests started is left: a process of ours would stay, while the
    stand-in's own short-lived helpers (its hosts' looks) come and go on their own."""

    def settled() -> bool:
        return not {p for p in processes_now(standin, job) - before if alive(p)}

    if not await async_wait_until(settled, timeout=10):
        new = processes_now(standin, job) - before
        raise AssertionError(describe_processes(new))


async def test_hostile_job_names_on_every_route(raw, job, standin, terminal_manager, spawns):
    terminals, before = set(terminal_manager.terminals), processes_now(standin, job)
    problems: list[str] = []
    segments = [segment(name) for name in hostile_job_names(job)] + RAW_JOB_SEGMENTS
    for seg in segments:
        for method, path, body in routes(seg):
            status, answer, _ = await raw(method, path, body)
            count(f"{method} {path.replace(seg, '{job}', 1)}")
            check_refusal(status, answer, problems, f"{method} {path[:120]!r}")
    assert not problems, "\n".join(problems)
    assert spawns == []
    assert set(terminal_manager.terminals) == terminals
    await assert_nothing_new_left(standin, job, before)
    assert standin.job(job)["RemoteDebugConfig"] == {"EnableRemoteDebug": True}


async def test_hostile_host_names_never_attach(raw, job, standin, terminal_manager, spawns):
    terminals, before = set(terminal_manager.terminals), processes_now(standin, job)
    problems: list[str] = []
    hosts = [segment(host) for host in hostile_host_names()] + ["%2e%2e", "..", "%ff", "%00"]
    for host in hosts:
        for transport in ("ssh", "ssm"):
            path = f"/sm-debug/jobs/{job}/hosts/{host}/terminals"
            status, answer, _ = await raw("POST", path, {"transport": transport})
            count("POST /sm-debug/jobs/{job}/hosts/{host}/terminals")
            check_refusal(status, answer, problems, f"{transport} {host!r}")
    assert not problems, "\n".join(problems)
    for host, code in (("algo-0", "invalid_host_name"), ("algo-999", "host_not_found")):
        status, answer, _ = await raw("POST", f"/sm-debug/jobs/{job}/hosts/{host}/terminals")
        assert_error(status, answer, 400 if code.startswith("invalid") else 404, code)
    assert spawns == []
    assert set(terminal_manager.terminals) == terminals
    await assert_nothing_new_left(standin, job, before)

    # The same route with a valid host does attach: the refusals above were the names'.
    status, answer, _ = await raw(
        "POST", f"/sm-debug/jobs/{job}/hosts/algo-2/terminals", {"transport": "ssh"}
    )
    assert status == 201, answer
    assert len(spawns) == 1
    await terminal_manager.terminate(answer["terminal"]["name"], force=True)


HOSTILE_ADDRESSES = [
    "-oProxyCommand=touch /tmp/sm-debug-pwned",
    "127.0.0.1 -oProxyCommand=id",
    "127.0.0.1:22 -o",
    "-p22",
    "--",
    "$(id)",
    "`id`",
    "127.0.0.1;id",
    "localhost\x00",
    "[::1]:22;id",
    "host:99999",
    "host:0",
    "a b",
    "x" * 300,
    "\u0430.example",  # Cyrillic
    "user@127.0.0.1",
    "127.0.0.1:22:22",
]
# Whitespace and brackets are trimmed: these resolve to 127.0.0.1:22, where nothing listens.
# Whitespace around a pasted address is dropped; an unbalanced "[127.0.0.1" is refused (400).
TRIMMED_ADDRESSES = ["127.0.0.1\n", " 127.0.0.1"]


async def test_hostile_bodies_are_400s(raw, job, standin, terminal_manager, spawns):
    terminals = set(terminal_manager.terminals)
    problems: list[str] = []
    attach = f"/sm-debug/jobs/{job}/hosts/algo-1/terminals"
    copy = f"/sm-debug/jobs/{job}/debug-copy"
    bodies = [(attach, {"transport": "ssh", "address": a}) for a in HOSTILE_ADDRESSES]
    bodies += [
        (attach, {"transport": t})
        for t in (["ssm"], {"ssm": 1}, 1, True, None, "", "SSH", "ssh ", "telnet", "ssh;id")
    ]
    bodies += [(attach, {"transport": "ssh", "address": a})
               for a in (5, None, ["127.0.0.1"], "[127.0.0.1", "fe80::1%lo")]  # fmt: skip
    bodies += [(copy, {"name": name}) for name in [*hostile_job_names(job), None]]
    bodies += [
        (copy, {"hold_seconds": h})
        for h in (-1, 86401, 1.5, "60", True, None, 10**100, float("inf"))
    ]
    for nested in ("[" * 100_000, '{"a":' * 100_000):
        bodies += [(attach, nested), (copy, nested)]
        bodies += [(f"/sm-debug/jobs/{job}/remote-debug", nested)]
    bodies += [(attach, b"\xff\xfe"), (attach, "null"), (attach, "[]"), (attach, "")]
    bodies += [(attach, {"transport": "ssh", "address": a}) for a in TRIMMED_ADDRESSES]
    for path, body in bodies:
        method = "PUT" if path.endswith("remote-debug") else "POST"
        trimmed = isinstance(body, dict) and body.get("address") in TRIMMED_ADDRESSES
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body, allow_nan=True)
        body = body.encode() if isinstance(body, str) else body
        status, answer, _ = await raw(method, path, body)
        count(f"{method} bodies")
        try:
            if trimmed:
                assert_error(status, answer, 409, "host_unreachable")
                assert "127.0.0.1:22" in answer["error"]["message"]
            else:
                assert_error(status, answer, 400)
        except AssertionError as error:
            problems.append(f"{method} {path} {body[:80]!r}: {error}")
    assert not problems, "\n".join(problems)
    assert spawns == []
    assert set(terminal_manager.terminals) == terminals
    assert _jobs_named(standin, job) == []  # no debug copy got through


def _jobs_named(standin, job: str) -> list[str]:
    """Jobs other than `job` whose name starts with it: debug copies a refusal let through."""
    pages = standin.client("sagemaker").get_paginator("list_training_jobs")
    names = [
        summary["TrainingJobName"]
        for page in pages.paginate(NameContains=job)
        for summary in page["TrainingJobSummaries"]
    ]
    return [name for name in names if name != job]


@pytest.mark.parametrize(
    "query",
    [
        "max_results=%C2%B2",  # "²": str.isdigit() says yes, int() says no
        "max_results=%EF%BC%91%EF%BC%90",  # fullwidth "10"
        "max_results=" + "1" * 5000,  # more digits than int() takes
        "max_results=",
        "max_results=-1",
        "max_results=1e2",
        "max_results=0x10",
        "name_contains=",
        "name_contains=%00",
        "name_contains=a%0Ab",
        "name_contains=" + "a" * 64,
        "name_contains=%D0%B0",  # Cyrillic а
        "status=",
        "status=InProgress%00",
        "status=Completed&status=Failed",
        "next_token=",
        "next_token=" + "t" * 8193,
        "next_token=%ff",
    ],
)
async def test_hostile_list_queries_are_400s(raw, query):
    count("GET /sm-debug/jobs?query")
    status, answer, _ = await raw("GET", f"/sm-debug/jobs?{query}")
    assert_error(status, answer, 400)


async def test_a_copy_under_a_taken_name_is_409_not_502(raw, job):
    status, answer, _ = await raw("POST", f"/sm-debug/jobs/{job}/debug-copy", {"name": job})
    assert_error(status, answer, 409, "conflict")
    assert "unique" in answer["error"]["message"]


# -- every argv the server builds is made of validated parts ----------------------------------


def argv_problems(argv: list[str], transport: str, standin, config) -> list[str]:
    """Elements of an argv that match nothing on the allowlist for its transport."""
    if transport == "ssh":
        fixed = {
            "-t", "-o", "-p", "-i", "-l", "--", "-F", os.devnull,
            "StrictHostKeyChecking=yes", f"GlobalKnownHostsFile={os.devnull}",
            "CheckHostIP=no", "UpdateHostKeys=no", "ForwardAgent=no", "ForwardX11=no",
            "ForwardX11Trusted=no", "ClearAllForwardings=yes", "PermitLocalCommand=no",
            "ControlMaster=no", "ControlPath=none", "Tunnel=no",
            "PasswordAuthentication=no", "KbdInteractiveAuthentication=no",
            "ServerAliveInterval=15", "ServerAliveCountMax=4", "ConnectTimeout=10",
            "LogLevel=ERROR", "IdentitiesOnly=yes",
        }  # fmt: skip
        pinned = re.escape(tempfile.gettempdir()) + r"/sm-debug-ssh-\w+/known_hosts"
        allowed = [
            lambda part: part in fixed,
            lambda part: re.fullmatch(f"UserKnownHostsFile={pinned}", part) is not None,
            lambda part: re.fullmatch(r"HostKeyAlias=sm-debug-algo-[1-9][0-9]*", part) is not None,
            lambda part: part == shutil.which("ssh"),
            lambda part: part == os.path.expanduser(config["ssh_key"]),
            lambda part: part == config["ssh_user"] and bool(USER_NAME.fullmatch(part)),
            lambda part: re.fullmatch(r"[1-9][0-9]{0,4}", part) is not None,
        ]
        problems = [part for part in argv[:-1] if not any(rule(part) for rule in allowed)]
        # The destination: last, after "--", an IP address or a DNS name, never an option.
        addr = argv[-1]
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            if not DNS_NAME.fullmatch(addr):
                problems.append(addr)
        if argv[-2] != "--" or argv.count("--") != 1 or addr.startswith("-"):
            problems.append(f"structure: {argv[-3:]}")
        return problems
    fixed = {
        sys.executable, "-m", "jupyter_sm_debug.ssm.client", "--session-env",
        SESSION_VARIABLE, "--region", "--endpoint-url", standin.url,
    }  # fmt: skip
    return [
        part
        for part in argv
        if part not in fixed and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", part)
    ]


async def test_every_session_argv_holds_only_validated_parts(
    raw, job, standin, terminal_manager, jp_server_config
):
    """Many attaches (both transports, every host, explicit address spellings): walk every
    terminal created and check each argv element against the allowlist."""
    config = jp_server_config["SMDebug"]
    port = standin.host_address(job, "algo-1")[1]
    other = running_job(standin, "argv-check", hosts=3)
    attaches = [
        (name, f"algo-{index}", {"transport": transport})
        for name, hosts in ((job, 2), (other, 3))
        for index in range(1, hosts + 1)
        for transport in ("ssh", "ssm")
    ]
    attaches += [
        (job, "algo-1", {"transport": "ssh", "address": address})
        for address in (
            f"127.0.0.1:{port}",
            f"[127.0.0.1]:{port}",
            f"localhost:{port}",
            f" 127.0.0.1:{port} ",
        )  # fmt: skip
    ]
    seen: dict[int, tuple[str, list[str], dict]] = {}
    for job_name, host, body in attaches:
        status, answer, _ = await raw(
            "POST", f"/sm-debug/jobs/{job_name}/hosts/{host}/terminals", body
        )
        assert status == 201, (job_name, host, body, answer)
        name = answer["terminal"]["name"]
        assert re.fullmatch(r"smdebug_\w+", name), name
        term = terminal_manager.terminals[name]
        pid = term.ptyproc.pid
        seen[pid] = (body["transport"], list(term.ptyproc.argv), environ_of(pid))
        await terminal_manager.terminate(name, force=True)
        await async_wait_until(lambda n=name: n not in terminal_manager.terminals, timeout=5)
    assert len(seen) == len(attaches) == 14
    problems = {}
    for pid, (transport, argv, env) in seen.items():
        bad = argv_problems(argv, transport, standin, config)
        assert job not in " ".join(argv) and other not in " ".join(argv)
        if transport == "ssm" and env:
            session = json.loads(env.get(SESSION_VARIABLE, "{}"))
            assert set(session) <= {"SessionId", "TokenValue", "StreamUrl"}, session
        if bad:
            problems[pid] = (argv, bad)
    assert not problems, problems
    TRIED["argv checked"] = len(seen)


def test_report_hostile_inputs(capsys):
    with capsys.disabled():
        print(f"\nhostile inputs sent: {sum(v for k, v in TRIED.items() if 'argv' not in k)} "
              f"{TRIED}")  # fmt: skip
