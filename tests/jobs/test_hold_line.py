"""Issue 22, finding 7: the hold line is believed only as our own wrapper or
sm-debug-entrypoint writes it: a whole line, whole seconds, bounded, a failed exit code.

Training code writes to the same log stream, so a line it prints must neither fail the job's
detail (it was a 500 for `seconds=1.2.3`) nor show a healthy job as held (`seconds=86400`
in the middle of a line showed 24 hours)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest
from held_jobs import FAILING, WRAPPED
from support import unique

from jupyter_sm_debug import hold, logs
from jupyter_sm_debug.standin import trainlog

T0 = 1_700_000_000_000  # ms

# What a training script (or a dependency) may print: none of it is a hold.
HOSTILE = [
    "SM_DEBUG_HOLD host=algo-1 seconds=1.2.3 code=1",
    "SM_DEBUG_HOLD host=algo-1 seconds=1.2.3",
    "step 10: SM_DEBUG_HOLD host=algo-1 seconds=86400 code=1",
    "SM_DEBUG_HOLD host=algo-1 seconds=86400 code=1 (just kidding)",
    "SM_DEBUG_HOLD host=algo-1 seconds=86400",  # not our format: ours ends with the code
    "SM_DEBUG_HOLD host=algo-1 seconds=86401 code=1",  # longer than any hold we ask for
    "SM_DEBUG_HOLD host=algo-1 seconds=99999999999999999999 code=1",
    "SM_DEBUG_HOLD host=algo-1 seconds=0 code=1",
    "SM_DEBUG_HOLD host=algo-1 seconds=1e+06 code=1",
    "SM_DEBUG_HOLD host=algo-1 seconds=-5 code=1",
    "SM_DEBUG_HOLD host=algo-1 seconds=60 code=0",  # nothing failed: nothing holds
    "SM_DEBUG_HOLD host=algo-1 seconds=60 code=999",
    "SM_DEBUG_HOLD host=algo-1 seconds=６０ code=1",  # non-ASCII digits
    " SM_DEBUG_HOLD host=algo-1 seconds=60 code=1",
    "SM_DEBUG_HOLD host=algo-1  seconds=60 code=1",
    "SM_DEBUG_HOLD host=algo-01 seconds=60 code=1",
]


def event(message, timestamp=T0) -> dict:
    return {"timestamp": timestamp, "message": message}


@pytest.mark.parametrize("line", HOSTILE)
def test_a_line_not_exactly_ours_is_no_hold(line):
    assert logs.hold_of([event("Traceback ..."), event(line)], "algo-1") is None


def test_our_whole_line_is_a_hold_and_its_numbers_are_whole():
    found = logs.hold_of(
        [event("ZeroDivisionError"), event("SM_DEBUG_HOLD host=algo-1 seconds=1800 code=1\n")],
        "algo-1",
    )
    assert found is not None
    assert found["seconds"] == 1800 and isinstance(found["seconds"], int)
    since, until = datetime.fromisoformat(found["since"]), datetime.fromisoformat(found["until"])
    assert (until - since).total_seconds() == 1800
    assert found["last_lines"] == ["ZeroDivisionError"]
    longest = f"SM_DEBUG_HOLD host=algo-1 seconds={hold.MAX_HOLD_SECONDS} code=137"
    assert logs.hold_of([event(longest)], "algo-1")["seconds"] == hold.MAX_HOLD_SECONDS


@pytest.mark.parametrize(
    "bad", [None, "soon", 1.5, True, 10**30, -(10**30)], ids=lambda value: repr(value)
)
def test_an_event_without_a_usable_timestamp_is_no_hold_not_an_error(bad):
    line = "SM_DEBUG_HOLD host=algo-1 seconds=60 code=1"
    assert logs.hold_of([event(line, timestamp=bad)], "algo-1") is None


def test_junk_events_are_skipped():
    junk = [{}, {"message": None}, {"message": 7}, "not a dict", event("x" * 300_000)]
    line = event("SM_DEBUG_HOLD host=algo-1 seconds=60 code=1")
    found = logs.hold_of([*junk, line], "algo-1")
    assert found is not None and found["seconds"] == 60
    assert all(len(text) <= logs.LINE_CHARS for text in found["last_lines"])


def test_the_entrypoints_own_line_is_believed(tmp_path):
    """What sm-debug-entrypoint prints as it starts holding (entrypoint.main)."""
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text('{"current_host": "algo-2"}')
    env = {**os.environ, "SM_DEBUG_ML_ROOT": str(tmp_path),
           "SM_DEBUG_RELEASE_FILE": str(tmp_path / "release")}  # fmt: skip
    for name in ("SM_DEBUG_SSH", "SM_DEBUG_HOLD_ON_FAILURE"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_sm_debug.entrypoint", "--hold-on-failure", "1",
         "--", "sh", "-c", "exit 3"],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("SM_DEBUG_HOLD")]
    assert len(lines) == 1, result.stdout
    assert logs.hold_line(lines[0], "algo-2") == 1


def test_the_wrappers_own_line_is_believed(tmp_path):
    """What the hold wrapper (hold.WRAPPER_LINES) prints, run by the machine's sh."""
    env = {"PATH": "/usr/bin:/bin", "SM_CURRENT_HOST": "algo-3",
           hold.HOLD_VARIABLE: "1", "SM_DEBUG_RELEASE_FILE": str(tmp_path / "release")}  # fmt: skip
    result = subprocess.run(
        hold.wrapped_argv(["sh", "-c", "exit 4"]),
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("SM_DEBUG_HOLD")]
    if os.path.exists("/opt/ml/input/config/resourceconfig.json"):
        pytest.skip("this machine has a SageMaker resourceconfig: the host is not ours")
    assert lines == ["SM_DEBUG_HOLD host=algo-3 seconds=1 code=4"]
    assert logs.hold_line(lines[0], "algo-3") == 1


