"""One error type for the REST API, and the mapping of boto3/botocore failures onto it.

Every failure a user can cause or meet answers ``{"error": {"code", "message", "hint"}}``
with a fitting status; the hint says what to do next.
"""

from __future__ import annotations


class SMDebugError(Exception):
    """An error with an HTTP status, a stable code, a message and a hint for the user."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        hint: str = "",
        *,
        aws_code: str = "",
        operation: str = "",
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        # What AWS said (e.g. "TargetNotConnected") and to which call: callers decide by
        # these, never by the message's words.
        self.aws_code = aws_code
        self.operation = operation

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "hint": self.hint}}


THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
}
ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
BAD_CREDENTIALS_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
}
NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity"}
# The request clashes with what exists (a job name taken, a quota used up): the user's to fix.
CONFLICT_CODES = {"ResourceInUse", "ResourceInUseException", "ResourceLimitExceeded"}

# AWS says "Requested resource not found." for an unknown training job (a ValidationException);
# other backends say "Could not find training job ..." or "... does not exist".
NOT_FOUND_WORDINGS = ("not found", "could not find", "does not exist", "no such")

CREDENTIALS_HINT = (
    "Configure AWS credentials for the Jupyter server: run `aws configure`, set AWS_PROFILE, "
    "or attach an execution role (Studio and Notebook Instances have one)."
)


def from_boto(exc: Exception, action: str = "call AWS") -> SMDebugError:
    """Map a boto3/botocore exception onto an SMDebugError. Never leaks credentials."""
    if isinstance(exc, SMDebugError):
        return exc
    # botocore loads on first use, off the server's start path (it is already loaded by
    # whatever raised exc).
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "")
        metadata = exc.response.get("ResponseMetadata", {})
        message = err.get("Message") or str(code)
        if "<" in message and ">" in message:  # an HTML error page from a proxy or gateway
            message = f"the endpoint answered HTTP {metadata.get('HTTPStatusCode', '?')} "
            message += "with a page that is not an AWS error"
        operation = getattr(exc, "operation_name", "") or action
        if code in THROTTLING_CODES:
            return SMDebugError(
                429,
                "throttled",
                f"AWS throttled {operation} even after retries: {message}",
                "Wait a few seconds and refresh; lower the refresh rate in Settings "
                "if this keeps happening.",
            )
        if code in ACCESS_DENIED_CODES:
            return SMDebugError(
                403,
                "access_denied",
                f"Your AWS identity may not {operation}: {message}",
                "Ask your AWS administrator for the permission named above "
                "(see the IAM section of the README).",
            )
        if code in BAD_CREDENTIALS_CODES:
            return SMDebugError(
                403,
                "credentials_rejected",
                f"AWS rejected the credentials ({code}): {message}",
                "Your credentials are expired or invalid: refresh them (e.g. `aws sso login`) "
                "and retry.",
            )
        unknown = code == "ValidationException" and any(
            wording in message.lower() for wording in NOT_FOUND_WORDINGS
        )
        if code in NOT_FOUND_CODES or unknown or "not found" in message.lower():
            return SMDebugError(404, "not_found", message, "Check the name and the region.")
        if code in CONFLICT_CODES:
            return SMDebugError(
                409,
                "conflict",
                f"{operation} was refused ({code}): {message}",
                "Choose another name, or end jobs you no longer need, and retry.",
            )
        if code == "ValidationException":
            return SMDebugError(400, "invalid_request", message, "AWS refused the request as sent.")
        status = metadata.get("HTTPStatusCode", 502)
        request_id = metadata.get("RequestId")
        return SMDebugError(
            503 if status >= 500 else 502,
            "aws_error",
            f"{operation} failed ({code or status}): {message}"
            + (f" (request id {request_id})" if request_id else ""),
            "Retry in a moment; if it persists, check the AWS Health Dashboard.",
        )
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return SMDebugError(
            503, "no_credentials", "The Jupyter server has no AWS credentials.", CREDENTIALS_HINT
        )
    if isinstance(exc, ProfileNotFound):
        return SMDebugError(
            503,
            "profile_not_found",
            str(exc),
            "Fix AWS_PROFILE or c.SMDebug.profile to name a profile in ~/.aws/config.",
        )
    if isinstance(exc, NoRegionError):
        return SMDebugError(
            503,
            "no_region",
            "No AWS region is configured for the Jupyter server.",
            "Set AWS_REGION (or AWS_DEFAULT_REGION), a region in your profile, "
            "or c.SMDebug.region.",
        )
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return SMDebugError(
            503,
            "endpoint_unreachable",
            f"Could not reach the AWS endpoint: {exc}",
            "Check the network (VPC endpoints or internet access for SageMaker) or "
            "AWS_ENDPOINT_URL; if you run the demo, make sure the stand-in is running.",
        )
    if isinstance(exc, BotoCoreError):
        return SMDebugError(502, "aws_client_error", str(exc), "Retry; check the server log.")
    return SMDebugError(
        500, "internal_error", "Unexpected server error.", "See the Jupyter server log."
    )
