"""The files REST routes (api/files.py) through the real Jupyter server on the stand-in, over
SSH and SSM: every verb, hostile names, a binary round trip, a chunked upload, a streamed
download with the server's memory bounded, and the errors a user meets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import uuid
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

TRANSPORTS = ["ssh", "ssm"]
MIB = 1024 * 1024
pytestmark = pytest.mark.usefixtures("standin")


@pytest.fixture(scope="module")
def job(standin):
    name = f"files-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=2, remote_debug=True, started_ago=600)
    return name


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


@pytest.fixture
def files(jp_fetch, job, transport):
    """call(method, path, body=None, **query) on algo-1's files over `transport` -> (status,
    JSON or None); jp_fetch percent-encodes the path (each character but "/")."""

    async def call(method, path="", body=None, **query):
        kwargs = {"method": method, "params": {"transport": transport, **query}}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        parts = ("sm-debug", "jobs", job, "hosts", "algo-1", "files", path)
        try:
            response = await jp_fetch(*parts, request_timeout=120, **kwargs)
        except HTTPClientError as error:
            assert error.response is not None, error
            return error.code, json.loads(error.response.body)
        return response.code, json.loads(response.body) if response.body else None

    return call


@pytest.fixture
def raw(http_server_client, jp_base_url, jp_auth_header, job, transport):
    """fetch(path_as_sent, **request) -> the response (any status), the URL path as is."""

    async def fetch(path: str, method: str = "GET", **kwargs):
        base = f"{jp_base_url.rstrip('/')}/sm-debug/jobs/{job}/hosts/algo-1/files/"
        sep = "&" if "?" in path else "?"
        return await http_server_client.fetch(
            f"{base}{path}{sep}transport={transport}", method=method, headers=jp_auth_header,
            raise_error=False, request_timeout=120, **kwargs,
        )  # fmt: skip

    return fetch


@pytest.fixture
def on_host(api, job, transport):
    """run(shell) on algo-1 over the same transport -> stdout (the run route)."""

    async def run(shell: str) -> str:
        body = {"shell": shell, "hosts": ["algo-1"], "transport": transport, "timeout": 120}
        status, answer = await api("POST", "jobs", job, "run", body=body)
        assert status == 200, answer
        result = answer["hosts"]["algo-1"]
        assert result["exit_code"] == 0, result
        return result["stdout"]

    return run


@pytest.fixture
def config(jp_serverapp):
    return jp_serverapp.web_app.settings["sm_debug"].config


async def fresh(files) -> str:
    """A new directory under the host's own /tmp, as a request path."""
    path = f"tmp/rest-{uuid.uuid4().hex[:8]}"
    status, model = await files("PUT", path, {"type": "directory"})
    assert status == 201, model
    return path


def text(content: str) -> dict:
    return {"type": "file", "format": "text", "content": content}


def b64(data: bytes) -> dict:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}


# -- every verb -------------------------------------------------------------------------------


async def test_a_directory_lists_its_entries_as_contents_models(files):
    home = await fresh(files)
    assert (await files("PUT", f"{home}/b.txt", text("hello\n")))[0] == 201
    assert (await files("PUT", f"{home}/sub", {"type": "directory"}))[0] == 201
    status, model = await files("GET", home)
    assert status == 200, model
    assert (model["type"], model["format"], model["path"]) == ("directory", "json", home)
    assert model["truncated"] is False and model["size"] is None
    assert [(e["name"], e["path"], e["type"], e["size"]) for e in model["content"]] == [
        ("sub", f"{home}/sub", "directory", None),  # directories first
        ("b.txt", f"{home}/b.txt", "file", 6),
    ]
    entry = model["content"][1]
    assert set(entry) >= {"name", "path", "type", "format", "content", "created",
                          "last_modified", "size", "writable", "mimetype"}  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", entry["last_modified"])
    assert entry["content"] is None and entry["writable"] is True
    assert entry["mimetype"] == "text/plain"
    # content=0: the directory's model alone.
    status, model = await files("GET", home, content="0")
    assert status == 200 and model["content"] is None and model["type"] == "directory"
    # The root is "" and lists the host's /.
    for root in ("", "/"):  # .../files and .../files/
        status, model = await files("GET", root)
        assert status == 200 and model["path"] == "" and model["name"] == ""
        assert {"tmp", "opt"} <= {e["name"] for e in model["content"]}


