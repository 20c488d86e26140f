"""sm-debug-entrypoint: make a training container debuggable, in one line.

    ENTRYPOINT ["sm-debug-entrypoint", "--ssh", "--hold-on-failure", "1800", "--", "train"]

- runs the training command as a child, forwards SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2 to
  it (SageMaker stops containers with `docker stop -t 120`) and exits with its exit code;
- with --ssh (and sshd in the image): starts sshd on --ssh-port with host keys generated
  now and authorized keys from SM_DEBUG_AUTHORIZED_KEYS, the `sm_debug_authorized_keys`
  hyperparameter or an `authorized_keys` file in the `sm-debug` input channel — never baked
  into the image. Once sshd listens it prints, as a line of its own and before the training
  command starts, the one line the extension reads from CloudWatch and whose host key it pins:
  `SM_DEBUG_SSH host=algo-2 addr=10.0.1.7 port=2222 hostkey=ssh-ed25519:AAAA...`.
  sshd logs to a file in the container, never to the training log. When sshd cannot start,
  it prints `SM_DEBUG_SSH_FAILED host=algo-2 reason=...` and training goes on;
- with --hold-on-failure SECONDS: when the command fails, keeps the container alive that
  long so the crash can be inspected, then exits with the command's exit code. The hold ends
  early when the release file is touched (`sm-debug-entrypoint --release`) or when the last
  debug session (SSH or SSM) closes; only an authenticated session counts (a port probe or
  a failed login does not end a hold).

Every option can also come from the environment (SM_DEBUG_SSH, SM_DEBUG_SSH_PORT,
SM_DEBUG_HOLD_ON_FAILURE, SM_DEBUG_ANNOUNCE_ADDR) or from a hyperparameter of the same name
in lower case (sm_debug_ssh, sm_debug_hold_on_failure, ...), so they can be set without
rebuilding the image. Standard library only: the file also runs on its own
(`python entrypoint.py ...`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
DEFAULT_RELEASE_FILE = "/tmp/sm-debug-release"  # noqa: S108 - a well-known marker, not data
SESSION_PROCESS_NAMES = {"ssm-session-wor", "ssm-session-worker"}  # comm is cut at 15 chars
# sshd's own processes: the listener, per-connection monitors and privilege-separated
# children (OpenSSH 9.8+ names them sshd-session and sshd-auth).
SSHD_NAMES = {"sshd", "sshd-session", "sshd-auth"}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LISTEN_TIMEOUT = 10.0
# The extension's own sessions (run, stacks, host state; files and kernels to come) carry
# this in their command's argv and environment, and leave a directory named by each pid they
# descend from in MARK_DIR: a hold never ends because one of them closed (SessionWatch).
TOOL_MARK = "SM_DEBUG_SESSION=tool"
MARK_DIR = "/tmp/sm-debug-tool-sessions"  # noqa: S108 - names only, readable by the holder


def log(message: str) -> None:
    print(f"[sm-debug] {message}", file=sys.stderr, flush=True)


def ml_root() -> str:
    return os.environ.get("SM_DEBUG_ML_ROOT", "/opt/ml")


def hyperparameters() -> dict:
    try:
        with open(os.path.join(ml_root(), "input/config/hyperparameters.json")) as handle:
            values = json.load(handle)
    except (OSError, ValueError):
        return {}
    decoded = {}
    for key, value in values.items() if isinstance(values, dict) else ():
        # The SageMaker SDK JSON-encodes hyperparameter values ('"1800"'); plain ones pass.
        with contextlib.suppress(ValueError):
            value = json.loads(value) if isinstance(value, str) else value
        decoded[key] = str(value)
    return decoded


def setting(name: str, cli_value, hps: dict):
    """CLI first, then SM_DEBUG_<NAME>, then the sm_debug_<name> hyperparameter."""
    if cli_value not in (None, False):
        return cli_value
    env = os.environ.get(f"SM_DEBUG_{name.upper()}")
    if env not in (None, ""):
        return env
    return hps.get(f"sm_debug_{name.lower()}")


def truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def current_host() -> str:
    try:
        with open(os.path.join(ml_root(), "input/config/resourceconfig.json")) as handle:
            return json.load(handle)["current_host"]
    except (OSError, ValueError, KeyError):
        return os.environ.get("SM_CURRENT_HOST", socket.gethostname())


def announce_address() -> str:
    """The address other machines in the VPC reach this container at."""
    try:
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):
            return address
    except OSError:
        pass
    # A connected UDP socket reveals the outbound interface's address; nothing is sent.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def authorized_keys(hps: dict) -> str:
    """One key per line, taken literally (a '\\n' in a value is not a line break)."""
    keys = os.environ.get("SM_DEBUG_AUTHORIZED_KEYS") or hps.get("sm_debug_authorized_keys", "")
    channel = os.path.join(ml_root(), "input/data/sm-debug/authorized_keys")
    if os.path.isfile(channel):
        with open(channel, errors="replace") as handle:
            keys += "\n" + handle.read()
    lines = [line.strip() for line in keys.splitlines()]
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


def setenv_value(text: str) -> str:
    """A double-quoted sshd_config argument: sshd reads \\\\ as \\ and \\" as "."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def session_environment() -> list[str]:
    """One SetEnv line (sshd uses only the first) so an SSH shell sees the training
    environment: SM_*, PATH, CUDA, the container credentials URI ... Values are quoted and
    escaped for sshd_config; names that are not plain names, values with control
    characters and very long values are left out."""
    keep = (
        "SM_",
        "SAGEMAKER_",
        "CUDA",
        "NVIDIA_",
        "NCCL_",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "PATH",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
    )
    pairs = [
        setenv_value(f"{name}={value}")
        for name, value in sorted(os.environ.items())
        if name.startswith(keep)
        and ENV_NAME.fullmatch(name)
        and value.isprintable()
        and len(value) < 4000
    ]
    return [f"SetEnv {' '.join(pairs)}"] if pairs else []


