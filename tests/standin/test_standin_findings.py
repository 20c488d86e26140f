"""Issue 24, finding 8: the stand-in answers as AWS does where a client can tell."""

from __future__ import annotations

import json
import uuid

import boto3
import botocore.exceptions
import pytest

GROUP = "/aws/sagemaker/TrainingJobs"


def test_describe_log_streams_leaves_out_a_missing_next_token(standin):
    logs = standin.client("logs")
    stream = f"findings-{uuid.uuid4().hex[:8]}/algo-1-1"
    standin.backends.logs.put(standin.region, stream, [(standin.now(), "hello")])
    raw = []  # botocore drops a null member: look at the wire
    logs.meta.events.register(
        "after-call.cloudwatch-logs.DescribeLogStreams",
        lambda http_response, **_: raw.append(json.loads(http_response.content)),
    )
    answer = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=stream)
    assert [s["logStreamName"] for s in answer["logStreams"]] == [stream]
    assert raw and "nextToken" not in raw[-1], raw


def test_get_log_events_on_a_missing_stream_names_the_stream(standin):
    logs = standin.client("logs")
    standin.backends.logs.put(standin.region, f"findings-{uuid.uuid4().hex[:8]}/x", [(0.0, "x")])
    with pytest.raises(botocore.exceptions.ClientError) as error:
        logs.get_log_events(logGroupName=GROUP, logStreamName="no-such-stream")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "log stream does not exist" in error.value.response["Error"]["Message"]


def test_simulate_principal_policy_follows_the_principals_policies(standin):
    iam = standin.client("iam")
    with pytest.raises(botocore.exceptions.ClientError) as error:
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:user/nobody", ActionNames=["s3:GetObject"]
        )
    assert error.value.response["Error"]["Code"] == "NoSuchEntity"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    user = f"findings-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*",'
        '"Resource":"*"}]}'))  # fmt: skip
    answer = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::123456789012:user/{user}",
        ActionNames=["s3:GetObject", "s3:PutObject"],
    )
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in answer["EvaluationResults"]}
    assert decisions == {"s3:GetObject": "allowed", "s3:PutObject": "implicitDeny"}
    role = iam.simulate_principal_policy(
        PolicySourceArn="arn:aws:iam::123456789012:role/service-role/SageMakerExecutionRole",
        ActionNames=["sagemaker:CreateTrainingJob"],
    )
    assert role["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_sagemaker_answers_auth_errors_with_400(standin):
    client = boto3.client(
        "sagemaker", endpoint_url=standin.url, region_name=standin.region,
        aws_access_key_id="AKIAWRONGWRONGWRONG0", aws_secret_access_key="wrong",
    )  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.list_training_jobs()
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_demo_logs_open_without_bash_warnings(standin, demo_jobs):
    """The stand-in writes no bash warnings of its own. (A job that runs a DLC's real
    command prints them as a real one does: `bash -m` without a terminal.)"""
    logs = standin.client("logs")
    name = demo_jobs["llama-finetune"]
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/")
    first = logs.get_log_events(
        logGroupName=GROUP, logStreamName=streams["logStreams"][0]["logStreamName"],
        startFromHead=True, limit=3,
    )["events"]  # fmt: skip
    assert first and not any(e["message"].startswith("bash:") for e in first), first