async def test_a_file_opens_as_text_or_base64_and_saves_back(files):
    home = await fresh(files)
    status, model = await files("PUT", f"{home}/train.py", text("print('hi')\n"))
    assert status == 201 and model["content"] is None and model["size"] == 12, model
    status, model = await files("GET", f"{home}/train.py")
    assert status == 200, model
    assert (model["type"], model["format"], model["content"]) == ("file", "text", "print('hi')\n")
    assert model["mimetype"] == "text/x-python" and model["name"] == "train.py"
    status, model = await files("GET", f"{home}/train.py", content="0", hash="1")
    assert model["content"] is None
    assert model["hash"] == hashlib.sha256(b"print('hi')\n").hexdigest()
    status, model = await files("GET", f"{home}/train.py", format="base64", hash="1")
    assert base64.b64decode(model["content"]) == b"print('hi')\n"
    assert model["hash"] == hashlib.sha256(b"print('hi')\n").hexdigest()
    assert model["hash_algorithm"] == "sha256"
    # Saving again replaces it (200), as the editor does.
    status, model = await files("PUT", f"{home}/train.py", text("print('bye')\n"))
    assert status == 200 and model["size"] == 13, model
    assert (await files("GET", f"{home}/train.py"))[1]["content"] == "print('bye')\n"
    # content=0: the model without content; type= must match.
    status, model = await files("GET", f"{home}/train.py", content="0")
    assert status == 200 and model["content"] is None and model["format"] is None
    status, error = await files("GET", f"{home}/train.py", type="directory")
    assert status == 400 and error["error"]["code"] == "not_a_directory", error


async def test_binary_bytes_are_base64_and_never_text(files):
    home = await fresh(files)
    for name, data in (("nul.txt", b"a\0b"), ("latin.txt", b"caf\xe9")):
        assert (await files("PUT", f"{home}/{name}", b64(data)))[0] == 201
        status, model = await files("GET", f"{home}/{name}")
        assert (model["format"], model["mimetype"]) == ("base64", "text/plain"), model
        assert base64.b64decode(model["content"]) == data
        status, error = await files("GET", f"{home}/{name}", format="text")
        assert status == 400 and error["error"]["code"] == "not_text" and error["error"]["hint"]


async def test_rename_delete_and_new_untitled(files):
    home = await fresh(files)
    await files("PUT", f"{home}/a.txt", text("a"))
    await files("PUT", f"{home}/b.txt", text("b"))
    status, model = await files("PATCH", f"{home}/a.txt", {"path": f"{home}/c.txt"})
    assert status == 200 and model["path"] == f"{home}/c.txt", model
    # Never over an existing name.
    status, error = await files("PATCH", f"{home}/c.txt", {"path": f"{home}/b.txt"})
    assert status == 409 and error["error"]["code"] == "file_exists", error
    assert (await files("GET", f"{home}/b.txt"))[1]["content"] == "b"
    # New untitled files and folders, each a new name.
    names = []
    for body in ({"type": "file", "ext": ".py"}, {"type": "file", "ext": ".py"},
                 {"type": "directory"}, {"type": "directory"}):  # fmt: skip
        status, model = await files("POST", home, body)
        assert status == 201, model
        names.append(model["name"])
    assert names == ["untitled.py", "untitled1.py", "Untitled Folder", "Untitled Folder 1"]
    # A copy, named as Jupyter names copies.
    status, model = await files("POST", home, {"copy_from": f"{home}/b.txt"})
    assert status == 201 and model["name"] == "b-Copy1.txt", model
    assert (await files("GET", f"{home}/b-Copy1.txt"))[1]["content"] == "b"
    # Delete: a file, then an empty directory; a full one is refused.
    assert (await files("DELETE", f"{home}/c.txt"))[0] == 204
    assert (await files("GET", f"{home}/c.txt"))[0] == 404
    assert (await files("DELETE", f"{home}/Untitled Folder"))[0] == 204
    status, error = await files("DELETE", home)
    assert status == 409 and error["error"]["code"] == "directory_not_empty", error
    listed = [e["name"] for e in (await files("GET", home))[1]["content"]]
    assert sorted(listed) == sorted(
        ["Untitled Folder 1", "b.txt", "b-Copy1.txt", "untitled.py", "untitled1.py"]
    )
    # Making a directory that is there is no error (as Jupyter); over a file it is.
    assert (await files("PUT", f"{home}/Untitled Folder 1", {"type": "directory"}))[0] == 200
    status, error = await files("PUT", f"{home}/b.txt", {"type": "directory"})
    assert status == 409 and error["error"]["code"] == "file_exists", error


