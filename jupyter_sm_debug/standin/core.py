"""StandIn: the local SageMaker stand-in, one HTTP port for every service it plays.

A tornado server on its own IOLoop in a background thread, so tests can run it in-process
next to a Jupyter server. Clients reach it only through real boto3 over HTTP.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional, Union

from . import ecr, iam
from .errors import HostNotLive, StandInError
from .front import Faults
from .hosts import SSHD_MISSING_HINT, HostManager
from .logs import LogWriter
from .sagemaker import Schedule, TrainingJobs
from .sigv4 import Credentials

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"  # moto's default account
SDK_CONFIG = "sagemaker-sdk-config.yaml"  # in the internal directory; see client_env()
CREDENTIALS_FILE = "credentials"  # in the root: an AWS shared-credentials file, mode 0600
_UNSET: Any = object()


class Clock:
    """Stand-in time, epoch seconds. "manual" moves only by advance(); "real" is the wall
    clock (plus any advance(), for a demo that wants to skip ahead)."""

    def __init__(self, mode: str):
        if mode not in ("real", "manual"):
            raise ValueError(f'clock must be "real" or "manual", not {mode!r}')
        self.mode = mode
        self._base = time.time()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return (time.time() if self.mode == "real" else self._base) + self._offset

    def advance(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError("the clock only moves forward: seconds must be >= 0")
        with self._lock:
            self._offset += float(seconds)


class StandIn:
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
        self._clock = Clock(clock)
        self._own_root = root is None
        self.root = Path(root if root is not None else tempfile.mkdtemp(prefix="sm-standin-"))
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._internal = self.root / "_standin"
        self._faults = Faults(latency, channel_latency)
        self._faults.update(latency=latency, channel_latency=channel_latency)  # validates them
        self._ecr = ecr.Registry(ACCOUNT_ID)
        self._jobs = TrainingJobs(self.now, ACCOUNT_ID, self._ecr)
        self._logs = LogWriter(ACCOUNT_ID)
        self._hosts = HostManager(self.root, self._internal, self._logs, region) if hosts else None
        if self._hosts is not None:
            self._hosts.ssm_sessions = self._ssm_sessions
        self._internal_token = uuid.uuid4().hex
        # Only requests signed with these reach the stand-in (see sigv4.py): any local user
        # could otherwise drive it, and its SSM sessions are shells as this user.
        self._credentials = Credentials.generate()
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
            self._credentials.write(self.credentials_file)
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
            from .seed import seed_demo

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
            self._faults.reset()
        if self.seed == "demo" and self.url:
            from .seed import seed_demo

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
        return self._clock.mode

    def now(self) -> float:
        return self._clock.now()

    def advance(self, seconds: float) -> float:
        """Move the clock forward; hosts start and end before this returns. Returns now()."""
        self._clock.advance(seconds)
        self.reconcile()
        return self.now()

    def _tick(self) -> None:
        """A real clock: hosts and logs follow it. Either clock: the processes of lived jobs
        are watched (their output, their exit, a stop's grace period)."""
        while not self._stopping.wait(0.5):
            try:
                if self._clock.mode == "real":
                    self.reconcile()
                    continue
                t = self.now()
                with self._jobs._lock:
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
                with self._jobs._lock:
                    return job.segments(), job.index_at(t), job.hold()

            def release(job, at, why):
                with self._jobs._lock:
                    return job.release(at, why)

            def update(job, change):
                with self._jobs._lock:
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

    def _ssm_sessions(self, region: str, job: str, host: str) -> int:
        """Connected SSM sessions of a host (the SSM stand-in serves the default region)."""
        if region != self.region:
            return 0
        try:
            from . import ssm
        except ImportError:
            return 0
        sessions = ssm.registry(self)
        with sessions.lock:
            return sum(
                1
                for session in sessions.sessions.values()
                if session.job == job and session.host == host and session.status == "Connected"
            )

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
        return self._faults.update(**changes)

    def clear_faults(self) -> dict:
        self._faults.reset()
        self._faults.update(latency=0.0, channel_latency=0.0)
        return self._faults.snapshot()

    @property
    def faults(self) -> dict:
        return self._faults.snapshot()

    # -- clients ------------------------------------------------------------------------------

    def client_env(self) -> dict:
        """Environment for a process that should use this stand-in through boto3 (its
        credentials included: keep it out of argv and logs)."""
        if not self.url:
            raise RuntimeError("start() the stand-in first")
        return {
            "AWS_ENDPOINT_URL": self.url,
            **self._credentials.env(),
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # Trust in the stand-in's CA (its wss:// data channel), as real tools take it.
            "AWS_CA_BUNDLE": str(self.certificates.bundle_file),
            "SSL_CERT_FILE": str(self.certificates.bundle_file),
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(self._internal / SDK_CONFIG),
        }

    def _write_sdk_config(self) -> None:
        """A SageMaker Python SDK config (v2 and v3) naming the account's default bucket, made
        here: both SDKs otherwise find the account for its name through an STS client pinned
        to AWS's own regional endpoint, which no endpoint setting redirects. Telemetry off:
        it would call AWS."""
        path = self._internal / SDK_CONFIG
        if not path.exists():
            bucket = f"sagemaker-{self.region}-{ACCOUNT_ID}"
            with contextlib.suppress(Exception):  # it exists already (moto is per process)
                self.client("s3").create_bucket(Bucket=bucket)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "SchemaVersion: '1.0'\n"
                "SageMaker:\n"
                "  PythonSDK:\n"
                "    Modules:\n"
                "      TelemetryOptOut: true\n"
                "      Session:\n"
                f"        DefaultS3Bucket: {bucket}\n"
            )

    def client(self, service: str):
        """A boto3 client on this stand-in that faults do not touch (for set-up code)."""
        if not self.url:
            raise RuntimeError("start() the stand-in first")
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            credentials = self._credentials
            session = boto3.session.Session(
                aws_access_key_id=credentials.access_key,
                aws_secret_access_key=credentials.secret_key,
                aws_session_token=credentials.token,
                region_name=self.region,
            )
            client = session.client(
                service,
                endpoint_url=self.url,
                config=Config(retries={"max_attempts": 1, "mode": "standard"}),
            )
            token = self._internal_token

            def mark(request, **_):
                request.headers["X-Standin-Internal"] = token

            client.meta.events.register("before-sign", mark)
            self._clients[service] = client
        return self._clients[service]

    def control(self, route: str, body: Optional[dict] = None) -> Any:
        """Call a control route (``state``, ``clock``, ``faults``, ``reset``, ``kill-host``)
        over HTTP, signed; POST when ``body`` is given. Raises urllib's HTTPError on 4xx."""
        import json
        import urllib.request

        from .sigv4 import sign

        if not self.url:
            raise RuntimeError("start() the stand-in first")
        url = f"{self.url}/_standin/{route}"
        data = None if body is None else json.dumps(body).encode()
        method = "GET" if data is None else "POST"
        headers = sign(self._credentials, method, url, data or b"", self.region)
        request = urllib.request.Request(url, data, headers, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our own URL
            return json.loads(answer.read())

    def create_job(self, name: str, *args: Any, **kwargs: Any) -> str:
        """CreateTrainingJob through real boto3 to this stand-in; returns the job's ARN.
        The arguments are ``_job_request``'s."""
        request = self._job_request(name, *args, **kwargs)
        return self.client("sagemaker").create_training_job(**request)["TrainingJobArn"]

    def _job_request(
        self,
        name: str,
        instance_count: int = 1,
        instance_groups: Optional[list] = None,
        remote_debug: Optional[bool] = False,
        network_isolation: bool = False,
        schedule: Union[dict, Schedule, None] = None,
        started_ago: float = 0,
        *,
        instance_type: str = "ml.m5.xlarge",
        hyperparameters: Optional[dict] = None,
        stop_after: Optional[float] = None,
        tags: Optional[list] = None,
        environment: Optional[dict] = None,
        image: Optional[str] = None,
        container_entrypoint: Optional[list] = None,
        container_arguments: Optional[list] = None,
    ) -> dict:
        """The CreateTrainingJob request of a stand-in job.

        ``schedule``: seconds per phase and outcome, e.g. {"training": 600, "outcome":
        "Failed", "failure_reason": "..."} (keys: starting, downloading, training, uploading,
        stopping, outcome, failure_reason). ``started_ago`` backdates the creation, so the job
        is created in the phase it would have reached; ``stop_after`` stops it that many
        seconds after creation. Each of these travels as a ``standin:`` tag.
        ``environment``: the job's Environment. SM_DEBUG_HOLD_ON_FAILURE in it holds a failed
        job's containers that long only if what they run holds: ``container_entrypoint``
        wrapped by ``hold.wrapped_argv`` or starting with sm-debug-entrypoint (as on AWS).
        ``image``: the TrainingImage (default a PyTorch DLC; see ecr.py for the images).
        """
        if isinstance(schedule, dict):
            schedule = Schedule(**schedule)
        schedule = schedule or Schedule()
        tags = [*(tags or []), *schedule.to_tags()]
        if started_ago:
            tags.append({"Key": "standin:started-ago", "Value": f"{started_ago:g}"})
        if stop_after is not None:
            tags.append({"Key": "standin:stop-after", "Value": f"{stop_after:g}"})
        if instance_groups:
            groups = [
                group
                if isinstance(group, dict)
                else {
                    "InstanceGroupName": group[0],
                    "InstanceType": group[1],
                    "InstanceCount": group[2],
                }  # fmt: skip
                for group in instance_groups
            ]
            resources: dict = {"InstanceGroups": groups, "VolumeSizeInGB": 100}
        else:
            resources = {
                "InstanceType": instance_type,
                "InstanceCount": instance_count,
                "VolumeSizeInGB": 100,
            }
        total = schedule.starting + schedule.downloading + schedule.training + schedule.uploading
        bucket = f"s3://sagemaker-{self.region}-{ACCOUNT_ID}"
        request = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {
                "TrainingImage": image or dlc_image(self.region),
                "TrainingInputMode": "File",
                **(
                    {"ContainerEntrypoint": list(container_entrypoint)}
                    if container_entrypoint
                    else {}
                ),
                **(
                    {"ContainerArguments": list(container_arguments)} if container_arguments else {}
                ),
            },  # fmt: skip
            "RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/SageMakerExecutionRole",
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"{bucket}/{name}/input/train",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"{bucket}/output"},
            "ResourceConfig": resources,
            "StoppingCondition": {
                "MaxRuntimeInSeconds": int(min(max(86400, total + 3600), 28 * 86400))
            },
            "HyperParameters": {k: str(v) for k, v in (hyperparameters or {}).items()},
            "EnableNetworkIsolation": bool(network_isolation),
            "Tags": tags,
        }
        if remote_debug is not None:
            request["RemoteDebugConfig"] = {"EnableRemoteDebug": bool(remote_debug)}
        # Stand-in hosts run as if under `sm-debug-entrypoint --ssh`: say so in the job's
        # own configuration, where SSH attach looks before trusting an announcement.
        environment = {"SM_DEBUG_SSH": "1", **(environment or {})}
        request["Environment"] = {k: str(v) for k, v in environment.items()}
        return request

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
            request = self._job_request(spec.pop("name"), **spec)
            awsmodel.validate("sagemaker", "CreateTrainingJob", request)
            with self._jobs._lock:
                arns.append(self._jobs.create(request, self.region)["TrainingJobArn"])
        if self._hosts is not None:
            self.reconcile(only=[(self.region, spec["name"]) for spec in specs])
        return arns

    # -- called by the front for SageMaker actions ------------------------------------------

    def _sagemaker_call(self, action: str, params: dict, region: str) -> Optional[dict]:
        if self._clock.mode == "real":
            self.reconcile()  # hosts agree with what this call is about to report
        result = self._jobs.handle(action, params, region)
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
        if self._clock.mode == "real":
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
        with self._jobs._lock:
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
        with self._jobs._lock:
            return self._jobs.description(found)

    # -- state -------------------------------------------------------------------------------

    def state(self) -> dict:
        t = self.now()
        jobs = []
        for job in sorted(self._jobs.all(), key=lambda j: (j.created, j.seq)):
            with self._jobs._lock:
                segment = job.at(t)
            hosts = []
            for spec in job.hosts:
                live = self._hosts.get(job.region, job.name, spec.name) if self._hosts else None
                hosts.append(
                    {
                        "name": spec.name,
                        "group": spec.group,
                        "instance_type": spec.instance_type,
                        "live": live is not None,
                        "ssh": {"addr": live.addr, "port": live.port}
                        if live is not None and live.port
                        else None,
                        "log_stream": self.log_stream(job.name, spec.name, job.region),
                    }
                )
            jobs.append(
                {
                    "name": job.name,
                    "region": job.region,
                    "arn": job.arn,
                    "status": segment.status,
                    "secondary_status": segment.secondary,
                    "created": job.created,
                    "remote_debug": bool(job.remote_debug),
                    "network_isolation": job.network_isolation,
                    "hosts": hosts,
                }
            )
        return {
            "url": self.url,
            "region": self.region,
            "account_id": ACCOUNT_ID,
            "clock": {
                "mode": self._clock.mode,
                "now": t,
                "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
            },
            "faults": self.faults,
            "hosts_enabled": self.hosts_enabled,
            "ssh_user": self.ssh_user,
            "sshd_missing_hint": self.sshd_missing_hint,
            "jobs": jobs,
        }


def dlc_image(region: str) -> str:
    """The PyTorch Deep Learning Container the stand-in's jobs run by default."""
    return (
        f"{ecr.DLC_REGISTRY}.dkr.ecr.{region}.amazonaws.com/"
        "pytorch-training:2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker"
    )


def byoc_image(region: str) -> str:
    """The stand-in's bring-your-own-container image: only an ENTRYPOINT (see ecr.py)."""
    return f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{ecr.BYOC_REPOSITORY}:latest"


def is_loopback(address: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 literals (not "", not 0.0.0.0 or ::)."""
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


__all__ = ["SSHD_MISSING_HINT", "StandIn", "StandInError", "HostNotLive"]
