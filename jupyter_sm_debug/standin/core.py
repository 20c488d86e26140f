"""StandIn: the local SageMaker stand-in, one HTTP port for every service it plays.

A tornado server on its own IOLoop in a background thread, so tests can run it in-process
next to a Jupyter server. Clients reach it only through real boto3 over HTTP.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from . import ecr, iam, sagemaker
from .clients import ClientsMixin
from .clock import Clock
from .errors import HostNotLive, StandInError
from .faults import Faults
from .hosts import SSHD_MISSING_HINT, HostManager
from .logs import LogWriter
from .seed import ACCOUNT_ID, byoc_image, dlc_image, job_request, seed_demo
from .sigv4 import Credentials
from .ssm import looks as ssm_looks

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials"  # in the root: an AWS shared-credentials file, mode 0600
_UNSET: Any = object()


@dataclass
class Backends:
    """The state of each service the stand-in plays (moto's ``*_backends``, one stand-in's)."""

    sagemaker: sagemaker.TrainingJobs
    ecr: ecr.Registry
    logs: LogWriter
    hosts: Optional[HostManager]  # None: the stand-in runs without hosts


class StandIn(ClientsMixin):
    """The facade: lifecycle, ``backends`` (each service's state), ``clock``, ``faults``,
    and the conveniences tests and the demo use (create_job, host_env, kill_host...)."""

    account_id = ACCOUNT_ID

    def __init__(
        self,
        root: Union[str, Path, None] = None,
        clock: str = "real",
        seed: Optional[str] = None,
        hosts: bool = True,
        latency: float = 0.0,
        region: str = "us-east-1",
        channel_latency: float = 0.0,
    ):
        if seed not in (None, "demo"):
            raise ValueError(f'seed must be None or "demo", not {seed!r}')
        self.region = region
        self.seed = seed
        self.hosts_enabled = bool(hosts)
        self.clock = Clock(clock)
        self._own_root = root is None
        self.root = Path(root if root is not None else tempfile.mkdtemp(prefix="sm-standin-"))
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._internal = self.root / "_standin"
        self.faults = Faults(latency, channel_latency)
        self.faults.update(latency=latency, channel_latency=channel_latency)  # validates them
        images = ecr.Registry(ACCOUNT_ID)
        logs = LogWriter(ACCOUNT_ID)
        self.backends = Backends(
            sagemaker=sagemaker.TrainingJobs(self.now, ACCOUNT_ID, images),
            ecr=images,
            logs=logs,
            hosts=HostManager(self.root, self._internal, logs, region) if hosts else None,
        )
        if self._hosts is not None:
            self._hosts.ssm_sessions = functools.partial(ssm_looks.ssm_sessions, self)
        # Marks the stand-in's own set-up calls (client()): faults do not touch them.
        self.internal_token = uuid.uuid4().hex
        # Only requests signed with these reach the stand-in (see sigv4.py): any local user
        # could otherwise drive it, and its SSM sessions are shells as this user.
        self.credentials = Credentials.generate()
        self.credentials_file = self.root / CREDENTIALS_FILE
        self._reconcile_lock = threading.Lock()
        self._lifecycle = threading.Lock()
        self._clients: dict[str, Any] = {}
        self.url: Optional[str] = None
        self.tls_url: Optional[str] = None  # the same server over TLS
        self.certificates: Any = None
        self.seeded_jobs: dict[str, str] = {}
        self._thread: Optional[threading.Thread] = None
        self._loop: Any = None
        self._server: Any = None
        self._executor: Any = None
        self._ticker: Optional[threading.Thread] = None
        self._reaper: Optional[subprocess.Popen] = None
        self._stopping = threading.Event()
        self._stopped = False
        atexit.register(self.stop)

    # Shortcuts inside the facade (other modules use ``backends``).
    @property
    def _jobs(self) -> sagemaker.TrainingJobs:
        return self.backends.sagemaker

    @property
    def _hosts(self) -> Optional[HostManager]:
        return self.backends.hosts

    @property
    def _logs(self) -> LogWriter:
        return self.backends.logs

    @property
    def _faults(self) -> Faults:
        """For ssm/gateway.py until its owner reads ``faults``."""
        return self.faults

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, port: int = 0, address: str = "127.0.0.1", allow_remote: bool = False) -> str:
        """Serve on ``address:port`` (0: a free port) from a background thread; returns the URL.

        Loopback only, unless ``allow_remote``: its hosts are shells as this user, guarded
        only by the credentials of ``client_env()`` over plain HTTP."""
        if not allow_remote and not is_loopback(address):
            raise ValueError(
                f"{address} is not a loopback address: the stand-in serves shells as this "
                "user over plain HTTP; pass allow_remote=True to listen there anyway"
            )
        with self._lifecycle:
            if self._stopped:
                raise RuntimeError("this StandIn was stopped; create a new one")
            if self._thread is not None:
                return self.url
            self.credentials.write(self.credentials_file)
            from concurrent.futures import ThreadPoolExecutor

            import tornado.netutil

            from .server import make_application, serve
            from .tls import make_certificates

            if self._hosts is not None:
                self._hosts.ssh.prepare()
                self._start_reaper()
            self._executor = ThreadPoolExecutor(32, thread_name_prefix="standin-api")
            application = make_application(self, self._executor)
            sockets = tornado.netutil.bind_sockets(port, address)
            bound = sockets[0].getsockname()[1]
            # The same routes over TLS (the SSM data channel is wss:// like AWS's), with a
            # CA made now that clients trust through client_env().
            self.certificates = make_certificates(
                self._internal / "tls", [f"kms.{self.region}.amazonaws.com"]
            )
            tls_sockets = tornado.netutil.bind_sockets(0, address)
            tls = (self.certificates.server_context(), tls_sockets)
            ready = threading.Event()
            box: dict = {}
            self._thread = threading.Thread(
                target=serve, args=(application, sockets, ready, box, tls),
                name="standin-server", daemon=True,
            )  # fmt: skip
            self._thread.start()
            ready.wait()
            if "error" in box:
                raise RuntimeError("the stand-in server did not start") from box["error"]
            self._loop, self._server = box["loop"], box["server"]
            host = f"[{address}]" if ":" in address else address
            self.url = f"http://{host}:{bound}"
            self.tls_url = f"https://{host}:{tls_sockets[0].getsockname()[1]}"
            if self._hosts is not None:
                self._ticker = threading.Thread(
                    target=self._tick, name="standin-clock", daemon=True
                )
                self._ticker.start()
        iam.ensure_execution_role(ACCOUNT_ID)  # the RoleArn of every job it creates
        # Here, not in client_env(): that also runs inside the stand-in's own request
        # handling, where a call back into the stand-in would wait on itself.
        self._write_sdk_config()
        if self.seed == "demo":
            self.seeded_jobs = seed_demo(self)
        return self.url

    def stop(self) -> None:
        """End every host (sshd, shells), stop the server, remove what it created. Idempotent."""
        with self._lifecycle:
            if self._stopped:
                return
            self._stopped = True
            self._stopping.set()
            atexit.unregister(self.stop)
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        with self._reconcile_lock:
            if self._hosts is not None:
                self._hosts.end_all()
        if self._reaper is not None:
            self._reaper.kill()  # the hosts are gone: nothing left for it to do
            self._reaper.wait()
        if self._loop is not None:
            loop, server = self._loop, self._server

            def shutdown():
                server.stop()
                loop.stop()

            loop.add_callback(shutdown)
            self._thread.join(timeout=10)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._logs.delete_all()
        if self._hosts is not None:
            self._hosts.cleanup()
        shutil.rmtree(self._internal, ignore_errors=True)
        self.credentials_file.unlink(missing_ok=True)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _start_reaper(self) -> None:
        """A watcher that ends the hosts if this process dies without stop()."""
        package_parent = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(package_parent), env.get("PYTHONPATH")) if p
        )
        self._internal.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "jupyter_sm_debug.standin.reaper", str(os.getpid()),
                str(self._internal)]  # fmt: skip
        if self._own_root:
            argv.append(str(self.root))
        self._reaper = subprocess.Popen(
            argv, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def serve_forever(self) -> None:
        """Block until SIGINT or SIGTERM, then stop() (for a console command)."""
        if self._thread is None:
            self.start()
        done = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():  # else: until stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: done.set())
        try:
            while not done.wait(0.5) and not self._stopping.is_set():
                pass
            # Still under our handlers: a second Ctrl-C must not cut the teardown short
            # and leave sshds behind.
            self.stop()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def reset(self) -> None:
        """Back to a fresh stand-in: no jobs (re-seeded if seeded), no faults, no hosts."""
        with self._reconcile_lock:
            if self._hosts is not None:
                self._hosts.end_all()
                self._hosts.cleanup()
            self._jobs.clear()
            self._logs.delete_all()
            self.faults.reset()
        if self.seed == "demo" and self.url:
            self.seeded_jobs = seed_demo(self)

    def __enter__(self) -> StandIn:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    @property
    def port(self) -> Optional[int]:
        return int(self.url.rsplit(":", 1)[1]) if self.url else None

    # -- clock ------------------------------------------------------------------------------

    @property
    def clock_mode(self) -> str:
        return self.clock.mode

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> float:
        """Move the clock forward; hosts start and end before this returns. Returns now()."""
        self.clock.advance(seconds)
        self.reconcile()
        return self.now()

    def _tick(self) -> None:
        """A real clock: hosts and logs follow it. Either clock: the processes of lived jobs
        are watched (their output, their exit, a stop's grace period)."""
        while not self._stopping.wait(0.5):
            try:
                if self.clock.mode == "real":
                    self.reconcile()
                    continue
                t = self.now()
                with self._jobs.lock:
                    lived = [
                        (job.region, job.name)
                        for job in self._jobs.all()
                        if job.lived and not job.at(t).terminal
                    ]
                if lived:
                    self.reconcile(only=lived)
            except Exception:  # noqa: BLE001 - keep the clock running; the error is logged
                log.exception("stand-in reconcile failed")

    def reconcile(self, only: Optional[list] = None) -> None:
        """Make hosts and logs match the jobs at now() (also runs by itself on a real clock).

        ``only``: just these (region, name) jobs changed; the others are left alone, so that
        creating thousands of jobs stays linear."""
        if self._hosts is None or self._stopping.is_set():
            return
        with self._reconcile_lock:
            if self._stopping.is_set():
                return
            t = self.now()

            def live_of(job):
                with self._jobs.lock:
                    return job.segments(), job.index_at(t), job.hold()

            def release(job, at, why):
                with self._jobs.lock:
                    return job.release(at, why)

            def update(job, change):
                with self._jobs.lock:
                    change(job)

            if only is None:
                self._hosts.reconcile(self._jobs.all(), t, live_of, release=release, update=update)
            else:
                jobs = [job for job in (self._jobs.get(n, r) for r, n in only) if job]
                self._hosts.reconcile(
                    jobs, t, live_of, partial=True, release=release, update=update
                )

    @property
    def stop_grace(self) -> float:
        """Seconds a stopped lived job's processes get between SIGTERM and SIGKILL."""
        return self._hosts.stop_grace if self._hosts is not None else 0.0

    @stop_grace.setter
    def stop_grace(self, seconds: float) -> None:
        if self._hosts is not None:
            self._hosts.stop_grace = float(seconds)

    # -- faults ------------------------------------------------------------------------------

    def set_faults(
        self,
        latency: Any = _UNSET,
        throttle: Any = _UNSET,
        throttle_action: Any = _UNSET,
        down: Any = _UNSET,
        channel_latency: Any = _UNSET,
    ) -> dict:
        """Change only the faults given: latency (s per AWS call), channel_latency (s of round
        trip on the SSM data channel: every websocket message waits half of it, in order),
        throttle (the next N calls answer ThrottlingException), throttle_action (only calls
        of that action count), down (every AWS call answers 503). Returns all faults."""
        changes = {
            key: value
            for key, value in (
                ("latency", latency),
                ("channel_latency", channel_latency),
                ("throttle", throttle),
                ("throttle_action", throttle_action),
                ("down", down),
            )
            if value is not _UNSET
        }
        return self.faults.update(**changes)

    def clear_faults(self) -> dict:
        self.faults.reset()
        self.faults.update(latency=0.0, channel_latency=0.0)
        return self.faults.snapshot()

    def create_job(self, name: str, *args: Any, **kwargs: Any) -> str:
        """CreateTrainingJob through real boto3 to this stand-in; returns the job's ARN.
        The arguments are ``seed.job_request``'s."""
        request = job_request(self.region, name, *args, **kwargs)
        return self.client("sagemaker").create_training_job(**request)["TrainingJobArn"]

    def create_jobs(self, specs: list[dict]) -> list[str]:
        """Many jobs at once, cheaply (benchmarks seed 10,000): each spec is ``create_job``'s
        keyword arguments plus ``name``. The same CreateTrainingJob request, validated
        against botocore's model and handled as the API does, only without HTTP, signing
        and botocore's serialization; ListTrainingJobs and the rest see no difference.
        Running jobs get their hosts as through the API (use hosts=False for none)."""
        from . import awsmodel

        arns = []
        for spec in specs:
            spec = dict(spec)
            request = job_request(self.region, spec.pop("name"), **spec)
            awsmodel.validate("sagemaker", "CreateTrainingJob", request)
            with self._jobs.lock:
                arns.append(self._jobs.create(request, self.region)["TrainingJobArn"])
        if self._hosts is not None:
            self.reconcile(only=[(self.region, spec["name"]) for spec in specs])
        return arns

    # -- called by the front for SageMaker actions ------------------------------------------

    def sagemaker_call(self, action: str, params: dict, region: str) -> Optional[dict]:
        if self.clock.mode == "real":
            self.reconcile()  # hosts agree with what this call is about to report
        result = sagemaker.api.handle(self._jobs, action, params, region)
        if action in ("CreateTrainingJob", "StopTrainingJob"):
            self.reconcile(only=[(region, params["TrainingJobName"])])
        return result

    # -- hosts -------------------------------------------------------------------------------

    @property
    def ssh_user(self) -> str:
        import os
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name

    @property
    def client_key_path(self) -> Optional[str]:
        """Private key accepted by every host's sshd (None without hosts or ssh-keygen)."""
        if self._hosts is None:
            return None
        self._hosts.ssh.prepare()
        key = self._hosts.ssh.client_key
        return str(key) if key.exists() else None

    @property
    def sshd_missing_hint(self) -> Optional[str]:
        if self._hosts is None:
            return None
        return self._hosts.ssh.missing_hint

    def _live(self, job: str, host: str, region: Optional[str]):
        if self._hosts is None:
            raise HostNotLive(job, host, "has no environment (the stand-in runs with hosts=False)")
        if self.clock.mode == "real":
            self.reconcile()
        found = self._hosts.get(region or self.region, job, host)
        if found is None:
            raise HostNotLive(job, host)
        return found

    def host_address(self, job: str, host: str, region: Optional[str] = None):
        """(addr, port) of the host's sshd while it is live, else None."""
        try:
            live = self._live(job, host, region)
        except HostNotLive:
            return None
        return (live.addr, live.port) if live.port else None

    def host_shell_argv(self, job: str, host: str, region: Optional[str] = None) -> list[str]:
        """argv of an interactive shell inside the live host (raises HostNotLive otherwise)."""
        return ["/bin/bash", str(self._live(job, host, region).script)]

    def host_env(self, job: str, host: str, region: Optional[str] = None) -> tuple[dict, str]:
        """(environment, cwd) of the live host in this machine's paths, to start its shell
        from (raises HostNotLive otherwise). A host in namespaces shows its shells /opt/ml."""
        live = self._live(job, host, region)
        return dict(live.env), live.cwd

    def kill_host(self, job: str, host: str, region: Optional[str] = None) -> None:
        """A host dies (OOM-killed, hardware): as on SageMaker, the whole job fails now and
        every host of it goes away. Raises HostNotLive if the host is not running."""
        self._live(job, host, region)
        found = self._jobs.get(job, region or self.region)
        with self._jobs.lock:
            found.lose_host(
                self.now(),
                "AlgorithmError: ExecuteUserScriptError:\nExitCode 137\n"
                f'ErrorMessage "{host} was lost: the process was killed (signal 9)"\n'
                'Command "/opt/conda/bin/python3.10 train.py", exit code: 137',
            )
        self.reconcile()

    def log_stream(self, job: str, host: str, region: Optional[str] = None) -> Optional[str]:
        """Name of the host's stream in /aws/sagemaker/TrainingJobs, once it has one."""
        if self._hosts is None:
            return None
        return self._hosts.stream(region or self.region, job, host)

    def put_log_lines(
        self, job: str, host: str, lines: list[str], suffix: str = "", region: Optional[str] = None
    ) -> str:
        """Append lines (at now()) to the host's stream, or to ``<stream><suffix>`` (e.g.
        "/ssm" for the SSM agent's stream). Returns the stream name."""
        stream = self.log_stream(job, host, region)
        if stream is None:
            raise HostNotLive(job, host, "has no log stream yet")
        t = self.now()
        self._logs.put(region or self.region, stream + suffix, [(t, line) for line in lines])
        return stream + suffix

    def job(self, name: str, region: Optional[str] = None) -> Optional[dict]:
        """DescribeTrainingJob's answer for a job, without an API call (None if unknown)."""
        found = self._jobs.get(name, region or self.region)
        if found is None:
            return None
        with self._jobs.lock:
            return self._jobs.description(found)


def is_loopback(address: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 literals (not "", not 0.0.0.0 or ::)."""
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


__all__ = [
    "ACCOUNT_ID",
    "SSHD_MISSING_HINT",
    "HostNotLive",
    "StandIn",
    "StandInError",
    "byoc_image",
    "dlc_image",
]