# -- hostile names ----------------------------------------------------------------------------

HOSTILE = {
    "new\nline": b"new\nline",
    "-rf": b"-rf",
    "...": b"...",
    "bad\uf7ffutf8": b"bad\xffutf8",  # the wire's name for an invalid byte
    "x%2Fy": b"x%2Fy",  # percent signs in a real name
    "sp ace?#&": b"sp ace?#&",
    "\uf780real": "\uf780real".encode(),  # a real character of the escape range
}


async def test_hostile_names_are_listed_as_they_are_and_stay_in_their_directory(files, on_host):
    home = await fresh(files)
    for wire in HOSTILE:
        escaped = wire.replace("\uf780", "\uf7ef\uf79e\uf780")  # how the wire shows it
        status, model = await files("PUT", f"{home}/{escaped}", text(repr(wire)))
        assert status == 201, (wire, model)
        assert model["name"] == escaped and model["path"] == f"{home}/{escaped}"
        status, model = await files("GET", f"{home}/{escaped}")
        assert (status, model["content"]) == (200, repr(wire)), model
    # The host has exactly these bytes as names, in that directory and nowhere else.
    listing = await on_host(f"python3 -c 'import os; print(sorted(os.listdir(b\"/{home}\")))'")
    assert listing.strip() == repr(sorted(HOSTILE.values()))
    status, model = await files("GET", home)
    assert sorted(e["name"] for e in model["content"]) == sorted(
        w.replace("\uf780", "\uf7ef\uf79e\uf780") for w in HOSTILE
    )


async def test_a_host_made_name_of_invalid_utf8_round_trips(files, on_host):
    home = await fresh(files)
    await on_host(f"cd /{home} && printf data > \"$(printf 'caf\\351 \\377')\"")
    status, model = await files("GET", home)
    [entry] = model["content"]
    assert entry["name"] == "caf\uf7e9 \uf7ff", entry
    status, model = await files("GET", entry["path"])
    assert (status, model["content"]) == (200, "data"), model
    status, model = await files("PATCH", entry["path"], {"path": f"{home}/renamed"})
    assert status == 200, model


@pytest.mark.parametrize(
    "path, status",
    [
        ("..", 400),
        ("tmp/../..", 400),
        ("%2E%2E/etc", 400),
        ("tmp/..%2F..%2Fetc", 400),
        ("a%00b", 400),
    ],
)
async def test_paths_above_the_root_or_with_nul_are_refused(raw, path, status):
    response = await raw(path)
    assert response.code == status, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "invalid_path" and error["hint"]


async def test_an_encoded_slash_is_a_separator_and_dot_dot_resolves_inside(files, raw):
    home = await fresh(files)
    await files("PUT", f"{home}/sub", {"type": "directory"})
    await files("PUT", f"{home}/sub/f.txt", text("in sub"))
    response = await raw(f"{home}%2Fsub%2Ff.txt")
    assert json.loads(response.body)["content"] == "in sub"
    response = await raw(f"{home}/sub/..%2Fsub/./f.txt")
    assert json.loads(response.body)["path"] == f"{home}/sub/f.txt"


