"""Hosts of running jobs: local environments shaped like SageMaker training containers.

While a job's containers exist (InProgress and Downloading, Training or Uploading), each of
its hosts ``algo-N`` has a sandbox with the ``/opt/ml`` tree, a shell environment with the
``SM_*`` variables, a training process (``python train.py``), a real ``sshd`` on a loopback
port whose ForceCommand enters that environment, and a CloudWatch log stream. Where Linux
namespaces are permitted the host runs in its own (container.py): its hostname, its
processes, its ``/opt/ml`` and ``/tmp``. When the containers go away, so do the sshd and
every process of the host.

Every host behaves as if its container ran under ``sm-debug-entrypoint``: it logs the
``SM_DEBUG_SSH`` line, and when the job's training command fails with a hold window
(SM_DEBUG_HOLD_ON_FAILURE) it logs the traceback and the ``SM_DEBUG_HOLD`` line and stays up.
The hold ends early, as the entrypoint's does, when ``sm-debug-entrypoint --release`` touches
the host's release file (``SM_DEBUG_RELEASE_FILE``, inside the sandbox) or when the last
debug session of a host closes (sshd's connections with a shell in them, and the SSM
gateway's shells); reconcile notices either and ends the job then.

A lived job's hosts (sagemaker.Job.lived) run its effective command as PID 1 of their PID
namespace, from Training on, with its channels from the stand-in's S3 and its submit
directory in /opt/ml/code (s3files.py); the image's ``train`` is toolkit.py (or the real
Training Toolkit). Their output is the log stream, their exit ends the job (non-zero:
Failed, FailureReason from /opt/ml/output/failure), and a stop sends SIGTERM to PID 1,
SIGKILL after ``stop_grace``. None of the scripted lines or holds above apply to them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .. import entrypoint
from . import container, ddp, procs, s3files, trainlog
from .logs import LogWriter
from .sagemaker import (
    DEFAULT_FAILURE_REASON,
    HOMOGENEOUS_GROUP,
    LIVE_SECONDARY,
    Hold,
    HostSpec,
    Job,
    Segment,
    algorithm_error,
    failure_reason,
)

log = logging.getLogger(__name__)

SSHD_MISSING_HINT = (
    "OpenSSH server not found: hosts run without SSH. To get SSH into stand-in hosts, "
    "install it (Debian/Ubuntu: apt-get install openssh-server)."
)
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
RELEASE_FILE = "tmp/sm-debug-release"  # in the sandbox: the container's /tmp/sm-debug-release
ENTRYPOINT_BIN = "usr/local/bin"  # in the sandbox, first on the hosts' PATH
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _which(name: str) -> Optional[str]:
    path = os.environ.get("PATH", "") + os.pathsep + _SBIN
    return shutil.which(name, path=path)


class SshKit:
    """The stand-in's SSH material: host key, one client key pair, authorized_keys."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.sshd = _which("sshd")
        self.keygen = _which("ssh-keygen")
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.client_key = directory / "client_ed25519"
        self.host_key = directory / "host_ed25519"
        self.authorized_keys = directory / "authorized_keys"
        self._lock = threading.Lock()
        self._ready = False

    @property
    def missing_hint(self) -> Optional[str]:
        return None if (self.sshd and self.keygen) else SSHD_MISSING_HINT

    def prepare(self) -> bool:
        """Create the keys once. True if sshd can be used."""
        with self._lock:
            if self._ready:
                return self.missing_hint is None
            if self.keygen:
                self.dir.mkdir(parents=True, exist_ok=True)
                for key, comment in ((self.client_key, "standin-client"), (self.host_key, "")):
                    if not key.exists():
                        subprocess.run(
                            [self.keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment,
                             "-f", str(key)],
                            check=True, stdin=subprocess.DEVNULL, capture_output=True,
                        )  # fmt: skip
                public = self.client_key.with_suffix(".pub").read_text()
                self.authorized_keys.write_text(public)
            if self.sshd and os.getuid() == 0:
                # sshd running as root needs its privilege-separation directory.
                os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            self._ready = True
            return self.missing_hint is None

    def use_pam(self) -> bool:
        # With UsePAM no, OpenSSH refuses accounts whose password is locked ("!..."),
        # even for keys; PAM does not. Use PAM only when needed and configured.
        try:
            with open("/etc/shadow") as shadow:
                for line in shadow:
                    name, _, rest = line.partition(":")
                    if name == self.user:
                        locked = rest.startswith("!")
                        return locked and os.path.exists("/etc/pam.d/sshd")
        except OSError:
            pass
        return False


def _install_entrypoint(bin_dir: Path) -> None:
    """Put sm-debug-entrypoint on the host's PATH: this package's console script if it is
    installed next to the interpreter, else a wrapper running the module."""
    target = bin_dir / "sm-debug-entrypoint"
    target.unlink(missing_ok=True)
    installed = Path(sys.executable).parent / "sm-debug-entrypoint"
    if installed.is_file() and os.access(installed, os.X_OK):
        target.symlink_to(installed)
        return
    package_parent = Path(__file__).resolve().parents[2]
    target.write_text(
        "#!/bin/sh\n"
        "# sm-debug-entrypoint of the stand-in's own jupyter_sm_debug package.\n"
        f"PYTHONPATH={shlex.quote(str(package_parent))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f'exec {shlex.quote(sys.executable)} -m jupyter_sm_debug.entrypoint "$@"\n'
    )
    target.chmod(0o755)


