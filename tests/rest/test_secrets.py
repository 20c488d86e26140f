"""Nothing leaks: no AWS access key, secret key, session token or SSM TokenValue in any HTTP
response (body or header), any server log line at DEBUG, any terminal name or model, the
terminal output of SSH and SSM sessions, or the command line of a session process (which
every local user can read with ps).

The session client process itself does hold credentials in its environment (the built-in
SSM client calls TerminateSession, as the plugin does); that environment is readable only
by the server's own user, and the terminal model the browser sees is name and last_activity.
"""

from __future__ import annotations

import json
import logging

import pytest
from hardening_helpers import (
    SSM_CLIENT_MODULE,
    JupyterServer,
    SyncTerminal,
    assert_error,
    cmdline,
    end_created_jobs,  # noqa: F401 - module fixture: stops the jobs made here
    environ_of,
    leaks,
    raw_client,
    running_job,
    secrets_of,
    session_clients,
    wait_until,
)
from terminal_io import open_terminal

from jupyter_sm_debug.connect.ssm import SESSION_VARIABLE

# Typed into each session: the host's shell must know nothing of the server's AWS identity.
PROBE = (
    'echo BEGIN-""PROBE; env | grep -c "^AWS_"; echo "k=$AWS_SECRET_ACCESS_KEY"; echo END-""PROBE\r'
)


@pytest.fixture
def jp_server_config(jp_server_config):
    """One attempt per AWS call: the fault scenarios answer at once."""
    return {**jp_server_config, "SMDebug": {**jp_server_config["SMDebug"], "max_attempts": 1}}


@pytest.fixture
def raw(http_server_client, jp_base_url, jp_auth_header):
    return raw_client(http_server_client, jp_base_url, jp_auth_header)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def server_log(jp_serverapp):
    """Every line the server, the extension, tornado and terminado log, at DEBUG."""
    handler = Records()
    loggers = [jp_serverapp.log] + [
        logging.getLogger(name) for name in ("tornado", "terminado", "jupyter_sm_debug")
    ]
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()
    root.addHandler(handler)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(handler)
    yield handler.lines
    root.removeHandler(handler)
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)
        logger.removeHandler(handler)


