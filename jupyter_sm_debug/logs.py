"""A training host's CloudWatch log streams: reading them page by page, and the hold.

SageMaker writes each host's output to ``/aws/sagemaker/TrainingJobs``, stream
``<job>/algo-<n>-<epoch>`` (a new one each time the container starts), and the SSM agent's
to the same name plus ``/ssm``. Only those exact names are ever read: a page token names the
stream by its epoch, so no token can point a reader at another job's or host's stream.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .errors import SMDebugError

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
STREAMS = ("training", "ssm")
# sm-debug-entrypoint's machine-readable line as it starts holding a failed container.
HOLD_LINE = re.compile(r"SM_DEBUG_HOLD host=(?P<host>algo-\d+) seconds=(?P<seconds>[0-9.]+)")
HOLD_ENDED = re.compile(r"^\[sm-debug\] hold ended")
# Our token: "<stream epoch>:<CloudWatch forward token>".
TOKEN = re.compile(r"(?P<epoch>[0-9]{1,20}):(?P<cw>[A-Za-z0-9/+=_\-]{1,4096})")
# How many of the failure's last lines the held job shows.
FAILURE_LINES = 12


def newest_streams(streams: list[dict], job: str) -> dict[tuple[str, str], str]:
    """{(host, kind): stream name} of each host's newest container, exact names only."""
    pattern = re.compile(
        re.escape(f"{job}/") + r"(?P<host>algo-[0-9]{1,5})-(?P<epoch>[0-9]{1,20})(?P<ssm>/ssm)?"
    )
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for stream in streams:
        name = stream.get("logStreamName", "")
        match = pattern.fullmatch(name)
        if not match:
            continue
        key = (match.group("host"), "ssm" if match.group("ssm") else "training")
        epoch = int(match.group("epoch"))
        if key not in newest or epoch > newest[key][0]:
            newest[key] = (epoch, name)
    return {key: name for key, (_, name) in newest.items()}


def parse_token(token: str) -> tuple[int, str]:
    match = TOKEN.fullmatch(token)
    if not match:
        raise SMDebugError(
            400,
            "invalid_next_token",
            "next_token is malformed.",
            "Pass back the next_token of the previous page unchanged.",
        )
    return int(match.group("epoch")), match.group("cw")


def stream_epoch(name: str) -> int:
    return int(re.search(r"-([0-9]{1,20})(?:/ssm)?$", name).group(1))


def event_json(event: dict) -> dict:
    return {"timestamp": event.get("timestamp"), "message": event.get("message", "")}


def hold_of(events: list[dict], host: str) -> dict | None:
    """The hold a host's log tells of, if it has not ended: when it started, how long it
    lasts, and the failure's last lines before it."""
    for position in range(len(events) - 1, -1, -1):
        match = HOLD_LINE.search(events[position].get("message", ""))
        if not match or match.group("host") != host:
            continue
        if any(HOLD_ENDED.search(e.get("message", "")) for e in events[position + 1 :]):
            return None
        started_ms = events[position].get("timestamp") or 0
        seconds = float(match.group("seconds"))
        before = [
            e.get("message", "")
            for e in events[:position]
            if not e.get("message", "").startswith("[sm-debug]")
        ]
        return {
            "host": host,
            "since": iso_ms(started_ms),
            "until": iso_ms(started_ms + seconds * 1000),
            "seconds": seconds,
            "last_lines": before[-FAILURE_LINES:],
        }
    return None


def iso_ms(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()