TOOLKIT_VARIABLE = "SM_STANDIN_TOOLKIT"  # "real": the installed Training Toolkit's train


def _toolkit() -> str:
    """The image's ``train`` for a lived job: the stand-in's own (toolkit.py), or with
    SM_STANDIN_TOOLKIT=real the real Training Toolkit's when ``sagemaker-training`` is
    installed next to the stand-in. Opt-in: the real one downloads the submit directory
    from S3 itself, which a host reaches only with the stand-in's endpoint and credentials
    in the job's Environment (not verified here)."""
    installed = Path(sys.executable).parent / "train"
    if (
        os.environ.get(TOOLKIT_VARIABLE) == "real"
        and installed.is_file()
        and importlib.util.find_spec("sagemaker_training") is not None
    ):
        return f'#!/bin/sh\nexec {shlex.quote(str(installed))} "$@"\n'
    return container.toolkit_program(sys.executable)


# SageMaker hands a container large values through files (/opt/ml/input/config); one
# environment string over the kernel's limit (MAX_ARG_STRLEN, 128 KiB) makes every exec
# with it fail (E2BIG), so such variables are left out of the hosts' environment.
MAX_VARIABLE = 64 * 1024


def _small(env: dict) -> dict:
    return {k: v for k, v in env.items() if len(k) + len(v) < MAX_VARIABLE}


