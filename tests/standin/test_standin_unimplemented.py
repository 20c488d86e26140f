"""Operations the stand-in (moto) lacks answer as AWS answers an action it does not know, in
the service's protocol, so botocore raises ClientError; IAM's SimulatePrincipalPolicy (SDK v3
ModelTrainer calls it as it is built) answers for the stand-in's execution role."""

from __future__ import annotations

import botocore.exceptions
import pytest
from test_standin import client

from jupyter_sm_debug.standin import StandIn

ROLE = "arn:aws:iam::123456789012:role/service-role/SageMakerExecutionRole"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    server = StandIn(root=tmp_path_factory.mktemp("unimplemented"), clock="manual", hosts=False)
    server.start()
    yield server
    server.stop()


def test_a_query_service_answers_xml_with_invalid_action(standin):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(standin, "iam").simulate_custom_policy(
            PolicyInputList=["{}"], ActionNames=["s3:GetObject"]
        )
    assert caught.value.response["Error"]["Code"] == "InvalidAction"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_json_service_answers_unknown_operation(standin):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(standin, "sagemaker").describe_hub(HubName="some-hub")
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"


def test_simulate_principal_policy_for_the_execution_role(standin):
    iam = client(standin, "iam")
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=ROLE,
        ActionNames=["s3:PutObject", "sagemaker:CreateTrainingJob"],
        ResourceArns=["arn:aws:s3:::bucket/*"],
    )
    results = [result for page in pages for result in page["EvaluationResults"]]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in results] == [
        ("s3:PutObject", "allowed"),
        ("sagemaker:CreateTrainingJob", "allowed"),
    ]
    role = iam.get_role(RoleName="SageMakerExecutionRole")["Role"]
    assert role["Arn"] == ROLE
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:role/no-such-role", ActionNames=["s3:*"]
        )
