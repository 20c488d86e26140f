"""A training host's CloudWatch log streams: the one reader of them, and what they may say.

SageMaker writes each host's output to ``/aws/sagemaker/TrainingJobs``, stream
``<job>/algo-<n>-<epoch>`` (a new one each time the container starts), and the SSM agent's
to the same name plus ``/ssm``. Only those exact names are ever read: a page token names the
stream by its epoch, so no token can point a reader at another job's or host's stream.

Which stream is a host's current one is decided here only (`newest_streams`), for the log
pages, the hold and the SSH announcement alike: the newest by CloudWatch's ``creationTime``,
the epoch in the name breaking a tie. CloudWatch sets creationTime itself; the epoch is
whatever the stream's creator wrote. A container whose role may create log streams (the
usual SageMaker execution role may) could name one ``<job>/algo-1-99999999999`` and be
"newest" by name for good, even after the host's real container restarts; by creationTime
a later real start wins again.

Log lines are the container's words: the training code writes to the same streams as our
wrapper. Only whole lines in our own exact format count (the hold line here, the SSH
announcement in connect/ssh.py), and every number in them is checked and bounded.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Protocol

from .errors import NOT_FOUND_CODES, SMDebugError
from .hold import MAX_HOLD_SECONDS

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
STREAMS = ("training", "ssm")
STREAM_PAGES = 5  # DescribeLogStreams pages: a host has one stream per container start
# The hold line as hold.WRAPPER_LINES and entrypoint.main print it, whole: the host, whole
# seconds (the wrapper takes digits only; the entrypoint prints `{seconds:g}`, digits for a
# whole number of seconds under a million) and the failed command's exit code (1-255).
HOLD_LINE = re.compile(
    r"SM_DEBUG_HOLD host=(?P<host>algo-[1-9][0-9]{0,4}) seconds=(?P<seconds>[0-9]{1,6})"
    r" code=(?P<code>[0-9]{1,3})"
)
HOLD_ENDED = re.compile(r"^\[sm-debug\] hold ended")
# Our token: "<stream epoch>:<CloudWatch forward token>".
TOKEN = re.compile(r"(?P<epoch>[0-9]{1,20}):(?P<cw>[A-Za-z0-9/+=_\-]{1,4096})")
# How many of the failure's last lines the held job shows, and how much of each.
FAILURE_LINES = 12
LINE_CHARS = 2000


class Caller(Protocol):
    async def call(self, service: str, operation: str, **params: Any) -> dict: ...


def newest_streams(streams: list[dict], job: str) -> dict[tuple[str, str], str]:
    """{(host, kind): stream name} of each host's newest container, exact names only:
    the newest by creationTime, then by the epoch in the name."""
    pattern = re.compile(
        re.escape(f"{job}/") + r"(?P<host>algo-[0-9]{1,5})-(?P<epoch>[0-9]{1,20})(?P<ssm>/ssm)?"
    )
    newest: dict[tuple[str, str], tuple[tuple[int, int], str]] = {}
    for stream in streams:
        name = stream.get("logStreamName", "")
        match = pattern.fullmatch(name)
        if not match:
            continue
        key = (match.group("host"), "ssm" if match.group("ssm") else "training")
        created = stream.get("creationTime")
        order = (created if isinstance(created, int) else 0, int(match.group("epoch")))
        if key not in newest or order > newest[key][0]:
            newest[key] = (order, name)
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


def whole_line(event: Any) -> str:
    """An event's message as one line (without the newline CloudWatch may keep)."""
    message = event.get("message", "") if isinstance(event, dict) else ""
    message = message if isinstance(message, str) else ""
    return message[:-1] if message.endswith("\n") else message


def hold_line(line: str, host: str) -> int | None:
    """The seconds of our hold line for `host`, or None: the whole line in our format,
    whole seconds from 1 to the longest hold the project allows, a failed exit code."""
    match = HOLD_LINE.fullmatch(line)
    if not match or match.group("host") != host:
        return None
    seconds, code = int(match.group("seconds")), int(match.group("code"))
    if not 1 <= seconds <= MAX_HOLD_SECONDS or not 1 <= code <= 255:
        return None
    return seconds


