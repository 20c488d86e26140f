"""A host's files over SSM: files/agent.py pushed into a stand-in host through the real SSM
transport (a marked run, a port session), files/agentfs.py on the server; and the server's
side against a hostile agent (a fake stream)."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import errno
import hashlib
import json
import os
import struct

import pytest
from held_jobs import FAILING, FAILS_AFTER, WRAPPED, hold_env
from support import host_target, unique

from jupyter_sm_debug.connect import HostTarget, launch
from jupyter_sm_debug.connect.registry import get_transport
from jupyter_sm_debug.errors import SMDebugError
from jupyter_sm_debug.files import agent, agentfs
from jupyter_sm_debug.files.base import CHUNK, MAX_ENTRIES, FileError
from jupyter_sm_debug.files.shellfs import ShellFS

pytestmark = pytest.mark.usefixtures("standin")
# The agent, and the shell commands that stand in for it in a host without Python.
BACKENDS = pytest.mark.parametrize("backend", ["agent", "shell"])
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def job(standin):
    name = unique("files-ssm")
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


async def target_of(services, job, host="algo-1") -> HostTarget:
    return await host_target(services, job, host, "ssm")


@contextlib.asynccontextmanager
async def opened(services, job, backend="agent"):
    """The host's files over SSM (the agent, or the shell commands a host without Python
    gets) and a new empty directory in it (pytest-jupyter runs async tests, not async
    fixtures)."""
    target = await target_of(services, job)
    if backend == "shell":
        files = ShellFS(target, get_transport("ssm", "run"))
    else:
        files = await get_transport("ssm", "files").files(target)
        assert isinstance(files, agentfs.AgentFS)
    try:
        folder = f"/tmp/files-{unique('t')}".encode()
        await files.mkdir(folder)
        yield files, folder
    finally:
        await files.close()


async def run(services, job, argv, stdin=b""):
    result = await get_transport("ssm", "run").run(await target_of(services, job), argv, 60, stdin)
    assert result.exit_code == 0, result
    return result.stdout


async def chunks_of(*parts: bytes):
    for part in parts:
        yield part


async def read_all(fs, path: bytes, offset: int = 0) -> bytes:
    return b"".join([chunk async for chunk in fs.read(path, offset)])


def names(entries) -> set[bytes]:
    return {entry.name for entry in entries}


# -- listing --------------------------------------------------------------------------------


@BACKENDS
async def test_lists_opt_ml_and_a_directory_of_a_thousand_entries(services, job, backend):
    async with opened(services, job, backend) as (fs, folder):
        entries, truncated = await fs.listdir(b"/opt/ml")
        assert {b"input", b"code", b"output", b"model"} <= names(entries) and not truncated
        by_name = {entry.name: entry for entry in entries}
        assert by_name[b"input"].kind == "directory" and by_name[b"input"].path == b"/opt/ml/input"
        # A thousand files made in the host, by the names as positional arguments.
        make = 'cd "$1" && i=0; while [ $i -lt 1000 ]; do printf x > "f$i"; i=$((i+1)); done'
        await run(services, job, ["sh", "-c", make, "sh", folder.decode()])
        entries, truncated = await fs.listdir(folder)
        assert not truncated
        assert names(entries) == {f"f{i}".encode() for i in range(1000)}
        assert {(e.kind, e.size, e.path == folder + b"/" + e.name) for e in entries} == {
            ("file", 1, True)
        }
        stat = await fs.stat(folder + b"/f7")
        assert (stat.name, stat.kind, stat.size, stat.writable) == (b"f7", "file", 1, True)


# -- reading and writing -------------------------------------------------------------------


@BACKENDS
async def test_a_binary_mebibyte_goes_there_and_back_whole(services, job, backend):
    async with opened(services, job, backend) as (fs, folder):
        data = os.urandom(MiB)
        path = folder + b"/blob.bin"
        # Uneven pieces, one over CHUNK (split on the way).
        entry = await fs.write(
            path, chunks_of(data[:1000], data[1000 : 1000 + 300_000], data[301_000:])
        )
        assert (entry.kind, entry.size, entry.path) == ("file", MiB, path)
        back = [chunk async for chunk in fs.read(path)]
        assert max(map(len, back)) <= CHUNK
        assert hashlib.sha256(b"".join(back)).hexdigest() == hashlib.sha256(data).hexdigest()
        said = await run(services, job, ["sha256sum", path.decode()])
        assert said.split()[0].decode() == hashlib.sha256(data).hexdigest()
        assert await read_all(fs, path, offset=MiB - 10) == data[-10:]
        assert await read_all(fs, path, offset=2 * MiB) == b""


@BACKENDS
async def test_a_failed_save_leaves_the_original_whole_and_no_temporary_file(
    services, job, backend
):
    async with opened(services, job, backend) as (fs, folder):
        path = folder + b"/train.py"
        await fs.write(path, chunks_of(b"print('original')\n"))
        await run(services, job, ["chmod", "750", path.decode()])

        async def failing():
            yield b"half a new "
            yield os.urandom(CHUNK + 5)
            raise RuntimeError("the browser went away")

        with pytest.raises(RuntimeError):
            await fs.write(path, failing())
        assert await read_all(fs, path) == b"print('original')\n"
        entries, _ = await fs.listdir(folder)
        assert names(entries) == {b"train.py"}, "a temporary file was left"
        # A save that works keeps the file's mode.
        await fs.write(path, chunks_of(b"print('fixed')\n"))
        assert await read_all(fs, path) == b"print('fixed')\n"
        assert await run(services, job, ["stat", "-c", "%a", path.decode()]) == b"750\n"
        entries, _ = await fs.listdir(folder)
        assert names(entries) == {b"train.py"}


@BACKENDS
async def test_append_adds_to_the_end_and_creates(services, job, backend):
    async with opened(services, job, backend) as (fs, folder):
        path = folder + b"/log.txt"
        await fs.write(path, chunks_of(b"one\n"), append=True)
        entry = await fs.write(path, chunks_of(b"two\n", b"three\n"), append=True)
        assert entry.size == len(b"one\ntwo\nthree\n")
        assert await read_all(fs, path) == b"one\ntwo\nthree\n"


@pytest.mark.timeout(300)  # 100 MiB through a Python SSM channel on a loaded machine
async def test_a_hundred_mebibytes_stream_in_bounded_chunks_beside_a_listing(services, job):
    async with opened(services, job) as (fs, folder):
        path = folder + b"/big.bin"
        make = 'head -c 104857600 /dev/urandom > "$1" && sha256sum "$1"'
        said = await run(services, job, ["sh", "-c", make, "sh", path.decode()])
        digest, total, largest, listed = hashlib.sha256(), 0, 0, False
        async for chunk in fs.read(path):
            digest.update(chunk)
            total += len(chunk)
            largest = max(largest, len(chunk))
            if not listed:
                # The download holds its own stream: a listing meanwhile is answered.
                entries, _ = await asyncio.wait_for(fs.listdir(folder), 30)
                listed = names(entries) == {b"big.bin"}
        assert listed and total == 100 * MiB and largest <= CHUNK
        assert digest.hexdigest() == said.split()[0].decode()


# -- directories, renames, removal ----------------------------------------------------------


@BACKENDS
async def test_mkdir_rename_and_remove(services, job, backend):
    async with opened(services, job, backend) as (fs, folder):
        sub = await fs.mkdir(folder + b"/sub")
        assert (sub.kind, sub.name) == ("directory", b"sub")
        with pytest.raises(FileError) as caught:
            await fs.mkdir(folder + b"/sub")
        assert (caught.value.status, caught.value.code) == (409, "file_exists")
        await fs.write(folder + b"/a", chunks_of(b"A"))
        await fs.write(folder + b"/b", chunks_of(b"B"))
        await fs.mkdir(folder + b"/other")
        # Never over an existing name: file over file, directory over an empty directory.
        for old, new in [(b"/a", b"/b"), (b"/sub", b"/other"), (b"/a", b"/sub")]:
            with pytest.raises(FileError) as caught:
                await fs.rename(folder + old, folder + new)
            assert (caught.value.status, caught.value.code) == (409, "file_exists")
            assert new.decode() in caught.value.message
        assert await read_all(fs, folder + b"/b") == b"B"
        moved = await fs.rename(folder + b"/a", folder + b"/sub/c")
        assert (moved.path, moved.size) == (folder + b"/sub/c", 1)
        moved = await fs.rename(folder + b"/other", folder + b"/renamed")
        assert moved.kind == "directory"
        assert names((await fs.listdir(folder))[0]) == {b"b", b"sub", b"renamed"}
        with pytest.raises(FileError) as caught:
            await fs.remove(folder + b"/sub")
        assert (caught.value.status, caught.value.code) == (409, "directory_not_empty")
        await fs.remove(folder + b"/sub/c")
        await fs.remove(folder + b"/sub")
        await fs.remove(folder + b"/renamed")
        await fs.remove(folder + b"/b")
        assert (await fs.listdir(folder))[0] == []


@BACKENDS
async def test_names_with_newlines_dashes_spaces_and_invalid_utf8(services, job, backend):
    async with opened(services, job, backend) as (fs, folder):
        odd = [
            b"line\nbreak",
            b"-rf",
            b"--help",
            b"with space ",
            b"\xff\xfe bytes",
            b"\xef\x9e\x80",
        ]
        for i, name in enumerate(odd):
            await fs.write(folder + b"/" + name, chunks_of(b"%d" % i))
        entries, _ = await fs.listdir(folder)
        assert names(entries) == set(odd)
        for i, name in enumerate(odd):
            assert await read_all(fs, folder + b"/" + name) == b"%d" % i
        # The host agrees, byte for byte (find prints NUL-separated names).
        listed = await run(
            services, job, ["find", folder.decode(), "-mindepth", "1", "-printf", "%f\\0"]
        )
        assert set(listed.split(b"\0")[:-1]) == set(odd)
        await fs.rename(folder + b"/-rf", folder + b"/\n-x")
        await fs.remove(folder + b"/\n-x")
        # A path climbs no higher than it says: /tmp/x/../.. is /.
        assert (await fs.stat(folder + b"/../..")).path == b"/"
        with pytest.raises(SMDebugError) as caught:
            await fs.stat(b"relative/path")
        assert caught.value.status == 400


@BACKENDS
async def test_errors_have_their_codes(services, job, backend):
    async with opened(services, job, backend) as (fs, folder):
        missing = folder + b"/missing"
        for call in (
            fs.stat(missing),
            fs.listdir(missing),
            fs.remove(missing),
            read_all(fs, missing),
        ):
            with pytest.raises(FileError) as caught:
                await call
            assert (caught.value.status, caught.value.code) == (404, "file_not_found")
            assert "missing" in caught.value.message and "algo-1" in caught.value.message
        await fs.write(folder + b"/f", chunks_of(b"x"))
        with pytest.raises(FileError) as caught:
            await fs.listdir(folder + b"/f")
        assert caught.value.code == "not_a_directory"
        with pytest.raises(FileError) as caught:
            await read_all(fs, folder)
        assert caught.value.code == "is_a_directory"
        with pytest.raises(FileError) as caught:
            await fs.write(folder, chunks_of(b"x"))
        assert caught.value.code == "is_a_directory"
        # Only regular files are read: a FIFO would wait for a writer, /dev/zero never end.
        await run(services, job, ["mkfifo", (folder + b"/fifo").decode()])
        for special in (folder + b"/fifo", b"/dev/zero"):
            with pytest.raises(FileError) as caught:
                await asyncio.wait_for(read_all(fs, special), 60)
            assert "not a regular file" in caught.value.message
        for append in (False, True):  # nor written: a save would replace it with a file
            with pytest.raises(FileError) as caught:
                await fs.write(folder + b"/fifo", chunks_of(b"x"), append=append)
            assert "not a regular file" in caught.value.message
        is_fifo = ["sh", "-c", '[ -p "$1" ] && echo fifo', "sh", (folder + b"/fifo").decode()]
        assert await run(services, job, is_fifo) == b"fifo\n"
        # The session goes on after every error.
        assert (await fs.stat(folder + b"/f")).size == 1


async def test_a_host_without_python_gets_its_files_by_shell_commands(services, job, monkeypatch):
    # As in a container with none of the Pythons pushed.py looks for.
    monkeypatch.setattr(launch, "PYTHONS", ("sm-debug-no-such-python",))
    files = await get_transport("ssm", "files").files(await target_of(services, job))
    try:
        assert isinstance(files, ShellFS)
        entries, _ = await files.listdir(b"/opt/ml")
        assert {b"input", b"code"} <= names(entries)
    finally:
        await files.close()


# -- the agent's life ----------------------------------------------------------------------


async def test_after_close_the_agent_is_gone_from_the_host(services, job):
    files = await get_transport("ssm", "files").files(await target_of(services, job))
    assert files.alive()
    await files.listdir(b"/")
    pid = files.pid
    alive = ["sh", "-c", 'kill -0 "$1" 2>/dev/null && echo alive; true', "sh", str(pid)]
    assert await run(services, job, alive) == b"alive\n"
    await files.close()
    assert not files.alive()
    for _ in range(100):  # the shutdown's exit races the reply that said it
        if await run(services, job, alive) == b"":
            break
        await asyncio.sleep(0.1)
    assert await run(services, job, alive) == b"", "the agent still runs in the host"
    with pytest.raises(SMDebugError) as caught:
        await files.stat(b"/")
    assert caught.value.code == "files_closed"


async def test_the_files_of_a_held_host_never_end_its_hold(standin, services):
    # A held job ends its hold when the last person's session closes; the files' marked run
    # and port session are not a person's, so opening and closing them changes nothing.
    name = unique("files-held")
    standin.create_job(name, schedule=FAILING, environment=hold_env(600), remote_debug=True,
                       started_ago=FAILS_AFTER + 30, **WRAPPED)  # fmt: skip
    sm = services.jobs

    async def phase():
        job = await sm.describe(name, fresh=True)
        return job["TrainingJobStatus"], job["SecondaryStatus"]

    standin.reconcile()
    assert await phase() == ("InProgress", "Training")
    files = await get_transport("ssm", "files").files(await target_of(services, name))
    await files.listdir(b"/opt/ml")
    standin.reconcile()  # looks while the files are open
    await files.close()
    standin.reconcile()  # and after they closed
    assert await phase() == ("InProgress", "Training")


# -- the agent's program and the server's side against a hostile agent ----------------------


def test_the_agent_is_one_standard_library_module_for_python_3_6():
    source = agentfs.agent_source()
    tree = ast.parse(source, feature_version=(3, 6))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= {"contextlib", "ctypes", "errno", "hmac", "json", "os", "socket", "stat",
                        "struct", "sys", "tempfile", "threading", "time"}  # fmt: skip
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))
    assert (agent.CHUNK, agent.MAX_ENTRIES) == (CHUNK, MAX_ENTRIES)


class FakeAgent:
    """Streams that answer each request with what `answer(header)` gives: (header, payload)
    or raw bytes."""

    def __init__(self, answer):
        self.answer = answer
        self.opened = 0
        self.writers: list[FakeWriter] = []

    def alive(self) -> bool:
        return True

    async def open(self, timeout: float = 30.0):
        self.opened += 1
        reader = asyncio.StreamReader()
        writer = FakeWriter(reader, self.answer)
        self.writers.append(writer)
        return reader, writer

    async def close(self) -> None:
        pass


class FakeWriter:
    def __init__(self, reader, answer):
        self.reader, self.answer, self.buffer, self.closed = reader, answer, b"", False

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 8:
            size, payload = struct.unpack(">II", self.buffer[:8])
            if len(self.buffer) < 8 + size + payload:
                return
            header = json.loads(self.buffer[8 : 8 + size])
            self.buffer = self.buffer[8 + size + payload :]
            reply = self.answer(header)
            if isinstance(reply, tuple):
                body = json.dumps(reply[0]).encode()
                reply = struct.pack(">II", len(body), len(reply[1])) + body + reply[1]
            self.reader.feed_data(reply)

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def listing(*records: tuple[bytes, int]) -> bytes:
    return b"".join(
        struct.pack(">BBHqd", kind, 1, len(name), 3, 0.0) + name for name, kind in records
    )


@pytest.mark.parametrize(
    "name", [b"../x", b"a/b", b"..", b".", b"nul\0byte", b"x" * 256, b""], ids=repr
)
async def test_a_hostile_agents_listed_name_refuses_the_listing(name):
    def answer(header):
        payload = listing((b"fine", 0), (name, 0))
        return {"id": header["id"], "ok": True, "count": 2, "truncated": False}, payload

    fake = FakeAgent(answer)
    files = agentfs.AgentFS(fake, "algo-1")
    with pytest.raises(SMDebugError) as caught:
        await files.listdir(b"/opt/ml")
    assert (caught.value.status, caught.value.code) == (502, "files_agent_failed")
    assert all(writer.closed for writer in fake.writers), "a stream that lied was kept"


@pytest.mark.parametrize(
    "reply",
    [
        struct.pack(">II", 65 * 1024, 0) + b"{" * 100,  # a header over the bound
        struct.pack(">II", 2, CHUNK + 1) + b"{}",  # a payload over the bound
        struct.pack(">II", 4, 0) + b"nope",  # not JSON
        ({"id": 999, "ok": True, "entry": {}}, b""),  # another request's id
        ({"id": 1, "errno": "ENOENT"}, b""),  # an errno that is text
        ({"id": 1, "ok": True, "entry": {"kind": "pipe", "size": 1, "mtime": 0}}, b""),
        ({"id": 1, "ok": True, "entry": {"kind": "file", "size": -5, "mtime": 0}}, b""),
        ({"id": 1, "ok": True, "count": MAX_ENTRIES + 1}, b""),  # a listing over the cap
    ],
    ids=["header", "payload", "json", "id", "errno", "kind", "size", "count"],
)
async def test_a_hostile_agents_frames_are_refused(reply):
    fake = FakeAgent(lambda header: reply)
    files = agentfs.AgentFS(fake, "algo-1")
    with pytest.raises(SMDebugError) as caught:
        if isinstance(reply, tuple) and "count" in reply[0]:
            await files.listdir(b"/")
        else:
            await files.stat(b"/")
    assert (caught.value.status, caught.value.code) == (502, "files_agent_failed")
    assert fake.writers[0].closed


async def test_a_read_asks_only_for_what_its_consumer_takes():
    asked = []

    def answer(header):
        if header["op"] == "open":
            return {"id": header["id"], "ok": True, "handle": 1, "size": 10 * CHUNK}, b""
        asked.append(header.get("offset"))
        return {"id": header["id"], "ok": True}, b"x" * CHUNK

    files = agentfs.AgentFS(FakeAgent(answer), "algo-1")
    reading = files.read(b"/big")
    assert len(await reading.__anext__()) == CHUNK
    assert len(asked) == agentfs.READ_AHEAD  # not the whole (endless) file
    await reading.aclose()


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-or-check"])
def test_the_agents_rename_never_replaces(tmp_path, monkeypatch, renameat2):
    if not renameat2:
        monkeypatch.setattr(agent, "_rename_noreplace", [None])  # as on a host without it
    elif agent._noreplace() is None:
        pytest.skip("no renameat2 in this libc")
    base = bytes(tmp_path)
    (tmp_path / "a").write_bytes(b"A")
    (tmp_path / "b").write_bytes(b"B")
    (tmp_path / "d").mkdir()
    (tmp_path / "e").mkdir()
    (tmp_path / "link").symlink_to("a")
    for old, new in [(b"/a", b"/b"), (b"/d", b"/e"), (b"/a", b"/d"), (b"/link", b"/b")]:
        with pytest.raises(OSError) as caught:
            agent.rename(base + old, base + new)
        assert caught.value.errno == errno.EEXIST
    assert (tmp_path / "b").read_bytes() == b"B"
    agent.rename(base + b"/a", base + b"/c")
    agent.rename(base + b"/d", base + b"/e/d")
    agent.rename(base + b"/link", base + b"/link2")
    assert sorted(os.listdir(tmp_path)) == ["b", "c", "e", "link2"]
    assert os.readlink(tmp_path / "link2") == "a" and os.listdir(tmp_path / "e") == ["d"]
