"""The plugin path: the plugin's version decides how it gets the session (never by argv),
and a client that ends or shows no shell within c.SMDebug.ssm_connect_timeout says so in
the tab. Fake plugins play the old versions; AWS's real plugin is used when it is here."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import sys
import threading
import uuid
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import tornado.websocket
from hardening_helpers import environ_of
from ssm_judge import SKIP_REASON, real_plugin
from terminal_io import open_terminal
from test_attach_ssh import attach

from jupyter_sm_debug.connect import ssm as connect_ssm


def fake_plugin(directory: Path, version: str, body: str) -> Path:
    """A session-manager-plugin script answering --version with ``version``; it records
    its argv in argv.txt beside it, then runs ``body``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "session-manager-plugin"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = --version ]; then echo {version}; exit 0; fi\n'
        f'printf "%s\\n" "$@" > "{directory}/argv.txt"\n'
        f"{body}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


OLD_PLUGIN_FAILURE = (
    "echo \"Cannot perform start session: invalid character 'A' looking for beginning of "
    'value"; exit 0'
)


@pytest.fixture
def smdebug_config() -> dict:
    return {}


@pytest.fixture
def jp_server_config(jp_server_config, smdebug_config):
    return {**jp_server_config, "SMDebug": {**jp_server_config["SMDebug"], **smdebug_config}}


@pytest.fixture
def job(standin):
    name = f"plug-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


def on_path(monkeypatch, directory: Path) -> None:
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


# -- version ------------------------------------------------------------------------------


def test_the_version_is_read_once_per_binary(tmp_path):
    script = fake_plugin(tmp_path, "1.2.497.0", "exit 0")
    assert connect_ssm.plugin_version(str(script)) == (1, 2, 497, 0)
    script.write_text(script.read_text().replace("1.2.497.0", "1.2.650.0") + "\n")
    assert connect_ssm.plugin_version(str(script)) == (1, 2, 650, 0)  # changed binary: asked again
    calls = tmp_path / "calls"
    counting = fake_plugin(tmp_path / "c", "1.2.600.0", "exit 0")
    counting.write_text(
        counting.read_text().replace("#!/bin/sh\n", f"#!/bin/sh\necho >> {calls}\n")
    )
    for _ in range(3):
        assert connect_ssm.plugin_version(str(counting)) == (1, 2, 600, 0)
    assert calls.read_text().count("\n") == 1


def test_a_plugin_without_a_version_counts_as_old(tmp_path, monkeypatch):
    fake_plugin(tmp_path, "garbage", "exit 0")
    on_path(monkeypatch, tmp_path)
    choice = connect_ssm.choose_client("auto")
    assert choice.kind == "builtin" and choice.problem["code"] == "plugin_too_old"


@pytest.mark.skipif(real_plugin() is None, reason=SKIP_REASON)
def test_aws_plugin_reports_its_version_and_is_chosen(tmp_path, monkeypatch):
    shutil.copy(real_plugin(), tmp_path / "session-manager-plugin")
    on_path(monkeypatch, tmp_path)
    choice = connect_ssm.choose_client("auto")
    assert choice.kind == "plugin" and choice.version == (1, 2, 677, 0) and not choice.problem


# -- an old plugin on PATH -------------------------------------------------------------------


@pytest.mark.parametrize("preference", ["auto", "plugin"])
async def test_an_old_plugin_falls_back_to_the_builtin_client_and_says_why(
    api, jp_ws_fetch, job, terminal_manager, tmp_path, monkeypatch, preference, jp_serverapp
):
    fake_plugin(tmp_path, "1.2.497.0", OLD_PLUGIN_FAILURE)
    on_path(monkeypatch, tmp_path)
    jp_serverapp.web_app.settings["sm_debug"].config.ssm_client = preference

    status, env = await api("GET", "environment")
    assert status == 200
    assert env["clients"]["ssm"] == "builtin"
    assert env["clients"]["session_manager_plugin_version"] == "1.2.497.0"
    (problem,) = [p for p in env["problems"] if p["code"] == "plugin_too_old"]
    assert "1.2.497.0" in problem["message"] and "1.2.536.0" in problem["hint"]

    status, body = await attach(api, job, "algo-1", transport="ssm")
    assert status == 201, body
    assert body["target"].endswith("(builtin)")
    term = terminal_manager.terminals[body["terminal"]["name"]]
    assert term.ptyproc.argv[1:3] == ["-m", "jupyter_sm_debug.ssm.client"]
    assert not (tmp_path / "argv.txt").exists()  # the old plugin never ran a session
    env = environ_of(term.ptyproc.pid)
    assert env["SM_DEBUG_SSM_CONNECT_TIMEOUT"] == "30"  # c.SMDebug.ssm_connect_timeout
    assert env["SM_DEBUG_SSM_TARGET"] == f"sagemaker-training-job:{job}_algo-1"
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    await terminal.send("echo up=$((6*7))\r")
    await terminal.expect("up=42", timeout=30)
    await terminal.send("exit\r")
    assert await terminal.closed(timeout=15)


