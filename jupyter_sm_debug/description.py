"""What a DescribeTrainingJob answer says, for the API and the transports alike: the hosts,
the rows the sidebar shows, and whether a job can be attached or changed now.

Pure functions of a description (no AWS call, no import of the rest of the package), so
`connect/` and `jobs/` both build on this module and neither imports the other for it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .connect.clients import ssh_problem

FINISHED = {"Completed", "Failed", "Stopped"}
# AWS accepts RemoteDebugConfig updates only in these secondary states.
REMOTE_DEBUG_UPDATABLE = {"Downloading", "Training"}
# Secondary states in which the training containers exist.
CONTAINERS_UP = {"Downloading", "Training", "Uploading"}


def iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _groups(description: dict) -> list[dict]:
    """The job's instance groups; a job without groups is one unnamed group."""
    resources = description.get("ResourceConfig", {})
    return resources.get("InstanceGroups") or [
        {
            "InstanceGroupName": None,
            "InstanceType": resources.get("InstanceType"),
            "InstanceCount": resources.get("InstanceCount", 1),
        }
    ]


def hosts_of(description: dict) -> list[dict]:
    """algo-1..N, numbered across instance groups in the order SageMaker lists them."""
    hosts = []
    for group in _groups(description):
        for _ in range(group.get("InstanceCount", 0)):
            hosts.append(
                {
                    "name": f"algo-{len(hosts) + 1}",
                    "instance_type": group.get("InstanceType"),
                    "group": group.get("InstanceGroupName"),
                }
            )
    return hosts


def instances_of(description: dict) -> list[dict]:
    """What the job runs on: `[{"type": "ml.g5.12xlarge", "count": 4, "group": None}]`."""
    return [
        {
            "type": group.get("InstanceType"),
            "count": group.get("InstanceCount", 0),
            "group": group.get("InstanceGroupName"),
        }
        for group in _groups(description)
    ]


def state_words(status: str | None, secondary: str | None) -> str:
    """ "Completed", "InProgress (Starting)": the secondary status only when it says more."""
    return f"{status} ({secondary})" if secondary and secondary != status else f"{status}"


# The console's host per ARN partition; jobs live under the region's SageMaker console.
CONSOLE_HOSTS = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-cn": "https://{region}.console.amazonaws.cn",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
}
ARN = re.compile(
    r"arn:(?P<partition>[a-z-]+):sagemaker:(?P<region>[a-z0-9-]+):[0-9]{12}:training-job/"
)


def console_url(description: dict) -> str | None:
    """The job's page in the AWS console, in the job's own partition and region."""
    match = ARN.match(description.get("TrainingJobArn") or "")
    if not match or match.group("partition") not in CONSOLE_HOSTS:
        return None
    region = match.group("region")
    host = CONSOLE_HOSTS[match.group("partition")].format(region=region)
    name = quote(description["TrainingJobName"], safe="-")
    return f"{host}/sagemaker/home?region={region}#/jobs/{name}"


def remote_debug_enabled(description: dict) -> bool:
    return bool(description.get("RemoteDebugConfig", {}).get("EnableRemoteDebug", False))


def summary(description: dict) -> dict:
    return {
        "name": description["TrainingJobName"],
        "arn": description.get("TrainingJobArn"),
        "status": description.get("TrainingJobStatus"),
        "secondary_status": description.get("SecondaryStatus"),
        "created": iso(description.get("CreationTime")),
        "started": iso(description.get("TrainingStartTime")),
        "ended": iso(description.get("TrainingEndTime")),
        "last_modified": iso(description.get("LastModifiedTime")),
        "instance_count": len(hosts_of(description)),
        "instances": instances_of(description),
        # Set once the job has finished; billable time is less with managed spot training.
        "training_seconds": description.get("TrainingTimeInSeconds"),
        "billable_seconds": description.get("BillableTimeInSeconds"),
        "console_url": console_url(description),
        "remote_debug": {"enabled": remote_debug_enabled(description)},
        "hold_window": hold_window(description),
        "described": True,
    }


def hold_window(description: dict) -> int:
    """The hold window (seconds) a running job was given (SM_DEBUG_HOLD_ON_FAILURE), 0 for
    none: the list asks such a job for its hold so a held row shows it collapsed."""
    if description.get("TrainingJobStatus") != "InProgress":
        return 0
    value = str((description.get("Environment") or {}).get("SM_DEBUG_HOLD_ON_FAILURE", ""))
    return int(value) if value.isdigit() and 0 < int(value) <= 86400 else 0


