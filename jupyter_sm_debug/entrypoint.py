"""sm-debug-entrypoint: make a training container debuggable, in one line.

    ENTRYPOINT ["sm-debug-entrypoint", "--ssh", "--hold-on-failure", "1800", "--", "train"]

- runs the training command as a child, forwards SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2 to
  it (SageMaker stops containers with `docker stop -t 120`) and exits with its exit code;
- with --ssh (and sshd in the image): starts sshd on --ssh-port with host keys generated
  now and authorized keys from SM_DEBUG_AUTHORIZED_KEYS, the `sm_debug_authorized_keys`
  hyperparameter or an `authorized_keys` file in the `sm-debug` input channel — never baked
  into the image — and prints one line the extension reads from CloudWatch:
  `SM_DEBUG_SSH host=algo-2 addr=10.0.1.7 port=2222`;
- with --hold-on-failure SECONDS: when the command fails, keeps the container alive that
  long so the crash can be inspected, then exits with the command's exit code. The hold ends
  early when the release file is touched (`sm-debug-entrypoint --release`) or when the last
  debug session (SSH or SSM) closes.

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
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
DEFAULT_RELEASE_FILE = "/tmp/sm-debug-release"  # noqa: S108 - a well-known marker, not data
SESSION_PROCESS_NAMES = {"ssm-session-wor", "ssm-session-worker"}  # comm is cut at 15 chars


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
    keys = os.environ.get("SM_DEBUG_AUTHORIZED_KEYS") or hps.get("sm_debug_authorized_keys", "")
    channel = os.path.join(ml_root(), "input/data/sm-debug/authorized_keys")
    if os.path.isfile(channel):
        with open(channel) as handle:
            keys += "\n" + handle.read()
    lines = [line.strip() for line in keys.replace("\\n", "\n").splitlines()]
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


def session_environment() -> list[str]:
    """One SetEnv line (sshd uses only the first) so an SSH shell sees the training
    environment: SM_*, PATH, CUDA, the container credentials URI ..."""
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
        f'"{name}={value}"'
        for name, value in sorted(os.environ.items())
        if name.startswith(keep) and '"' not in value and "\n" not in value and len(value) < 4000
    ]
    return [f"SetEnv {' '.join(pairs)}"] if pairs else []


def start_sshd(port: int, keys: str) -> subprocess.Popen | None:
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if sshd is None:
        log("--ssh asked for, but sshd is not in this image (apt-get install openssh-server).")
        return None
    if not keys.strip():
        log(
            "--ssh asked for, but no authorized keys were given (SM_DEBUG_AUTHORIZED_KEYS, "
            "the sm_debug_authorized_keys hyperparameter, or the sm-debug channel)."
        )
        return None
    workdir = tempfile.mkdtemp(prefix="sm-debug-sshd-")
    host_key = os.path.join(workdir, "ssh_host_ed25519_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
    keys_file = os.path.join(workdir, "authorized_keys")
    with open(os.open(keys_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write(keys)
    config = os.path.join(workdir, "sshd_config")
    with open(config, "w") as handle:
        handle.write("\n".join([
            f"Port {port}",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {keys_file}",
            f"PidFile {os.path.join(workdir, 'sshd.pid')}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            *session_environment(),
            "",
        ]))  # fmt: skip
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    return subprocess.Popen([sshd, "-D", "-e", "-f", config])


def session_count(sshd_pid: int | None) -> int:
    """Open debug sessions: sshd's per-connection children plus SSM session workers."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if comm in SESSION_PROCESS_NAMES or (
            sshd_pid and ppid == sshd_pid and comm in ("sshd", "sshd-session")
        ):
            count += 1
    return count


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


def hold(seconds: float, release_file: str, sshd_pid: int | None, stop) -> str:
    """Wait up to `seconds`; returns why the hold ended."""
    deadline = time.monotonic() + seconds
    seen_session = False
    while time.monotonic() < deadline:
        if stop():
            return "stopped"
        if os.path.exists(release_file):
            return "released"
        sessions = session_count(sshd_pid)
        if sessions:
            seen_session = True
        elif seen_session:
            return "last session closed"
        time.sleep(0.2)
    return "hold window over"


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
        open(release_file, "a").close()
        return 0
    if not command:
        parser.error("give the training command after --")

    hps = hyperparameters()
    sshd = None
    if truthy(setting("ssh", args.ssh, hps)):
        port = int(setting("ssh_port", args.ssh_port, hps) or 2222)
        sshd = start_sshd(port, authorized_keys(hps))
        if sshd is not None:
            addr = setting("announce_addr", args.announce_addr, hps) or announce_address()
            # The one machine-readable line the extension looks for in CloudWatch.
            print(f"SM_DEBUG_SSH host={current_host()} addr={addr} port={port}", flush=True)
    hold_seconds = float(setting("hold_on_failure", args.hold_on_failure, hps) or 0)

    supervisor = Supervisor(command)
    for signum in FORWARDED:
        signal.signal(signum, supervisor.forward)
    code = supervisor.wait()
    if code != 0 and hold_seconds > 0 and not supervisor.stopping:
        if os.path.exists(release_file):
            os.unlink(release_file)
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
