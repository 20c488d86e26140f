"""SSH attach you can trust (issue 12): only the entrypoint's own announcement chooses where
Attach connects, the host must hold the key it announced, and the user's ssh config and agent
stay on the Jupyter server."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from jupyter_sm_debug.connect import CannotAttach
from jupyter_sm_debug.connect.ssh import (
    HostKey,
    first_announcement,
    parse_address,
    valid_host,
)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIGDqInJ/YQgGpIGF4UXSUx5IJ0ON78vyx3RPUjWGCUqz"  # an ed25519 blob
LINE = f"SM_DEBUG_SSH host=algo-1 addr=10.0.1.7 port=2222 hostkey=ssh-ed25519:{KEY}"


def events(*lines: str) -> list[dict]:
    return [{"message": line} for line in lines]


# -- the announcement: whole line, first one, digits-only port ------------------------------------


def test_only_a_whole_line_announces():
    """Finding 1: a line that merely contains the text (training output, sshd's log) never
    chooses the address."""
    assert first_announcement(events(f"sample={LINE}"), "algo-1") is None
    assert first_announcement(events(f"Invalid user x {LINE} from 10.0.0.9"), "algo-1") is None
    assert first_announcement(events(f"{LINE} extra"), "algo-1") is None
    found = first_announcement(events("starting", LINE), "algo-1")
    assert (found.addr, found.port, found.host_key) == (
        "10.0.1.7",
        2222,
        HostKey("ssh-ed25519", KEY),
    )


def test_the_first_announcement_wins():
    """Finding 1: a later whole line (printed by the training code) changes nothing."""
    later = LINE.replace("10.0.1.7", "192.0.2.66")
    assert first_announcement(events(LINE, later), "algo-1").addr == "10.0.1.7"
    # Another host's line in this stream is noise, not an announcement of this host.
    other = LINE.replace("algo-1", "algo-2").replace("10.0.1.7", "192.0.2.66")
    assert first_announcement(events(other, LINE), "algo-1").addr == "10.0.1.7"


@pytest.mark.parametrize("port", ["2222222", "22abc", "0", "65536", "022", "+22", "\uff12\uff12"])
def test_an_announced_port_is_digits_only(port):
    """Finding 1: port=2222222 was read as 22222, port=22abc as 22."""
    with pytest.raises(CannotAttach) as refused:
        first_announcement(events(LINE.replace("port=2222", f"port={port}")), "algo-1")
    assert refused.value.code == "invalid_announcement"


def test_a_failure_report_or_a_keyless_line_is_not_an_address():
    failed = "SM_DEBUG_SSH_FAILED host=algo-1 reason=sshd_not_installed"
    with pytest.raises(CannotAttach) as refused:
        first_announcement(events(failed, LINE), "algo-1")
    assert refused.value.code == "ssh_failed_in_container"
    with pytest.raises(CannotAttach) as refused:
        first_announcement(events("SM_DEBUG_SSH host=algo-1 addr=10.0.1.7 port=22"), "algo-1")
    assert refused.value.code == "announcement_without_host_key"
    forged = LINE.replace(KEY, KEY[:20] + "A" + KEY[21:])  # a blob that is not an ed25519 key
    with pytest.raises(CannotAttach):
        first_announcement(events(forged.replace("ssh-ed25519:", "ssh-rsa:")), "algo-1")


# -- one address parser ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "fe80::1%lo",  # finding 7: IPv6 scope ids
        "[fe80::1%lo]:22",
        "fe80::1%lo@127.0.0.1",
        "-oProxyCommand=id",
        "127.1",  # legacy IPv4 forms that resolve elsewhere than they look
        "0x7f000001",
        "host:22abc",
        "host:0",
        "host:65536",
        "host:+22",
        "[10.0.0.1]:",
        "[::1",
        "a b",
        "",
    ],
)
def test_one_parser_refuses_what_is_not_an_address(address):
    with pytest.raises(CannotAttach) as refused:
        parse_address(address, 22)
    assert refused.value.status == 400 and refused.value.code == "invalid_address"


def test_one_parser_accepts_addresses():
    assert parse_address("10.0.1.7", 22) == ("10.0.1.7", 22)
    assert parse_address("10.0.1.7:2222", 22) == ("10.0.1.7", 2222)
    assert parse_address("algo-1.internal", 2222) == ("algo-1.internal", 2222)
    assert parse_address("fe80::1", 22) == ("fe80::1", 22)
    assert parse_address("[fe80::1]:2222", 22) == ("fe80::1", 2222)
    assert parse_address("[10.0.1.7]:2222", 22) == ("10.0.1.7", 2222)
    assert parse_address(" 10.0.1.7:2222\n", 22) == ("10.0.1.7", 2222)  # pasted
    assert valid_host("fe80::1%lo@127.0.0.1") is None


# -- against the stand-in: the whole path, with real sshd and ssh ----------------------------------

needs_sshd = pytest.mark.usefixtures("standin")


def running_job(standin, prefix: str) -> str:
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, instance_count=1, started_ago=60)
    return name


async def attach(api, job, host="algo-1", **body):
    return await api(
        "POST", "jobs", job, "hosts", host, "terminals", body={"transport": "ssh", **body}
    )


async def close(terminal_manager, name: str) -> None:
    """What DELETE /api/terminals/<name> does."""
    await terminal_manager.terminate(name, force=True)


def announced_key(standin, job, host="algo-1") -> str:
    import boto3

    stream = standin.log_stream(job, host)
    lines = boto3.client("logs").get_log_events(
        logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True
    )["events"]
    key = first_announcement(lines, host).host_key
    return f"{key.type} {key.blob}"


class Impostor:
    """Another sshd on loopback with its own host key, accepting the user's key: what a
    redirected address would reach."""

    def __init__(self, standin, directory, port: int):
        kit = standin.backends.hosts.ssh
        directory.mkdir(parents=True, exist_ok=True)
        self.host_key = directory / "impostor_host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
                       check=True)  # fmt: skip
        self.log = directory / "impostor.log"
        config = directory / "impostor_sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\nPidFile none\n"
            f"AuthorizedKeysFile {kit.authorized_keys}\nStrictModes no\n"
            f"UsePAM {'yes' if kit.use_pam() else 'no'}\nPermitRootLogin yes\nLogLevel VERBOSE\n"
        )
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        self.process = subprocess.Popen([sshd, "-D", "-E", str(self.log), "-f", str(config)])
        deadline = time.monotonic() + 10
        while "Server listening" not in self.text() and time.monotonic() < deadline:
            assert self.process.poll() is None, self.text()
            time.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def logged_in(self) -> bool:
        return "Accepted publickey" in self.text()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def take_over(standin, tmp_path, job) -> Impostor:
    """The host's sshd goes away and an impostor listens at the announced address."""
    live = standin.backends.hosts.get(standin.region, job, "algo-1")
    live.sshd.terminate()
    live.sshd.wait(timeout=10)
    return Impostor(standin, tmp_path, live.port)


@needs_sshd
async def test_an_announced_attach_is_pinned_and_says_so(api, standin, terminal_manager):
    job = running_job(standin, "pinned")
    status, body = await attach(api, job)
    assert status == 201, body
    assert body["host_key"]["verified"] is True and body["host_key"]["source"] == "announcement"
    key = HostKey(*announced_key(standin, job).split())
    assert body["host_key"]["fingerprints"] == [key.fingerprint]
    argv = terminal_manager.terminals[body["terminal"]["name"]].ptyproc.argv
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    assert "StrictHostKeyChecking=yes" in options and "HostKeyAlias=sm-debug-algo-1" in options
    known_hosts = next(o.split("=", 1)[1] for o in options if o.startswith("UserKnownHostsFile="))
    with open(known_hosts) as pinned:
        assert pinned.read() == key.known_hosts_line("sm-debug-algo-1")
    await close(terminal_manager, body["terminal"]["name"])


@needs_sshd
async def test_a_spoofed_stream_or_a_later_line_cannot_redirect_attach(api, standin):
    """Finding 1: a stream named `<job>/algo-1-spoofed`, a later whole line in the real
    stream, and a line that contains the text all point elsewhere; attach goes to the host."""
    import boto3

    job = running_job(standin, "spoofed")
    addr, port = standin.host_address(job, "algo-1")
    impostor_line = (f"SM_DEBUG_SSH host=algo-1 addr=127.0.0.1 port=9 "
                     f"hostkey=ssh-ed25519:{KEY}")  # fmt: skip
    logs = boto3.client("logs")
    spoofed = f"{job}/algo-1-spoofed"
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=spoofed)
    event = {"timestamp": int(time.time() * 1000), "message": impostor_line}
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=spoofed, logEvents=[event])
    # What the training code prints goes into the host's own stream after the announcement.
    standin.backends.hosts.logs.put(standin.region, standin.log_stream(job, "algo-1"),
                            [(standin.now() + 1, f"sample={impostor_line}"),
                             (standin.now() + 2, impostor_line)])  # fmt: skip
    status, body = await attach(api, job)
    assert status == 201, body
    assert body["target"].endswith(f"@{addr}:{port}")


