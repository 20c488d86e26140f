"""boto3/botocore failures map onto the REST error shape with a fitting status and a hint."""

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from jupyter_sm_debug.errors import from_boto


def client_error(code: str, message: str = "boom", http: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": http}},
        "DescribeTrainingJob",
    )


@pytest.mark.parametrize(
    "exc, status, code",
    [
        (client_error("AccessDeniedException", "not authorized"), 403, "access_denied"),
        (client_error("ThrottlingException", "Rate exceeded"), 429, "throttled"),
        (client_error("ExpiredTokenException", "expired"), 403, "credentials_rejected"),
        (client_error("ValidationException", "bad"), 400, "invalid_request"),
        (client_error("ResourceNotFound", "gone"), 404, "not_found"),
        (client_error("InternalFailure", "oops", 500), 503, "aws_error"),
        (NoCredentialsError(), 503, "no_credentials"),
        (NoRegionError(), 503, "no_region"),
        (
            EndpointConnectionError(endpoint_url="https://api.sagemaker"),
            503,
            "endpoint_unreachable",
        ),
        (RuntimeError("secret-token-value"), 500, "internal_error"),
    ],
)
def test_mapping(exc, status, code):
    error = from_boto(exc)
    assert (error.status, error.code) == (status, code)
    assert error.message and error.hint
    assert "secret-token-value" not in error.message