def _decoded(value: Optional[str]) -> Optional[str]:
    """A hyperparameter as the toolkit reads it: the SDK JSON-encodes values ('"x.py"')."""
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def _has_children(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as children:
            return bool(children.read().strip())
    except OSError:
        return True  # no such file in this kernel: look the long way


def _ssh_sessions(hosts: list[LiveHost]) -> dict[str, int]:
    """Open SSH debug sessions per host token, counted as sm-debug-entrypoint counts them
    (entrypoint.ssh_session_count: a connection with a process of the user under it; a
    connection still authenticating, a failed login or a port probe does not count). One
    pass over /proc for all the hosts."""
    sshds = {h.sshd.pid: h.token for h in hosts if h.sshd is not None}
    if not any(_has_children(pid) for pid in sshds):
        return {}  # the common case, without reading every process
    table = entrypoint.process_table()
    counts: dict[str, int] = {}
    for sshd_pid, token in sshds.items():
        count = entrypoint.ssh_session_count(sshd_pid, table)
        if count:
            counts[token] = count
    return counts


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class LiveHost:
    region: str
    job: str
    spec: HostSpec
    sandbox: Path
    meta: Path
    script: Path
    token: str
    env: dict
    cwd: str
    started: float
    log_stream: str
    sshd: Optional[subprocess.Popen] = None
    addr: Optional[str] = None
    port: Optional[int] = None
    ssh_error: Optional[str] = None
    # Namespaces: unshare's process and the init inside (container.py), or why there are none.
    namespace: Optional[subprocess.Popen] = None
    init: Optional[int] = None
    not_isolated: Optional[str] = None
    train: Optional[subprocess.Popen] = None  # the training process of a host without them
    # A lived job's process: what it printed so far (train.log), how it ended, the stop.
    log_offset: int = 0
    log_partial: bytes = b""
    exit_code: Optional[int] = None
    term_at: Optional[float] = None  # SIGTERM sent (monotonic)
    killed: bool = False  # SIGKILL sent after the grace period

    @property
    def process(self) -> Optional[subprocess.Popen]:
        """PID 1's process as this machine started it (unshare's, or the plain process)."""
        return self.namespace if self.namespace is not None else self.train

    @property
    def release_file(self) -> Path:
        return self.sandbox / RELEASE_FILE


@dataclass
class JobLogState:
    streams: dict = field(default_factory=dict)  # host -> stream name
    logged: int = 0  # segments already written
    progress: dict = field(default_factory=dict)  # host -> trainlog.Progress
    done: bool = False
    hold_logged: bool = False  # the hold's start lines are written
    hold_armed: bool = False  # stale release files are gone: a new one releases the hold
    sessions_seen: set = field(default_factory=set)  # hosts that had a session in the hold
    exited: set = field(default_factory=set)  # hosts of a lived job whose process ended


class HostManager:
    ADDRESS = "127.0.0.1"

    def __init__(self, root: Path, internal: Path, logs: LogWriter, default_region: str):
        self.root = root
        self.internal = internal
        self.logs = logs
        self.default_region = default_region
        self.ssh = SshKit(internal / "ssh")
        self.live: dict[tuple[str, str, str], LiveHost] = {}
        self._job_logs: dict[tuple[str, str], JobLogState] = {}
        self._lock = threading.RLock()
        self._made_dirs: set[Path] = set()
        self._listed = "[]"
        # False: hosts without namespaces (as where they are not permitted); None: if possible.
        self.isolate: Optional[bool] = None
        # (region, job, host) -> open SSM sessions of that host; the stand-in sets it.
        self.ssm_sessions: Callable[[str, str, str], int] = lambda region, job, host: 0
        # Seconds between SIGTERM and SIGKILL when a lived job is stopped (docker stop -t
        # 120, as SageMaker stops a container); tests shorten it.
        self.stop_grace = 120.0

    # -- layout -------------------------------------------------------------------------

    @property
    def not_isolated(self) -> Optional[str]:
        """Why hosts run without namespaces here (None: each host has its own)."""
        if self.isolate is False:
            return "namespaces turned off for this stand-in"
        return container.unavailable()

    def job_dir(self, region: str, job: str) -> Path:
        # Job names cannot start with "_": the stand-in's own entries never clash.
        if region == self.default_region:
            return self.root / job
        return self.root / "_regions" / region / job

    # -- reconcile ------------------------------------------------------------------------

    def reconcile(
        self, jobs: list[Job], t: float, live_of, partial: bool = False, release=None,
        update=None,
    ) -> None:  # fmt: skip
        """Start and end hosts and write log lines so they match the jobs at time ``t``.

        ``live_of(job)`` answers (segments, index at ``t``, hold) with the store's lock.
        ``partial``: ``jobs`` are not all the jobs; leave the hosts of the others alone.
        ``release(job, t, why)`` ends a job's hold at ``t`` (with the store's lock).
        ``update(job, change)`` runs ``change(job)`` with the store's lock: a lived job's
        processes decide how it ends.
        """
        with self._lock:
            wanted = set()
            for job in jobs:
                key = (job.region, job.name)
                state = self._job_logs.setdefault(key, JobLogState())
                if state.done:
                    continue
                if job.lived and update is not None:
                    self._reconcile_lived(job, state, t, live_of, update, wanted)
                    continue
                segments, index, hold = live_of(job)
                if release is not None and hold is not None and hold.start <= t < hold.end:
                    why = self._hold_ended_by(job, state, hold)
                    if why and release(job, t, why):
                        segments, index, hold = live_of(job)
                current = segments[index]
                if current.status == "InProgress" and current.secondary in LIVE_SECONDARY:
                    start = next(g.start for g in segments if g.secondary != "Starting")
                    for spec in job.hosts:
                        wanted.add((job.region, job.name, spec.name))
                        if (job.region, job.name, spec.name) not in self.live:
                            self._start(job, spec, start, t)
                self._write_logs(job, state, segments, index, t, hold)
                if segments[index].terminal:
                    state.done = True
            considered = {(job.region, job.name) for job in jobs}
            for key in [key for key in self.live if key not in wanted]:
                if not partial or key[:2] in considered:
                    self._end(self.live.pop(key))
            self._write_listing()

    def _reconcile_lived(self, job: Job, state: JobLogState, t: float, live_of, update,
                         wanted: set) -> None:  # fmt: skip
        """A lived job: its hosts run its command from Training on; the first non-zero exit
        fails the job, every host's exit 0 completes it; a stop (or MaxRuntimeInSeconds)
        sends SIGTERM to each PID 1, SIGKILL after the grace period, and the job is Stopped
        once they are gone. Their output is the log stream."""
        segments, index, _ = live_of(job)
        current = segments[index]
        keys = [(job.region, job.name, spec.name) for spec in job.hosts]
        if current.status == "InProgress" and current.secondary == "Training":
            start = next(g.start for g in segments if g.secondary == "Training")
            for spec, key in zip(job.hosts, keys):
                if key not in self.live and spec.name not in state.exited:
                    self._start(job, spec, start, t)
                    state.streams.setdefault(spec.name, self.live[key].log_stream)
        hosts = [self.live[key] for key in keys if key in self.live]
        for host in hosts:
            self._observe(host, t)
            if host.exit_code is not None:
                state.exited.add(host.spec.name)
        if current.status == "InProgress" and current.secondary == "Training":
            failed = next((h for h in hosts if h.exit_code not in (None, 0)), None)
            if failed is not None:
                failure = failed.sandbox / "opt" / "ml" / "output" / "failure"
                try:
                    text = failure.read_text(errors="replace")
                except OSError:
                    text = ""
                reason = algorithm_error(failed.exit_code, text)
                update(job, lambda j: j.exited(t, failed.exit_code, reason))
            elif len(state.exited) == len(job.hosts):
                update(job, lambda j: j.exited(t, 0))
        elif current.status == "Stopping":
            running = [h for h in hosts if h.exit_code is None]
            for host in running:
                self._stop_process(host)
            if not running:
                update(job, lambda j: j.gone(t))
        segments, index, _ = live_of(job)
        current = segments[index]
        if current.status in ("InProgress", "Stopping") and current.secondary != "Starting":
            wanted.update(key for key in keys if key in self.live)
        if current.terminal:
            state.done = True

    def _observe(self, host: LiveHost, t: float) -> None:
        """New output of the host's process into its stream; its exit code once it ended
        (a signal N as 128 + N, as Docker reports it)."""
        process = host.process
        ended = process is not None and host.exit_code is None and process.poll() is not None
        try:
            with open(host.meta / "train.log", "rb") as output:
                output.seek(host.log_offset)
                data = output.read()
        except OSError:
            data = b""
        host.log_offset += len(data)
        data = host.log_partial + data
        lines = data.split(b"\n")
        host.log_partial = b"" if ended else lines.pop()
        events = [(t, line.decode("utf-8", "replace").rstrip("\r")) for line in lines]
        self.logs.put(host.region, host.log_stream, [e for e in events if e[1]])
        if ended:
            code = process.returncode
            host.exit_code = 128 - code if code < 0 else code

    def _stop_process(self, host: LiveHost) -> None:
        """SIGTERM to PID 1 now, SIGKILL once the grace period is over (docker stop)."""
        pid = host.init if host.init is not None else (host.train.pid if host.train else None)
        if pid is None:
            return
        if host.term_at is None:
            host.term_at = time.monotonic()
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        elif not host.killed and time.monotonic() - host.term_at >= self.stop_grace:
            host.killed = True
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def end_all(self) -> None:
        with self._lock:
            for key in list(self.live):
                self._end(self.live.pop(key))
            self._job_logs.clear()
            self._write_listing()

    def _write_listing(self) -> None:
        """What the reaper ends if this process dies without stop()."""
        listing = [
            {
                "sshd": host.sshd.pid if host.sshd else None,
                "namespace": host.namespace.pid if host.namespace else None,
                "token": host.token,
            }
            for host in self.live.values()
        ]
        text = json.dumps(listing)
        if text == self._listed or not self.internal.exists():
            return
        self._listed = text
        self.internal.mkdir(parents=True, exist_ok=True)
        target = self.internal / "live.json"
        partial = target.with_suffix(".json.partial")
        partial.write_text(text)
        os.replace(partial, target)

    def cleanup(self) -> None:
        for directory in sorted(self._made_dirs, key=lambda p: len(p.parts), reverse=True):
            shutil.rmtree(directory, ignore_errors=True)
        self._made_dirs.clear()

    # -- one host ---------------------------------------------------------------------------

    def _start(self, job: Job, spec: HostSpec, container_start: float, t: float) -> None:
        job_dir = self.job_dir(job.region, job.name)
        sandbox = job_dir / spec.name
        meta = self.internal / "hosts" / job.region / job.name / spec.name
        for directory in (job_dir, meta):
            if not directory.exists():
                directory.mkdir(parents=True, exist_ok=True)
                self._made_dirs.add(directory)
        env, cwd, inside = self._build_sandbox(job, spec, sandbox)
        token = uuid.uuid4().hex
        env[procs.TOKEN_VARIABLE] = token
        inside[procs.TOKEN_VARIABLE] = token
        stream = f"{job.name}/{spec.name}-{int(container_start)}"
        host = LiveHost(
            region=job.region, job=job.name, spec=spec, sandbox=sandbox, meta=meta,
            script=meta / "enter.sh", token=token, env=env, cwd=cwd, started=t,
            log_stream=stream,
        )  # fmt: skip
        self.live[(job.region, job.name, spec.name)] = host
        self._start_container(host, inside)
        self._write_scripts(spec, meta, inside if host.init else env, cwd, host)
        if self.ssh.prepare():
            self._start_sshd(host)
        else:
            host.ssh_error = self.ssh.missing_hint
        if host.port:
            host_key = ":".join(self.ssh.host_key.with_suffix(".pub").read_text().split()[:2])
            self.logs.put(
                job.region,
                stream,
                [trainlog.ssh_line(t, spec.name, host.addr, host.port, host_key)],
            )
        else:  # what sm-debug-entrypoint --ssh prints when sshd cannot start
            reason = "sshd_not_installed" if self.ssh.missing_hint else "sshd_exited"
            self.logs.put(
                job.region, stream, [(t, f"SM_DEBUG_SSH_FAILED host={spec.name} reason={reason}")]
            )

    def _start_container(self, host: LiveHost, inside: dict) -> None:
        """The host's namespaces with its training process as init; without them, the
        training process alone, as a plain process of this machine."""
        host.not_isolated = self.not_isolated
        bashrc = host.meta / "bashrc"
        if host.not_isolated is None:
            bashrc.write_text(
                f"# Shell start-up of stand-in host {host.spec.name}.\n"
                "[ -r /etc/bash.bashrc ] && . /etc/bash.bashrc\n"
                f"PS1='\\u@{host.spec.name}:\\w\\$ '\n"
            )
            try:
                host.namespace = container.start(
                    host.spec.name, host.sandbox, host.meta, bashrc, inside
                )
                host.init = container.init_pid(host.namespace.pid)
                if host.init is None:
                    raise RuntimeError("the namespace's init ended")
                return
            except (OSError, RuntimeError) as exc:
                if host.namespace is not None:
                    host.namespace.kill()
                    host.namespace.wait()
                    host.namespace = None
                host.not_isolated = str(exc)
                log.warning("stand-in host %s/%s: %s", host.job, host.spec.name, exc)
        with open(host.meta / "train.log", "ab") as output:
            host.train = subprocess.Popen(
                ["/bin/bash", str(host.sandbox / ENTRYPOINT_BIN / "init")],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env=host.env, cwd=host.cwd, start_new_session=True,
                preexec_fn=container.default_signals,
            )  # fmt: skip

    def _build_sandbox(self, job: Job, spec: HostSpec, sandbox: Path) -> tuple[dict, str, dict]:
        """Writes the host's files; returns its environment and working directory in this
        machine's paths (for a host without namespaces, and for callers outside), and its
        environment as the container sees it (/opt/ml ...)."""
        request = job.request
        optml = sandbox / "opt" / "ml"
        config_dir = optml / "input" / "config"
        for sub in (config_dir, optml / "model", optml / "output" / "data", optml / "code",
                    optml / "checkpoints", sandbox / "root"):  # fmt: skip
            sub.mkdir(parents=True, exist_ok=True)
        hosts = [h.name for h in job.hosts]
        groups: dict[str, dict] = {}
        for h in job.hosts:
            group = groups.setdefault(
                h.group,
                {"instance_group_name": h.group, "instance_type": h.instance_type, "hosts": []},
            )
            group["hosts"].append(h.name)
        resource = {
            "current_host": spec.name,
            "current_instance_type": spec.instance_type,
            "current_group_name": spec.group,
            "hosts": hosts,
            "instance_groups": list(groups.values()),
            "network_interface_name": "eth0",
        }
        hyperparameters = {k: str(v) for k, v in (request.get("HyperParameters") or {}).items()}
        channels = {}
        for channel in request.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            channels[name] = {
                "TrainingInputMode": channel.get("InputMode")
                or (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File"),
                "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            (optml / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
        (config_dir / "resourceconfig.json").write_text(json.dumps(resource, indent=2))
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(channels, indent=2))
        if job.lived:
            # The job's own inputs: its channels from the stand-in's S3 (File mode), its
            # submit directory unpacked (on AWS the toolkit unpacks it; ours cannot reach S3).
            for channel in request.get("InputDataConfig") or []:
                uri = s3files.channel_uri(channel)
                if uri:
                    target = optml / "input" / "data" / channel["ChannelName"]
                    s3files.materialise(self.logs.account_id, uri, target)
            s3files.unpack_submit_directory(
                self.logs.account_id, request.get("HyperParameters") or {}, optml / "code"
            )
        else:
            (optml / "code" / "train.py").write_text(ddp.TRAIN_PY)
        (sandbox / RELEASE_FILE).parent.mkdir(parents=True, exist_ok=True)
        bin_dir = sandbox / ENTRYPOINT_BIN
        bin_dir.mkdir(parents=True, exist_ok=True)
        _install_entrypoint(bin_dir)
        # The image's programs (python, a DLC's start script and toolkit, the BYOC's entry
        # point) and the init that runs what SageMaker runs: the job's effective command.
        (bin_dir / "python").unlink(missing_ok=True)
        (bin_dir / "python").symlink_to(sys.executable)
        script_args = trainlog.entry_point(hyperparameters)[2:]
        program = _decoded(hyperparameters.get("sagemaker_program")) or "train.py"
        if job.lived:
            pass
        elif program != "train.py" and re.fullmatch(r"[\w.-]+\.py", program):
            (optml / "code" / program).write_text(ddp.TRAIN_PY)
        elif program != "train.py":
            program = "train.py"
        programs = {
            "start_with_right_hostname.sh": container.START_WITH_RIGHT_HOSTNAME,
            "train": container.toolkit_train(program, script_args),
            "byoc_train.py": ddp.TRAIN_PY,
            "init": container.init_script(job.command or ["python", "train.py", *script_args]),
        }
        if job.lived:
            programs["train"] = _toolkit()
            programs["init"] = container.exec_script(job.command or ["train"])
        for file_name, text in programs.items():
            (bin_dir / file_name).write_text(text)
            (bin_dir / file_name).chmod(0o755)
        smi = ddp.nvidia_smi(spec.instance_type, spec.name)
        if smi:
            (bin_dir / "nvidia-smi").write_text(smi)
            (bin_dir / "nvidia-smi").chmod(0o755)
        user = self.ssh.user
        # The job's Environment reaches the container, as on SageMaker; the variables
        # SageMaker itself sets win.
        base = {
            str(k): str(v)
            for k, v in (request.get("Environment") or {}).items()
            if _ENV_NAME.fullmatch(str(k))
        }
        base |= {
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            "USER": user,
            "LOGNAME": user,
            "HOSTNAME": spec.name,
            "TRAINING_JOB_NAME": job.name,
            "TRAINING_JOB_ARN": job.arn,
            "SM_TRAINING_JOB_NAME": job.name,
            "SM_CURRENT_HOST": spec.name,
            "SM_HOSTS": json.dumps(hosts),
            "SM_NETWORK_INTERFACE_NAME": "eth0",
            "SM_CURRENT_INSTANCE_TYPE": spec.instance_type,
            "SM_CURRENT_INSTANCE_GROUP": spec.group,
            "SM_CURRENT_INSTANCE_GROUP_HOSTS": json.dumps(groups[spec.group]["hosts"]),
            "SM_INSTANCE_GROUPS": json.dumps(list(groups)),
            "SM_IS_HETERO": "false" if list(groups) == [HOMOGENEOUS_GROUP] else "true",
            "SM_USER_ENTRY_POINT": "train.py",
            "SM_MODULE_NAME": "train",
            "SM_FRAMEWORK_MODULE": "sagemaker_pytorch_container.training:main",
            "SM_FRAMEWORK_PARAMS": "{}",
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(hyperparameters),
            "SM_USER_ARGS": json.dumps(trainlog.entry_point(hyperparameters)[2:]),
            "SM_RESOURCE_CONFIG": json.dumps(resource),
            "SM_INPUT_DATA_CONFIG": json.dumps(channels),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": str(ddp.gpus(spec.instance_type)[0]),
            "SM_NUM_NEURONS": "0",
            "SM_LOG_LEVEL": "20",
        }
        hang = {t.get("Key"): t.get("Value") for t in job.tags or []}.get(
            "standin:" + ddp.HANG_RANK_TAG
        )
        stall = ddp.parse_hang_rank(hang)
        if stall:
            base["SM_STANDIN_HANG_RANK"] = f"{stall[0]}@{stall[1]}"
        for key, value in hyperparameters.items():
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                base["SM_HP_" + key.upper()] = value
        machine_path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")

        def paths(ml: str) -> dict:
            # The toolkit's variables that name paths under /opt/ml (or the sandbox's).
            env = {
                "SM_MODEL_DIR": f"{ml}/model",
                "SM_OUTPUT_DIR": f"{ml}/output",
                "SM_OUTPUT_DATA_DIR": f"{ml}/output/data",
                "SM_OUTPUT_INTERMEDIATE_DIR": f"{ml}/output/intermediate",
                "SM_INPUT_DIR": f"{ml}/input",
                "SM_INPUT_CONFIG_DIR": f"{ml}/input/config",
                "SM_MODULE_DIR": f"{ml}/code",
                "SM_TRAINING_ENV": container.training_env(
                    resource,
                    channels,
                    hyperparameters,
                    job.name,
                    ml,
                    os.cpu_count() or 1,
                    "train.py",
                ),  # fmt: skip
                # Where sm-debug-entrypoint finds /opt/ml.
                "SM_DEBUG_ML_ROOT": ml,
            }
            for name in channels:
                env["SM_CHANNEL_" + re.sub(r"\W", "_", name).upper()] = f"{ml}/input/data/{name}"
            return env

        # In this machine's paths: a host without namespaces, and callers outside.
        outside = (
            base
            | paths(str(optml))
            | {
                "HOME": str(sandbox / "root"),
                "PATH": str(bin_dir) + os.pathsep + machine_path,
                "SM_STANDIN_SANDBOX": str(sandbox),
                "SM_DEBUG_RELEASE_FILE": str(sandbox / RELEASE_FILE),
            }
        )
        # As the container sees it, in its own mount namespace.
        inside = (
            base
            | paths(container.INSIDE_ML)
            | {
                "HOME": "/root",
                # The machine's /root is shared: history goes to the container's own /tmp.
                "HISTFILE": "/tmp/.bash_history",  # noqa: S108
                "PATH": f"{container.INSIDE_HELPERS}/bin" + os.pathsep + machine_path,
                "SM_DEBUG_RELEASE_FILE": container.INSIDE_RELEASE_FILE,
            }
        )
        return _small(outside), str(optml), _small(inside)

    def _write_scripts(
        self, spec: HostSpec, meta: Path, env: dict, cwd: str, host: LiveHost
    ) -> Path:
        """enter.sh: every way into the host (sshd's ForceCommand, the SSM gateway's shell).
        With namespaces it enters the init's; without, it starts a plain shell of the sandbox
        whose banner says what is not isolated."""
        rcfile = meta / "bashrc"
        enter = ""
        if host.init is not None:
            q = shlex.quote
            token = f"{procs.TOKEN_VARIABLE}={host.token}"
            # After env -i: nsenter stays for the session, with the environment out of argv.
            enter = " ".join(q(a) for a in container.enter_argv(host.init)) + " "
            # An interactive shell leads its own session on the terminal, as sshd's would:
            # a hangup then reaches it, and it passes it on to its jobs.
            lead = q(shutil.which("setsid") or "setsid")
            interactive = f'$([ -t 0 ] && echo "{lead} --ctty ")'
            rc = f"{container.INSIDE_HELPERS}/bashrc"
            # The init's pid could be reused once it is gone: enter only the host's own.
            check = (
                f"tr '\\0' '\\n' < /proc/{host.init}/environ 2>/dev/null "
                f"| grep -qxF {q(token)} || {{ echo {q(f'{spec.name} has ended')} >&2; exit 1; }}\n"
            )
        else:
            rc = str(rcfile)
            check = interactive = ""
            banner = (
                f"[stand-in] {spec.name} is not isolated ({host.not_isolated}): hostname, "
                f"processes and /opt/ml are this machine's; its /opt/ml is {cwd}"
            )
            rcfile.write_text(
                f"# Shell start-up of stand-in host {spec.name}.\n"
                "[ -r /etc/bash.bashrc ] && . /etc/bash.bashrc\n"
                f"echo {shlex.quote(banner)}\n"
                "# Show paths as the container sees them: the sandbox is its /.\n"
                "_sm_pwd() {\n"
                '  case "$PWD" in\n'
                '    "$SM_STANDIN_SANDBOX"|"$SM_STANDIN_SANDBOX"/*)\n'
                '      local p="${PWD#"$SM_STANDIN_SANDBOX"}"; printf %s "${p:-/}" ;;\n'
                '    *) printf %s "$PWD" ;;\n'
                "  esac\n"
                "}\n"
                f"PS1='\\u@{spec.name}:$(_sm_pwd)\\$ '\n"
            )
        assignments = " ".join(
            shlex.quote(f"{k}={v}") for k, v in sorted(env.items()) if k != "TERM"
        )
        script = meta / "enter.sh"
        script.write_text(
            "#!/bin/bash\n"
            f"# Enters stand-in host {spec.name}. Argument --ssh: started by sshd's ForceCommand,\n"
            "# which runs SSH_ORIGINAL_COMMAND instead of a shell when the client sent one.\n"
            f"cd {shlex.quote(cwd)} || exit 1\n"
            f"{check}"
            'extra=("TERM=${TERM:-xterm-256color}")\n'
            'if [ "${1-}" = "--ssh" ]; then\n'
            "  for name in SSH_CONNECTION SSH_CLIENT SSH_TTY; do\n"
            '    [ -n "${!name-}" ] && extra+=("$name=${!name}")\n'
            "  done\n"
            '  if [ -n "${SSH_ORIGINAL_COMMAND-}" ]; then\n'
            # --norc: bash reads ~/.bashrc when its stdin is sshd's socket, and inside the
            # host ~ is this machine's (pyenv's rehash there can wait 60 s on a stale lock).
            f'    exec env -i {assignments} "${{extra[@]}}" {enter}'
            '/bin/bash --norc -c "$SSH_ORIGINAL_COMMAND"\n'
            "  fi\n"
            "fi\n"
            f'exec env -i {assignments} "${{extra[@]}}" {enter}{interactive}/bin/bash --noprofile '
            f"--rcfile {shlex.quote(rc)} -i\n"
        )
        script.chmod(0o755)
        return script

    def _sshd_config(self, host: LiveHost, port: int) -> Path:
        ssh = self.ssh
        config = host.meta / "sshd_config"
        force = f"/bin/bash {shlex.quote(str(host.script))} --ssh"
        config.write_text(
            "# sshd of one stand-in host; touches no system configuration.\n"
            f"Port {port}\n"
            f"ListenAddress {self.ADDRESS}\n"
            f"HostKey {ssh.host_key}\n"
            "PidFile none\n"
            f"AuthorizedKeysFile {ssh.authorized_keys}\n"
            "AuthenticationMethods publickey\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "HostbasedAuthentication no\n"
            f"UsePAM {'yes' if ssh.use_pam() else 'no'}\n"
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            f"AllowUsers {ssh.user}\n"
            f"ForceCommand {force}\n"
            # sshd runs ForceCommand as `$SHELL -c`, and bash reads this machine's ~/.bashrc
            # when sshd started it, unless SHLVL says it is nested: a host must not run the
            # machine user's start-up files (pyenv's rehash there waits 60 s on a stale lock).
            "SetEnv SHLVL=1\n"
            "PermitUserEnvironment no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            # As sm-debug-entrypoint's sshd: only local TCP forwarding (ssh -L) stays.
            "X11Forwarding no\n"
            "AllowAgentForwarding no\n"
            "AllowStreamLocalForwarding no\n"
            "AllowTcpForwarding local\n"
            "GatewayPorts no\n"
            "PermitTunnel no\n"
            "UseDNS no\n"
            "MaxStartups 64\n"
            "LogLevel INFO\n"
        )
        return config

    def _start_sshd(self, host: LiveHost) -> None:
        error = "sshd did not start"
        for _ in range(3):  # the free port may be taken between probe and bind: retry
            port = _free_port(self.ADDRESS)
            config = self._sshd_config(host, port)
            logfile = open(host.meta / "sshd.log", "ab")  # noqa: SIM115 - owned by the child
            try:
                process = subprocess.Popen(
                    [self.ssh.sshd, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                    start_new_session=True, env={"PATH": "/usr/bin:/bin" + os.pathsep + _SBIN},
                    preexec_fn=container.default_signals,
                )  # fmt: skip
            finally:
                logfile.close()
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and process.poll() is None:
                if _listening(self.ADDRESS, port):
                    host.sshd, host.addr, host.port = process, self.ADDRESS, port
                    return
                time.sleep(0.02)
            if process.poll() is None:
                process.kill()
            process.wait()
            error = (host.meta / "sshd.log").read_text(errors="replace")[-2000:]
        host.ssh_error = error
        log.warning("stand-in host %s/%s has no SSH: %s", host.job, host.spec.name, error)

    def _end(self, host: LiveHost) -> None:
        # Ending the namespace's init ends every process in it; the token finds the rest.
        children = [p for p in (host.sshd, host.namespace, host.train) if p is not None]
        procs.end_host([p.pid for p in children], host.token)
        for child in children:
            child.wait()
        host.sshd = host.namespace = host.train = None
        host.port = None
        # The container is gone, and with it its files.
        shutil.rmtree(host.sandbox, ignore_errors=True)
        shutil.rmtree(host.meta, ignore_errors=True)

    # -- logs -------------------------------------------------------------------------------

    def _write_logs(
        self,
        job: Job,
        state: JobLogState,
        segments: list[Segment],
        index: int,
        t: float,
        hold: Optional[Hold] = None,
    ) -> None:
        reached = segments[: index + 1]
        container = next((g for g in reached if g.secondary not in ("Starting", "Stopping")), None)
        if container is None or container.terminal:
            return  # never got containers (stopped while Starting): no streams, as on AWS
        names = [h.name for h in job.hosts]
        hyperparameters = {k: str(v) for k, v in (job.request.get("HyperParameters") or {}).items()}
        hold_due = hold is not None and not state.hold_logged and t >= hold.start
        for spec in job.hosts:
            stream = state.streams.setdefault(
                spec.name, f"{job.name}/{spec.name}-{int(container.start)}"
            )
            events: list[tuple[float, str]] = []
            pending = hold_due
            for position in range(state.logged, len(reached)):
                segment = reached[position]
                end = segments[position + 1].start if position + 1 < len(segments) else None
                if pending and segment.secondary != "Training" and segment.start >= hold.start:
                    events += self._hold_start(job, state, spec, hold)
                    pending = False
                if segment.secondary == "Downloading":
                    events += trainlog.container_start(segment.start, spec.name, names)
                elif segment.secondary == "Training":
                    events += trainlog.training_start(segment.start, job.name, hyperparameters)
                    # Loss lines until the command fails (a held container stays quiet).
                    until = hold.start if hold else (end if end is not None else segment.start)
                    state.progress[spec.name] = trainlog.Progress(
                        f"{job.name}/{spec.name}", segment.start, until - segment.start
                    )
                elif segment.secondary == "Uploading":
                    events += self._progress(state, spec.name, segment.start)
                    events += trainlog.uploading(segment.start)
                elif segment.secondary == "Failed":
                    if hold is not None and hold.why != "lost":
                        events += trainlog.hold_ended(segment.start, hold.why, hold.code)
                    else:  # no hold, or the held container was killed
                        events += self._progress(state, spec.name, segment.start)
                        events += trainlog.failed(
                            segment.start, failure_reason(job), job.lost_reason is None
                        )
                elif segment.secondary == "Stopping":
                    events += self._progress(state, spec.name, segment.start)
                    events += trainlog.stopping(segment.start)
                    if hold is not None:
                        events += trainlog.hold_ended(segment.start, "stopped", hold.code)
            if pending:
                events += self._hold_start(job, state, spec, hold)
            if reached[-1].secondary == "Training":
                events += self._progress(state, spec.name, t)
            self.logs.put(job.region, stream, events)
        state.logged = len(reached)
        if hold_due:
            state.hold_logged = True

    def _hold_start(
        self, job: Job, state: JobLogState, spec: HostSpec, hold: Hold
    ) -> list[tuple[float, str]]:
        """The training command fails: its last loss lines, its traceback and the toolkit's
        report, then sm-debug-entrypoint starts holding the container."""
        reason = job.schedule.failure_reason or DEFAULT_FAILURE_REASON
        live = self.live.get((job.region, job.name, spec.name))
        release_file = (
            container.INSIDE_RELEASE_FILE  # as the container sees it
            if live is not None and live.init is not None
            else self.job_dir(job.region, job.name) / spec.name / RELEASE_FILE
        )
        return [
            *self._progress(state, spec.name, hold.start),
            *trainlog.failed(hold.start, reason),
            *trainlog.hold_start(hold.start, spec.name, hold.seconds, hold.code, str(release_file)),
        ]

    # -- the hold ----------------------------------------------------------------------------

    def _hold_ended_by(self, job: Job, state: JobLogState, hold: Hold) -> Optional[str]:
        """Why a held job's hold ends now, as sm-debug-entrypoint's hold() sees it: its release
        file was touched, or a host's last debug session closed. None: it goes on."""
        hosts = [
            host
            for host in (self.live.get((job.region, job.name, spec.name)) for spec in job.hosts)
            if host is not None
        ]
        if not hosts:
            return None
        if not state.hold_armed:
            # The entrypoint removes a stale release file as the hold starts; a host started
            # after the failure (a backdated job) has a fresh sandbox.
            state.hold_armed = True
            for host in hosts:
                if host.started < hold.start:
                    host.release_file.unlink(missing_ok=True)
        if any(host.release_file.exists() for host in hosts):
            return "released"
        ssh = _ssh_sessions(hosts)
        for host in hosts:
            count = ssh.get(host.token, 0) + self.ssm_sessions(job.region, job.name, host.spec.name)
            if count:
                state.sessions_seen.add(host.spec.name)
            elif host.spec.name in state.sessions_seen:
                return "last session closed"
        return None

    @staticmethod
    def _progress(state: JobLogState, host: str, until: float) -> list[tuple[float, str]]:
        progress = state.progress.get(host)
        return progress.until(until, end=until) if progress else []

    # -- lookups ----------------------------------------------------------------------------

    def get(self, region: str, job: str, host: str) -> Optional[LiveHost]:
        with self._lock:
            return self.live.get((region, job, host))

    def stream(self, region: str, job: str, host: str) -> Optional[str]:
        with self._lock:
            state = self._job_logs.get((region, job))
            return state.streams.get(host) if state else None
