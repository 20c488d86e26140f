"""The local SageMaker stand-in, always through real boto3 over HTTP, on a manual clock."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from standin_shapes import check
from support import unique

from jupyter_sm_debug.standin import HostNotLive, StandIn, procs

SSH_OPTIONS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=10",
]  # fmt: skip


def client(standin: StandIn, service: str = "sagemaker", **config):
    env = standin.client_env()
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=env["AWS_REGION"],
    ).client(service, endpoint_url=env["AWS_ENDPOINT_URL"], config=Config(**config))


def no_retries(standin: StandIn, service: str = "sagemaker", **config):
    return client(standin, service, retries={"total_max_attempts": 1, "mode": "standard"}, **config)


def request(name: str, **extra) -> dict:
    body = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest",
            "TrainingInputMode": "File",
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    }
    body.update(extra)
    return body


def error_of(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    error = raised.value.response
    return (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


def control(standin: StandIn, path: str, body=None):
    """A control route over HTTP, signed with the stand-in's credentials."""
    return standin.control(path, body)


def ssh(standin: StandIn, job: str, host: str, command: str, key: str | None = None, **kwargs):
    addr, port = standin.host_address(job, host)
    argv = ["ssh", "-i", key or standin.client_key_path, "-p", str(port), *SSH_OPTIONS,
            f"{standin.ssh_user}@{addr}", command]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    server = StandIn(root=tmp_path_factory.mktemp("standin-own"), clock="manual")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sm(standin):
    return client(standin)


# -- state machine ------------------------------------------------------------------------


