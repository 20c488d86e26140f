"""A kernel on a stand-in host through the real server, over each transport."""

from __future__ import annotations

import pytest

from .conftest import run_cell

pytestmark = pytest.mark.usefixtures("standin")


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_cells_run_in_the_host(jp_serverapp, job, kernel_of, transport):
    answer, client = await kernel_of(job, "algo-1", transport)
    assert answer["transport"] == transport
    assert answer["kernel"]["name"].startswith("sm-debug-")
    cell = await run_cell(client, "import socket; socket.gethostname()")
    assert cell.reply["status"] == "ok", cell.errors
    assert cell.results[0]["text/plain"] == "'algo-1'"
