"""run over SSM with a KMS session document (issue 25, finding 2): the run path asks KMS
for the same 64-byte data key as attach (encryption.kms_data_key), so it works where attach
does."""

from __future__ import annotations

import uuid

import pytest
from test_ssm_session import kms_document

from jupyter_sm_debug.connect import HostTarget
from jupyter_sm_debug.hostrun import run_on_hosts
from jupyter_sm_debug.standin import ssm as standin_ssm

pytestmark = pytest.mark.usefixtures("standin")


async def test_a_run_over_ssm_with_a_kms_document_returns_its_output(services, standin):
    job = f"runkms-{uuid.uuid4().hex[:8]}"
    standin.create_job(job, instance_count=1, remote_debug=True, started_ago=600)
    kms_document(standin, "SMDebug-KMS-Run")
    saved = services.config.ssm_document
    services.config.ssm_document = "SMDebug-KMS-Run"
    try:
        description = await services.jobs.describe(job, fresh=True)
        target = HostTarget(
            job, "algo-1", description, services.config, services.jobs, transport="ssm"
        )
        results = await run_on_hosts([target], ["sh", "-c", "echo encrypted $((6*7))"], 30.0)
    finally:
        services.config.ssm_document = saved
    result = results["algo-1"]
    assert result.error is None and not result.timed_out, result
    assert result.exit_code == 0 and result.stdout == b"encrypted 42\n"
    sessions = [s for s in standin_ssm.registry(standin).sessions.values() if job in s.target]
    assert sessions and all(s.agent.channel.cipher is not None for s in sessions)
