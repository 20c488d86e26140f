"""The route's answers to bad requests, and a cell through the kernel's channels websocket
(what JupyterLab's notebook uses)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

pytestmark = pytest.mark.usefixtures("standin")


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (("no-such-job", "hosts", "algo-1"), {}, 404, None),
        (("JOB", "hosts", "algo-9"), {}, 404, "host_not_found"),
        (("JOB", "hosts", "algo-1"), {"transport": "carrier-pigeon"}, 400, "invalid_transport"),
        (("JOB", "hosts", "algo-1"), {"other": 1}, 400, None),
        (("JOB", "hosts", "algo-1"), "not json", 400, None),
    ],
)
async def test_bad_requests_are_4xx_with_a_hint(api, job, path, body, status, code):
    path = tuple(job if part == "JOB" else part for part in path)
    got, answer = await api("POST", "jobs", *path, "kernels", body=body)
    assert got == status, answer
    assert answer["error"]["hint"]
    if code:
        assert answer["error"]["code"] == code


async def test_a_cell_through_the_channels_websocket(api, job, jp_ws_fetch, jp_serverapp):
    status, answer = await api(
        "POST", "jobs", job, "hosts", "algo-2", "kernels", body={"transport": "ssm"}
    )
    assert status == 201, answer
    ws = await jp_ws_fetch("api", "kernels", answer["kernel"]["id"], "channels")
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "t",
                   "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": "import socket; print('hi'); socket.gethostname()",
                    "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))  # fmt: skip
    seen: dict = {}
    while "execute_reply" not in seen or "idle" not in seen:
        message = json.loads(await asyncio.wait_for(ws.read_message(), 90))
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "status":
            seen.setdefault(message["content"]["execution_state"], True)
        else:
            seen.setdefault(kind, message["content"])
    ws.close()
    assert seen["stream"]["text"] == "hi\n"
    assert seen["execute_result"]["data"]["text/plain"] == "'algo-2'"
    assert seen["execute_reply"]["status"] == "ok"
    await jp_serverapp.kernel_manager.shutdown_kernel(answer["kernel"]["id"])