# -- bytes in and out -------------------------------------------------------------------------


async def test_a_1_mib_binary_file_round_trips(files, raw):
    home = await fresh(files)
    data = os.urandom(MIB)
    status, model = await files("PUT", f"{home}/blob.bin", b64(data))
    assert status == 201 and model["size"] == MIB, model
    status, model = await files("GET", f"{home}/blob.bin")
    assert model["format"] == "base64" and model["mimetype"] == "application/octet-stream"
    assert hashlib.sha256(base64.b64decode(model["content"])).digest() == (
        hashlib.sha256(data).digest()
    )
    response = await raw(f"{home}/blob.bin?download=1")
    assert response.code == 200
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(data).digest()


async def test_a_download_is_an_attachment_never_a_page(files, raw):
    home = await fresh(files)
    await files("PUT", f"{home}/page ü.html", text("<script>alert(1)</script>"))
    response = await raw(f"{home}/{quote('page ü.html')}?download=1")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename*=UTF-8''page%20%C3%BC.html"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.body == b"<script>alert(1)</script>"
    response = await raw(f"{home}?download=1")
    assert response.code == 400 and json.loads(response.body)["error"]["code"] == "is_a_directory"


async def test_a_chunked_upload_lands_whole_and_only_at_the_end(files, raw):
    home = await fresh(files)
    parts = [os.urandom(MIB), os.urandom(MIB), os.urandom(123)]
    await files("PUT", f"{home}/up.bin", text("the old file"))
    for number, part in zip((1, 2, -1), parts):
        if number == -1:  # until the last part the old file is whole
            assert (await files("GET", f"{home}/up.bin"))[1]["content"] == "the old file"
        status, model = await files(
            "PUT", f"{home}/up.bin", {**b64(part), "chunk": number, "name": "up.bin"}
        )
        assert status in (200, 201), model
    assert status == 200 and model["size"] == 2 * MIB + 123, model
    response = await raw(f"{home}/up.bin?download=1")
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(b"".join(parts)).digest()
    # No temporary sibling is left; a later chunk with no first is refused.
    assert [e["name"] for e in (await files("GET", home))[1]["content"]] == ["up.bin"]
    status, error = await files("PUT", f"{home}/new.bin", {**b64(b"x"), "chunk": 2})
    assert status == 409 and error["error"]["code"] == "upload_interrupted", error
    status, error = await files("PUT", f"{home}/new.bin", {**b64(b"x"), "chunk": 0})
    assert status == 400 and error["error"]["code"] == "invalid_chunk", error


def rss() -> int:
    with open("/proc/self/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+) kB", status.read()).group(1)) * 1024


async def test_a_100_mib_download_streams_with_bounded_server_memory(
    files, on_host, http_server_client, jp_base_url, jp_auth_header, job, transport
):
    home = await fresh(files)
    size = 100 * MIB
    out = await on_host(f"head -c {size} /dev/urandom > /{home}/big && sha256sum /{home}/big")
    expected = out.split()[0]
    digest, got, peak = hashlib.sha256(), [0], [0]
    before = rss()

    def chunk(data: bytes) -> None:  # the server runs in this process: sample it as it goes
        digest.update(data)
        got[0] += len(data)
        peak[0] = max(peak[0], rss())

    client = SimpleAsyncHTTPClient(force_instance=True, max_body_size=2 * size)
    try:
        url = http_server_client.get_url(
            f"{jp_base_url.rstrip('/')}/sm-debug/jobs/{job}/hosts/algo-1/files/{home}/big"
            f"?download=1&transport={transport}"
        )
        request = HTTPRequest(url, headers=jp_auth_header, streaming_callback=chunk,
                              request_timeout=600)  # fmt: skip
        response = await client.fetch(request)
    finally:
        client.close()
    assert response.code == 200 and got[0] == size
    assert digest.hexdigest() == expected
    growth = peak[0] - before
    print(f"\n{transport}: 100 MiB download, server RSS growth {growth / MIB:.1f} MiB")
    assert growth < 32 * MIB, growth / MIB


