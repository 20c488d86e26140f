""" "Debug a copy": a new training job like the old one, with remote debug and a hold window."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from support import assert_error, failed_job

from jupyter_sm_debug import hold
from jupyter_sm_debug.standin import hosts, seed
from jupyter_sm_debug.standin.core import byoc_image
from jupyter_sm_debug.standin.ssm import looks as ssm_looks


async def test_a_failed_job_gets_a_debug_copy(api, sagemaker):
    original = (await failed_job(api))["name"]
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
    # The copy runs the original's own command under the hold wrapper.
    old_algorithm, new_algorithm = old["AlgorithmSpecification"], new["AlgorithmSpecification"]
    wrapped = new_algorithm["ContainerEntrypoint"] + new_algorithm.get("ContainerArguments", [])
    assert hold.is_wrapped(wrapped)
    assert {k: v for k, v in new_algorithm.items() if not k.startswith("Container")} == {
        k: v for k, v in old_algorithm.items() if not k.startswith("Container")
    }
    for key in (
        "RoleArn",
        "ResourceConfig",
        "OutputDataConfig",
    ):
        assert new[key] == old[key], key
    # The runtime limit grows by the hold window (issue 23, finding 3).
    runtime = old["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert new["StoppingCondition"]["MaxRuntimeInSeconds"] == min(
        runtime + 900, max(runtime, hold.RUNTIME_QUOTA_SECONDS)
    )
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


# -- the hold: what the copy runs -----------------------------------------------------------

# 20 s Starting, 10 s Downloading, 60 s Training until the command fails.
FAILING = {"starting": 20, "downloading": 10, "training": 60, "outcome": "Failed"}
FAILS_AFTER = 90
SOURCE_CODE_ARGUMENTS = [  # what SDK v3 ModelTrainer with SourceCode sends
    "-c",
    "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh "
    "&& /opt/ml/input/data/sm_drivers/sm_train.sh",
]
KINDS = {
    # A DLC in script mode: the image's ENTRYPOINT + train runs the toolkit.
    "dlc-script": (
        {"hyperparameters": {"sagemaker_program": '"train.py"', "epochs": "3"}},
        "bash -m start_with_right_hostname.sh train",
    ),
    # Bring your own container: only an ENTRYPOINT.
    "byoc": (
        {"image": byoc_image("us-east-1")},
        "python /opt/sm-debug/bin/byoc_train.py train",
    ),
    "entrypoint": (
        {
            "container_entrypoint": ["python", "/opt/ml/code/train.py"],
            "container_arguments": ["--epochs", "3"],
        },
        "python /opt/ml/code/train.py --epochs 3",
    ),  # fmt: skip
    "sdk-v3-source-code": (
        {"container_entrypoint": ["/bin/bash"], "container_arguments": SOURCE_CODE_ARGUMENTS},
        "/bin/bash -c " + json.dumps(SOURCE_CODE_ARGUMENTS[1]),
    ),
}


def phase(sagemaker, name: str) -> tuple[str, str]:
    job = sagemaker.describe_training_job(TrainingJobName=name)
    return job["TrainingJobStatus"], job["SecondaryStatus"]


def host_sessions(standin, job: str) -> int:
    live = standin.backends.hosts.get(standin.region, job, "algo-1")
    return hosts._ssh_sessions([live]).get(live.token, 0)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_failed_job_ends_but_its_debug_copy_holds_until_the_last_session_closes(
    api, standin, sagemaker, terminal_manager, jp_fetch, kind
):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    options, command = KINDS[kind]
    original = f"{kind}-{uuid.uuid4().hex[:6]}"
    standin.create_job(original, schedule=FAILING, started_ago=FAILS_AFTER + 5,
                       environment={"SM_DEBUG_HOLD_ON_FAILURE": "600"}, **options)  # fmt: skip
    # The variable alone holds nothing: the job's own command does not hold.
    assert phase(sagemaker, original) == ("Failed", "Failed")

    status, preview = await api("POST", "jobs", original, "debug-copy",
                                body={"dry_run": True})  # fmt: skip
    assert status == 200, preview
    expected = {"mechanism": "wrapper", "command": command, "possible": True,
                "reason": f"holds by wrapping `{command}`"}  # fmt: skip
    assert preview == {"name": original, "hold": expected}
    copy = f"{original}-copy"
    status, job = await api("POST", "jobs", original, "debug-copy",
                            body={"hold_seconds": 600, "name": copy})  # fmt: skip
    assert status == 201, job
    assert job["hold_plan"] == expected
    described = sagemaker.describe_training_job(TrainingJobName=copy)
    algorithm = described["AlgorithmSpecification"]
    argv = algorithm["ContainerEntrypoint"] + algorithm.get("ContainerArguments", [])
    assert hold.is_wrapped(argv)
    tags = sagemaker.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]
    assert {"Key": "sm-debug:hold", "Value": "wrapper"} in tags

    standin.advance(FAILS_AFTER + 10)  # the copy failed like its original 10 s ago: held
    assert phase(sagemaker, copy) == ("InProgress", "Training")
    # The host truly runs the wrapper around the job's command.
    live = standin.backends.hosts.get(standin.region, copy, "algo-1")
    init = live.init or live.train.pid
    assert Path(f"/proc/{init}/task/{init}/children").read_text().split(), "nothing runs"
    child = Path(f"/proc/{init}/task/{init}/children").read_text().split()[0]
    cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[:-1]
    assert hold.is_wrapped([part.decode() for part in cmdline])

    # A copy runs the hold wrapper, not sm-debug-entrypoint --ssh: its log's SSH line could be
    # the training code's, so SSH needs the address and key (issue 22, finding 10).
    addr, port = standin.host_address(copy, "algo-1")
    key = " ".join(standin.backends.hosts.ssh.host_key.with_suffix(".pub").read_text().split()[:2])
    status, attached = await api("POST", "jobs", copy, "hosts", "algo-1", "terminals",
                                 body={"transport": "ssh", "address": f"{addr}:{port}",
                                       "host_key": key})  # fmt: skip
    assert status == 201, attached
    deadline = time.monotonic() + 15
    while host_sessions(standin, copy) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    standin.reconcile()  # sees the session
    assert phase(sagemaker, copy) == ("InProgress", "Training")
    response = await jp_fetch("api", "terminals", attached["terminal"]["name"], method="DELETE")
    assert response.code == 204
    deadline = time.monotonic() + 15
    while host_sessions(standin, copy) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    standin.reconcile()  # the last session closed
    assert phase(sagemaker, copy) == ("Failed", "Failed")


async def test_a_job_whose_image_cannot_be_read_says_why(api, standin, sagemaker):
    name = f"private-{uuid.uuid4().hex[:6]}"
    image = "999999999999.dkr.ecr.us-east-1.amazonaws.com/someone-elses:1"
    standin.create_job(name, schedule=FAILING, started_ago=FAILS_AFTER + 5, image=image)
    status, preview = await api("POST", "jobs", name, "debug-copy", body={"dry_run": True})
    assert status == 200, preview
    assert preview["hold"]["possible"] is False and preview["hold"]["mechanism"] == "none"
    assert "RepositoryNotFoundException" in preview["hold"]["reason"]
    assert "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer" in preview["hold"]["reason"]
    status, job = await api("POST", "jobs", name, "debug-copy", body={"name": f"{name}-c"})
    assert status == 201 and job["hold_plan"] == preview["hold"]
    described = sagemaker.describe_training_job(TrainingJobName=f"{name}-c")
    assert "ContainerEntrypoint" not in described["AlgorithmSpecification"]
    tags = sagemaker.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]
    assert {"Key": "sm-debug:hold", "Value": "none"} in tags


async def test_dry_run_must_be_a_boolean(api, demo_jobs):
    status, error = await api(
        "POST", "jobs", demo_jobs["llama-finetune"], "debug-copy", body={"dry_run": "yes"}
    )
    assert_error(status, error, 400, "invalid_body")


async def test_a_job_on_sm_debug_entrypoint_holds_by_itself(api, standin, sagemaker):
    name = f"own-entrypoint-{uuid.uuid4().hex[:6]}"
    own = ["sm-debug-entrypoint", "--", "train"]
    standin.create_job(
        name, schedule=FAILING, started_ago=FAILS_AFTER + 5, container_entrypoint=own
    )
    status, job = await api("POST", "jobs", name, "debug-copy", body={"name": f"{name}-c"})
    assert status == 201 and job["hold_plan"]["mechanism"] == "entrypoint", job
    described = sagemaker.describe_training_job(TrainingJobName=f"{name}-c")
    assert described["AlgorithmSpecification"]["ContainerEntrypoint"] == own  # not wrapped
    tags = sagemaker.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]
    assert {"Key": "sm-debug:hold", "Value": "entrypoint"} in tags
    standin.advance(FAILS_AFTER + 10)
    assert phase(sagemaker, f"{name}-c") == ("InProgress", "Training")  # its entrypoint holds


# -- issue 23, finding 1: looking never ends the hold ----------------------------------------


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_host_state_stacks_and_run_on_a_held_copy_leave_it_held(
    api, standin, sagemaker, transport, jp_serverapp
):
    """The extension's own sessions (host state, stacks, run) open and close on a held copy;
    after each the stand-in's reconcile (the container side's look) keeps the job held."""
    if transport == "ssh" and standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    options, _ = KINDS["entrypoint"]
    original = f"look-{transport}-{uuid.uuid4().hex[:6]}"
    standin.create_job(original, schedule=FAILING, started_ago=FAILS_AFTER + 5, **options)
    copy = f"{original}-copy"
    status, job = await api("POST", "jobs", original, "debug-copy",
                            body={"hold_seconds": 600, "name": copy})  # fmt: skip
    assert status == 201, job
    standin.advance(FAILS_AFTER + 10)
    assert phase(sagemaker, copy) == ("InProgress", "Training")
    if transport == "ssh":  # a copy's SSH address is configured, not read from its log
        addr, port = standin.host_address(copy, "algo-1")
        key = " ".join(
            standin.backends.hosts.ssh.host_key.with_suffix(".pub").read_text().split()[:2]
        )
        config = jp_serverapp.web_app.settings["sm_debug"].config
        config.ssh_addresses = {copy: {"algo-1": {"address": f"{addr}:{port}", "host_key": key}}}
    looks = [
        ("GET", ("hosts", "algo-1", "state"), None, {"transport": transport}),
        ("POST", ("stacks",), {"transport": transport}, {}),
        ("POST", ("run",), {"argv": ["sh", "-c", "sleep 3; echo hi"], "transport": transport}, {}),
    ]
    for method, path, body, query in looks:
        call = asyncio.ensure_future(api(method, "jobs", copy, *path, body=body, **query))
        while not call.done():  # the container side looks while the session is open
            await asyncio.get_running_loop().run_in_executor(None, standin.reconcile)
            await asyncio.sleep(0.05)
        status, answer = call.result()
        assert status == 200, (path, answer)
        standin.reconcile()
        assert phase(sagemaker, copy) == ("InProgress", "Training"), path
    standin.reconcile()
    assert phase(sagemaker, copy) == ("InProgress", "Training")


async def test_a_persons_ssm_shell_closing_still_ends_the_hold(
    api, standin, sagemaker, terminal_manager, jp_fetch
):
    """The other side of the rule: a terminal a person opened over SSM (nothing marks it)
    counts, and its close ends the held copy's hold."""
    from jupyter_sm_debug.standin import ssm

    options, _ = KINDS["entrypoint"]
    original = f"person-{uuid.uuid4().hex[:6]}"
    standin.create_job(original, schedule=FAILING, started_ago=FAILS_AFTER + 5, **options)
    copy = f"{original}-copy"
    status, job = await api("POST", "jobs", original, "debug-copy",
                            body={"hold_seconds": 600, "name": copy})  # fmt: skip
    assert status == 201, job
    standin.advance(FAILS_AFTER + 10)
    status, attached = await api("POST", "jobs", copy, "hosts", "algo-1", "terminals",
                                 body={"transport": "ssm"})  # fmt: skip
    assert status == 201, attached
    deadline = time.monotonic() + 15
    while ssm_looks.ssm_sessions(standin, standin.region, copy, "algo-1")[0] == 0:
        assert time.monotonic() < deadline, "the shell never reached the host"
        await asyncio.sleep(0.1)
    standin.reconcile()  # sees the session
    assert phase(sagemaker, copy) == ("InProgress", "Training")
    response = await jp_fetch("api", "terminals", attached["terminal"]["name"], method="DELETE")
    assert response.code == 204
    registry = ssm.registry(standin)

    def connected() -> bool:
        with registry.lock:
            return any(s.job == copy and s.status != "Terminated"
                       for s in registry.sessions.values())  # fmt: skip

    deadline = time.monotonic() + 15
    while connected():
        assert time.monotonic() < deadline, "the session never closed"
        await asyncio.sleep(0.1)
    standin.reconcile()  # the last session closed
    assert phase(sagemaker, copy) == ("Failed", "Failed")


