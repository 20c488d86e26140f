"""Stacks of all hosts, host state and run on all hosts, against the stand-in's hosts whose
multi-process training hangs in one rank (job tag standin:hang-rank)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

pytestmark = pytest.mark.usefixtures("standin")


def hanging_job(standin, rank="6@2", hosts=3) -> str:
    """ml.g5.12xlarge: 4 ranks per host; global rank 6 is algo-2's third."""
    name = f"hang-{uuid.uuid4().hex[:8]}"
    standin.create_job(
        name, instance_count=hosts, instance_type="ml.g5.12xlarge", remote_debug=True,
        started_ago=600, tags=[{"Key": "standin:hang-rank", "Value": rank}],
        environment={"SM_STANDIN_STEP_SECONDS": "0.2"},
    )  # fmt: skip
    return name


async def stacks_until_outlier(api, job, **body):
    deadline = time.monotonic() + 40
    while True:
        status, answer = await api("POST", "jobs", job, "stacks", body=body)
        assert status == 200, answer
        if answer["outliers"] or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_the_hanging_rank_stands_apart_from_the_waiting_ones(api, standin, transport):
    job = hanging_job(standin)
    answer = await stacks_until_outlier(api, job, transport=transport)
    assert len(answer["outliers"]) == 1, (answer["text"], answer["hosts"])
    outlier = next(g for g in answer["groups"] if g["outlier"])
    assert outlier["hosts"] == ["algo-2"] and outlier["count"] == 1
    assert outlier["headline"].startswith("_read_shard_blocking at train.py:")
    waiting = next(g for g in answer["groups"] if g["headline"].startswith("_wait_for_peers"))
    assert waiting["hosts_text"] == "algo-1..3" and waiting["count"] == 11
    assert not waiting["outlier"]
    # Only the training's processes (launcher + 4 ranks per host), nothing of the sessions.
    for host in ("algo-1", "algo-2", "algo-3"):
        assert "error" not in answer["hosts"][host], answer["hosts"][host]
        processes = answer["hosts"][host]["processes"]
        assert len(processes) == 5, processes
        assert all(p["command"].startswith("python train.py") for p in processes)
    assert "<-- OUTLIER" in answer["text"]


@pytest.mark.parametrize("transport", ["ssh", "ssm"])
async def test_py_spy_is_sent_when_the_container_lacks_it_and_kept(
    api, standin, jp_serverapp, transport
):
    config = jp_serverapp.web_app.settings["sm_debug"].config
    config.stacks_py_spy = "push"  # as if the image had no py-spy of its own
    job = hanging_job(standin, hosts=2)
    started = time.monotonic()
    status, first = await api("POST", "jobs", job, "stacks", body={"transport": transport})
    pushed_in = time.monotonic() - started
    assert status == 200, first
    assert {h["py_spy"] for h in first["hosts"].values()} == {"pushed"}, first["hosts"]
    assert all(h["processes"] and "error" not in h for h in first["hosts"].values()), first
    started = time.monotonic()
    status, second = await api("POST", "jobs", job, "stacks", body={"transport": transport})
    assert {h["py_spy"] for h in second["hosts"].values()} == {"cached"}
    cached_in = time.monotonic() - started
    print(f"{transport}: first dump with push {pushed_in:.1f} s, cached {cached_in:.1f} s")
    config.stacks_py_spy = "auto"
    status, third = await api("POST", "jobs", job, "stacks", body={"transport": transport})
    assert {h["py_spy"] for h in third["hosts"].values()} == {"container"}


async def test_host_state_reads_the_gpus_or_says_there_are_none(api, standin, demo_jobs):
    job = hanging_job(standin, hosts=1)
    status, state = await api("GET", "jobs", job, "hosts", "algo-1", "state", transport="ssh")
    assert status == 200, state
    assert [g["index"] for g in state["gpus"]] == [0, 1, 2, 3]
    assert all(g["name"] == "NVIDIA A10G (stand-in)" for g in state["gpus"])
    assert all(0 < g["memory_used_mib"] < g["memory_total_mib"] == 23028 for g in state["gpus"])
    assert len(state["load"]) == 3 and state["memory"]["total_bytes"] > 0
    assert state["disk"]["total_bytes"] > 0
    assert any("train.py" in p["command"] for p in state["processes"])
    cpu_job = f"cpu-{uuid.uuid4().hex[:8]}"
    standin.create_job(cpu_job, started_ago=600, remote_debug=True)
    status, state = await api("GET", "jobs", cpu_job, "hosts", "algo-1", "state", transport="ssm")
    assert status == 200, state
    assert state["gpus"] == [] and state["gpu_note"].startswith("No GPU")