async def test_no_secret_reaches_the_browser_or_the_log(
    raw, server_log, jp_ws_fetch, standin, terminal_manager
):
    job = running_job(standin, "secrets", hosts=2)
    responses: list[str] = []

    async def call(method, path, body=None, expect=None):
        status, answer, headers = await raw(method, path, body)
        responses.append(json.dumps(answer))
        responses.extend(f"{k}: {v}" for k, v in headers.get_all())
        if expect is not None:
            assert status == expect, answer
        return status, answer

    await call("GET", "/sm-debug/environment", expect=200)
    await call("GET", f"/sm-debug/jobs?name_contains={job}", expect=200)
    await call("GET", f"/sm-debug/jobs/{job}", expect=200)
    await call("PUT", f"/sm-debug/jobs/{job}/remote-debug", {"enabled": True}, expect=200)
    _, copy = await call("POST", f"/sm-debug/jobs/{job}/debug-copy", {"name": f"{job}-c"}, 201)
    standin.client("sagemaker").stop_training_job(TrainingJobName=copy["name"])
    await call("GET", "/sm-debug/jobs/no-such-job-at-all", expect=404)

    outputs, names = [], []
    for host, transport in (("algo-1", "ssh"), ("algo-2", "ssm")):
        _, answer = await call(
            "POST", f"/sm-debug/jobs/{job}/hosts/{host}/terminals", {"transport": transport}, 201
        )
        name = answer["terminal"]["name"]
        names.append(name)
        terminal = await open_terminal(jp_ws_fetch, name)
        await terminal.send(PROBE)
        match = await terminal.expect(r"END-PROBE", timeout=30)
        outputs.append(match.string)
        assert "\r\n0\r\n" in match.string and "k=\r\n" in match.string, match.string
        terminal.ws.close()
        # What the browser is told about the terminal: its name and last activity, no more.
        status, model, _ = await raw("GET", f"/api/terminals/{name}")
        assert status == 200 and set(model) == {"name", "last_activity"}, model
        responses.append(json.dumps(model))
    status, listing, _ = await raw("GET", "/api/terminals")
    assert status == 200 and all(set(item) == {"name", "last_activity"} for item in listing)
    responses.append(json.dumps(listing))

    # The session processes: argv is public (ps), the environment is the server user's own.
    clients = {terminal_manager.terminals[name].ptyproc.pid for name in names}
    assert len(clients) == 2
    cmdlines = [" ".join(cmdline(pid)) for pid in clients]
    ssm_clients = [pid for pid in clients if SSM_CLIENT_MODULE in cmdline(pid)]
    assert ssm_clients and all(SESSION_VARIABLE in environ_of(pid) for pid in ssm_clients)

    # Faults: their error messages name the problem, never the credentials.
    for faults, code in (({"expired": True}, "credentials_rejected"), ({"down": True}, None)):
        standin.faults.update(**faults)
        try:
            status, answer = await call("GET", f"/sm-debug/jobs/{job}")
        finally:
            standin.clear_faults()
        assert_error(status, answer, (403, 503), code)

    for name in names:
        await terminal_manager.terminate(name, force=True)

    secrets = secrets_of(standin)
    assert any(label.startswith("TokenValue") for label in secrets)  # an SSM session was made
    assert any(line.startswith("DEBUG ServerApp") for line in server_log)
    assert any("sm-debug: terminal" in line for line in server_log)
    assert leaks(secrets, check=[f"x{value}x" for value in secrets.values()])  # the detector
    found = leaks(
        secrets,
        responses=responses,
        log=server_log,
        terminal_output=outputs,
        terminal_names=names,
        cmdlines=cmdlines,
    )
    assert not found, "\n".join(found)


def test_the_server_log_at_debug_holds_no_secret(standin, tmp_path):
    """A real `jupyter server --log-level=DEBUG`: attach over SSH and SSM, type in both,
    meet expired credentials, shut down; then read every line it logged."""
    job = running_job(standin, "secrets-log", hosts=2)
    baseline = session_clients(standin)  # other tests' sessions, if any, are not ours
    server = JupyterServer(standin, tmp_path / "server").start()
    responses: list[str] = []
    outputs: list[str] = []
    try:

        def call(method, path, body=None):
            status, answer, headers = server.request(method, path, body)
            responses.append(json.dumps(answer))
            responses.extend(f"{k}: {v}" for k, v in headers.items())
            return status, answer

        assert call("GET", "/sm-debug/environment")[0] == 200
        assert call("GET", f"/sm-debug/jobs/{job}")[0] == 200
        for host, transport in (("algo-1", "ssh"), ("algo-2", "ssm")):
            status, answer = call(
                "POST", f"/sm-debug/jobs/{job}/hosts/{host}/terminals", {"transport": transport}
            )
            assert status == 201, answer
            terminal = SyncTerminal(server, answer["terminal"]["name"])
            terminal.send(PROBE)
            outputs.append(terminal.expect("END-PROBE"))
            terminal.close()
        standin.faults.update(expired=True)
        try:
            status, answer = call("GET", f"/sm-debug/jobs/{job}")
        finally:
            standin.clear_faults()
        assert_error(status, answer, 403, "credentials_rejected")
    finally:
        server.stop()
    assert wait_until(lambda: not session_clients(standin) - baseline, timeout=5)
    log = server.log()
    assert "[D " in log and "sm-debug: terminal" in log  # DEBUG lines, our lines
    found = leaks(secrets_of(standin), log=log.splitlines(), responses=responses,
                  terminal_output=outputs)  # fmt: skip
    assert not found, "\n".join(found)
