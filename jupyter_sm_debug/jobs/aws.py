"""boto3 for the server: one session, one cached client per service, one bounded pool.

boto3 blocks, so every call runs on a small thread pool and the Tornado loop never waits
on AWS. The pool size (c.SMDebug.max_concurrency) bounds the calls in flight, which keeps
a refresh under SageMaker's Describe* throttling limits. The pool is made with the service
(one per server), never at import, and `close()` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .. import __version__
from ..errors import SMDebugError, from_boto

if TYPE_CHECKING:  # boto3 and botocore load on the first AWS call, not at server start
    import boto3

    from ..config import SMDebug

T = TypeVar("T")

# Seconds after the first list before the attach's client is created: the sidebar's first
# page (rows, then its describes) is done by then, and a user has not clicked Attach yet.
WARM_AFTER = 2.0


def aws_code_of(exc: BaseException) -> str:
    """The error code AWS answered (e.g. "ValidationException"), or "" for any other
    failure (no connection, no credentials...)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "") or "")
    return ""


class AWS:
    """The session, the clients and the pool; `call` runs one API call off the loop."""

    def __init__(self, config: SMDebug, log):
        self.config = config
        self.log = log
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, config.max_concurrency), thread_name_prefix="sm-debug-aws"
        )
        self._clients: dict[str, Any] = {}
        self._session: boto3.session.Session | None = None
        self._lock = threading.Lock()
        self._warmed = False  # the attach's client is being or has been created

    def session(self) -> boto3.session.Session:
        import boto3.session

        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session(
                    profile_name=self.config.profile or None,
                    region_name=self.config.region or None,
                )
            return self._session

    def client(self, service: str):
        """A cached boto3 client; created on a worker thread (it reads files and env)."""
        with self._lock:
            client = self._clients.get(service)
        if client is not None:
            return client
        from botocore.config import Config

        session = self.session()
        config = Config(
            connect_timeout=self.config.api_timeout,
            read_timeout=self.config.api_timeout,
            # total_max_attempts counts the first attempt; botocore's max_attempts counts
            # retries only, which made 4 "attempts" 5.
            retries={"mode": "standard", "total_max_attempts": self.config.max_attempts},
            max_pool_connections=max(10, self.config.max_concurrency),
            user_agent_extra=f"jupyter-sm-debug/{__version__}",
        )
        kwargs = {"config": config}
        if self.config.endpoint_url:
            kwargs["endpoint_url"] = self.config.endpoint_url
        with self._lock:
            # boto3 sessions are not thread-safe: create clients under the lock.
            client = self._clients.get(service) or session.client(service, **kwargs)
            self._clients[service] = client
        return client

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking work (boto3, file reads) on the pool."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def call(self, service: str, operation: str, **params) -> dict:
        """Run one AWS API call off the event loop; failures become SMDebugError, with
        AWS's own error code in `aws_code` for callers to decide by."""

        def run():
            return getattr(self.client(service), operation)(**params)

        try:
            return await self.run(run)
        except SMDebugError:
            raise
        except Exception as exc:  # noqa: BLE001 - every boto failure is mapped for the user
            error = from_boto(exc, operation)
            error.aws_code = error.aws_code or aws_code_of(exc)
            error.operation = error.operation or operation
            if error.status >= 500:
                self.log.warning("sm-debug: %s failed: %s", operation, type(exc).__name__)
            raise error from None

    def warm_attach_client(self) -> None:
        """Once the sidebar lists jobs, create the client an Attach calls first (SSM's
        StartSession, or CloudWatch Logs for an SSH announcement) on a worker thread: a
        boto3 client takes a few hundred ms to load its model, which the first Attach
        would otherwise wait for. Not at once: loading the model holds the GIL, and the
        page's describes and its answer come first."""
        if self._warmed:
            return
        self._warmed = True
        service = "ssm" if self.config.default_transport == "ssm" else "logs"

        def warm() -> None:
            try:
                self.client(service)
            except Exception as error:  # noqa: BLE001 - the attach itself reports it
                self.log.debug("sm-debug: no %s client yet: %s", service, type(error).__name__)

        def start() -> None:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                self._executor.submit(warm)

        asyncio.get_running_loop().call_later(WARM_AFTER, start)

    def close(self) -> None:
        """Stop the worker threads and close every client's connection pool."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