async def test_run_on_all_hosts_answers_per_host(api, standin):
    job = hanging_job(standin, hosts=2)
    status, answer = await api(
        "POST", "jobs", job, "run",
        body={"shell": "echo $SM_CURRENT_HOST; echo oops >&2; exit 4", "transport": "ssh"},
    )  # fmt: skip
    assert status == 200, answer
    for host in ("algo-1", "algo-2"):
        result = answer["hosts"][host]
        assert (result["exit_code"], result["stdout"], result["stderr"]) == (
            4,
            f"{host}\n",
            "oops\n",
        )
    status, answer = await api(
        "POST", "jobs", job, "run",
        body={"argv": ["echo", "$(id)", ";", "`x`"], "hosts": ["algo-2"], "transport": "ssm"},
    )  # fmt: skip
    assert status == 200, answer
    assert list(answer["hosts"]) == ["algo-2"]
    assert answer["hosts"]["algo-2"]["stdout"] == "$(id) ; `x`\n"


HOSTILE_RUN_BODIES = [
    {},
    {"argv": "id"},
    {"argv": []},
    {"argv": [""]},
    {"argv": ["id", 3]},
    {"argv": ["id\0x"]},
    {"argv": ["x"] * 300},
    {"argv": ["id"], "shell": "id"},
    {"shell": ""},
    {"shell": ["id"]},
    {"argv": ["id"], "hosts": "algo-1"},
    {"argv": ["id"], "hosts": ["algo-1; rm -rf /"]},
    {"argv": ["id"], "hosts": ["-oProxyCommand=x"]},
    {"argv": ["id"], "hosts": ["algo-9"]},
    {"argv": ["id"], "hosts": []},
    {"argv": ["id"], "timeout": -1},
    {"argv": ["id"], "timeout": "5"},
    {"argv": ["id"], "timeout": True},
    {"argv": ["id"], "timeout": 1e9},
    {"argv": ["id"], "transport": ["ssh"]},
    {"argv": ["id"], "transport": "telnet"},
    {"argv": ["id"], "user": "root"},
    {"argv": ["id"], "hosts": None},
    {"argv": ["id"], "timeout": None},
    {"argv": ["id"], "transport": None},
    {"argv": ["id"], "transport": ""},
    {"argv": None},
]


@pytest.mark.parametrize("body", HOSTILE_RUN_BODIES)
async def test_hostile_run_requests_are_4xx_json(api, demo_jobs, body):
    job = demo_jobs["hetero-preprocess-train"]
    status, answer = await api("POST", "jobs", job, "run", body=body)
    assert 400 <= status < 500, (status, answer)
    assert set(answer["error"]) == {"code", "message", "hint"}


@pytest.mark.parametrize(
    "path",
    [
        ("jobs", "bad;name", "stacks"),
        ("jobs", "-oProxyCommand=x", "run"),
        ("jobs", "no-such-job-x", "stacks"),
    ],
)
async def test_hostile_job_names_are_4xx_json(api, path):
    status, answer = await api("POST", *path, body={"argv": ["id"]})
    assert 400 <= status < 500, (status, answer)
    assert "error" in answer


@pytest.mark.parametrize("host", ["algo-0", "algo-99", "x;id", "..", "algo-1 "])
async def test_hostile_hosts_of_host_state_are_4xx_json(api, demo_jobs, host):
    job = demo_jobs["hetero-preprocess-train"]
    status, answer = await api("GET", "jobs", job, "hosts", host, "state")
    assert 400 <= status < 500, (status, answer)
    assert "error" in answer


async def test_stacks_of_a_finished_job_is_409(api, demo_jobs, sagemaker):
    pages = sagemaker.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    status, answer = await api("POST", "jobs", pages[0]["TrainingJobName"], "stacks")
    assert status == 409, answer