def test_a_job_walks_through_its_states_on_the_clock(standin, sm):
    name = unique("walk")
    arn = sm.create_training_job(**request(name))["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"

    def state():
        job = sm.describe_training_job(TrainingJobName=name)
        listed = sm.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
        assert [(s["TrainingJobStatus"], s["SecondaryStatus"]) for s in listed] == [
            (job["TrainingJobStatus"], job["SecondaryStatus"])
        ]
        return job

    job = state()
    created = job["CreationTime"].timestamp()
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("InProgress", "Starting")
    assert "TrainingStartTime" not in job and "TrainingEndTime" not in job
    walk = [(21, "Downloading"), (10, "Training"), (3600, "Uploading"), (10, "Completed")]
    for seconds, expected in walk:
        standin.advance(seconds)
        job = state()
        assert job["SecondaryStatus"] == expected, job
    assert job["TrainingJobStatus"] == "Completed"
    transitions = job["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"
    ]  # fmt: skip
    for before, after in zip(transitions, transitions[1:]):
        assert before["EndTime"] == after["StartTime"]
    assert transitions[0]["StartTime"].timestamp() == pytest.approx(created)
    assert job["TrainingStartTime"] == transitions[1]["StartTime"]
    assert job["TrainingEndTime"] == transitions[-1]["StartTime"] == job["LastModifiedTime"]
    assert job["TrainingTimeInSeconds"] == 3620
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/{name}/output/model.tar.gz")


def test_failed_outcome_from_tags_carries_the_reason(standin, sm):
    name = unique("fails")
    tags = [
        {"Key": "standin:training-seconds", "Value": "60"},
        {"Key": "standin:outcome", "Value": "Failed"},
        {"Key": "standin:failure-reason", "Value": "AlgorithmError: exit code 1"},
    ]
    sm.create_training_job(**request(name, Tags=tags))
    standin.advance(20 + 10 + 30)
    assert sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training"
    standin.advance(31)
    job = sm.describe_training_job(TrainingJobName=name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"] == "AlgorithmError: exit code 1"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Training", "Failed"]
    tags_back = sm.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {"Key": "standin:outcome", "Value": "Failed"} in tags_back


def test_bad_stand_in_tags_are_validation_errors(sm):
    for tag in ({"Key": "standin:training-seconds", "Value": "soon"},
                {"Key": "standin:outcome", "Value": "Exploded"},
                {"Key": "standin:nonsense", "Value": "1"}):  # fmt: skip
        code, message, status = error_of(
            sm.create_training_job, **request(unique("tag"), Tags=[tag])
        )
        assert (code, status) == ("ValidationException", 400), message


def test_max_runtime_stops_the_job(standin, sm):
    name = unique("maxrt")
    sm.create_training_job(**request(name, StoppingCondition={"MaxRuntimeInSeconds": 100}))
    standin.advance(20 + 100 + 1)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopping"
    standin.advance(10)
    job = sm.describe_training_job(TrainingJobName=name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


# -- UpdateTrainingJob and StopTrainingJob ------------------------------------------------


def test_remote_debug_can_change_only_while_downloading_or_training(standin, sm):
    name = unique("update")
    sm.create_training_job(**request(name, RemoteDebugConfig={"EnableRemoteDebug": False}))

    def flip(value):
        return sm.update_training_job(
            TrainingJobName=name, RemoteDebugConfig={"EnableRemoteDebug": value}
        )

    code, message, _ = error_of(flip, True)
    assert code == "ValidationException"
    assert "Downloading or Training" in message and "Starting" in message
    standin.advance(21)  # Downloading
    assert flip(True)["TrainingJobArn"].endswith(name)
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
    assert job["LastModifiedTime"].timestamp() == pytest.approx(standin.now(), abs=0.01)
    standin.advance(10)  # Training
    flip(False)
    assert sm.describe_training_job(TrainingJobName=name)["RemoteDebugConfig"] == {
        "EnableRemoteDebug": False
    }
    standin.advance(3600)  # Uploading
    code, message, _ = error_of(flip, True)
    assert code == "ValidationException" and "Uploading" in message
    standin.advance(10)  # Completed
    code, message, _ = error_of(flip, True)
    assert code == "ValidationException" and "Completed" in message


def test_remote_debug_is_refused_with_network_isolation(standin, sm):
    code, message, _ = error_of(
        sm.create_training_job,
        **request(
            unique("iso"),
            EnableNetworkIsolation=True,
            RemoteDebugConfig={"EnableRemoteDebug": True},
        ),
    )
    assert code == "ValidationException" and "network isolation" in message
    name = unique("iso")
    sm.create_training_job(**request(name, EnableNetworkIsolation=True))
    standin.advance(40)
    code, message, _ = error_of(
        sm.update_training_job, TrainingJobName=name, RemoteDebugConfig={"EnableRemoteDebug": True}
    )
    assert code == "ValidationException" and "network isolation" in message


def test_stop_goes_through_stopping_to_stopped(standin, sm):
    name = unique("stop")
    sm.create_training_job(**request(name))
    standin.advance(100)
    assert sm.stop_training_job(TrainingJobName=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    job = sm.describe_training_job(TrainingJobName=name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopping", "Stopping")
    code, message, _ = error_of(sm.stop_training_job, TrainingJobName=name)
    assert code == "ValidationException" and "Stopping" in message
    standin.advance(6)
    job = sm.describe_training_job(TrainingJobName=name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Stopping", "Stopped"
    ]  # fmt: skip
    assert job["TrainingEndTime"] == job["SecondaryStatusTransitions"][-1]["StartTime"]
    code, message, _ = error_of(sm.stop_training_job, TrainingJobName=name)
    assert code == "ValidationException" and "Stopped" in message


def test_unknown_jobs_and_duplicates_answer_like_sagemaker(sm):
    ghost = unique("ghost")
    assert error_of(sm.describe_training_job, TrainingJobName=ghost)[:2] == (
        "ValidationException",
        "Requested resource not found.",
    )
    code, _, status = error_of(
        sm.update_training_job, TrainingJobName=ghost, RemoteDebugConfig={"EnableRemoteDebug": True}
    )
    assert (code, status) == ("ResourceNotFound", 400)
    assert error_of(sm.stop_training_job, TrainingJobName=ghost)[0] == "ResourceNotFound"
    name = unique("dup")
    sm.create_training_job(**request(name))
    code, message, _ = error_of(sm.create_training_job, **request(name))
    assert code == "ResourceInUse" and "already exists" in message


# -- validation ------------------------------------------------------------------------------


def test_requests_are_validated_on_the_server(standin, sm):
    raw = client(standin, parameter_validation=False)  # what a non-boto3 client could send
    code, message, status = error_of(
        raw.create_training_job, **{k: v for k, v in request(unique("v")).items() if k != "RoleArn"}
    )
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: "
        "Member must not be null"
    )
    code, message, _ = error_of(raw.describe_training_job, TrainingJobName="bad;name")
    assert code == "ValidationException" and "regular expression pattern" in message
    code, message, _ = error_of(raw.describe_training_job, TrainingJobName="x" * 64)
    assert code == "ValidationException" and "less than or equal to 63" in message
    code, message, _ = error_of(
        raw.create_training_job,
        **request(unique("v"), ResourceConfig={"InstanceType": "ml.m5.xlarge",
                                               "InstanceCount": "two"}),
    )  # fmt: skip
    assert code == "ValidationException" and "resourceConfig.instanceCount" in message
    # What boto3 itself lets through, AWS checks: maximums and enums.
    code, message, _ = error_of(sm.list_training_jobs, MaxResults=1000)
    assert code == "ValidationException" and "less than or equal to 100" in message
    code, message, _ = error_of(sm.list_training_jobs, StatusEquals="Running")
    assert code == "ValidationException" and "enum value set" in message
    code, message, _ = error_of(
        sm.create_training_job,
        **request(unique("v"), ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                                               "InstanceGroups": [{"InstanceType": "ml.m5.xlarge",
                                                                   "InstanceCount": 1,
                                                                   "InstanceGroupName": "a"}]}),
    )  # fmt: skip
    assert code == "ValidationException" and "not both" in message
    code, _, _ = error_of(sm.list_training_jobs, NextToken="forged")
    assert code == "ValidationException"


# -- ListTrainingJobs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    """260 jobs in mixed states, hosts off (as in the benchmarks)."""
    server = StandIn(root=tmp_path_factory.mktemp("standin-crowd"), clock="manual", hosts=False)
    server.start()
    for index in range(260):
        ago = {0: 0, 1: 100, 2: 5000}[index % 3]  # Starting, Training, Completed
        # Distinct creation times, later index = newer within each third.
        server.create_job(f"crowd-{index:03d}", started_ago=ago + (260 - index) / 100)
    yield server
    server.stop()


def pages(sm, **query):
    names, count = [], 0
    for page in sm.get_paginator("list_training_jobs").paginate(**query):
        count += 1
        names += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
    return names, count


def test_list_pages_sorts_and_filters_hundreds_of_jobs(crowd):
    sm = client(crowd)
    names, count = pages(sm, PaginationConfig={"PageSize": 100})
    assert count == 3 and len(names) == len(set(names)) == 260
    first = sm.list_training_jobs()
    assert len(first["TrainingJobSummaries"]) == 10 and first["NextToken"]  # default page size

    by_name, _ = pages(sm, SortBy="Name", SortOrder="Descending")
    assert by_name == sorted(by_name, reverse=True) and len(by_name) == 260

    created = [
        s["CreationTime"]
        for page in sm.get_paginator("list_training_jobs").paginate(SortOrder="Descending")
        for s in page["TrainingJobSummaries"]
    ]
    assert created == sorted(created, reverse=True)

    completed, _ = pages(sm, StatusEquals="Completed")
    assert len(completed) == 86 and all(int(n[-3:]) % 3 == 2 for n in completed)
    in_progress, _ = pages(sm, StatusEquals="InProgress", SortBy="Status")
    assert len(in_progress) == 174

    summaries = sm.list_training_jobs(NameContains="crowd-00", MaxResults=100, SortBy="Name")
    assert [s["TrainingJobName"] for s in summaries["TrainingJobSummaries"]] == [
        f"crowd-{i:03d}" for i in range(10)
    ]
    assert {"SecondaryStatus", "LastModifiedTime"} <= set(summaries["TrainingJobSummaries"][0])

    everything = {
        s["TrainingJobName"]: s["CreationTime"]
        for page in sm.get_paginator("list_training_jobs").paginate()
        for s in page["TrainingJobSummaries"]
    }
    # boto3 sends whole seconds: cut at a whole second.
    cut = everything["crowd-129"].replace(microsecond=0)
    after, _ = pages(sm, CreationTimeAfter=cut)
    before, _ = pages(sm, CreationTimeBefore=cut)
    assert sorted(after) == sorted(n for n, t in everything.items() if t > cut)
    assert sorted(before) == sorted(n for n, t in everything.items() if t < cut)
    assert after and before

    started = time.perf_counter()
    crowd_big_pages, _ = pages(sm, PaginationConfig={"PageSize": 100}, SortBy="Status")
    assert len(crowd_big_pages) == 260
    assert time.perf_counter() - started < 5


def test_a_list_by_creation_time_agrees_with_the_full_sort(crowd):
    """The creation-time index answers exactly what sorting every job answers (the
    LastModifiedTimeAfter filter, matching every job, takes the sorting path)."""
    import datetime

    sm = client(crowd)
    epoch = datetime.datetime(1970, 1, 2, tzinfo=datetime.timezone.utc)
    cut = sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"][50]["CreationTime"]
    for query in (
        {},
        {"SortOrder": "Descending"},
        {"SortOrder": "Descending", "NameContains": "CROWD-1"},
        {"NameContains": "9"},
        {"SortOrder": "Descending", "CreationTimeAfter": cut.replace(microsecond=0)},
        {"CreationTimeBefore": cut.replace(microsecond=0)},
    ):
        for size in (7, 100):
            config = {"PaginationConfig": {"PageSize": size}}
            indexed = pages(sm, **query, **config)[0]
            assert indexed == pages(sm, **query, **config, LastModifiedTimeAfter=epoch)[0], query
            assert indexed, query


def test_a_page_by_creation_time_looks_at_the_page_only(tmp_path, monkeypatch):
    """ListTrainingJobs' first page costs the same with 2,000 jobs as with 20: only the
    page's jobs are brought to the clock's time (it sorted all of them before)."""
    from jupyter_sm_debug.standin import sagemaker

    server = StandIn(root=tmp_path, clock="manual", hosts=False)
    server.start()
    try:
        server.control("jobs", {"jobs": [
            {"name": f"many-{i:04d}", "started_ago": 600 + i, "schedule": {"training": 300}}
            for i in range(2000)
        ]})  # fmt: skip
        looked = []
        at = sagemaker.Job.at
        monkeypatch.setattr(sagemaker.Job, "at", lambda job, t: looked.append(job) or at(job, t))
        sm = client(server)
        first = sm.list_training_jobs(MaxResults=20, SortOrder="Descending")
        assert [s["TrainingJobName"] for s in first["TrainingJobSummaries"]] == [
            f"many-{i:04d}" for i in range(20)
        ]
        second = sm.list_training_jobs(
            MaxResults=20, SortOrder="Descending", NextToken=first["NextToken"]
        )
        assert second["TrainingJobSummaries"][0]["TrainingJobName"] == "many-0020"
        # The clock's own tick looks at the seeded demo's lived jobs now and then: count
        # only the 2,000 listed here.
        assert len([job for job in looked if job.name.startswith("many-")]) == 40
    finally:
        server.stop()


def test_the_jobs_route_seeds_jobs_as_create_training_job_does(tmp_path):
    server = StandIn(root=tmp_path, clock="manual", hosts=False)
    server.start()
    try:
        spec = {"instance_count": 2, "remote_debug": True, "schedule": {"training": 900},
                "started_ago": 400}  # fmt: skip
        server.create_job("through-the-api", **spec)
        assert control(server, "jobs", {"jobs": [{"name": "seeded", **spec}]}) == {"created": 1}
        sm = client(server)
        api, seeded = (
            sm.describe_training_job(TrainingJobName=name) for name in ("through-the-api", "seeded")
        )
        api.pop("ResponseMetadata"), seeded.pop("ResponseMetadata")
        renamed = json.loads(json.dumps(api, default=str).replace("through-the-api", "seeded"))
        assert renamed == json.loads(json.dumps(seeded, default=str))
        assert seeded["TrainingJobStatus"] == "InProgress"
        with pytest.raises(urllib.error.HTTPError) as refused:
            control(server, "jobs", {"jobs": [{"name": "bad", "instance_count": 0}]})
        assert refused.value.code == 400
        with pytest.raises(urllib.error.HTTPError):
            control(server, "jobs", {"jobs": "many"})
    finally:
        server.stop()


# -- wire shapes ------------------------------------------------------------------------------


def test_responses_match_botocore_output_shapes(standin):
    sm = client(standin)
    raw: list[tuple[str, bytes]] = []
    sm.meta.events.register(
        "after-call.sagemaker.*",
        lambda http_response, model, **_: raw.append((model.name, http_response.content)),
    )
    name = unique("shape")
    sm.create_training_job(
        **request(
            name,
            HyperParameters={"epochs": "3"},
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train"}}}],
            RemoteDebugConfig={"EnableRemoteDebug": True},
            Tags=[{"Key": "team", "Value": "ml"}],
        )
    )  # fmt: skip
    hetero = unique("shape-h")
    groups = [{"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "InstanceGroupName": "a"}]
    sm.create_training_job(**request(hetero, ResourceConfig={"InstanceGroups": groups}))
    for seconds in (0, 25, 10, 3600, 10):  # every phase up to Completed
        standin.advance(seconds)
        job = sm.describe_training_job(TrainingJobName=name)
        sm.describe_training_job(TrainingJobName=hetero)
        sm.list_training_jobs(NameContains="shape", MaxResults=5)
        if job["SecondaryStatus"] == "Training":
            sm.update_training_job(
                TrainingJobName=name, RemoteDebugConfig={"EnableRemoteDebug": True}
            )
    sm.list_tags(ResourceArn=job["TrainingJobArn"])
    stopped = unique("shape-s")
    sm.create_training_job(**request(stopped))
    sm.stop_training_job(TrainingJobName=stopped)
    sm.describe_training_job(TrainingJobName=stopped)
    assert {operation for operation, _ in raw} >= {
        "CreateTrainingJob", "DescribeTrainingJob", "ListTrainingJobs", "UpdateTrainingJob",
        "StopTrainingJob", "ListTags",
    }  # fmt: skip
    for operation, body in raw:
        assert check("sagemaker", operation, body) == [], (operation, body)


# -- hosts ------------------------------------------------------------------------------------


def test_heterogeneous_hosts_are_numbered_across_groups(standin):
    name = unique("hetero")
    standin.create_job(
        name,
        instance_groups=[("preproc", "ml.c5.4xlarge", 1), ("train", "ml.g5.12xlarge", 2)],
        started_ago=60,
    )
    expected = [("algo-1", "preproc", "ml.c5.4xlarge"), ("algo-2", "train", "ml.g5.12xlarge"),
                ("algo-3", "train", "ml.g5.12xlarge")]  # fmt: skip
    for host, group, instance_type in expected:
        env, cwd = standin.host_env(name, host)
        assert env["SM_CURRENT_HOST"] == host
        assert env["SM_CURRENT_INSTANCE_GROUP"] == group
        assert env["SM_CURRENT_INSTANCE_TYPE"] == instance_type
        assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2", "algo-3"]
        assert cwd.endswith(f"/{name}/{host}/opt/ml")
        with open(os.path.join(env["SM_INPUT_CONFIG_DIR"], "resourceconfig.json")) as config:
            resource = json.load(config)
        assert resource["current_host"] == host and resource["current_group_name"] == group
        assert [g["instance_group_name"] for g in resource["instance_groups"]] == [
            "preproc",
            "train",
        ]
        assert resource["instance_groups"][1]["hosts"] == ["algo-2", "algo-3"]
    state = next(j for j in control(standin, "state")["jobs"] if j["name"] == name)
    assert [h["name"] for h in state["hosts"]] == ["algo-1", "algo-2", "algo-3"]
    assert all(h["live"] for h in state["hosts"])
    with pytest.raises(HostNotLive):
        standin.host_shell_argv(name, "algo-4")


def test_ssh_reaches_the_right_host_with_the_stand_in_key_only(standin, tmp_path):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = unique("ssh")
    standin.create_job(name, instance_count=2, started_ago=60)
    result = ssh(
        standin, name, "algo-2",
        "echo $SM_CURRENT_HOST; cat $SM_INPUT_CONFIG_DIR/resourceconfig.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    host, _, config = result.stdout.partition("\n")
    assert host == "algo-2"
    assert json.loads(config)["current_host"] == "algo-2"

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    refused = ssh(standin, name, "algo-2", "echo in", key=str(other))
    assert refused.returncode == 255 and "in" not in refused.stdout.split()
    assert "Permission denied" in refused.stderr


def test_hosts_and_their_sessions_end_with_the_job(standin):
    if standin.sshd_missing_hint:
        pytest.skip(standin.sshd_missing_hint)
    name = unique("ends")
    standin.create_job(name, started_ago=60, schedule={"training": 100})
    live = standin.backends.hosts.get(standin.region, name, "algo-1")
    sshd_pid = live.sshd.pid
    addr, port = standin.host_address(name, "algo-1")
    # The host's own processes (its training, its init) hold the token too.
    wanted = len(procs.holders(live.token)) + 3
    session = subprocess.Popen(
        ["ssh", "-i", standin.client_key_path, "-p", str(port), *SSH_OPTIONS,
         f"{standin.ssh_user}@{addr}", "sleep 300 & sleep 301"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    argv = standin.host_shell_argv(name, "algo-1")
    shell = subprocess.Popen([*argv], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while len(procs.holders(live.token)) < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    holders = procs.holders(live.token)
    assert len(holders) >= wanted, holders  # the ssh session's sleeps, the local shell
    standin.advance(200)  # Uploading, then Completed: the containers are gone
    assert standin.host_address(name, "algo-1") is None
    assert not procs.alive(sshd_pid)
    assert not any(procs.alive(pid) for pid in holders)
    assert session.wait(timeout=10) != 0  # the connection was closed under it
    assert shell.wait(timeout=10) != 0


def test_a_lost_host_fails_the_job_and_ends_all_its_hosts(standin, sm):
    name = unique("lost")
    standin.create_job(name, instance_count=2, started_ago=60)
    assert standin.host_shell_argv(name, "algo-1")
    assert control(standin, "kill-host", {"job": name, "host": "algo-2"}) == {
        "killed": f"{name}/algo-2"
    }
    job = sm.describe_training_job(TrainingJobName=name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert "algo-2 was lost" in job["FailureReason"] and "exit code: 137" in job["FailureReason"]
    for host in ("algo-1", "algo-2"):
        with pytest.raises(HostNotLive):
            standin.host_env(name, host)
    with pytest.raises(urllib.error.HTTPError) as again:
        control(standin, "kill-host", {"job": name, "host": "algo-2"})
    assert again.value.code == 400


def test_stop_ends_every_host_and_removes_its_files(tmp_path):
    server = StandIn(clock="manual")
    server.start()
    root = server.root
    server.create_job("ending", instance_count=2, started_ago=60)
    live = [server.backends.hosts.get(server.region, "ending", h) for h in ("algo-1", "algo-2")]
    argv = server.host_shell_argv("ending", "algo-2")
    shell = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while not procs.holders(live[1].token) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [h.sshd.pid for h in live if h.sshd] + list(procs.holders(live[1].token))
    server.stop()
    server.stop()  # idempotent
    assert not any(procs.alive(pid) for pid in pids)
    assert shell.wait(timeout=10) != 0
    assert not root.exists()


def test_hosts_without_sshd_still_have_shells(tmp_path):
    server = StandIn(root=tmp_path, clock="manual")
    server.backends.hosts.ssh.sshd = None  # as on a machine without openssh-server
    server.start()
    try:
        assert "apt-get install openssh-server" in server.sshd_missing_hint
        server.create_job("no-ssh", started_ago=60)
        assert server.host_address("no-ssh", "algo-1") is None
        argv = server.host_shell_argv("no-ssh", "algo-1")
        result = subprocess.run(
            argv, input="echo $SM_CURRENT_HOST $SM_TRAINING_JOB_NAME\n", capture_output=True,
            text=True, timeout=20,
        )  # fmt: skip
        assert "algo-1 no-ssh" in result.stdout
    finally:
        server.stop()
    assert tmp_path.exists() and not (tmp_path / "_standin").exists()


def test_log_streams_carry_training_lines_and_the_ssh_line(standin):
    name = unique("logs")
    standin.create_job(name, instance_count=2, started_ago=60)
    logs = client(standin, "logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/"
    )["logStreams"]
    created = client(standin).describe_training_job(TrainingJobName=name)
    start = int(created["TrainingStartTime"].timestamp())
    assert [s["logStreamName"] for s in streams] == [
        f"{name}/algo-1-{start}",
        f"{name}/algo-2-{start}",
    ], created
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=streams[1]["logStreamName"],
        startFromHead=True,
    )["events"]
    messages = [e["message"] for e in events]
    assert any("Invoking user script" in m for m in messages)
    ssh_lines = [m for m in messages if m.startswith("SM_DEBUG_SSH ")]
    if standin.sshd_missing_hint:
        assert ssh_lines == []
    else:
        addr, port = standin.host_address(name, "algo-2")
        assert len(ssh_lines) == 1
        assert re.fullmatch(
            rf"SM_DEBUG_SSH host=algo-2 addr={addr} port={port} hostkey=ssh-ed25519:\S+",
            ssh_lines[0],
        )
        found = logs.filter_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamNamePrefix=name,
            filterPattern="SM_DEBUG_SSH",
        )["events"]
        assert len(found) == 2


# -- faults and control routes ---------------------------------------------------------------


def test_latency_throttling_and_outage_are_visible_to_boto3(standin):
    sm = no_retries(standin)
    sts = no_retries(standin, "sts")
    try:
        standin.set_faults(latency=0.3)
        started = time.perf_counter()
        sm.list_training_jobs(MaxResults=1)
        assert time.perf_counter() - started >= 0.3
        standin.set_faults(latency=0.0, throttle=2, throttle_action="ListTrainingJobs")
        # Other actions do not use up the throttle.
        assert (
            error_of(sm.describe_training_job, TrainingJobName="ghost")[0] == "ValidationException"
        )
        assert error_of(sm.list_training_jobs)[::2] == ("ThrottlingException", 400)
        assert error_of(sm.list_training_jobs)[0] == "ThrottlingException"
        sm.list_training_jobs()  # the two are used up
        standin.set_faults(throttle=1, throttle_action=None)  # any action
        assert error_of(sts.get_caller_identity)[0] == "Throttling"  # query protocol too
        assert sts.get_caller_identity()["Account"] == "123456789012"
        control(standin, "faults", {"down": True})
        assert error_of(sm.list_training_jobs)[::2] == ("ServiceUnavailable", 503)
        assert control(standin, "state")["faults"]["down"] is True  # control routes still work
    finally:
        standin.clear_faults()
    sm.list_training_jobs()


def test_control_routes_drive_the_clock_and_reset(tmp_path):
    server = StandIn(root=tmp_path, clock="manual", hosts=False)
    server.start()
    try:
        server.create_job("ctl", started_ago=0)
        before = control(server, "state")
        assert [j["secondary_status"] for j in before["jobs"]] == ["Starting"]
        moved = control(server, "clock", {"advance": 25})
        assert moved["now"] == pytest.approx(before["clock"]["now"] + 25)
        assert control(server, "state")["jobs"][0]["secondary_status"] == "Downloading"
        assert control(server, "faults", {"latency": 0.05})["latency"] == 0.05
        with pytest.raises(urllib.error.HTTPError) as bad:
            control(server, "faults", {"latency": -1})
        assert bad.value.code == 400
        control(server, "reset", {})
        state = control(server, "state")
        assert state["jobs"] == [] and state["faults"]["latency"] == 0.0
    finally:
        server.stop()


def test_ssm_sessions_are_validated_by_the_ssm_backend(standin):
    ssm = no_retries(standin, "ssm", parameter_validation=False)
    code, _, status = error_of(ssm.start_session)  # no Target
    assert (code, status) == ("ValidationException", 400)


def test_real_clock_moves_jobs_and_hosts_by_itself(tmp_path):
    server = StandIn(root=tmp_path, clock="real")
    server.start()
    try:
        sm = client(server)
        server.create_job(
            "realtime",
            schedule={"starting": 1.0, "downloading": 0.3, "training": 1.5, "uploading": 0.3},
        )
        states, addresses = [], []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            job = sm.describe_training_job(TrainingJobName="realtime")
            if not states or states[-1] != job["SecondaryStatus"]:
                states.append(job["SecondaryStatus"])
            if job["SecondaryStatus"] == "Training":
                addresses.append(server.host_address("realtime", "algo-1"))
            if job["TrainingJobStatus"] == "Completed":
                break
            time.sleep(0.1)
        assert states[0] == "Starting" and states[-1] == "Completed" and "Training" in states
        assert server.host_address("realtime", "algo-1") is None
        if not server.sshd_missing_hint:
            assert any(address is not None for address in addresses)
    finally:
        server.stop()


def test_demo_seed_has_every_kind_of_job(tmp_path):
    server = StandIn(root=tmp_path, clock="manual", seed="demo", hosts=False)
    server.start()
    try:
        sm = client(server)
        jobs = {
            prefix: sm.describe_training_job(TrainingJobName=name)
            for prefix, name in server.seeded_jobs.items()
        }
        phase = {p: (j["TrainingJobStatus"], j["SecondaryStatus"]) for p, j in jobs.items()}
        assert phase["llama-finetune"] == ("InProgress", "Training")
        assert jobs["llama-finetune"]["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
        assert jobs["resnet50-ddp-4node"]["ResourceConfig"]["InstanceCount"] == 4
        assert jobs["resnet50-ddp-4node"]["RemoteDebugConfig"] == {"EnableRemoteDebug": False}
        groups = jobs["hetero-preprocess-train"]["ResourceConfig"]["InstanceGroups"]
        assert [g["InstanceGroupName"] for g in groups] == ["preproc", "train"]
        # gpt2-pretrain-ddp is one of them: crashed, held by sm-debug-entrypoint (still Training).
        assert sorted(phase.values()).count(("InProgress", "Training")) == 5
        assert ("InProgress", "Starting") in phase.values()
        assert {("Completed", "Completed"), ("Failed", "Failed"), ("Stopped", "Stopped")} <= set(
            phase.values()
        )
        failed = next(j for j in jobs.values() if j["TrainingJobStatus"] == "Failed")
        assert "CUDA out of memory" in failed["FailureReason"]
        assert any(j["EnableNetworkIsolation"] for j in jobs.values())
        server.advance(4 * 3600)  # running demo jobs keep training for hours
        assert (
            sm.describe_training_job(TrainingJobName=server.seeded_jobs["llama-finetune"])[
                "SecondaryStatus"
            ]
            == "Training"
        )
    finally:
        server.stop()


def test_hosts_do_not_outlive_a_killed_stand_in(tmp_path):
    """SIGKILL gives stop() no chance: the reaper ends the sshds and shells."""
    script = (
        "import json, sys, time\n"
        "from jupyter_sm_debug.standin import StandIn\n"
        "s = StandIn(clock='manual')\n"
        "s.start()\n"
        "s.create_job('orphans', instance_count=2, started_ago=60)\n"
        "live = [s.backends.hosts.get(s.region, 'orphans', h) for h in ('algo-1', 'algo-2')]\n"
        "print(json.dumps({'root': str(s.root), 'tokens': [h.token for h in live],\n"
        "    'sshd': [h.sshd.pid for h in live if h.sshd],\n"
        "    'argv': s.host_shell_argv('orphans', 'algo-1')}), flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    facts = json.loads(child.stdout.readline())
    shell = subprocess.Popen(facts["argv"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while not procs.holders(facts["tokens"][0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = facts["sshd"] + sorted(procs.holders(facts["tokens"][0]))
    assert all(procs.alive(pid) for pid in pids) and pids
    child.kill()
    child.wait()
    deadline = time.monotonic() + 15
    while any(procs.alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(procs.alive(pid) for pid in pids)
    assert shell.wait(timeout=10) != 0
    while os.path.exists(facts["root"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(facts["root"])
