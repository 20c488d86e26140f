"""tests/sdk: the notebook helper against the real SageMaker Python SDK (scripts/test-sdk makes
a venv per SDK major), on a stand-in of its own. Skipped where sagemaker is not installed."""

from __future__ import annotations

import os

import pytest

from jupyter_sm_debug.standin import StandIn

ROLE = "arn:aws:iam::123456789012:role/service-role/SageMakerExecutionRole"


@pytest.fixture(scope="session")
def sdk_standin(tmp_path_factory):
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("AWS_")}
    server = StandIn(root=tmp_path_factory.mktemp("sdk-standin"), clock="manual", hosts=False)
    server.start()
    # With the stand-in's SDK config (default bucket, no telemetry): SAGEMAKER_USER_CONFIG_OVERRIDE.
    os.environ.update(server.client_env())
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
    yield server
    server.stop()
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def sm(sdk_standin):
    import boto3

    return boto3.client("sagemaker")


@pytest.fixture
def source_dir(tmp_path):
    (tmp_path / "train.py").write_text("raise SystemExit('fails on purpose')\n")
    return str(tmp_path)