# -- errors -----------------------------------------------------------------------------------


async def test_too_large_to_open_or_save_is_a_413_with_a_hint(files, config, raw):
    home = await fresh(files)
    await files("PUT", f"{home}/big.txt", text("x" * 4096))
    config.files_max_open_bytes = 1024
    try:
        status, error = await files("GET", f"{home}/big.txt")
        assert status == 413 and error["error"]["code"] == "file_too_large", error
        assert "download" in error["error"]["hint"].lower()
        status, error = await files("PUT", f"{home}/big2.txt", text("y" * 2048))
        assert status == 413 and error["error"]["code"] == "file_too_large", error
        # The model without content, and the download, still work.
        assert (await files("GET", f"{home}/big.txt", content="0"))[1]["size"] == 4096
        assert (await raw(f"{home}/big.txt?download=1")).body == b"x" * 4096
    finally:
        config.files_max_open_bytes = 16 * MIB


async def test_errors_are_json_with_a_hint(files):
    home = await fresh(files)
    cases = [
        (("GET", f"{home}/nope"), 404, "file_not_found"),
        (("DELETE", f"{home}/nope"), 404, "file_not_found"),
        (("PATCH", f"{home}/nope", {"path": f"{home}/x"}), 404, "file_not_found"),
        (("PUT", f"{home}/nope/x.txt", text("x")), 404, "file_not_found"),
        (("PUT", home, text("x")), 400, "is_a_directory"),
        (("PUT", f"{home}/a", {"type": "file"}), 400, "invalid_body"),
        (("PUT", f"{home}/a", {"type": "link", "content": ""}), 400, "invalid_body"),
        (("PUT", f"{home}/a", {**b64(b"x"), "content": "not base64!"}), 400, "invalid_content"),
        (("PUT", f"{home}/a", {**text("x"), "mode": 7}), 400, "invalid_body"),
        (("DELETE", ""), 400, "invalid_path"),
        (("PATCH", home, {"path": ".."}), 400, "invalid_path"),
        (("POST", f"{home}/nope", {"type": "file"}), 404, "file_not_found"),
    ]
    for call, status, code in cases:
        got, error = await files(*call)
        assert (got, error["error"]["code"]) == (status, code), (call, error)
        assert error["error"]["message"] and error["error"]["hint"]
    got, error = await files("GET", home, content="2")
    assert (got, error["error"]["code"]) == (400, "invalid_query"), error


async def test_an_unknown_host_or_transport_is_refused_before_any_file(api, job):
    status, error = await api("GET", "jobs", job, "hosts", "algo-9", "files", "tmp")
    assert status == 404 and error["error"]["code"] == "host_not_found", error
    status, error = await api("GET", "jobs", job, "hosts", "algo-1", "files", "", transport="x")
    assert status == 400 and error["error"]["code"] == "invalid_transport", error


async def test_a_dead_file_session_is_replaced_on_the_next_request(files, jp_serverapp, job):
    home = await fresh(files)
    service = jp_serverapp.web_app.settings["sm_debug"].files
    [key] = [k for k in service.live() if k[0] == job]
    await service._live[key].fs.close()  # as if its connection broke
    status, model = await files("GET", home)
    assert status == 200, model
    assert service._live[key].fs.alive()


async def test_a_stopped_job_answers_a_clear_error(api, standin, sagemaker, transport):
    name = f"files-stop-{uuid.uuid4().hex[:6]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    path = ("jobs", name, "hosts", "algo-1", "files")
    status, model = await api("GET", *path, "tmp", transport=transport)
    assert status == 200, model
    sagemaker.stop_training_job(TrainingJobName=name)
    for _ in range(50):  # the hosts go as the stand-in stops the job
        status, error = await api("GET", *path, "tmp", transport=transport)
        if status != 200:
            break
        await asyncio.sleep(0.2)
    # Whichever comes first: the job described as ended (409 not_attachable), or the host's
    # session or address gone (502/503/504 with the backend's code); JSON with a hint.
    assert status in (409, 502, 503, 504), (status, error)
    assert error["error"]["message"] and error["error"]["hint"]