# -- a client that fails: the line in the tab -------------------------------------------------


@pytest.mark.parametrize("smdebug_config", [{"ssm_client": "plugin", "ssm_connect_timeout": 2}])
async def test_a_plugin_that_ends_before_the_shell_leaves_a_line(
    api, jp_ws_fetch, job, terminal_manager, tmp_path, monkeypatch
):
    fake_plugin(tmp_path, "1.2.600.0", 'echo "Cannot perform start session: EOF"; exit 0')
    on_path(monkeypatch, tmp_path)
    status, body = await attach(api, job, "algo-1", transport="ssm")
    assert status == 201, body
    assert body["target"].endswith("(plugin)")
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    await terminal.expect(r"Cannot perform start session: EOF", timeout=15)
    await terminal.expect(
        r"\[sm-debug\] session-manager-plugin 1\.2\.600\.0 ended \(exit status 0\) before "
        r"the remote shell started",
        timeout=15,
    )
    assert await terminal.closed(timeout=10)
    argv = (tmp_path / "argv.txt").read_text().splitlines()
    assert argv[0] == connect_ssm.SESSION_VARIABLE  # the variable's name, not the session
    assert not any("Token" in part for part in argv)


@pytest.mark.parametrize("smdebug_config", [{"ssm_client": "plugin", "ssm_connect_timeout": 2}])
async def test_a_plugin_that_shows_no_shell_is_ended_with_a_line(
    api, jp_ws_fetch, job, terminal_manager, tmp_path, monkeypatch
):
    # What plugins 1.2.536-1.2.650 did against a gateway that demanded ClientVersion.
    fake_plugin(
        tmp_path, "1.2.600.0", 'printf "\\nStarting session with SessionId: x\\n"; exec sleep 60'
    )
    on_path(monkeypatch, tmp_path)
    status, body = await attach(api, job, "algo-1", transport="ssm")
    assert status == 201, body
    term = terminal_manager.terminals[body["terminal"]["name"]]
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    await terminal.expect(
        r"\[sm-debug\] session-manager-plugin 1\.2\.600\.0 showed no shell within 2 s "
        r"\(c\.SMDebug\.ssm_connect_timeout\)",
        timeout=15,
    )
    assert await terminal.closed(timeout=10)
    assert not term.ptyproc.isalive()


class SilentGateway(tornado.websocket.WebSocketHandler):
    """A data channel that takes the token and then says nothing (an agent that hangs)."""

    def on_message(self, message):
        pass


@pytest.fixture
def silent_gateway():
    started = threading.Event()
    box = {}

    def serve():
        asyncio.set_event_loop(asyncio.new_event_loop())
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/.*", SilentGateway)]))
        server.add_sockets(sockets)
        box["loop"] = tornado.ioloop.IOLoop.current()
        box["port"] = sockets[0].getsockname()[1]
        started.set()
        box["loop"].start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(5)
    yield f"ws://127.0.0.1:{box['port']}/v1/data-channel/x"
    box["loop"].add_callback(box["loop"].stop)
    thread.join(5)


def test_the_builtin_client_takes_target_and_timeout_from_the_environment(monkeypatch):
    from jupyter_sm_debug.ssm import client

    monkeypatch.setenv("SM_DEBUG_SSM_TARGET", "sagemaker-training-job:j_algo-2")
    monkeypatch.setenv("SM_DEBUG_SSM_CONNECT_TIMEOUT", "12.5")
    args = client.parse_args(["--session-env", "X"])
    assert args.target == "sagemaker-training-job:j_algo-2" and args.connect_timeout == 12.5
    assert client.parse_args(["--session-env", "X", "--connect-timeout", "3"]).connect_timeout == 3


def test_the_builtin_client_says_when_no_shell_comes(standin, silent_gateway):
    from test_ssm_session import Terminal, client_env

    env = client_env(standin)
    env["SESSION"] = f'{{"SessionId": "s-1", "TokenValue": "t", "StreamUrl": "{silent_gateway}"}}'
    argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client",
            "--session-env", "SESSION", "--no-terminate", "--connect-timeout", "1.5"]  # fmt: skip
    term = Terminal(argv, env)
    term.expect(rb"no shell within 1\.5 s \(c\.SMDebug\.ssm_connect_timeout\)", timeout=15)
    assert term.wait() == 1
