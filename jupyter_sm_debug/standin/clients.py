"""The facade's client side: the environment and boto3 clients a caller uses on the
stand-in, its signed control calls, and the snapshot of its state (``/_standin/state``)."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Optional

from .seed import ACCOUNT_ID

SDK_CONFIG = "sagemaker-sdk-config.yaml"  # in the internal directory; see client_env()


class ClientsMixin:
    """StandIn's part for its clients (see core.py)."""

    # -- clients ------------------------------------------------------------------------------

    def client_env(self) -> dict:
        """Environment for a process that should use this stand-in through boto3 (its
        credentials included: keep it out of argv and logs)."""
        if not self.url:
            raise RuntimeError("start() the stand-in first")
        return {
            "AWS_ENDPOINT_URL": self.url,
            **self.credentials.env(),
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

            credentials = self.credentials
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
            token = self.internal_token

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
        headers = sign(self.credentials, method, url, data or b"", self.region)
        request = urllib.request.Request(url, data, headers, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our own URL
            return json.loads(answer.read())

    # -- state -------------------------------------------------------------------------------

    def state(self) -> dict:
        t = self.now()
        jobs = []
        for job in sorted(self._jobs.all(), key=lambda j: (j.created, j.seq)):
            with self._jobs.lock:
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
                "mode": self.clock.mode,
                "now": t,
                "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
            },
            "faults": self.faults.snapshot(),
            "hosts_enabled": self.hosts_enabled,
            "ssh_user": self.ssh_user,
            "sshd_missing_hint": self.sshd_missing_hint,
            "jobs": jobs,
        }