# -- issue 23, finding 3: the copy's runtime limit covers the hold ----------------------------


def test_the_copys_stopping_condition_grows_by_the_hold():
    grown, note = hold.stopping_condition({"MaxRuntimeInSeconds": 45}, 1800)
    assert grown == {"MaxRuntimeInSeconds": 1845} and note == ""
    spot, _ = hold.stopping_condition(
        {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}, 600
    )
    assert spot == {"MaxRuntimeInSeconds": 4200, "MaxWaitTimeInSeconds": 4200}
    assert spot["MaxWaitTimeInSeconds"] >= spot["MaxRuntimeInSeconds"]
    default, _ = hold.stopping_condition(None, 600)
    assert default == {"MaxRuntimeInSeconds": hold.DEFAULT_MAX_RUNTIME + 600}
    # At the quota the copy keeps the source's own limit, and says the hold may be cut.
    full, note = hold.stopping_condition({"MaxRuntimeInSeconds": hold.RUNTIME_QUOTA_SECONDS}, 600)
    assert full == {"MaxRuntimeInSeconds": hold.RUNTIME_QUOTA_SECONDS}
    assert "may stop it before the hold window ends" in note
    longer, _ = hold.stopping_condition({"MaxRuntimeInSeconds": 28 * 86400}, 600)
    assert longer == {"MaxRuntimeInSeconds": 28 * 86400}  # an account with a raised quota


