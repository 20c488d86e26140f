"""The stand-in answers only requests signed with the credentials it made at start, as AWS:
its API calls, its control routes and its SSM data channel (issue 12, finding 8). The
stand-in is conftest's, whose client_env() every other test uses too."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError
from support import REPO

from jupyter_sm_debug.standin import StandIn
from jupyter_sm_debug.standin.sigv4 import Credentials, sign

EVERYWHERE = "0.0.0.0"  # noqa: S104 - the address the stand-in must not take silently


def client(standin, service: str, **overrides):
    env = standin.client_env()
    credentials = {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": env["AWS_SESSION_TOKEN"],
        **overrides,
    }
    return boto3.session.Session(region_name=standin.region, **credentials).client(
        service, endpoint_url=standin.url, config=Config(retries={"total_max_attempts": 1})
    )


def error_code(call, *args) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call(*args)
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


CALLS = {
    "sagemaker": lambda c: c.list_training_jobs(MaxResults=1),  # JSON protocol
    "logs": lambda c: c.describe_log_groups(limit=1),  # JSON protocol (moto)
    "ssm": lambda c: c.terminate_session(SessionId="standin-nope"),  # JSON protocol
    "sts": lambda c: c.get_caller_identity(),  # query protocol
}
QUERY_SERVICES = {"sts"}
# SageMaker answers its auth errors with HTTP 400, the other services with 403 (issue 24).
AUTH_STATUS = {"sagemaker": 400}


def raw(standin, method: str, path: str = "/", body: bytes = b"", headers=None):
    request = urllib.request.Request(  # noqa: S310 - the stand-in's own http URL
        standin.url + path, data=body or None, headers=headers or {}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


# -- AWS API calls -----------------------------------------------------------------------------


def test_signed_calls_work_with_the_credentials_of_client_env(standin):
    for service, call in CALLS.items():
        if service != "ssm":
            call(client(standin, service))
    name = standin.seeded_jobs["llama-finetune"]
    job = client(standin, "sagemaker").describe_training_job(TrainingJobName=name)
    assert job["TrainingJobName"] == name


def test_unsigned_calls_are_refused_in_each_protocol(standin):
    body = json.dumps({"MaxResults": 1}).encode()
    status, answer = raw(
        standin,
        "POST",
        body=body,
        headers={
            "X-Amz-Target": "SageMaker.ListTrainingJobs",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert status == 400  # SageMaker's status for it
    assert json.loads(answer)["__type"] == "MissingAuthenticationTokenException"
    form = b"Action=GetCallerIdentity&Version=2011-06-15"
    status, answer = raw(
        standin, "POST", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 403
    assert b"<Code>MissingAuthenticationToken</Code>" in answer
    # moto's own admin routes are behind the same door.
    assert raw(standin, "GET", "/moto-api/data.json")[0] == 403


def test_a_wrong_secret_is_a_signature_mismatch(standin):
    for service, call in CALLS.items():
        wrong = client(standin, service, aws_secret_access_key="x" * 40)
        expected = "SignatureDoesNotMatch" if service in QUERY_SERVICES else (
            "InvalidSignatureException"
        )  # fmt: skip
        assert error_code(call, wrong) == (expected, AUTH_STATUS.get(service, 403)), service


def test_an_unknown_key_or_token_is_an_unrecognized_client(standin):
    for overrides in (
        {"aws_access_key_id": "ASIAUNKNOWNUNKNOWN22"},
        {"aws_session_token": "not-the-token"},
        {"aws_session_token": None},
    ):
        for service, call in CALLS.items():
            other = client(standin, service, **overrides)
            expected = "InvalidClientTokenId" if service in QUERY_SERVICES else (
                "UnrecognizedClientException"
            )  # fmt: skip
            status = AUTH_STATUS.get(service, 403)
            assert error_code(call, other) == (expected, status), (service, overrides)


def test_a_tampered_body_or_a_stale_signature_is_refused(standin, monkeypatch):
    sm = client(standin, "sagemaker")

    def tamper(request, **_):
        request.body = request.body.replace(b'"MaxResults": 1', b'"MaxResults": 2')

    sm.meta.events.register("before-send", tamper)
    assert error_code(lambda: sm.list_training_jobs(MaxResults=1)) == (
        "InvalidSignatureException",
        400,
    )
    # A signature made 10 minutes ago (a replayed request, or a clock that is off).
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda: real() - datetime.timedelta(minutes=10)
    )
    with pytest.raises(ClientError) as raised:
        client(standin, "sagemaker").list_training_jobs(MaxResults=1)
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "Signature expired" in raised.value.response["Error"]["Message"]


async def test_the_extension_reports_a_wrong_secret_as_rejected_credentials(
    api, standin, monkeypatch
):
    wrong = "w" * 40
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    status, answer = await api("GET", "jobs")
    assert status == 403, answer
    assert answer["error"]["code"] == "credentials_rejected"
    assert wrong not in json.dumps(answer)
    assert standin.client_env()["AWS_SECRET_ACCESS_KEY"] not in json.dumps(answer)


def test_the_aws_cli_works_with_client_env(standin):
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(standin.client_env(), AWS_CONFIG_FILE=os.devnull)
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    listed = subprocess.run(
        ["aws", "sagemaker", "list-training-jobs", "--max-results", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["TrainingJobSummaries"]
    # The credentials file alone is enough too (what `jupyter-sm-debug standin` prints).
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        del env[name]
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(standin.credentials_file)
    who = subprocess.run(
        ["aws", "sts", "get-caller-identity"], env=env, capture_output=True, text=True, timeout=60
    )
    assert who.returncode == 0, who.stderr
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "ASIAUNKNOWNUNKNOWN22", "x" * 40
    refused = subprocess.run(
        ["aws", "sts", "get-caller-identity"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and "InvalidClientTokenId" in refused.stderr


# -- credentials --------------------------------------------------------------------------------


def test_each_stand_in_makes_its_own_credentials_in_a_0600_file(standin, tmp_path):
    path = standin.credentials_file
    assert path.parent == standin.root
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = standin.client_env()
    text = path.read_text()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert f"{name.lower()} = {env[name]}\n" in text
    assert env["AWS_SECRET_ACCESS_KEY"] not in repr(standin.credentials)
    with StandIn(root=tmp_path, clock="manual", hosts=False) as other:
        assert other.client_env()["AWS_SECRET_ACCESS_KEY"] != env["AWS_SECRET_ACCESS_KEY"]
        # One stand-in's credentials do not open another.
        foreign = client(other, "sagemaker", aws_access_key_id=env["AWS_ACCESS_KEY_ID"])
        assert error_code(lambda: foreign.list_training_jobs())[0] == (
            "UnrecognizedClientException"
        )
    assert not (tmp_path / "credentials").exists()  # stop() removes it


# -- control routes ------------------------------------------------------------------------------


def test_control_routes_refuse_unsigned_or_wrongly_signed_requests(standin):
    before = standin.faults.snapshot()
    status, answer = raw(standin, "POST", "/_standin/faults", json.dumps({"down": True}).encode())
    assert status == 403 and "error" in json.loads(answer)
    assert raw(standin, "GET", "/_standin/state")[0] == 403
    assert raw(standin, "POST", "/_standin/reset", b"{}")[0] == 403
    url = f"{standin.url}/_standin/state"
    other = Credentials.generate()
    assert raw(standin, "GET", "/_standin/state", headers=sign(other, "GET", url))[0] == 403
    assert standin.faults.snapshot() == before
    # Signed, they work: a header signature, or a presigned URL.
    assert standin.control("state")["url"] == standin.url
    assert raw(standin, "GET", "/_standin/state", headers=sign(standin.credentials, "GET", url))[
        0
    ] == 200  # fmt: skip
    request = AWSRequest(method="GET", url=url)
    creds = standin.credentials
    boto = BotoCredentials(creds.access_key, creds.secret_key, creds.token)
    SigV4QueryAuth(boto, "standin", standin.region, expires=60).add_auth(request)
    status, answer = raw(standin, "GET", request.url[len(standin.url) :])
    assert status == 200 and json.loads(answer)["url"] == standin.url


# -- SSM data channel -----------------------------------------------------------------------------


def test_the_ssm_data_channel_opens_only_with_a_token_a_signed_start_session_issued(standin):
    import websocket

    from jupyter_sm_debug.ssm import protocol as p

    job = standin.seeded_jobs["llama-finetune"]
    target = f"sagemaker-training-job:{job}_algo-1"
    unsigned = json.dumps({"Target": target}).encode()
    status, _ = raw(
        standin,
        "POST",
        body=unsigned,
        headers={
            "X-Amz-Target": "AmazonSSM.StartSession",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert status == 403
    started = client(standin, "ssm").start_session(Target=target)
    for made_up in ("made-up-token", "tökén-ñot-ascii", started["TokenValue"][:-1]):
        ws = websocket.create_connection(started["StreamUrl"], timeout=5)
        ws.send(p.open_data_channel_message(made_up, "c-1", "1.2.0.0"))
        opcode, frame = ws.recv_data_frame()
        assert opcode == websocket.ABNF.OPCODE_CLOSE, made_up
        assert frame.data[2:] == b"invalid token"
        ws.shutdown()
    ws = websocket.create_connection(started["StreamUrl"], timeout=5)
    ws.send(p.open_data_channel_message(started["TokenValue"], "c-2", "1.2.0.0"))
    # The real token opens the channel: the agent speaks (a plain shell session starts with
    # its output; the handshake comes first only when the session needs one, e.g. KMS).
    first = p.decode(ws.recv_data()[1])
    assert first.message_type == "output_stream_data"
    assert first.payload_type in (p.PayloadType.OUTPUT, p.PayloadType.HANDSHAKE_REQUEST)
    ws.close()
    client(standin, "ssm").terminate_session(SessionId=started["SessionId"])


# -- listening address --------------------------------------------------------------------------


def test_the_standin_command_refuses_a_non_loopback_address_without_allow_remote(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "jupyter_sm_debug.cli", "standin", "--no-hosts", "--no-seed",
            "--port", "0"]  # fmt: skip
    refused = subprocess.run(
        [*argv, "--address", EVERYWHERE], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "not a loopback address" in refused.stderr and "--allow-remote" in refused.stderr
    library = StandIn(root=tmp_path, hosts=False)
    with pytest.raises(ValueError, match="loopback"):
        library.start(address=EVERYWHERE)
    library.stop()
    # With the flag it listens, after a warning; the secret never reaches the console.
    proc = subprocess.Popen(
        [*argv, "--address", EVERYWHERE, "--allow-remote"], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if not line or "unset AWS_ACCESS_KEY_ID" in line:
                break
        out = "".join(lines)
        assert "listening on http://0.0.0.0:" in out, out
        credentials_file = next(
            line.split("=", 1)[1].strip()
            for line in lines
            if line.strip().startswith("export AWS_SHARED_CREDENTIALS_FILE=")
        )
        secret = Path(credentials_file).read_text().split("aws_secret_access_key = ")[1]
        assert secret.split("\n")[0] not in out
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Warning: the stand-in listens on 0.0.0.0" in err
