"""The one error type of the stand-in: an AWS error code, a message and an HTTP status.

Anything that answers an AWS API call on the stand-in (the SageMaker handlers here, the SSM
handlers in ``ssm.py``) raises this; the WSGI front turns it into AWS's wire format, so
botocore raises ``ClientError`` with ``Error.Code == code``.
"""

from __future__ import annotations


class StandInError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"StandInError({self.code!r}, {self.message!r}, status={self.status})"


def validation_error(message: str) -> StandInError:
    return StandInError("ValidationException", message)


class HostNotLive(StandInError):
    """The host has no running container (job not started yet, finished, or unknown).

    Its code is SSM's, so the SSM gateway can raise it as is from StartSession.
    """

    def __init__(self, job: str, host: str, why: str = "is not running"):
        super().__init__(
            "TargetNotConnected",
            f"sagemaker-training-job:{job}_{host} is not connected: the host {why}.",
        )
        self.job = job
        self.host = host