def test_the_standins_entrypoint_lines_are_believed():
    lines = trainlog.hold_start(0.0, "algo-1", 1800, 1, "/tmp/sm-debug-release")
    assert [logs.hold_line(text, "algo-1") for _, text in lines] == [None, 1800]


# -- end to end: GET /sm-debug/jobs/{job} on the stand-in --------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "SM_DEBUG_HOLD host=algo-1 seconds=1.2.3",
        "epoch 3 loss=0.2 SM_DEBUG_HOLD host=algo-1 seconds=86400 code=1",
        "SM_DEBUG_HOLD host=algo-1 seconds=86400",
        "SM_DEBUG_HOLD host=algo-1 seconds=999999 code=1",
    ],
)
async def test_a_healthy_job_printing_a_hold_line_is_not_held(api, standin, line):
    name = unique("fakehold")
    standin.create_job(name, started_ago=120)  # Training, healthy
    standin.reconcile()
    standin.put_log_lines(name, "algo-1", ["step 1", line, "step 2"])
    status, job = await api("GET", "jobs", name)
    assert status == 200, job
    assert (job["status"], job["secondary_status"]) == ("InProgress", "Training")
    assert job["hold"] is None, job["hold"]


async def test_a_held_job_keeps_its_own_window_whatever_is_printed_after(api, standin):
    name = unique("realhold")
    standin.create_job(name, schedule=FAILING, started_ago=100,
                       environment={hold.HOLD_VARIABLE: "1800"}, **WRAPPED)  # fmt: skip
    standin.reconcile()
    standin.put_log_lines(
        name,
        "algo-1",
        ["a stray process: SM_DEBUG_HOLD host=algo-1 seconds=86400 code=1",
         "SM_DEBUG_HOLD host=algo-1 seconds=1.2.3 code=1"],
    )  # fmt: skip
    status, job = await api("GET", "jobs", name)
    assert status == 200, job
    assert job["hold"] is not None and job["hold"]["seconds"] == 1800, job["hold"]