@needs_sshd
async def test_an_impostor_at_the_announced_address_gets_a_409_and_no_login(
    api, standin, tmp_path, terminal_manager
):
    """Finding 2: StrictHostKeyChecking=no let any sshd at the address take the session."""
    job = running_job(standin, "impostor")
    impostor = take_over(standin, tmp_path, job)
    try:
        before = set(terminal_manager.terminals)
        status, body = await attach(api, job)
        assert status == 409, body
        assert body["error"]["code"] == "host_key_mismatch"
        assert "announcement" in body["error"]["message"]
        assert set(terminal_manager.terminals) == before
        assert not impostor.logged_in(), impostor.text()
    finally:
        impostor.stop()


@needs_sshd
async def test_the_terminals_ssh_refuses_an_impostor_by_itself(
    api, standin, tmp_path, terminal_manager
):
    """Finding 2: should an impostor take the address after the check, the session's own ssh
    still refuses it (the pin is in its argv, not only in a check before)."""
    job = running_job(standin, "swap")
    status, body = await attach(api, job)
    assert status == 201, body
    argv = list(terminal_manager.terminals[body["terminal"]["name"]].ptyproc.argv)
    argv.remove("-t")
    impostor = take_over(standin, tmp_path, job)
    try:
        result = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        assert result.returncode == 255
        assert "Host key verification failed" in result.stderr
        assert not impostor.logged_in(), impostor.text()
    finally:
        impostor.stop()


