"""Issue 22 finding 5: the proxy streams with backpressure and has no body limit.

A 200 MiB answer to a reader that first stalls and then reads slowly must not grow the
server's memory (the server runs in this process: its RSS is ours), and answers and
request bodies above tornado's 100 MB default are served whole. The HTTP/1.1 client the
proxy speaks to apps with is tested on its own against hand-written answers."""

from __future__ import annotations

import asyncio
import json
import uuid

import h11
import pytest
from forward_apps import HostApp

from jupyter_sm_debug.proxy_client import Exchange, UpstreamError

MiB = 1 << 20


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def job(standin) -> str:
    name = f"stream-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


@pytest.fixture(scope="module")
def app(standin, job):
    running = HostApp(standin, job, "algo-1", big_bytes=256)
    yield running
    running.stop()


@pytest.fixture
def open_forward(api, job, app, jp_serverapp):
    async def opened(transport: str) -> dict:
        status, body = await api("POST", "jobs", job, "hosts", "algo-1", "ports",
                                 body={"port": app.port, "transport": transport})  # fmt: skip
        assert status in (200, 201), body
        return body

    yield opened


class Peak:
    """The highest RSS seen while it runs, sampled every few milliseconds."""

    def __init__(self):
        self.base = rss()
        self.peak = self.base
        self.task = asyncio.ensure_future(self._sample())

    async def _sample(self):
        while True:
            self.peak = max(self.peak, rss())
            await asyncio.sleep(0.01)

    def growth(self) -> int:
        self.task.cancel()
        self.peak = max(self.peak, rss())
        return self.peak - self.base


async def raw_request(port, auth, method, url, headers=(), body_chunks=()):
    """A request on a fresh connection; returns (reader, writer, h11 client connection)
    with the answer's head read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    token = auth["Authorization"]
    head = [("Host", f"localhost:{port}"), ("Authorization", token), *headers]
    writer.write(conn.send(h11.Request(method=method, target=url, headers=head)))
    for chunk in body_chunks:
        writer.write(conn.send(h11.Data(data=chunk)))
        await writer.drain()
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        assert isinstance(event, h11.Response), event
        return reader, writer, conn, event


async def read_body(reader, conn, pause_every=0, pause=0.0) -> int:
    """Reads and drops the body; returns its length. A slow reader pauses after every
    `pause_every` bytes."""
    total, since = 0, 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        if isinstance(event, h11.Data):
            total += len(event.data)
            since += len(event.data)
            if pause_every and since >= pause_every:
                since = 0
                await asyncio.sleep(pause)
            continue
        assert isinstance(event, h11.EndOfMessage), event
        return total


# The built-in SSM client carries 1 KiB per message: 64 MiB is its minute on a loaded machine.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("transport, size", [("ssh", 200 * MiB), ("ssm", 64 * MiB)])
async def test_a_200_mib_answer_to_a_slow_reader_stays_out_of_memory(
    open_forward, jp_http_port, jp_auth_header, transport, size
):
    forward = await open_forward(transport)
    peak = Peak()
    reader, writer, conn, response = await raw_request(
        jp_http_port, jp_auth_header, "GET", forward["url"] + f"stream/{size}"
    )
    assert response.status_code == 200
    assert dict(response.headers)[b"content-length"] == str(size).encode()
    await asyncio.sleep(2)  # the reader stalls: the app must be held back, not buffered
    stalled = peak.growth()
    peak = Peak()
    received = await read_body(reader, conn, pause_every=4 * MiB, pause=0.02)
    growth = peak.growth()
    writer.close()
    print(f"{transport}: RSS growth while stalled {stalled / MiB:.1f} MiB, "
          f"while reading slowly {growth / MiB:.1f} MiB")  # fmt: skip
    assert received == size
    assert stalled < 32 * MiB and growth < 32 * MiB


async def test_a_chunked_answer_above_100_mb_is_served(open_forward, jp_http_port, jp_auth_header):
    forward = await open_forward("ssh")
    size = 110 * 1000 * 1000 + 7
    reader, writer, conn, response = await raw_request(
        jp_http_port, jp_auth_header, "GET", forward["url"] + f"stream/{size}?chunked=1"
    )
    assert response.status_code == 200
    assert b"content-length" not in dict(response.headers)
    assert await read_body(reader, conn) == size
    writer.close()


async def test_a_request_body_above_100_mb_streams_to_the_app(
    open_forward, jp_http_port, jp_auth_header
):
    forward = await open_forward("ssh")
    size = 120 * MiB
    block = b"\x00\xff" * (MiB // 2)
    peak = Peak()
    reader, writer, conn, response = await raw_request(
        jp_http_port, jp_auth_header, "POST", forward["url"] + "count",
        headers=[("Content-Length", str(size)), ("Origin", f"http://localhost:{jp_http_port}")],
        body_chunks=[block] * (size // MiB),
    )  # fmt: skip
    growth = peak.growth()
    assert response.status_code == 200
    body = b""
    while not isinstance(event := conn.next_event(), h11.EndOfMessage):
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        else:
            body += event.data
    writer.close()
    assert json.loads(body) == {"count": size}
    print(f"request body: RSS growth {growth / MiB:.1f} MiB")
    assert growth < 32 * MiB


# -- the client on its own, against hand-written answers ----------------------------------------


async def exchange_with(answer: bytes, method="GET", body=b""):
    """Serves `answer` to one request; returns (head, body, what the server received)."""
    received = bytearray()

    async def serve(reader, writer):
        received.extend(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        exchange = Exchange(*await asyncio.open_connection("127.0.0.1", port))
        headers = [("Host", "app")]
        if body:
            headers.append(("Content-Length", str(len(body))))
        await exchange.send_head(method, "/x", headers)
        await exchange.send_body(body)
        await exchange.end()
        head = await exchange.response()
        data = b""
        while (piece := await exchange.body()) is not None:
            data += piece
        exchange.close()
        return head, data, bytes(received)
    finally:
        server.close()


async def test_the_client_reads_every_body_framing():
    head, data, _ = await exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert (head.status_code, data) == (200, b"hello")
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    head, data, _ = await exchange_with(chunked)
    assert data == b"abcde"
    head, data, _ = await exchange_with(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    assert data == b"until the end"  # close-delimited
    head, data, _ = await exchange_with(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    assert (head.status_code, data) == (201, b"ok")
    head, data, _ = await exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD")
    assert (head.status_code, data) == (200, b"")
    head, data, sent = await exchange_with(b"HTTP/1.1 204 No Content\r\n\r\n", "POST", b"body")
    assert head.status_code == 204 and b"Content-Length: 4" in sent


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # closed at once
        b"not http at all\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # cut mid-body
        b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 300000 + b"\r\n\r\n",  # endless head
    ],
    ids=["closed", "not-http", "cut", "endless-head"],
)
async def test_the_client_reports_a_broken_answer(answer):
    with pytest.raises(UpstreamError):
        await exchange_with(answer)
