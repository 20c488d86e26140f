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


@pytest.mark.parametrize(
    "message",
    [
        "Requested resource not found.",  # AWS
        "Could not find training job 'x'.",  # moto
        "Training job x does not exist.",
    ],
)
def test_an_unknown_job_is_404_whatever_the_wording(message):
    assert from_boto(client_error("ValidationException", message)).status == 404


def test_an_html_error_page_never_reaches_the_user():
    error = ClientError(
        {
            "Error": {"Code": "502", "Message": "<html><h1>502 Bad Gateway</h1></html>"},
            "ResponseMetadata": {"HTTPStatusCode": 502, "RequestId": "req-1234"},
        },
        "ListTrainingJobs",
    )
    mapped = from_boto(error)
    assert mapped.status == 503
    assert "<" not in mapped.message
    assert "HTTP 502" in mapped.message and "req-1234" in mapped.message


def test_the_aws_code_and_operation_are_kept_for_callers_to_decide_by():
    error = from_boto(client_error("TargetNotConnected", "algo-1 is not connected"))
    assert (error.aws_code, error.operation) == ("TargetNotConnected", "DescribeTrainingJob")
    error = from_boto(client_error("ThrottlingException"))
    assert (error.status, error.aws_code) == (429, "ThrottlingException")
    assert from_boto(NoCredentialsError()).aws_code == ""


class Recorder:
    """What errors.render writes on a handler."""

    def __init__(self):
        self.status, self.headers, self.body = None, {}, None

    def clear(self):
        self.headers = {}

    def set_status(self, status):
        self.status = status

    def set_header(self, name, value):
        self.headers[name] = value

    def finish(self, body):
        self.body = body


def test_one_renderer_answers_every_error_in_the_one_shape():
    import json

    from tornado.web import HTTPError

    from jupyter_sm_debug.errors import SMDebugError, of_exception, render

    cases = [
        (400, SMDebugError(400, "invalid_body", "bad", "fix it"), "invalid_body"),
        (405, HTTPError(405), "method_not_allowed"),
        (403, HTTPError(403, "XSRF argument missing"), "forbidden"),
        (500, RuntimeError("secret-token-value"), "internal_error"),
    ]
    for status, exc, code in cases:
        handler = Recorder()
        render(handler, of_exception(status, exc))
        body = json.loads(handler.body)
        assert handler.status == status and body["error"]["code"] == code
        assert set(body["error"]) == {"code", "message", "hint"}
        assert handler.headers["Content-Type"] == "application/json"
        assert "secret-token-value" not in handler.body