def hold_of(events: list[dict], host: str) -> dict | None:
    """The hold a host's log tells of, if it has not ended: when it started, how long it
    lasts, and the failure's last lines before it. A line that is not exactly ours, or an
    event without a usable timestamp, tells of no hold."""
    for position in range(len(events) - 1, -1, -1):
        seconds = hold_line(whole_line(events[position]), host)
        if seconds is None:
            continue
        if any(HOLD_ENDED.search(whole_line(e)) for e in events[position + 1 :]):
            return None
        started_ms = events[position].get("timestamp")
        if isinstance(started_ms, bool) or not isinstance(started_ms, int):
            return None
        try:
            since, until = iso_ms(started_ms), iso_ms(started_ms + seconds * 1000)
        except (ValueError, OverflowError, OSError):
            return None
        before = [
            whole_line(e)[:LINE_CHARS]
            for e in events[:position]
            if not whole_line(e).startswith("[sm-debug]")
        ]
        return {
            "host": host,
            "since": since,
            "until": until,
            "seconds": seconds,
            "last_lines": before[-FAILURE_LINES:],
        }
    return None


def iso_ms(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


class LogReader:
    """Reads the training log group through `aws.call` (looked up at each call)."""

    def __init__(self, aws: Caller):
        self.aws = aws

    async def streams(self, job: str, host: str | None = None) -> dict[tuple[str, str], str]:
        """{(host, kind): name} of the current streams of the job's hosts, or of one host."""
        prefix = f"{job}/{host}-" if host else f"{job}/"
        found: list[dict] = []
        params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": prefix}
        for _ in range(STREAM_PAGES):
            try:
                page = await self.aws.call("logs", "describe_log_streams", **params)
            except SMDebugError as error:
                if error.aws_code in NOT_FOUND_CODES:  # no log group yet: nothing has logged
                    return {}
                raise
            found += page.get("logStreams", [])
            if not page.get("nextToken"):
                break
            params["nextToken"] = page["nextToken"]
        newest = newest_streams(found, job)
        return {key: name for key, name in newest.items() if host is None or key[0] == host}

    async def current(self, job: str, host: str, kind: str = "training") -> str | None:
        """The host's stream of its newest container start (or that stream's /ssm twin)."""
        return (await self.streams(job, host)).get((host, kind))

    async def events(self, stream: str, *, head: bool, limit: int, token: str | None = None):
        """One GetLogEvents page of a stream (exactly this stream)."""
        params: dict[str, Any] = {"nextToken": token} if token else {}
        return await self.aws.call(
            "logs",
            "get_log_events",
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            startFromHead=head,
            limit=limit,
            **params,
        )

    async def head(self, stream: str, pages: int, limit: int = 1000):
        """The stream's events from its start, page by page (at most `pages` pages)."""
        token = None
        for _ in range(pages):
            # startFromHead with every page: CloudWatch requires it along with a token.
            page = await self.events(stream, head=True, limit=limit, token=token)
            yield page.get("events", [])
            if page.get("nextForwardToken") in (None, token):  # the end (pages may be empty)
                return
            token = page["nextForwardToken"]

    async def page(self, job: str, host: str, kind: str, next_token: str | None, limit: int):
        """One page of a host's log: its newest training stream (or that stream's /ssm
        twin), oldest first from the start, then forward from ``next_token``. A host that
        has not logged yet answers no events and no token: ask again later."""
        suffix = "/ssm" if kind == "ssm" else ""
        token = None
        if next_token:
            epoch, token = parse_token(next_token)
            stream = f"{job}/{host}-{epoch}{suffix}"
        else:
            stream = await self.current(job, host, kind)
            if stream is None:
                return {"events": [], "next_token": None, "stream": None}
            epoch = stream_epoch(stream)
        try:
            page = await self.events(stream, head=True, limit=limit, token=token)
        except SMDebugError as error:
            if error.aws_code in NOT_FOUND_CODES:
                raise SMDebugError(
                    404,
                    "log_stream_not_found",
                    f"The log stream {stream} does not exist.",
                    "Start again without next_token to read the host's newest stream.",
                ) from None
            # A token CloudWatch does not know (AWS: InvalidParameterException).
            if token and error.aws_code in ("InvalidParameterException", "ValidationException"):
                raise SMDebugError(
                    400,
                    "invalid_next_token",
                    "next_token is not valid for this log stream.",
                    "Pass back the next_token of the previous page unchanged.",
                ) from None
            raise
        forward = page.get("nextForwardToken")
        return {
            "events": [event_json(event) for event in page.get("events", [])],
            "next_token": f"{epoch}:{forward}" if forward else None,
            "stream": stream,
        }