# What a ListTrainingJobs summary lacks: only a description has them.
DESCRIPTION_ONLY = ("started", "instance_count", "instances", "training_seconds",
                    "billable_seconds", "remote_debug", "hold_window")  # fmt: skip


def listed_row(item: dict) -> dict:
    """A row from a ListTrainingJobs summary alone, for the sidebar's first paint: what the
    summary lacks (instances, remote debug, times only a description has) is null, and
    `described` is false until a description fills it (`JobsService.describe_many`)."""
    row = summary(item)  # the summary's own fields read the same way as a description's
    row.update(dict.fromkeys(DESCRIPTION_ONLY), described=False)
    return row


def remote_debug_change(description: dict) -> dict:
    """Whether the remote-debug switch can be flipped now, and if not, why (AWS's rules)."""
    status = description.get("TrainingJobStatus")
    secondary = description.get("SecondaryStatus")
    if description.get("EnableNetworkIsolation"):
        reason = "SageMaker does not allow remote debug on a job with network isolation."
    elif status != "InProgress":
        reason = f"The job is {status}: a finished job cannot be changed."
    elif secondary not in REMOTE_DEBUG_UPDATABLE:
        reason = (
            f"The job is {secondary}: remote debug can be changed once it is Downloading "
            "or Training."
        )
    else:
        return {"ok": True, "reason": ""}
    return {"ok": False, "reason": reason}


def unreachable(description: dict, transport: str) -> tuple[str, str] | None:
    """Why `transport` cannot reach the job's hosts now, as (reason key, message), or None.
    The one decision: the job detail words it (attach_state), the request layer refuses
    with it and one hint per reason key (api.target)."""
    status = description.get("TrainingJobStatus")
    secondary = description.get("SecondaryStatus")
    if status != "InProgress":
        return "ended", f"The job is {status}: its containers are gone."
    if secondary not in CONTAINERS_UP:
        return "starting", f"The job is {secondary}: attach once it is Downloading or Training."
    if description.get("EnableNetworkIsolation"):
        return "isolated", "The job runs with network isolation, which blocks remote access."
    if transport == "ssm":
        if not remote_debug_enabled(description):
            return "remote_debug_off", "Turn on Remote debug for this job first."
        if secondary not in REMOTE_DEBUG_UPDATABLE:
            return "agent_stopped", f"The job is {secondary}: the SSM agent has stopped."
    if transport == "ssh":
        missing = ssh_problem()  # this machine, not the job: the reason names the client
        if missing:
            return "client_missing", missing["message"]
    return None


def attach_state(description: dict) -> dict:
    """Whether each transport can reach the hosts now, and if not, why."""
    state = {}
    for transport in ("ssm", "ssh"):
        found = unreachable(description, transport)
        state[transport] = {"ok": found is None, "reason": found[1] if found else ""}
    return state


def detail(description: dict) -> dict:
    vpc = description.get("VpcConfig")
    algorithm = description.get("AlgorithmSpecification", {})
    return {
        **summary(description),
        "hosts": hosts_of(description),
        "network_isolation": bool(description.get("EnableNetworkIsolation")),
        "vpc": {
            "subnets": vpc.get("Subnets", []),
            "security_groups": vpc.get("SecurityGroupIds", []),
        }
        if vpc
        else None,
        "failure_reason": description.get("FailureReason"),
        "image": algorithm.get("TrainingImage") or algorithm.get("AlgorithmName"),
        "attach": attach_state(description),
        "remote_debug_change": remote_debug_change(description),
        # Filled in by the detail view (jobs.listing) from the hosts' logs.
        "hold": None,
    }


def hold_answer(first: dict, hosts: list[str], description: dict) -> dict:
    """The hold the panel shows: its hosts, and when it ends, the earlier of the hold
    window's end and the job's runtime limit (MaxRuntimeInSeconds from the start of
    training: SageMaker stops the job then, hold or not). `limited_by` says which."""
    from datetime import datetime, timezone

    from .hold import runtime_end_ms

    until, limited_by = first["until"], "hold"
    runtime_end = runtime_end_ms(description)
    if runtime_end is not None:
        hold_end = datetime.fromisoformat(first["until"]).timestamp() * 1000
        if runtime_end < hold_end:
            until = datetime.fromtimestamp(runtime_end / 1000, tz=timezone.utc).isoformat()
            limited_by = "runtime"
    return {
        "hosts": hosts,
        "since": first["since"],
        "until": until,
        "seconds": first["seconds"],
        "last_lines": first["last_lines"],
        "limited_by": limited_by,
    }