@needs_sshd
async def test_explicit_addresses_are_pinned_when_a_key_comes_with_them(
    api, standin, tmp_path, jp_serverapp
):
    """Finding 2: the request's address with the host's key reaches only that host; without
    a key the answer says the host is not verified, or strict checking refuses it."""
    job = running_job(standin, "explicit")
    real_key = announced_key(standin, job)
    other = running_job(standin, "decoy")
    addr, port = standin.host_address(other, "algo-1")
    impostor = take_over(standin, tmp_path, other)  # listens at addr:port
    config = jp_serverapp.web_app.settings["sm_debug"].config
    try:
        status, body = await attach(api, job, address=f"{addr}:{port}", host_key=real_key)
        assert status == 409 and body["error"]["code"] == "host_key_mismatch", body
        assert not impostor.logged_in()

        status, body = await attach(api, job, address=f"{addr}:{port}")
        assert status == 201, body
        assert body["host_key"]["verified"] is False and "not verified" in body["host_key"]["note"]
        await close(jp_serverapp.web_app.settings["terminal_manager"], body["terminal"]["name"])

        config.ssh_strict_host_key_checking = True
        status, body = await attach(api, job, address=f"{addr}:{port}")
        assert status == 409 and body["error"]["code"] == "host_key_required", body
    finally:
        config.ssh_strict_host_key_checking = False
        impostor.stop()
    real_addr, real_port = standin.host_address(job, "algo-1")
    config.ssh_addresses = {job: {"algo-1": {"address": f"{real_addr}:{real_port}",
                                             "host_key": real_key}}}  # fmt: skip
    try:
        status, body = await attach(api, job)
        assert status == 201, body
        assert body["host_key"] == {**body["host_key"], "verified": True, "source": "config"}
    finally:
        config.ssh_addresses = {}


@pytest.mark.parametrize("body", [{"host_key": "ssh-ed25519 AAAA"}, {"address": "127.0.0.1:22",
                                  "host_key": "not a key"}, {"replace": "yes"}])  # fmt: skip
@needs_sshd
async def test_malformed_host_keys_and_flags_are_400(api, demo_jobs, body):
    status, answer = await attach(api, demo_jobs["resnet50-ddp-4node"], **body)
    assert status == 400, answer
    assert answer["error"]["code"] in ("invalid_body", "invalid_host_key")


def effective_options(argv: list[str]) -> dict[str, str]:
    """What the session's ssh would use (`ssh -G`: configuration only, no connection)."""
    argv = [arg for arg in argv if arg != "-t"]
    result = subprocess.run([argv[0], "-G", *argv[1:]], capture_output=True, text=True,
                            check=True, timeout=20)  # fmt: skip
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