async def test_a_short_runtime_limit_no_longer_stops_the_held_copy(api, standin, sagemaker):
    """The issue's case: a source with a 45 s MaxRuntimeInSeconds (that failed in it). Its
    copy's limit grows by the hold, so the copy is still held after the source's limit."""
    name = f"short-{uuid.uuid4().hex[:6]}"
    request = seed.job_request(
        standin.region, name,
        schedule={"starting": 20, "downloading": 5, "training": 30, "outcome": "Failed"},
        container_entrypoint=["python", "/opt/ml/code/train.py"],
    )  # fmt: skip
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 45}
    sagemaker.create_training_job(**request)
    copy = f"{name}-copy"
    status, job = await api("POST", "jobs", name, "debug-copy",
                            body={"hold_seconds": 600, "name": copy})  # fmt: skip
    assert status == 201, job
    described = sagemaker.describe_training_job(TrainingJobName=copy)
    assert described["StoppingCondition"]["MaxRuntimeInSeconds"] == 645
    standin.advance(20 + 45 + 60)  # a minute past the source's own limit
    assert phase(sagemaker, copy) == ("InProgress", "Training")
    status, detail = await api("GET", "jobs", copy)
    assert status == 200 and detail["hold"], detail
    assert detail["hold"]["limited_by"] == "hold"


