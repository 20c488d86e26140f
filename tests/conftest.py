"""Shared fixtures: one local SageMaker stand-in per test session, and a Jupyter server
with the extension pointed at it through boto3's own AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import os

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_sm_debug.standin import StandIn

pytest_plugins = ["pytest_jupyter.jupyter_server"]

# Keep the developer's own AWS setup out of the tests.
AWS_VARIABLES = [name for name in os.environ if name.startswith("AWS_")]


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    saved = {name: os.environ.pop(name) for name in AWS_VARIABLES}
    server = StandIn(root=tmp_path_factory.mktemp("standin"), clock="manual", seed="demo")
    server.start()
    os.environ.update(server.client_env())
    # No stray profile or instance metadata may leak in.
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    yield server
    server.stop()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(saved)


@pytest.fixture
def jp_server_config(standin):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_sm_debug": True, "jupyter_server_terminals": True},
            "allow_root": True,
        },
        "SMDebug": {"ssh_key": str(standin.client_key_path), "ssh_user": standin.ssh_user},
    }


def end_sessions(serverapp) -> None:
    """jupyter_server_terminals never ends terminals when a server stops in-process (a real
    server's sessions die with it, by SIGHUP): end them so no test leaks into the next."""
    manager = serverapp.web_app.settings.get("terminal_manager")
    for term in list(getattr(manager, "terminals", {}).values()):
        if term.ptyproc.isalive():
            term.ptyproc.terminate(force=True)


@pytest.fixture
def jp_serverapp(jp_serverapp):
    """The in-process server, whose AWS clients' connection pools close with it: a real
    server's close with its process, but the test session runs hundreds of servers."""
    yield jp_serverapp
    state = jp_serverapp.web_app.settings.get("sm_debug")
    if state is not None:
        state.jobs.close()


@pytest.fixture
def services(jp_serverapp):
    """The extension's services (jobs, config, files ...) of the test's server."""
    return jp_serverapp.web_app.settings["sm_debug"]


@pytest.fixture
def terminal_manager(jp_serverapp):
    yield jp_serverapp.web_app.settings["terminal_manager"]
    end_sessions(jp_serverapp)


@pytest.fixture
def api(jp_fetch, jp_serverapp):
    """GET/PUT/POST a /sm-debug route; returns (status, parsed JSON) for success and errors."""

    async def call(method: str, *path: str, body=None, **query):
        kwargs = {"method": method, "params": {k: v for k, v in query.items() if v is not None}}
        if body is not None:
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        elif method in ("PUT", "POST"):
            kwargs["body"] = "{}"
        try:
            response = await jp_fetch("sm-debug", *path, **kwargs)
        except HTTPClientError as error:
            assert error.response is not None, error
            return error.code, json.loads(error.response.body)
        return response.code, json.loads(response.body)

    yield call
    end_sessions(jp_serverapp)


@pytest.fixture(scope="session")
def sagemaker(standin):
    """A plain boto3 SageMaker client on the stand-in, as any script would have."""
    import boto3

    return boto3.client("sagemaker")


@pytest.fixture(scope="session")
def demo_jobs(sagemaker) -> dict[str, str]:
    """The seeded demo jobs, by their name prefix (names carry a date)."""
    pages = sagemaker.get_paginator("list_training_jobs").paginate()
    names = [job["TrainingJobName"] for page in pages for job in page["TrainingJobSummaries"]]
    prefixes = ["llama-finetune-", "resnet50-ddp-4node-", "hetero-preprocess-train-"]
    found = {}
    for prefix in prefixes:
        matches = [name for name in names if name.startswith(prefix)]
        assert len(matches) == 1, (prefix, names)
        found[prefix.rstrip("-")] = matches[0]
    return found
