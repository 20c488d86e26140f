"""A run whose data channel drops mid-output (issue 25, finding 3): the built-in client
resumes the session, its notices ("connection was lost; reconnecting...", "Reconnected.")
stay out of the run's data, and the output comes back whole."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid

import pytest

from jupyter_sm_debug.ssm import run as ssm_run
from jupyter_sm_debug.standin import ssm as standin_ssm

pytestmark = pytest.mark.usefixtures("standin")


def drop_mid_output(standin, job: str, after_messages: int, dropped: list) -> threading.Thread:
    """Once the job's session has sent ``after_messages`` output messages, cut its
    websocket (the stand-in's ``ssm-drop``)."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        registry = standin_ssm.registry(standin)
        while time.monotonic() < deadline:
            for session in list(registry.sessions.values()):
                agent = session.agent
                sent = agent.channel.next_sequence_number if agent is not None else 0
                if job in session.target and sent >= after_messages:
                    answer = standin.control("ssm-drop", {"session_id": session.session_id})
                    dropped.append((session.session_id, answer["dropped"]))
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


async def test_a_run_dropped_mid_output_returns_its_output_whole(api, standin, monkeypatch):
    job = f"rundrop-{uuid.uuid4().hex[:8]}"
    standin.create_job(job, instance_count=1, remote_debug=True, started_ago=600)
    notices: list = []
    original = ssm_run._Capture._notice

    def spy(self, text: str) -> None:
        notices.append(text)
        original(self, text)

    monkeypatch.setattr(ssm_run._Capture, "_notice", spy)
    expected = subprocess.run(["seq", "1", "300000"], capture_output=True, check=True).stdout
    dropped: list = []
    watcher = drop_mid_output(standin, job, 400, dropped)
    body = {"argv": ["seq", "1", "300000"], "hosts": ["algo-1"], "transport": "ssm",
            "timeout": 120}  # fmt: skip
    status, answer = await api("POST", "jobs", job, "run", body=body)
    await asyncio.get_running_loop().run_in_executor(None, watcher.join, 5)
    assert dropped and dropped[0][1] == [dropped[0][0]], "the connection was not dropped"
    assert status == 200, answer
    result = answer["hosts"]["algo-1"]
    assert result["error"] is None and not result["timed_out"], result
    assert result["exit_code"] == 0
    assert result["stdout"].encode() == expected
    assert notices == ["The session's connection was lost; reconnecting...", "Reconnected."]