async def test_file_sessions_close_when_idle_and_with_the_server(files, jp_serverapp, config):
    await fresh(files)
    service = jp_serverapp.web_app.settings["sm_debug"].files
    assert service.live()
    config.files_idle_seconds = 0.01
    try:
        await asyncio.sleep(0.05)
        await service.reap()
        assert service.live() == []
    finally:
        config.files_idle_seconds = 300
    await fresh(files)
    pooled = list(service._live.values())
    await jp_serverapp.extension_manager.extension_apps["jupyter_sm_debug"].pop().stop_extension()
    assert service._live == {} and not any(p.fs.alive() for p in pooled)


async def test_every_verb_needs_jupyter_credentials(http_server_client, jp_base_url, job):
    url = f"{jp_base_url.rstrip('/')}/sm-debug/jobs/{job}/hosts/algo-1/files/tmp"
    for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
        body = None if method in ("GET", "DELETE") else json.dumps({"type": "directory"})
        response = await http_server_client.fetch(
            url, method=method, body=body, raise_error=False,
            headers={"Authorization": "token not-the-token"},
        )  # fmt: skip
        assert response.code == 403, (method, response.code)
        assert json.loads(response.body)["error"]["code"] == "forbidden"


async def test_an_abandoned_download_ends_quietly_and_frees_its_slot(
    files, on_host, http_server_client, jp_base_url, jp_auth_header, job, transport, caplog
):
    home = await fresh(files)
    await on_host(f"head -c {16 * MIB} /dev/zero > /{home}/zeros")
    path = (f"{jp_base_url.rstrip('/')}/sm-debug/jobs/{job}/hosts/algo-1/files/{home}/zeros"
            f"?download=1&transport={transport}")  # fmt: skip
    headers = "".join(f"{k}: {v}\r\n" for k, v in jp_auth_header.items())
    for _ in range(6):  # more than a host's slots: each abandoned one must give its slot back
        port = http_server_client.get_http_port()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await reader.readexactly(64 * 1024)  # some of it, then the browser goes away
        writer.close()
    status, model = await files("GET", home)
    assert status == 200 and [e["name"] for e in model["content"]] == ["zeros"], model
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text[-2000:]


async def test_a_download_that_breaks_off_is_never_a_short_whole_file(
    files, on_host, http_server_client, jp_base_url, jp_auth_header, job, transport, jp_serverapp
):
    home = await fresh(files)
    await on_host(f"head -c {32 * MIB} /dev/zero > /{home}/zeros")
    service = jp_serverapp.web_app.settings["sm_debug"].files
    [key] = [k for k in service.live() if k[:2] == (job, "algo-1") and k[2] == transport]
    got = [0]

    def chunk(data: bytes) -> None:
        if not got[0]:  # the host's session ends once the download has begun
            asyncio.ensure_future(service._live[key].fs.close())
        got[0] += len(data)

    url = http_server_client.get_url(
        f"{jp_base_url.rstrip('/')}/sm-debug/jobs/{job}/hosts/algo-1/files/{home}/zeros"
        f"?download=1&transport={transport}"
    )
    client = SimpleAsyncHTTPClient(force_instance=True, max_body_size=64 * MIB)
    try:
        with pytest.raises(HTTPClientError) as caught:  # the connection is cut, no clean end
            await client.fetch(HTTPRequest(url, headers=jp_auth_header, streaming_callback=chunk,
                                           request_timeout=120))  # fmt: skip
    finally:
        client.close()
    assert caught.value.code == 599 and 0 < got[0] < 32 * MIB, (caught.value, got[0])
    status, model = await files("GET", home)  # and the next request opens a new session
    assert status == 200, model
