"""Session documents: the attach body's "document" (else c.SMDebug.ssm_document) picks a
Standard_Stream document in SSM, whose kmsKeyId and shellProfile the stand-in honours."""

from __future__ import annotations

import time
import uuid

import pytest
from support import attach
from terminal_io import open_terminal
from test_ssm_session import kms_document, sessions


@pytest.fixture
def job(standin):
    name = f"doc-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


async def test_the_attach_body_names_the_session_document(
    api, jp_ws_fetch, job, standin, terminal_manager, jp_serverapp
):
    jp_serverapp.web_app.settings["sm_debug"].config.ssm_client = "builtin"
    kms_document(standin, "SMDebug-Doc-Test", shellProfile={"linux": "export FROM_DOC=1"})
    status, body = await attach(api, job, "algo-1", transport="ssm", document="SMDebug-Doc-Test")
    assert status == 201, body
    terminal = await open_terminal(jp_ws_fetch, body["terminal"]["name"])
    match = await terminal.expect(r"Starting session with SessionId: (\S+)", timeout=30)
    session = sessions(standin)[match.group(1)]
    assert session.document == "SMDebug-Doc-Test" and session.kms_key_id
    await terminal.send("echo from-doc=$FROM_DOC\r")
    await terminal.expect("from-doc=1", timeout=30)
    assert session.agent.channel.cipher is not None
    await terminal.send("exit\r")
    assert await terminal.closed(timeout=15)


@pytest.mark.parametrize("document", ["x", "no spaces allowed", 7, ["SSM-SessionManagerRunShell"]])
async def test_a_malformed_document_name_is_400(api, job, terminal_manager, document):
    before = set(terminal_manager.terminals)
    status, body = await attach(api, job, "algo-1", transport="ssm", document=document)
    assert status == 400 and body["error"]["code"] == "invalid_body"
    assert set(terminal_manager.terminals) == before


async def test_an_unknown_document_is_a_clear_error_and_opens_nothing(api, job, terminal_manager):
    before = set(terminal_manager.terminals)
    status, body = await attach(api, job, "algo-1", transport="ssm", document="No-Such-Doc")
    assert status == 400 and body["error"]["code"] == "invalid_document", body
    assert "No-Such-Doc" in body["error"]["message"]
    assert set(terminal_manager.terminals) == before


def test_idle_session_timeout_ends_the_session_on_the_standins_clock(standin, tmp_path):
    import sys

    from test_ssm_session import PROMPT, Terminal, client_env

    name = f"idle-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    kms_document(standin, "SMDebug-Idle", idleSessionTimeout="1")
    target = f"sagemaker-training-job:{name}_algo-1"
    argv = [sys.executable, "-m", "jupyter_sm_debug.ssm.client", "--target", target,
            "--document-name", "SMDebug-Idle"]  # fmt: skip
    term = Terminal(argv, client_env(standin))
    try:
        session_id = term.expect(rb"Starting session with SessionId: (\S+)").group(1).decode()
        term.expect(PROMPT)
        standin.advance(40)
        term.send("echo still-here\r")  # input resets the idle time
        term.expect(rb"still-here")
        standin.advance(40)
        time.sleep(0.5)
        assert sessions(standin)[session_id].status == "Connected"
        standin.advance(30)
        term.expect(rb"timed out after 1 minute\(s\) of inactivity", timeout=10)
        assert term.wait() == 0
    finally:
        term.close()
