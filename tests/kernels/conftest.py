"""Kernels on stand-in hosts: a job per test, a client of the kernel the route started."""

from __future__ import annotations

import asyncio
import uuid

import pytest


@pytest.fixture
def job(standin):
    name = f"kern-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=2, remote_debug=True, started_ago=600)
    return name


class Cell:
    """What one execute_request gave: streams, results, displays, error, the reply."""

    def __init__(self) -> None:
        self.stdout = ""
        self.stderr = ""
        self.results: list[dict] = []
        self.displays: list[dict] = []
        self.errors: list[dict] = []
        self.reply: dict = {}
        self.first_output_at: float | None = None


async def run_cell(client, code: str, inputs=(), timeout: float = 90.0, on_busy=None) -> Cell:
    """Execute `code` and collect its outputs until the kernel is idle again."""
    cell = Cell()
    inputs = list(inputs)
    msg_id = client.execute(code, allow_stdin=bool(inputs))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    idle = False
    while not idle:
        if inputs:
            try:
                request = await client.get_stdin_msg(timeout=0.05)
            except Exception:  # noqa: BLE001 - none yet (queue.Empty)
                request = None
            if request is not None and request["msg_type"] == "input_request":
                client.input(inputs.pop(0))
        try:
            message = await client.get_iopub_msg(timeout=0.1)
        except Exception:  # noqa: BLE001 - none yet
            assert loop.time() < deadline, f"no end to {code!r}"
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            if cell.first_output_at is None:
                cell.first_output_at = loop.time()
            setattr(cell, content["name"], getattr(cell, content["name"]) + content["text"])
        elif kind == "execute_result":
            cell.results.append(content["data"])
        elif kind == "display_data":
            cell.displays.append(content["data"])
        elif kind == "error":
            cell.errors.append(content)
        elif kind == "status" and content["execution_state"] == "busy" and on_busy:
            await on_busy()
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
    reply = await client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = await client.get_shell_msg(timeout=timeout)
    cell.reply = reply["content"]
    return cell


@pytest.fixture
def kernel_of(jp_serverapp, api):
    """start(job, host, transport) -> (answer, client); clients and kernels end after."""
    clients = []
    manager = jp_serverapp.kernel_manager

    async def start(job: str, host: str = "algo-1", transport: str = "ssh"):
        status, answer = await api(
            "POST", "jobs", job, "hosts", host, "kernels", body={"transport": transport}
        )
        assert status == 201, answer
        client = manager.get_kernel(answer["kernel"]["id"]).client()
        client.start_channels()
        clients.append(client)
        await client.wait_for_ready(timeout=60)
        return answer, client

    yield start
    for client in clients:
        client.stop_channels()
