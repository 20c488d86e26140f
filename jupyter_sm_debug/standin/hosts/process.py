"""A host's processes: PID 1 (in its namespaces, container.py, or plain), observed, stopped."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid

from .. import container, procs, trainlog
from ..sagemaker.models import (
    HostSpec,
    Job,
)
from .inputs import ENTRYPOINT_BIN
from .live import LiveHost

log = logging.getLogger(__name__)


class ProcessMixin:
    """HostManager's process part."""

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
