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

from .live import JobLogState, LiveHost
from .manager import HostManager
from .sshd import SSHD_MISSING_HINT, SshKit, _ssh_sessions

__all__ = ["HostManager", "JobLogState", "LiveHost", "SSHD_MISSING_HINT", "SshKit", "_ssh_sessions"]