class SSHFailed(Exception):
    """sshd could not start; `reason` is one word for the SM_DEBUG_SSH_FAILED line."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def sshd_config(port: int, workdir: str, host_key: str, keys_file: str, env: list[str]) -> str:
    return "\n".join([
        f"Port {port}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {keys_file}",
        f"PidFile {os.path.join(workdir, 'sshd.pid')}",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "HostbasedAuthentication no",
        "PermitRootLogin prohibit-password",
        "PermitUserEnvironment no",
        "StrictModes no",
        "UsePAM no",
        "PrintMotd no",
        # Nothing is forwarded but local TCP (ssh -L), which a later port-forward feature
        # uses: no agent, no X11, no Unix sockets, no remote listeners, no tunnels.
        "AllowAgentForwarding no",
        "X11Forwarding no",
        "AllowStreamLocalForwarding no",
        "AllowTcpForwarding local",
        "GatewayPorts no",
        "PermitTunnel no",
        "LogLevel INFO",
        "Subsystem sftp internal-sftp",
        *env,
        "",
    ])  # fmt: skip


def listening(logfile: str, port: int) -> bool:
    """sshd itself says it listens on IPv4 (a connect test could be answered by whatever
    else holds the port). Raises SSHFailed when sshd says it could not bind there."""
    try:
        with open(logfile, errors="replace") as handle:
            text = handle.read()
    except OSError:
        return False
    if f"Bind to port {port} on 0.0.0.0 failed" in text:
        raise SSHFailed("port_in_use", f"port {port} is taken; see {logfile}")
    return f"Server listening on 0.0.0.0 port {port}." in text


def start_sshd(port: int, keys: str) -> tuple[subprocess.Popen, str]:
    """sshd with a fresh host key, listening: (process, "type:base64" of its host key).
    Raises SSHFailed."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if sshd is None:
        raise SSHFailed(
            "sshd_not_installed",
            "--ssh asked for, but sshd is not in this image (apt-get install openssh-server).",
        )
    if not keys.strip():
        raise SSHFailed(
            "no_authorized_keys",
            "--ssh asked for, but no authorized keys were given (SM_DEBUG_AUTHORIZED_KEYS, "
            "the sm_debug_authorized_keys hyperparameter, or the sm-debug channel).",
        )
    workdir = tempfile.mkdtemp(prefix="sm-debug-sshd-")
    host_key = os.path.join(workdir, "ssh_host_ed25519_key")
    keygen = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", host_key],
        stdin=subprocess.DEVNULL, capture_output=True, check=False,
    )  # fmt: skip
    if keygen.returncode != 0:
        raise SSHFailed("keygen_failed", f"ssh-keygen failed: {keygen.stderr.decode()[-300:]}")
    with open(host_key + ".pub") as handle:
        key_type, key_blob = handle.read().split()[:2]
    keys_file = os.path.join(workdir, "authorized_keys")
    with open(os.open(keys_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write(keys)
    config = os.path.join(workdir, "sshd_config")
    for env in (session_environment(), []):
        with open(config, "w") as handle:
            handle.write(sshd_config(port, workdir, host_key, keys_file, env))
        test = subprocess.run([sshd, "-t", "-f", config], capture_output=True, check=False)
        if test.returncode == 0:
            break
        if env:
            log("sshd refused the training environment in its SetEnv line; starting without it.")
    else:
        raise SSHFailed("config_invalid", f"sshd -t: {test.stderr.decode()[-300:]}")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    logfile = os.path.join(workdir, "sshd.log")
    # -E: sshd's log goes to a file; anyone who can reach the port can make sshd log text.
    process = subprocess.Popen([sshd, "-D", "-E", logfile, "-f", config], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + LISTEN_TIMEOUT
    try:
        while not listening(logfile, port):
            if process.poll() is not None:
                raise SSHFailed("sshd_exited", f"sshd exited ({process.returncode}); see {logfile}")
            if time.monotonic() > deadline:
                raise SSHFailed("not_listening", f"sshd did not listen on {port}; see {logfile}")
            time.sleep(0.05)
    except SSHFailed:
        if process.poll() is None:
            process.kill()
        process.wait()
        raise
    log(f"sshd listens on port {port}; its log is {logfile}")
    return process, f"{key_type}:{key_blob}"


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name), one pass over /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split at the last ")".
        head, _, tail = raw.rpartition(b")")
        name = head.partition(b"(")[2].decode(errors="replace")
        try:
            table[int(entry)] = (int(tail.split()[1]), name)
        except (IndexError, ValueError):
            continue
    return table


def carries_mark(pid: int) -> bool:
    """Whether this process says it belongs to one of the extension's own sessions: the
    mark in its argv (a shell's ``-c`` command, sshd's SSH_ORIGINAL_COMMAND) or its
    environment (TOOL_MARK, set by the extension's run command before anything else runs)."""
    for name in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                if TOOL_MARK.encode() in handle.read(1 << 20):
                    return True
        except OSError:
            continue
    return False


def mark_file_names(pid: int, mark_dir: str | None = None) -> bool:
    """Whether the extension's run command left a mark naming this pid (one of its
    ancestors): the mark outlives a session that ends between two looks. A mark is a
    directory (mkdir never follows a symlink; a planted file or link is no mark)."""
    path = os.path.join(mark_dir or MARK_DIR, str(pid))
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def debug_sessions(
    table: dict[int, tuple[int, str]],
    sshd_pid: int | None = None,
    marked=carries_mark,
    mark_dir: str | None = None,
    ssm: bool = True,
) -> dict[int, bool]:
    """The open debug sessions, session id -> whether it is one of the extension's own.

    A session is a process of the user under an SSM session worker (its id: the worker) or
    under an authenticated sshd connection (its id: the connection's sshd, just below the
    listener). A session that runs nothing (a port forward, ``ssh -N``, a login still
    authenticating, a port probe) is not one. A session is the extension's own when a
    process in it carries the mark (carries_mark) or a mark file names its id.

    SSH sessions are those of the sshd at (or started by) `sshd_pid` only (none without
    it); SSM sessions count unless `ssm` is False."""
    listener = None
    if sshd_pid is not None:
        children: dict[int, list[int]] = defaultdict(list)
        for pid, (parent, _) in table.items():
            children[parent].append(pid)
        todo = [sshd_pid]
        while todo and listener is None:  # the topmost sshd at or below it (it may wrap it)
            pid = todo.pop(0)
            if table.get(pid, (0, ""))[1] in SSHD_NAMES:
                listener = pid
            todo += children.get(pid, [])
    sessions: dict[int, bool] = {}
    for pid, (parent, comm) in table.items():
        if comm in SESSION_PROCESS_NAMES or comm in SSHD_NAMES:
            continue
        session, cur, seen = None, parent, 0
        while cur in table and seen < 256:
            seen += 1
            up, name = table[cur]
            if name in SESSION_PROCESS_NAMES:
                session = cur if ssm else None
                break
            if name in SSHD_NAMES:
                below = None
                while up in table and table[up][1] in SSHD_NAMES:
                    below, cur, up = cur, up, table[up][0]
                if below is not None and listener is not None and cur == listener:
                    session = below
                break
            cur = up
        if session is None:
            continue
        if not sessions.get(session):
            sessions[session] = marked(pid) or mark_file_names(session, mark_dir)
    return sessions


def ssh_session_count(root: int, table: dict[int, tuple[int, str]]) -> int:
    """Authenticated SSH sessions of the sshd at (or started by) `root` that are a person's:
    a connection with a non-sshd process under it (a port probe, a connection still
    authenticating or a failed login never counts; nor does ``ssh -N``), and none of the
    extension's own (debug_sessions). The stand-in's hosts use this same function."""
    return sum(1 for mark in debug_sessions(table, root, ssm=False).values() if not mark)


class SessionWatch:
    """What ends a hold early: a session a person opened has closed and no person's session
    is left. The extension's own sessions (run, stacks, host state, forwards) never count:
    a session marked at any look stays the extension's, and one that ended between two
    looks is checked against the mark files its command left."""

    def __init__(self, sshd_pid: int | None = None, mark_dir: str | None = None):
        self.sshd_pid = sshd_pid
        self.mark_dir = mark_dir or MARK_DIR
        self.tools: set[int] = set()
        self.people: set[int] = set()

    def look(self) -> tuple[int, bool]:
        """(people's sessions open now, whether a person's session closed since last look)."""
        table = process_table()
        now = debug_sessions(table, self.sshd_pid, mark_dir=self.mark_dir)
        closed = any(not mark_file_names(s, self.mark_dir) for s in self.people - now.keys())
        self.tools |= {s for s, mark in now.items() if mark}  # debug_sessions read the marks
        self.tools &= now.keys()
        self.people = {sid for sid in now if sid not in self.tools}
        with contextlib.suppress(OSError):  # marks of processes that are gone (pids are reused)
            for name in os.listdir(self.mark_dir):
                if name.isdigit() and int(name) not in table:
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(self.mark_dir, name))
        return len(self.people), closed


class Supervisor:
    def __init__(self, command: list[str]):
        self.child = subprocess.Popen(command, start_new_session=True)
        self.stopping = False

    def forward(self, signum, _frame) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True  # SageMaker is stopping the job: never hold after this
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signum)

    def wait(self) -> int:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)  # as PID 1 we also reap orphans
            except ChildProcessError:
                return self.child.returncode if self.child.returncode is not None else 0
            if pid == self.child.pid:
                self.child.returncode = os.waitstatus_to_exitcode(status)
                code = self.child.returncode
                return 128 - code if code < 0 else code


