"""A host's files over SSH (files/sftp.py): our SFTP 3 client through the pinned ssh, against
a stand-in host's sshd. The host's /opt/ml is a directory of this machine (the sandbox), so
tests set files up and check them on disk directly."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest
from support import host_target

from jupyter_sm_debug.connect.registry import get_transport
from jupyter_sm_debug.files.base import CHUNK, MAX_ENTRIES, FileError
from jupyter_sm_debug.files.sftp import WINDOW

pytestmark = pytest.mark.usefixtures("standin")
MiB = 1 << 20


@pytest.fixture
def job(standin):
    name = f"files-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=1, remote_debug=True, started_ago=600)
    return name


def live_host(standin, job, host="algo-1"):
    return standin.backends.hosts.get(standin.region, job, host)


@pytest.fixture
def ml(standin, job) -> Path:
    """The host's /opt/ml as this machine sees it; /opt/ml/t is the test's own directory."""
    path = live_host(standin, job).sandbox / "opt" / "ml"
    (path / "t").mkdir()
    return path


@contextlib.asynccontextmanager
async def host_files(services, job, host="algo-1"):
    target = await host_target(services, job, host, "ssh")
    files = await get_transport("ssh", "files").files(target)
    try:
        yield files
    finally:
        await files.close()


async def chunks(*pieces: bytes):
    for piece in pieces:
        yield piece


async def read_all(fs, path: bytes) -> bytes:
    return b"".join([chunk async for chunk in fs.read(path)])


async def test_lists_opt_ml_and_a_directory_of_1000_entries(services, job, ml):
    for i in range(1000):
        (ml / "t" / f"f{i:04}").write_bytes(b"x" * (i % 7))
    (ml / "t" / "sub").mkdir()
    (ml / "t" / "link").symlink_to("sub")
    (ml / "t" / "broken").symlink_to("nowhere")
    async with host_files(services, job) as fs:
        assert fs.info["host_key"]["fingerprints"]
        entries, truncated = await fs.listdir(b"/opt/ml")
        assert not truncated
        kinds = {e.name: e.kind for e in entries}
        assert kinds[b"code"] == kinds[b"input"] == kinds[b"output"] == kinds[b"t"] == "directory"
        assert {e.path for e in entries} >= {b"/opt/ml/code", b"/opt/ml/t"}
        entries, truncated = await fs.listdir(b"/opt/ml/t/")
    assert not truncated and len(entries) == 1003
    by_name = {e.name: e for e in entries}
    assert b"." not in by_name and b".." not in by_name
    assert by_name[b"f0006"].kind == "file" and by_name[b"f0006"].size == 6
    assert by_name[b"f0006"].path == b"/opt/ml/t/f0006"
    assert abs(by_name[b"f0006"].mtime - (ml / "t" / "f0006").stat().st_mtime) < 1.5
    assert by_name[b"f0006"].writable  # the stand-in's sessions are root's
    assert by_name[b"sub"].kind == "directory" and not by_name[b"sub"].symlink
    assert by_name[b"link"].kind == "directory" and by_name[b"link"].symlink
    assert by_name[b"broken"].kind == "file" and by_name[b"broken"].symlink


async def test_stat_and_the_errors_of_missing_paths(services, job, ml):
    (ml / "t" / "a.txt").write_text("hello")
    async with host_files(services, job) as fs:
        entry = await fs.stat(b"/opt/ml/t/./a.txt")
        assert (entry.name, entry.path, entry.kind, entry.size) == (
            b"a.txt", b"/opt/ml/t/a.txt", "file", 5,
        )  # fmt: skip
        root = await fs.stat(b"/")
        assert (root.path, root.kind, root.size) == (b"/", "directory", None)
        for call in (fs.stat(b"/opt/ml/nothing"), fs.listdir(b"/opt/ml/nothing"),
                     read_all(fs, b"/opt/ml/nothing"), fs.remove(b"/opt/ml/nothing"),
                     fs.rename(b"/opt/ml/nothing", b"/opt/ml/t/x")):  # fmt: skip
            with pytest.raises(FileError) as caught:
                await call
            assert (caught.value.status, caught.value.code) == (404, "file_not_found")
            assert "algo-1" in caught.value.message
        with pytest.raises(FileError) as caught:
            await fs.listdir(b"/opt/ml/t/a.txt")
        assert caught.value.code == "not_a_directory"
        with pytest.raises(FileError) as caught:
            await read_all(fs, b"/opt/ml/t")
        assert caught.value.code == "is_a_directory"
        with pytest.raises(FileError) as caught:
            await fs.stat(b"opt/ml")
        assert (caught.value.status, caught.value.code) == (400, "invalid_path")
        with pytest.raises(FileError):
            await fs.stat(b"/opt/ml/t/a.txt\0/etc/passwd")
        assert fs.alive()


async def test_a_1_mib_binary_file_round_trips(services, job, ml):
    data = os.urandom(MiB)
    async with host_files(services, job) as fs:
        entry = await fs.write(b"/opt/ml/t/blob.bin", chunks(data[:1000], data[1000:]))
        assert (entry.kind, entry.size) == ("file", MiB)
        assert (
            hashlib.sha256((ml / "t" / "blob.bin").read_bytes()).digest()
            == hashlib.sha256(data).digest()
        )
        back = [chunk async for chunk in fs.read(b"/opt/ml/t/blob.bin")]
        assert all(0 < len(chunk) <= CHUNK for chunk in back)
        assert hashlib.sha256(b"".join(back)).hexdigest() == hashlib.sha256(data).hexdigest()
        tail = b"".join([chunk async for chunk in fs.read(b"/opt/ml/t/blob.bin", MiB - 10)])
        assert tail == data[-10:]


async def test_a_write_keeps_the_mode_and_a_failed_write_leaves_the_original_whole(
    services, job, ml
):
    original = ml / "t" / "train.py"
    original.write_bytes(b"print('original')\n" * 1000)
    original.chmod(0o751)

    async def failing():
        yield b"new content " * 10000
        yield b"more " * 100000
        raise RuntimeError("the upload broke")

    async with host_files(services, job) as fs:
        with pytest.raises(RuntimeError, match="the upload broke"):
            await fs.write(b"/opt/ml/t/train.py", failing())
        assert original.read_bytes() == b"print('original')\n" * 1000
        assert sorted(os.listdir(ml / "t")) == ["train.py"], "a temporary file was left"
        entry = await fs.write(b"/opt/ml/t/train.py", chunks(b"print('fixed')\n"))
        assert entry.size == len(b"print('fixed')\n")
        assert original.read_bytes() == b"print('fixed')\n"
        assert original.stat().st_mode & 0o7777 == 0o751
        # A new file, and through a symlink (the link stays a link).
        await fs.write(b"/opt/ml/t/new.txt", chunks(b"new"))
        assert (ml / "t" / "new.txt").read_bytes() == b"new"
        (ml / "t" / "alias.py").symlink_to("train.py")
        await fs.write(b"/opt/ml/t/alias.py", chunks(b"via link\n"))
        assert (ml / "t" / "alias.py").is_symlink()
        assert original.read_bytes() == b"via link\n"
        assert sorted(os.listdir(ml / "t")) == ["alias.py", "new.txt", "train.py"]
        with pytest.raises(FileError) as caught:
            await fs.write(b"/opt/ml/t", chunks(b"x"))
        assert caught.value.code == "is_a_directory"
        with pytest.raises(FileError) as caught:
            await fs.write(b"/opt/ml/t/no/such/dir", chunks(b"x"))
        assert caught.value.code == "file_not_found"


async def test_append_mkdir_rename_and_remove(services, job, ml):
    async with host_files(services, job) as fs:
        await fs.write(b"/opt/ml/t/log.txt", chunks(b"one\n"), append=True)
        entry = await fs.write(b"/opt/ml/t/log.txt", chunks(b"two\n", b"three\n"), append=True)
        assert (ml / "t" / "log.txt").read_bytes() == b"one\ntwo\nthree\n" and entry.size == 14

        made = await fs.mkdir(b"/opt/ml/t/d")
        assert (made.kind, made.path) == ("directory", b"/opt/ml/t/d") and (ml / "t" / "d").is_dir()
        with pytest.raises(FileError) as caught:
            await fs.mkdir(b"/opt/ml/t/d")
        assert (caught.value.status, caught.value.code) == (409, "file_exists")
        with pytest.raises(FileError) as caught:
            await fs.mkdir(b"/opt/ml/t/nothing/d")
        assert caught.value.code == "file_not_found"

        (ml / "t" / "other.txt").write_text("other")
        with pytest.raises(FileError) as caught:
            await fs.rename(b"/opt/ml/t/log.txt", b"/opt/ml/t/other.txt")
        assert (caught.value.status, caught.value.code) == (409, "file_exists")
        with pytest.raises(FileError) as caught:
            await fs.rename(b"/opt/ml/t/log.txt", b"/opt/ml/t/d")
        assert caught.value.code == "file_exists"
        assert (ml / "t" / "other.txt").read_text() == "other"
        assert (ml / "t" / "log.txt").read_bytes() == b"one\ntwo\nthree\n"
        moved = await fs.rename(b"/opt/ml/t/log.txt", b"/opt/ml/t/d/log.txt")
        assert moved.path == b"/opt/ml/t/d/log.txt" and not (ml / "t" / "log.txt").exists()
        renamed = await fs.rename(b"/opt/ml/t/d", b"/opt/ml/t/e")
        assert renamed.kind == "directory" and (ml / "t" / "e" / "log.txt").exists()

        with pytest.raises(FileError) as caught:
            await fs.remove(b"/opt/ml/t/e")
        assert (caught.value.status, caught.value.code) == (409, "directory_not_empty")
        (ml / "t" / "link").symlink_to("e")
        await fs.remove(b"/opt/ml/t/link")  # the link, not what it points to
        assert not (ml / "t" / "link").is_symlink() and (ml / "t" / "e" / "log.txt").exists()
        await fs.remove(b"/opt/ml/t/e/log.txt")
        await fs.remove(b"/opt/ml/t/e")
        await fs.remove(b"/opt/ml/t/other.txt")
        assert os.listdir(ml / "t") == []


HOSTILE = [b"new\nline", b"-rf", b"--help", b"bad \xff\xfe utf8", b"with  spaces ", b"\xef\xa3\xbf",
           b"..hidden", b"tab\there", b"*?[glob]", b"$(touch pwned)"]  # fmt: skip


async def test_hostile_names_round_trip(services, job, ml):
    async with host_files(services, job) as fs:
        for name in HOSTILE:
            await fs.write(b"/opt/ml/t/" + name, chunks(name))
            await fs.mkdir(b"/opt/ml/t/dir " + name)
        entries, _ = await fs.listdir(b"/opt/ml/t")
        names = {e.name for e in entries}
        assert names == set(HOSTILE) | {b"dir " + name for name in HOSTILE}
        for name in HOSTILE:
            assert await read_all(fs, b"/opt/ml/t/" + name) == name
            assert (ml / "t" / os.fsdecode(name)).read_bytes() == name
            await fs.rename(b"/opt/ml/t/" + name, b"/opt/ml/t/dir " + name + b"/" + name)
        assert not (ml / "t" / "pwned").exists() and not list(ml.parent.glob("pwned"))
        entries, _ = await fs.listdir(b"/opt/ml/t/dir -rf")
        assert [e.path for e in entries] == [b"/opt/ml/t/dir -rf/-rf"]


async def test_permission_denied_even_for_root(services, job, ml):
    """The stand-in's sessions are root's, so mode bits deny nothing. Two refusals root
    meets: sysfs refuses to create files (EACCES), and an immutable file (chattr +i, EPERM)
    can be neither replaced nor removed; both come back as 403 permission_denied."""
    async with host_files(services, job) as fs:
        for call in (fs.write(b"/sys/sm-debug-test", chunks(b"x")), fs.mkdir(b"/sys/sm-debug")):
            with pytest.raises(FileError) as caught:
                await call
            assert (caught.value.status, caught.value.code) == (403, "permission_denied")
        locked = ml / "t" / "locked.txt"
        locked.write_text("keep me")
        if (
            shutil.which("chattr") is None
            or subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode
        ):
            pytest.skip("this file system has no immutable files (chattr +i) for the EPERM case")
        try:
            for call in (fs.write(b"/opt/ml/t/locked.txt", chunks(b"changed")),
                         fs.remove(b"/opt/ml/t/locked.txt"),
                         fs.rename(b"/opt/ml/t/locked.txt", b"/opt/ml/t/moved")):  # fmt: skip
                with pytest.raises(FileError) as caught:
                    await call
                assert (caught.value.status, caught.value.code) == (403, "permission_denied")
            assert locked.read_text() == "keep me"
            assert os.listdir(ml / "t") == ["locked.txt"], "a temporary file was left"
        finally:
            subprocess.run(["chattr", "-i", str(locked)], check=True)


async def test_a_full_disk_and_a_read_only_file_system_say_so(services, job, standin, ml):
    """SFTP 3 says only SSH_FX_FAILURE for both: statvfs@openssh.com tells them apart. A
    small tmpfs and a read-only one are mounted inside the host (its mount namespace)."""
    from jupyter_sm_debug.standin import container

    live = live_host(standin, job)
    if live.init is None:
        pytest.skip(f"hosts have no mount namespace here ({live.not_isolated})")
    (ml / "t" / "full").mkdir()
    (ml / "t" / "ro").mkdir()
    inside = [*container.enter_argv(live.init), "sh", "-c",
              "mount -t tmpfs -o size=64k tmpfs /opt/ml/t/full && "
              "mount -t tmpfs -o ro,size=64k tmpfs /opt/ml/t/ro"]  # fmt: skip
    mounted = subprocess.run(inside, capture_output=True, text=True, timeout=30)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs inside the host: {mounted.stderr.strip()[-200:]}")
    async with host_files(services, job) as fs:
        with pytest.raises(FileError) as caught:
            await fs.write(b"/opt/ml/t/full/big.bin", chunks(os.urandom(MiB)))
        assert (caught.value.status, caught.value.code) == (507, "no_space")
        assert (await fs.listdir(b"/opt/ml/t/full"))[0] == [], "a temporary file was left"
        for call in (fs.write(b"/opt/ml/t/ro/x", chunks(b"x")), fs.mkdir(b"/opt/ml/t/ro/d")):
            with pytest.raises(FileError) as caught:
                await call
            assert (caught.value.status, caught.value.code) == (403, "read_only")


async def test_a_100_mib_read_streams_in_bounded_chunks(services, job, ml):
    block = os.urandom(MiB)
    with open(ml / "t" / "big.bin", "wb") as out:
        for i in range(100):
            out.write(block[i:] + block[:i])
    expected = hashlib.sha256((ml / "t" / "big.bin").read_bytes()).hexdigest()
    async with host_files(services, job) as fs:
        digest, total, largest, in_flight = hashlib.sha256(), 0, 0, 0
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            async for chunk in fs.read(b"/opt/ml/t/big.bin"):
                digest.update(chunk)
                total += len(chunk)
                largest = max(largest, len(chunk))
                in_flight = max(in_flight, len(fs.connection._waiting))
                del chunk
                if total % (10 * MiB) < CHUNK:  # a slow reader now and then: replies pile up
                    await asyncio.sleep(0.2)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert total == 100 * MiB and digest.hexdigest() == expected
        # At most WINDOW reads in flight, so the replies held are bounded (16 x 255 KiB).
        assert largest <= CHUNK and in_flight <= WINDOW and in_flight * fs.read_size <= 4 * MiB
        assert peak < 12 * MiB, f"reading held {peak / MiB:.1f} MiB at once"
        # A reader that stops early leaves the session usable.
        async for _ in fs.read(b"/opt/ml/t/big.bin"):
            break
        assert (await fs.stat(b"/opt/ml/t/big.bin")).size == 100 * MiB


async def test_a_files_session_is_not_a_persons_session_and_ends_with_ssh(services, job, standin):
    """The hold counts a person's sessions under the host's sshd; the files session (the
    stand-in's marked sftp-server; internal-sftp in a real container) is not one."""
    from jupyter_sm_debug.standin import hosts

    live = live_host(standin, job)
    async with host_files(services, job) as fs:
        await fs.stat(b"/opt/ml")
        pid = fs.connection.process.pid
        assert hosts._ssh_sessions([live]) == {}
        person = subprocess.Popen(
            ["ssh", "-F", os.devnull, "-p", str(live.port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "IdentitiesOnly=yes", "-i", standin.client_key_path,
             "-l", standin.ssh_user, live.addr, "sleep 30"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:  # the control: the same count sees a person's session
            deadline = time.monotonic() + 15
            while not hosts._ssh_sessions([live]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hosts._ssh_sessions([live]) == {live.token: 1}
        finally:
            person.terminate()
            person.wait(timeout=10)
    assert not fs.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(FileError) as caught:
        await fs.stat(b"/opt/ml")
    assert (caught.value.status, caught.value.code) == (502, "host_connection_lost")


# -- a hostile server: what OpenSSH never sends, our client must still refuse ------------------

FAKE_SERVER = r"""
import struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
def send(kind, body):
    out.write(struct.pack(">IB", len(body) + 1, kind) + body); out.flush()
def s(b):
    return struct.pack(">I", len(b)) + b
DIR = struct.pack(">II", 4, 0o40755)
batches = many = 0
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    body = inp.read(struct.unpack(">I", head)[0])
    kind, rest = body[0], body[1:]
    if kind == 1:
        send(2, struct.pack(">I", 3)); continue
    rid, arg = rest[:4], rest[8:8 + struct.unpack(">I", rest[4:8])[0]]
    if kind in (7, 17) and arg == b"/proc/self":
        send(101, rid + struct.pack(">I", 2) + s(b"") + s(b""))
    elif kind in (7, 17) and arg == b"/huge":
        out.write(struct.pack(">I", 64 << 20) + b"\x69" + rid); out.flush()
    elif kind in (7, 17) and arg == b"/stray":
        send(105, struct.pack(">I", 99999) + DIR)
    elif kind in (7, 17):
        send(105, rid + DIR)
    elif kind == 11:
        send(102, rid + s(b"m" if arg == b"/many" else b"h"))
    elif kind == 12 and arg == b"m":
        many += 1
        if many <= 21:
            names = [b"f%d-%d" % (many, i) for i in range(1000)]
            send(104, rid + struct.pack(">I", len(names))
                 + b"".join(s(n) + s(b"") + struct.pack(">I", 0) for n in names))
        else:
            send(101, rid + struct.pack(">I", 1) + s(b"") + s(b""))
    elif kind == 12:
        batches += 1
        names = [b"ok", b"a/b", b"..", b".", b"x\0y", b"", b"/", b"../../etc"]
        if batches == 1:
            send(104, rid + struct.pack(">I", len(names))
                 + b"".join(s(n) + s(b"long") + DIR for n in names))
        else:
            send(101, rid + struct.pack(">I", 1) + s(b"") + s(b""))
    else:
        send(101, rid + struct.pack(">I", 0) + s(b"") + s(b""))
"""


@contextlib.asynccontextmanager
async def fake_files():

    import sys

    from jupyter_sm_debug.connect.process import end_process
    from jupyter_sm_debug.files.sftp import SFTPFileSystem
    from jupyter_sm_debug.files.sftp_wire import Connection

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FAKE_SERVER, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    connection = Connection(process, end_process)
    await connection.start(20)
    fs = SFTPFileSystem(connection, "fake")
    await fs.start()
    try:
        yield fs
    finally:
        await fs.close()


@pytest.mark.parametrize("bad", [b"/huge", b"/stray"])
async def test_a_hostile_server_gets_only_valid_names_and_no_oversized_or_stray_reply(bad):
    async with fake_files() as fs:
        entries, truncated = await fs.listdir(b"/d")
        assert [e.name for e in entries] == [b"ok"] and not truncated
        assert entries[0].path == b"/d/ok"
        assert fs.uid is None and not fs.posix_rename  # no /proc/self, no extensions
        entries, truncated = await fs.listdir(b"/many")  # 21,000 names: cut at MAX_ENTRIES
        assert truncated and len(entries) == MAX_ENTRIES == 20000
        assert entries[-1].name == b"f20-999" and entries[0].kind == "file"
        with pytest.raises(FileError) as caught:
            await fs.stat(bad)  # 64 MiB announced, or a reply to a request never sent
        assert (caught.value.status, caught.value.code) == (502, "host_connection_lost")
        assert not fs.alive()


# -- a real container's sshd (sm-debug-entrypoint --ssh): internal-sftp --------------------------


@pytest.mark.skipif(not shutil.which("sshd") and not os.path.exists("/usr/sbin/sshd"),
                    reason="needs openssh-server")  # fmt: skip
async def test_internal_sftp_in_the_entrypoints_sshd_is_no_persons_session(tmp_path):
    """In a real container the files session is sshd's internal-sftp: it runs in sshd's own
    process, so the hold's count never sees it. A person's session, the control, is seen and
    ends the hold when it closes."""

    import json
    import sys

    from support import free_port

    from jupyter_sm_debug import entrypoint
    from jupyter_sm_debug.connect.process import end_process
    from jupyter_sm_debug.connect.ssh import first_announcement
    from jupyter_sm_debug.files.sftp import SFTPFileSystem
    from jupyter_sm_debug.files.sftp_wire import Connection

    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    )
    (tmp_path / "data.bin").write_bytes(b"\0\xff" * 1000)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    env = {name: value for name, value in os.environ.items() if not name.startswith("SM_")}
    env.update(SM_DEBUG_ML_ROOT=str(tmp_path), SM_DEBUG_RELEASE_FILE=str(tmp_path / "release"),
               SM_DEBUG_AUTHORIZED_KEYS=(tmp_path / "key.pub").read_text(),
               SM_CURRENT_HOST="algo-2")  # fmt: skip
    port = free_port()
    box = subprocess.Popen(
        [sys.executable, "-m", "jupyter_sm_debug.entrypoint", "--ssh", "--ssh-port", str(port),
         "--announce-addr", "127.0.0.1", "--hold-on-failure", "120", "--", "sh", "-c", "exit 4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        found = first_announcement([{"message": box.stdout.readline()}], "algo-2")
        while not box.stdout.readline().startswith("SM_DEBUG_HOLD"):
            pass
        known = tmp_path / "known_hosts"
        known.write_text(found.host_key.known_hosts_line("entrypoint"))
        options = ["-F", os.devnull, "-i", str(key), "-p", str(port), "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                   "-o", "HostKeyAlias=entrypoint", "-o", "IdentitiesOnly=yes",
                   "-l", os.environ.get("USER", "root")]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            "ssh", "-T", *options, "-s", "--", "127.0.0.1", "sftp",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        connection = Connection(process, end_process)
        await connection.start(30)
        fs = SFTPFileSystem(connection, "algo-2")
        await fs.start()
        try:
            entries, _ = await fs.listdir(os.fsencode(tmp_path))
            assert b"data.bin" in {e.name for e in entries}
            assert await read_all(fs, os.fsencode(tmp_path / "data.bin")) == b"\0\xff" * 1000
            assert fs.posix_rename and fs.statvfs  # internal-sftp is OpenSSH's sftp-server
            assert entrypoint.ssh_session_count(box.pid, entrypoint.process_table()) == 0
        finally:
            await fs.close()
        assert box.poll() is None
        person = subprocess.Popen(["ssh", *options, "127.0.0.1", "sleep 3"],  # then it ends
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not entrypoint.ssh_session_count(
                box.pid, entrypoint.process_table()
            ):
                await asyncio.sleep(0.05)
            assert entrypoint.ssh_session_count(box.pid, entrypoint.process_table()) == 1
            assert box.poll() is None, "the files session's end ended the hold"
        finally:
            await asyncio.get_running_loop().run_in_executor(None, person.wait, 30)
        assert await asyncio.get_running_loop().run_in_executor(None, box.wait, 30) == 4
        assert "hold ended (last session closed)" in box.stderr.read()
    finally:
        if box.poll() is None:
            box.terminate()
            box.wait(timeout=15)


def test_the_sftp_argv_is_the_attach_argv_with_no_pty_and_no_forwards(tmp_path):
    from types import SimpleNamespace

    from jupyter_sm_debug.connect.ssh import argv

    config = SimpleNamespace(ssh_config="")
    options = argv.client_options(config, str(tmp_path / "known_hosts"), "sm-debug-algo-1", 2222)
    attach = argv.session_argv("ssh", options, ["-i", "key"], "root", "10.0.0.7")
    sftp = argv.sftp_argv(attach)
    assert sftp[0] == "ssh" and "-t" not in sftp and "-T" in sftp
    assert sftp[-4:] == ["-s", "--", "10.0.0.7", "sftp"]
    for kept in ("StrictHostKeyChecking=yes", "ClearAllForwardings=yes", "ForwardAgent=no",
                 f"UserKnownHostsFile={tmp_path / 'known_hosts'}", "ControlPath=none",
                 "BatchMode=yes"):  # fmt: skip
        assert sftp[sftp.index(kept) - 1] == "-o"
    assert not {"-L", "-R", "-D", "-N", "-A", "-X"} & set(sftp)


async def test_a_vanished_host_says_so(services, job, standin, ml):
    (ml / "t" / "a.txt").write_text("a")
    async with host_files(services, job) as fs:
        await fs.stat(b"/opt/ml/t/a.txt")
        standin.kill_host(job, "algo-1")
        deadline = time.monotonic() + 60
        while fs.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not fs.alive()
        with pytest.raises(FileError) as caught:
            await fs.stat(b"/opt/ml/t/a.txt")
        assert (caught.value.status, caught.value.code) == (502, "host_connection_lost")
        assert "algo-1" in caught.value.message


async def test_a_host_without_the_sftp_subsystem_gets_a_clear_error(services, job, monkeypatch):
    """As a container whose sshd offers no sftp: our argv asks for a subsystem sshd lacks."""
    from jupyter_sm_debug.connect import process
    from jupyter_sm_debug.connect.ssh import argv

    offered = argv.sftp_argv
    monkeypatch.setattr(argv, "sftp_argv", lambda words: offered(words, "no-such-subsystem"))
    before = set(process._directories)
    with pytest.raises(Exception) as caught:
        async with host_files(services, job):
            pass
    assert (caught.value.status, caught.value.code) == (502, "sftp_failed")
    assert "subsystem" in caught.value.message and "Subsystem sftp" in caught.value.hint
    assert set(process._directories) == before, "the connection's directory was kept"


async def test_many_operations_share_one_session_and_a_cancelled_write_leaves_nothing(
    services, job, ml
):
    data = os.urandom(3 * MiB)
    (ml / "t" / "keep.txt").write_text("whole")
    for i in range(300):
        (ml / "t" / f"n{i}").write_text("n")
    async with host_files(services, job) as fs:
        results = await asyncio.gather(*(
            call for i in range(3) for call in (
                fs.write(f"/opt/ml/t/w{i}.bin".encode(), chunks(data[i:], data[:i])),
                fs.listdir(b"/opt/ml/t"), fs.stat(b"/opt/ml/t/keep.txt"),
                read_all(fs, b"/opt/ml/t/keep.txt"),
            )
        ))  # fmt: skip
        assert [r.size for r in results[0::4]] == [3 * MiB] * 3
        assert all(len(r[0]) >= 301 for r in results[1::4])
        assert results[3::4] == [b"whole"] * 3
        for i in range(3):
            assert (ml / "t" / f"w{i}.bin").read_bytes() == data[i:] + data[:i]

        started, never = asyncio.Event(), asyncio.Event()

        async def stalled():
            yield data
            started.set()
            await never.wait()
            yield b"never"

        writing = asyncio.ensure_future(fs.write(b"/opt/ml/t/keep.txt", stalled()))
        await started.wait()
        assert any(name.startswith(".keep.txt.sm-debug-") for name in os.listdir(ml / "t"))
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert fs.alive() and (ml / "t" / "keep.txt").read_text() == "whole"
        assert not [name for name in os.listdir(ml / "t") if name.startswith(".")]
        assert (await fs.stat(b"/opt/ml/t/keep.txt")).size == 5