@needs_sshd
async def test_the_users_ssh_config_and_agent_stay_home(
    api, standin, tmp_path, terminal_manager, jp_serverapp
):
    """Finding 3: a ~/.ssh/config with ForwardAgent yes followed the session to the host."""
    user_config = tmp_path / "ssh_config"
    user_config.write_text(
        "Host *\n  ForwardAgent yes\n  ForwardX11 yes\n  LocalForward 9999 127.0.0.1:22\n"
        "  ControlMaster auto\n  ControlPath ~/.ssh/cm-%C\n  Compression yes\n"
    )
    job = running_job(standin, "config")
    status, body = await attach(api, job)
    assert status == 201, body
    argv = terminal_manager.terminals[body["terminal"]["name"]].ptyproc.argv
    # ssh finds ~/.ssh/config through the passwd entry, not $HOME: the test cannot plant one
    # there, so it checks that no file is read at all.
    assert argv[argv.index("-F") + 1] == os.devnull
    options = effective_options(argv)
    assert options["forwardagent"] == "no" and options["forwardx11"] == "no"
    assert "localforward" not in options
    assert options["identitiesonly"] == "yes"
    await close(terminal_manager, body["terminal"]["name"])

    config = jp_serverapp.web_app.settings["sm_debug"].config
    config.ssh_config = str(user_config)  # opted in: read, but forwarding stays off
    try:
        status, body = await attach(api, job)
        assert status == 201, body
        argv = terminal_manager.terminals[body["terminal"]["name"]].ptyproc.argv
    finally:
        config.ssh_config = None
    options = effective_options(argv)
    assert options["compression"] == "yes"
    assert options["forwardagent"] == "no" and options["forwardx11"] == "no"
    assert options["clearallforwardings"] == "yes"
    assert options["controlmaster"] in ("false", "no") and options.get("controlpath") is None
    assert options["stricthostkeychecking"] in ("true", "yes")


@needs_sshd
async def test_a_reattach_to_another_address_never_reports_a_false_target(
    api, standin, terminal_manager
):
    """Finding 5: POST with a new address answered 200 `reused` with the new target while the
    live ssh still ran to the old one."""
    job = running_job(standin, "reattach")
    addr, port = standin.host_address(job, "algo-1")
    status, first = await attach(api, job)
    assert status == 201, first
    name = first["terminal"]["name"]
    pid = terminal_manager.terminals[name].ptyproc.pid
    key = announced_key(standin, job)

    status, again = await attach(api, job)
    assert status == 200 and again["reused"] and again["target"] == first["target"], again

    status, other = await attach(api, job, address=f"localhost:{port}", host_key=key)
    assert status == 409, other
    assert other["error"]["code"] == "terminal_on_other_target"
    assert first["target"] in other["error"]["message"]
    assert terminal_manager.terminals[name].ptyproc.pid == pid

    status, replaced = await attach(api, job, address=f"localhost:{port}", host_key=key,
                                    replace=True)  # fmt: skip
    assert status == 201 and replaced["reused"] is False, replaced
    assert replaced["target"].endswith(f"@localhost:{port}")
    term = terminal_manager.terminals[name]
    assert term.ptyproc.pid != pid and term.ptyproc.argv[-1] == "localhost"
    assert re.fullmatch(r"\w+", replaced["terminal"]["name"])
    assert addr == "127.0.0.1"


async def closed(terminal_manager, name: str) -> None:
    """Until terminado has read the end of the terminal's process (on_eof ran)."""
    import asyncio

    for _ in range(200):
        if name not in terminal_manager.terminals:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} did not end")


async def prompted(terminal_manager, name: str) -> None:
    """Until the remote shell's prompt shows: closing then ends ssh with 255, as a user's
    close does."""
    import asyncio

    for _ in range(400):
        term = terminal_manager.terminals[name]
        if "@algo-1" in "".join(term.read_buffer):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no prompt in {name}: {''.join(term.read_buffer)[-300:]!r}")