def released(release_file: str) -> bool:
    """A regular file at the release path (not a directory, not a symlink to anything)."""
    try:
        return stat.S_ISREG(os.lstat(release_file).st_mode)
    except OSError:
        return False


def arm_release(release_file: str) -> None:
    """Remove a release marker left from before the failure; never fail the container."""
    try:
        mode = os.lstat(release_file).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        log(f"{release_file} is a directory: --release cannot end this hold (remove it).")
        return
    try:
        os.unlink(release_file)
    except OSError as error:
        log(f"cannot remove the stale release file {release_file}: {error}")


def release(release_file: str) -> int:
    """`--release`: create the marker as a regular file, never through a symlink."""
    try:
        if os.path.islink(release_file):
            os.unlink(release_file)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        os.close(os.open(release_file, flags, 0o600))
    except OSError as error:
        print(f"sm-debug-entrypoint: cannot release the hold: {release_file}: "
              f"{error.strerror or error}", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def hold(seconds: float, release_file: str, sshd_pid: int | None, stop) -> str:
    """Wait up to `seconds`; returns why the hold ended."""
    deadline = time.monotonic() + seconds
    watch = SessionWatch(sshd_pid)
    while time.monotonic() < deadline:
        if stop():
            return "stopped"
        if released(release_file):
            return "released"
        open_now, closed = watch.look()
        if closed and not open_now:
            return "last session closed"
        time.sleep(0.2)
    return "hold window over"


def announce_ssh(args, hps) -> subprocess.Popen | None:
    """Start sshd and announce it, or report why not; never raises."""
    host = current_host()
    try:
        port = int(setting("ssh_port", args.ssh_port, hps) or 2222)
        if not 0 < port < 65536:
            raise ValueError(port)
    except (TypeError, ValueError):
        print(f"SM_DEBUG_SSH_FAILED host={host} reason=invalid_port", flush=True)
        log("the SSH port is not a number from 1 to 65535; training goes on without SSH.")
        return None
    try:
        process, host_key = start_sshd(port, authorized_keys(hps))
    except SSHFailed as failure:
        print(f"SM_DEBUG_SSH_FAILED host={host} reason={failure.reason}", flush=True)
        log(f"{failure}; training goes on without SSH.")
        return None
    except Exception as error:  # noqa: BLE001 - SSH is a debugging aid: never stop training
        print(f"SM_DEBUG_SSH_FAILED host={host} reason=error", flush=True)
        log(f"sshd did not start ({type(error).__name__}: {error}); training goes on.")
        return None
    addr = setting("announce_addr", args.announce_addr, hps) or announce_address()
    if not re.fullmatch(r"\S{1,253}", str(addr)) or not re.fullmatch(r"\S+", host):
        print(f"SM_DEBUG_SSH_FAILED host={host} reason=invalid_announce_addr", flush=True)
        return process
    # The one machine-readable line the extension looks for in CloudWatch: a line of its
    # own, written before the training command can write anything.
    print(f"SM_DEBUG_SSH host={host} addr={addr} port={port} hostkey={host_key}", flush=True)
    return process


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="sm-debug-entrypoint",
        usage="sm-debug-entrypoint [options] -- COMMAND [ARG...]",
        description="Run a training command so its container can be debugged.",
    )
    parser.add_argument("--ssh", action="store_true", default=None, help="start sshd")
    parser.add_argument("--ssh-port", type=int, default=None, help="sshd port (default 2222)")
    parser.add_argument(
        "--hold-on-failure",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep the container alive this long after a failure",
    )
    parser.add_argument(
        "--release-file",
        default=None,
        help=f"touch it to end a hold early (default {DEFAULT_RELEASE_FILE})",
    )
    parser.add_argument("--announce-addr", default=None, help="address to announce for SSH")
    parser.add_argument("--release", action="store_true", help="end a running hold now")
    if "--" in argv:
        split = argv.index("--")
        options, command = argv[:split], argv[split + 1 :]
    else:
        options, command = argv, []
    args = parser.parse_args(options)
    release_file = args.release_file or os.environ.get(
        "SM_DEBUG_RELEASE_FILE", DEFAULT_RELEASE_FILE
    )
    if args.release:
        return release(release_file)
    if not command:
        parser.error("give the training command after --")

    hps = hyperparameters()
    sshd = announce_ssh(args, hps) if truthy(setting("ssh", args.ssh, hps)) else None
    try:
        hold_seconds = float(setting("hold_on_failure", args.hold_on_failure, hps) or 0)
    except ValueError:
        log("SM_DEBUG_HOLD_ON_FAILURE is not a number of seconds: no hold.")
        hold_seconds = 0.0

    supervisor = Supervisor(command)
    for signum in FORWARDED:
        signal.signal(signum, supervisor.forward)
    code = supervisor.wait()
    if code != 0 and hold_seconds > 0 and not supervisor.stopping:
        arm_release(release_file)
        log(
            f"training command failed with exit code {code}; holding this container for "
            f"{hold_seconds:g} s so you can attach and inspect it. End the hold early with "
            f"`sm-debug-entrypoint --release` (touches {release_file})."
        )
        print(
            f"SM_DEBUG_HOLD host={current_host()} seconds={hold_seconds:g} code={code}", flush=True
        )
        why = hold(
            hold_seconds, release_file, sshd.pid if sshd else None, lambda: supervisor.stopping
        )
        log(f"hold ended ({why}); exiting with {code}")
    if sshd is not None:
        sshd.terminate()
        try:
            sshd.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sshd.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