async def test_when_the_runtime_limit_is_shorter_the_dry_run_and_the_countdown_say_so(
    api, standin, sagemaker
):
    name = f"quota-{uuid.uuid4().hex[:6]}"
    request = seed.job_request(
        standin.region, name,
        schedule={"starting": 20, "downloading": 5, "training": 30, "outcome": "Failed"},
        container_entrypoint=["python", "/opt/ml/code/train.py"],
    )  # fmt: skip
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": hold.RUNTIME_QUOTA_SECONDS}
    sagemaker.create_training_job(**request)
    status, preview = await api("POST", "jobs", name, "debug-copy",
                                body={"dry_run": True, "hold_seconds": 600})  # fmt: skip
    assert status == 200 and preview["hold"]["possible"], preview
    assert "may stop it before the hold window ends" in preview["hold"]["reason"]
    # The countdown: min(hold end, runtime end), and which one it is.
    started = sagemaker.describe_training_job(TrainingJobName=name)["CreationTime"]
    from jupyter_sm_debug.description import hold_answer

    first = {"since": started.isoformat(), "until": "2999-01-01T00:00:00+00:00", "seconds": 600,
             "last_lines": []}  # fmt: skip
    shown = hold_answer(first, ["algo-1"], {"TrainingStartTime": started,
                        "StoppingCondition": {"MaxRuntimeInSeconds": 60}})  # fmt: skip
    assert shown["limited_by"] == "runtime"
    assert shown["until"].startswith(str(started.year))
    assert hold_answer(first, ["algo-1"], {})["limited_by"] == "hold"