@needs_sshd
async def test_a_host_that_proved_its_key_is_not_asked_again_until_its_ssh_fails(
    api, standin, tmp_path, terminal_manager, monkeypatch
):
    """Issue 15: a re-attach to a host whose sshd proved the announced key skips the check's
    extra handshake (the terminal's ssh still pins the key). When that ssh then fails, the
    host is trusted no longer: the next attach reads the log and checks again."""
    from jupyter_sm_debug.connect import ssh

    checks = []
    real_check = ssh.check_host_key

    async def counted(argv, target):
        checks.append(target)
        return await real_check(argv, target)

    monkeypatch.setattr(ssh, "check_host_key", counted)
    job = running_job(standin, "proven")
    status, body = await attach(api, job)
    assert status == 201, body
    name = body["terminal"]["name"]
    await prompted(terminal_manager, name)
    await close(terminal_manager, name)
    await closed(terminal_manager, name)
    status, again = await attach(api, job)
    assert status == 201 and again["host_key"] == body["host_key"], again
    assert len(checks) == 1
    await close(terminal_manager, name)
    await closed(terminal_manager, name)

    impostor = take_over(standin, tmp_path, job)
    try:
        status, trusted = await attach(api, job)  # not checked: its own ssh refuses
        assert status == 201, trusted
        await closed(terminal_manager, name)  # ssh ended with 255
        assert len(checks) == 1
        status, refused = await attach(api, job)
        assert status == 409 and refused["error"]["code"] == "host_key_mismatch", refused
        assert len(checks) == 2
        assert not impostor.logged_in(), impostor.text()
    finally:
        impostor.stop()


# -- the hold ends only when an authenticated session closes (finding 4) --------------------------


def test_only_a_connection_with_a_user_process_is_a_session():
    """sshd processes alone are a connection still authenticating (or failing to)."""
    from jupyter_sm_debug.entrypoint import ssh_session_count

    table = {
        5: (1, "unshare"),  # a wrapper above the listener
        10: (5, "sshd"),  # listener
        11: (10, "sshd"),  # a probe / a login in progress: monitor and unprivileged child
        12: (11, "sshd"),
        20: (10, "sshd-session"),  # OpenSSH 9.8+: a logged-in session with a shell
        21: (20, "sshd-session"),
        22: (21, "bash"),
        23: (22, "sleep"),
        30: (10, "sshd"),  # OpenSSH 9.2 as root: the session process runs the command
        31: (30, "bash"),
    }
    assert ssh_session_count(5, table) == 2
    assert ssh_session_count(10, table) == 2
    del table[22], table[23], table[31]
    assert ssh_session_count(5, table) == 0


