""" "Debug a copy": a new training job like the old one, with remote debug and a hold window."""

from __future__ import annotations

import uuid

from test_api import assert_error


async def test_a_failed_job_gets_a_debug_copy(api, sagemaker):
    status, page = await api("GET", "jobs", status="Failed")
    original = page["jobs"][0]["name"]
    new_name = f"copy-{uuid.uuid4().hex[:8]}"
    status, job = await api(
        "POST", "jobs", original, "debug-copy", body={"hold_seconds": 900, "name": new_name}
    )
    assert status == 201, job
    assert job["name"] == new_name
    assert job["remote_debug"] == {"enabled": True}

    # What the stand-in stored is what CreateTrainingJob was sent.
    old = sagemaker.describe_training_job(TrainingJobName=original)
    new = sagemaker.describe_training_job(TrainingJobName=new_name)
    assert new["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
    assert new["Environment"]["SM_DEBUG_HOLD_ON_FAILURE"] == "900"
    for key in (
        "AlgorithmSpecification",
        "RoleArn",
        "ResourceConfig",
        "OutputDataConfig",
        "StoppingCondition",
    ):
        assert new[key] == old[key], key
    assert new.get("HyperParameters") == old.get("HyperParameters")
    for key, value in (old.get("Environment") or {}).items():
        assert new["Environment"][key] == value
    tags = sagemaker.list_tags(ResourceArn=new["TrainingJobArn"])["Tags"]
    assert {"Key": "sm-debug:copy-of", "Value": original} in tags


async def test_default_name_and_hold(api, demo_jobs, sagemaker):
    original = demo_jobs["resnet50-ddp-4node"]
    status, job = await api("POST", "jobs", original, "debug-copy", body={})
    assert status == 201, job
    assert job["name"].startswith(original[:40]) and "-debug-" in job["name"]
    assert len(job["name"]) <= 63
    new = sagemaker.describe_training_job(TrainingJobName=job["name"])
    assert new["Environment"]["SM_DEBUG_HOLD_ON_FAILURE"] == "1800"
    assert job["instance_count"] == 4


async def test_debug_copy_refuses_bad_input(api, demo_jobs):
    job = demo_jobs["llama-finetune"]
    for body in (
        {"hold_seconds": -1},
        {"hold_seconds": "10"},
        {"hold_seconds": 10**6},
        {"hold_seconds": True},
    ):
        status, error = await api("POST", "jobs", job, "debug-copy", body=body)
        assert_error(status, error, 400, "invalid_body")
    status, error = await api("POST", "jobs", job, "debug-copy", body={"name": "bad name"})
    assert_error(status, error, 400, "invalid_job_name")
    status, error = await api("POST", "jobs", "ghost-job", "debug-copy", body={})
    assert_error(status, error, 404, "job_not_found")


async def test_debug_copy_of_a_network_isolated_job_is_409(api, standin):
    name = f"isolated-{uuid.uuid4().hex[:8]}"
    standin.create_job(name, network_isolation=True, started_ago=120)
    status, error = await api("POST", "jobs", name, "debug-copy", body={})
    assert_error(status, error, 409, "network_isolation")
