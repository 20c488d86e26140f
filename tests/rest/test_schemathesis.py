"""schemathesis against a live `jupyter server` subprocess on the stand-in.

Every operation of `openapi.yaml` gets generated requests (valid and invalid: schemathesis'
examples, coverage and fuzzing phases, positive and negative data) with the Jupyter token,
and every answer must be no 5xx, a documented status, and match the documented schema.

Two runs of the same document: as shipped (job names drawn from the pattern, so almost all
unknown), and with the path parameters pinned to jobs of our own (a running 2-host job with
remote debug on, a finished one, an unknown name), so updates, copies and attaches really
happen. Every terminal an attach opens is deleted through /api/terminals right away, and
the copies are stopped at the end.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
import yaml
from hardening_helpers import (
    SHORT,
    JupyterServer,
    delete_terminals,
    describe_processes,
    end_created_jobs,  # noqa: F401 - module fixture: stops the jobs made here
    running_job,
    session_clients,
    terminal_names,
    unique,
    wait_until,
)
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

import jupyter_sm_debug

SPEC = Path(jupyter_sm_debug.__file__).with_name("openapi.yaml")
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
]
EXAMPLES: Counter = Counter()  # (run, "METHOD /path") -> requests sent
STATUSES: Counter = Counter()  # status codes seen, over both runs


@pytest.fixture(scope="module")
def fuzz_jobs(standin) -> dict:
    finished = unique("fuzz-done")
    standin.create_job(finished, instance_count=1, schedule=SHORT, started_ago=200)
    return {"live": running_job(standin, "fuzz-live", hosts=2), "finished": finished}


@pytest.fixture(scope="module")
def live_server(standin, fuzz_jobs, tmp_path_factory):
    server = JupyterServer(standin, tmp_path_factory.mktemp("schemathesis-server")).start()
    server.copies = []  # debug copies made by the run, stopped at the end
    server.clients_before = session_clients(standin)  # other tests' sessions, if any
    yield server
    delete_terminals(server, terminal_names(server))
    server.stop()
    sagemaker = standin.client("sagemaker")
    for name in server.copies:
        description = sagemaker.describe_training_job(TrainingJobName=name)
        if description["TrainingJobStatus"] == "InProgress":
            sagemaker.stop_training_job(TrainingJobName=name)


def load(document: dict):
    config = schemathesis.Config.from_dict(
        {"generation": {"max-examples": MAX_EXAMPLES, "mode": "all"}, "seed": 7}
    )
    return schemathesis.openapi.from_dict(document, config=config)


@pytest.fixture(scope="module")
def shipped_schema():
    return load(yaml.safe_load(SPEC.read_text()))


@pytest.fixture(scope="module")
def pinned_schema(fuzz_jobs):
    """The same document, with job and host drawn from names that exist."""
    document = copy.deepcopy(yaml.safe_load(SPEC.read_text()))
    parameters = document["components"]["parameters"]
    jobs = [fuzz_jobs["live"], fuzz_jobs["finished"], "no-such-job-anywhere"]
    parameters["job"]["schema"] = {"type": "string", "enum": jobs}
    parameters["host"]["schema"] = {"type": "string", "enum": ["algo-1", "algo-2", "algo-3"]}
    # Debug copies get names no negative case draws for {job} (a copy named "0" made a
    # later "invalid" job "0" on POST .../stop a real, stoppable job).
    copy_body = document["paths"]["/sm-debug/jobs/{job}/debug-copy"]["post"]["requestBody"]
    copy_body["content"]["application/json"]["schema"]["properties"]["name"] = {
        "type": "string",
        "pattern": "^fuzz-copy-[a-z0-9]{4,12}$",
    }
    # Files: writes only to the finished and an unknown job, so no generated request writes,
    # renames or deletes on a host (a stand-in host's "/" beyond /opt/ml and /tmp is this
    # machine's); reads go to the live job too.
    quiet_job = {"name": "job", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": jobs[1:]}}  # fmt: skip
    for path, operations in document["paths"].items():
        if "/files" in path:
            for method, operation in operations.items():
                if method == "get":
                    continue
                operation["parameters"] = [
                    quiet_job if p == {"$ref": "#/components/parameters/job"} else p
                    for p in operation["parameters"]
                ]
    return load(document)


def run_case(run: str, case, server: JupyterServer) -> None:
    EXAMPLES[(run, case.operation.label)] += 1
    response = case.call(
        base_url=server.url, headers={"Authorization": f"token {server.token}"}, timeout=60
    )
    STATUSES[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS)
    finally:
        if case.method == "POST" and response.status_code in (200, 201):
            if case.path.endswith("/terminals"):
                delete_terminals(server, [response.json()["terminal"]["name"]])
            elif case.path.endswith("/debug-copy"):
                server.copies.append(response.json()["name"])


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


shipped = schemathesis.pytest.from_fixture("shipped_schema")


@shipped.parametrize()
@FUZZ
def test_the_shipped_document_holds(case, live_server):
    run_case("shipped", case, live_server)


pinned = schemathesis.pytest.from_fixture("pinned_schema")


@pinned.parametrize()
@FUZZ
def test_the_document_holds_on_real_jobs(case, live_server):
    run_case("pinned", case, live_server)


def test_the_runs_covered_every_operation_and_left_nothing(live_server, standin, capsys):
    operations = {
        f"{method.upper()} {path}"
        for path, methods in yaml.safe_load(SPEC.read_text())["paths"].items()
        for method in methods
    }
    for run in ("shipped", "pinned"):
        assert {op for (r, op) in EXAMPLES if r == run} == operations, EXAMPLES
    # Attaches really happened on the pinned run (201), and nothing was left running.
    assert STATUSES[201] > 0, STATUSES
    assert not any(status >= 500 for status in STATUSES), STATUSES
    assert terminal_names(live_server) == []
    assert wait_until(
        lambda: not session_clients(standin) - live_server.clients_before, timeout=5
    ), describe_processes(session_clients(standin) - live_server.clients_before)
    with capsys.disabled():
        total = sum(EXAMPLES.values())
        print(f"\nschemathesis: {total} requests; per operation: {dict(EXAMPLES)}")
        print(f"schemathesis: statuses {dict(sorted(STATUSES.items()))}")