@needs_sshd
def test_a_stand_in_host_counts_sessions_with_the_entrypoints_rule(standin, tmp_path):
    from jupyter_sm_debug import entrypoint
    from jupyter_sm_debug.standin import hosts

    job = running_job(standin, "counting")
    live = standin.backends.hosts.get(standin.region, job, "algo-1")
    bad = tmp_path / "bad"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(bad)], check=True)
    options = ["-F", os.devnull, "-p", str(live.port), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "IdentitiesOnly=yes", "-l", standin.ssh_user]  # fmt: skip
    with socket.create_connection((live.addr, live.port)):  # a bare connection stays open
        failed = subprocess.run(["ssh", *options, "-i", str(bad), live.addr, "true"],
                                capture_output=True, timeout=30)  # fmt: skip
        assert failed.returncode != 0
        assert hosts._ssh_sessions([live]) == {}
        session = subprocess.Popen(
            ["ssh", *options, "-i", standin.client_key_path, live.addr, "sleep 30"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 15
            while not hosts._ssh_sessions([live]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hosts._ssh_sessions([live]) == {live.token: 1}
            table = entrypoint.process_table()
            assert entrypoint.ssh_session_count(live.sshd.pid, table) == 1
        finally:
            session.terminate()
            session.wait(timeout=10)


# -- a job that does not run the entrypoint with SSH on (issue 22, finding 10) ---------------------

WRAPPED = ["/bin/sh", "-c", 'exec "$@"', "sm-debug-hold", "python", "train.py"]


@pytest.mark.parametrize(
    "description, trusted",
    [
        ({}, False),
        ({"Environment": {"SM_DEBUG_SSH": "1"}}, True),
        ({"Environment": {"SM_DEBUG_SSH": "0"}}, False),
        ({"HyperParameters": {"sm_debug_ssh": '"true"'}}, True),  # as the SDK encodes it
        ({"AlgorithmSpecification": {"ContainerEntrypoint": [
            "sm-debug-entrypoint", "--ssh", "--", "python", "train.py"]}}, True),
        ({"AlgorithmSpecification": {"ContainerEntrypoint": [
            "/usr/local/bin/sm-debug-entrypoint", "--", "python", "train.py", "--ssh"]}}, False),
        ({"AlgorithmSpecification": {"ContainerEntrypoint": ["python", "train.py"]},
          "Environment": {"SM_DEBUG_SSH": "1"}}, False),
        # Debug a copy, wrapped for its hold: the wrapper runs, not the entrypoint.
        ({"AlgorithmSpecification": {"ContainerEntrypoint": WRAPPED},
          "Environment": {"SM_DEBUG_SSH": "1"}}, False),
    ],
)  # fmt: skip
def test_only_the_jobs_own_configuration_lets_an_announcement_count(description, trusted):
    from jupyter_sm_debug.connect.ssh import entrypoint_without_ssh

    why = entrypoint_without_ssh(description)
    assert (why is None) == trusted, why


@needs_sshd
async def test_a_job_without_the_entrypoints_ssh_needs_an_explicit_address(
    api, standin, terminal_manager
):
    """Finding 10: the job does not ask its sm-debug-entrypoint for SSH, and its training
    prints a well-formed announcement as the stream's first line. Attach does not follow it:
    a 409 that says why and what to give; with the address and key given, it connects."""
    import boto3

    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    job = f"no-entrypoint-{uuid.uuid4().hex[:8]}"
    standin.create_job(job, instance_count=1, started_ago=60, environment={"SM_DEBUG_SSH": "0"})
    stream = standin.log_stream(job, "algo-1")
    first = boto3.client("logs").get_log_events(
        logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True
    )["events"][0]["timestamp"]
    forged = f"SM_DEBUG_SSH host=algo-1 addr=127.0.0.1 port=9 hostkey=ssh-ed25519:{KEY}"
    standin.backends.hosts.logs.put(standin.region, stream, [(first / 1000 - 1, forged)])
    lines = boto3.client("logs").get_log_events(
        logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True
    )["events"]
    assert first_announcement(lines, "algo-1").port == 9  # the forged line comes first

    status, body = await attach(api, job)
    assert status == 409, body
    error = body["error"]
    assert error["code"] == "ssh_address_required"
    assert "sm-debug-entrypoint" in error["message"] and "training code" in error["message"]
    assert "'address'" in error["hint"] and "'host_key'" in error["hint"]
    assert "SM_DEBUG_SSH" in error["hint"]

    addr, port = standin.host_address(job, "algo-1")
    # The stand-in's hosts share one host key (what its sshd presents).
    real_key = " ".join(
        standin.backends.hosts.ssh.host_key.with_suffix(".pub").read_text().split()[:2]
    )
    status, body = await attach(api, job, address=f"{addr}:{port}", host_key=real_key)
    assert status == 201, body
    assert body["host_key"]["verified"] is True and body["host_key"]["source"] == "request"
    await close(terminal_manager, body["terminal"]["name"])


@needs_sshd
async def test_an_image_whose_entrypoint_runs_ssh_needs_no_setting(api, standin, terminal_manager):
    """Finding 10, the usual image: ENTRYPOINT ["sm-debug-entrypoint", "--ssh", "--", ...]
    baked in, nothing in the job. Its ENTRYPOINT is read from ECR (as Debug a copy reads it),
    so its announcement counts; a job of an image without it still gets the 409."""
    from jupyter_sm_debug.standin.core import ACCOUNT_ID, byoc_image

    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    repository = f"with-entrypoint-{uuid.uuid4().hex[:6]}"
    standin.backends.ecr.put(
        ACCOUNT_ID, repository, "1", ["sm-debug-entrypoint", "--ssh", "--"], ["train"]
    )
    image = f"{ACCOUNT_ID}.dkr.ecr.{standin.region}.amazonaws.com/{repository}:1"
    unset = {"SM_DEBUG_SSH": ""}  # the stand-in's jobs set it by default
    baked, plain = f"baked-{uuid.uuid4().hex[:8]}", f"plain-{uuid.uuid4().hex[:8]}"
    standin.create_job(baked, instance_count=1, started_ago=60, image=image, environment=unset)
    standin.create_job(plain, instance_count=1, started_ago=60, image=byoc_image(standin.region),
                       environment=unset)  # fmt: skip
    status, body = await attach(api, baked)
    assert status == 201, body
    assert body["host_key"]["source"] == "announcement"
    await close(terminal_manager, body["terminal"]["name"])
    status, body = await attach(api, plain)
    assert status == 409 and body["error"]["code"] == "ssh_address_required", body
    assert "ENTRYPOINT is sm-debug-entrypoint --ssh" in body["error"]["message"]
