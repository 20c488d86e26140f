"""The hold that needs no image change: a POSIX ``sh`` wrapper around a job's own command.

A debug copy's container runs ``/bin/sh -c BOOT sm-debug-hold N CHUNK... COMMAND...``:
``COMMAND`` is the job's *effective command* (what SageMaker would have run: its
ContainerEntrypoint + ContainerArguments, else the image's ENTRYPOINT + ``train``), and the
wrapper, like ``sm-debug-entrypoint``, runs it as a child, forwards SIGTERM/SIGINT, keeps its
exit code, and when it fails holds the container (announced in the log; the hold ends at the
release file, the window's end, or when the last authenticated SSM or SSH session closes).

Why chunks: AWS limits ContainerEntrypoint and ContainerArguments to 100 items of at most 256
characters each (botocore's model), and the wrapper is longer than 256 characters. So the
wrapper travels in pieces of at most 256 characters; BOOT (one short item) joins the first
N arguments and evals them, and the rest of the arguments are the command. The wrapper is
written as lines that also make a valid one-line script when joined with spaces, because an
item should not hold a newline (AWS's item pattern ``.*`` does not match one).

Script mode: a DLC runs the SageMaker training toolkit, which runs ``sagemaker_program``.
We wrap the whole effective command (toolkit included) rather than ``sagemaker_program``:
the toolkit's own behaviour (distributed launchers, its error report, the exit code it
writes to ``/opt/ml/output/failure``) stays as on the original job, and no tarball needs to
be rewritten and uploaded to S3 (no s3:PutObject, nothing left behind).
"""

from __future__ import annotations

import collections
import functools
import json
import re
import urllib.request
from typing import Any, Callable, Optional

from . import entrypoint
from .entrypoint import MARK_DIR, TOOL_MARK

# The name the wrapper runs under ($0): what `ps` shows, and what tells a wrapped job apart.
WRAPPER_NAME = "sm-debug-hold"
HOLD_VARIABLE = "SM_DEBUG_HOLD_ON_FAILURE"
# The longest hold window (seconds) a debug copy or the SDK helper asks for, and so the
# longest hold a log line is believed to announce (logs.hold_line).
MAX_HOLD_SECONDS = 86400
MAX_ITEMS = 100  # AlgorithmSpecification.ContainerEntrypoint/ContainerArguments, each
MAX_ITEM_LENGTH = 256
ECR_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
MANIFEST_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
]

# Joins the first $1 arguments after it and evals them; the rest are the command.
BOOT = 'n=$1; shift; s=; while [ "$n" -gt 0 ]; do s="$s$1"; shift; n=$((n-1)); done; eval "$s"'

# The wrapper, one statement per line; each line ends where a space may join the next
# (after ';', 'then', 'do', 'else', '{', '&&' or '||'), so no comment can live in it: the
# comments are here.
# - settings: the window (whole seconds) and the release file, from the same variables as
#   sm-debug-entrypoint; the host name from resourceconfig.json as the entrypoint reads it.
# - the child: `env --default-signal` (coreutils 8.31+) undoes the SIGINT/SIGQUIT ignore
#   that POSIX sh gives a background command, so a forwarded SIGINT reaches it; without
#   such an env the child runs as is (SageMaker itself only sends SIGTERM).
# - signals: SIGTERM/SIGINT are forwarded and mark the job as stopping (never hold after).
#   A trap interrupts `wait`, so wait again until the child's own status comes back; a
#   second wait that answers 127 means the first one already had it.
# - sessions (same rule as entrypoint.debug_sessions): a session is a process of the user
#   under an SSM session worker (comm ssm-session-worker, cut to 15 characters by the
#   kernel; the session is the worker) or under an authenticated sshd connection (the
#   connection is the sshd just below the listener). A port forward, a port probe or a login
#   in progress runs nothing under its worker or sshd: no session.
# - the extension's own sessions (run, stacks, host state ...) never count: a session is
#   its own when a process in it carries TOOL_MARK in its argv or environment, or MARK_DIR
#   holds a directory named by its id (tool_argv). One seen marked once stays so; one that
#   ended between two looks is checked against MARK_DIR.
# - hold: ends at the release file (a regular file, not a symlink), the window's end, a
#   SIGTERM, or when a person's session has closed and no person's session is left.
WRAPPER_LINES = [
    "hold=${SM_DEBUG_HOLD_ON_FAILURE:-0};",
    'case $hold in ""|*[!0-9]*) hold=0;; esac;',
    "release=${SM_DEBUG_RELEASE_FILE:-/tmp/sm-debug-release};",
    'say() { printf "[sm-debug] %s\\n" "$*" >&2; };',
    "stopping=; sig=; code=;",
    'if [ "$#" -eq 0 ]; then say "no command to run"; exit 2; fi;',
    "is_sshd() { case $1 in sshd|sshd-session|sshd-auth) return 0;; esac; return 1; };",
    "stat_of() { line=; { read -r line < /proc/$1/stat; } 2>/dev/null || return 1;",
    "comm=${line#*\\(}; comm=${comm%\\)*}; rest=${line##*\\) }; set -- $rest; st=$1; ppid=$2; };",
    'has() { case $1 in *" $2 "*) return 0;; esac; return 1; };',
    "run() { case $1 in *=*) ;; *) if env --default-signal=INT,QUIT true 2>/dev/null; then",
    'exec env --default-signal=INT,QUIT "$@"; fi;; esac;',
    'for p in python3 python; do if command -v "$p" >/dev/null 2>&1; then exec "$p" -c',
    "'import os,signal,sys;signal.signal(2,signal.SIG_DFL);signal.signal(3,signal.SIG_DFL);"
    'exec("try:os.execvp(sys.argv[1],sys.argv[1:])\\nexcept OSError as e:'
    'print(e,file=sys.stderr);sys.exit(127)")\' "$@"; fi; done;',
    "if command -v perl >/dev/null 2>&1; then exec perl -e",
    '\'$SIG{INT}=$SIG{QUIT}="DEFAULT";exec {$ARGV[0]} @ARGV or exit 127\' "$@"; fi;',
    'say "no env --default-signal, python or perl: the command starts with SIGINT ignored";',
    'exec "$@"; };',
    'run "$@" & child=$!;',
    'catches() { m=; { while read -r k v; do [ "$k" = SigCgt: ] && m=$v; done',
    '< /proc/$1/status; } 2>/dev/null; [ -n "$m" ] &&',
    '[ $(( 0x${m#"${m%????}"} & 16384 )) -ne 0 ]; };',
    "below() { out=' '; more=1; while [ -n \"$more\" ]; do more=;",
    'for d in /proc/[0-9]*; do p=${d#/proc/}; if has "$out" "$p"; then continue; fi;',
    'stat_of "$p" && [ "$st" != Z ] || continue;',
    'if [ "$ppid" = "$1" ] || has "$out" "$ppid"; then',
    'out="$out$p "; more=1; fi; done; done; };',
    'term() { below "$child"; for p in $out; do kill -TERM "$p" 2>/dev/null; done;',
    'if [ "$out" = " " ] || catches "$child"; then kill -TERM "$child" 2>/dev/null; fi; };',
    "trap 'sig=1; if [ -z \"$stopping\" ]; then stopping=1; term; fi' TERM;",
    "trap 'sig=1; stopping=1; kill -INT $child 2>/dev/null' INT;",
    'while :; do sig=; wait "$child"; c=$?;',
    'if [ "$c" -eq 127 ] && [ -n "$code" ]; then break; fi;',
    'code=$c; if [ -z "$sig" ]; then break; fi; done;',
    'if [ -n "$stopping" ]; then t0=$(date +%s); grace=${SM_DEBUG_STOP_GRACE:-110};',
    'case $grace in ""|*[!0-9]*) grace=110;; esac;',
    'while below $$; [ "$out" != " " ] && [ $(( $(date +%s) - t0 )) -lt "$grace" ]; do',
    'sleep 1 & wait $!; done; exit "$code"; fi;',
    'if [ "$code" -eq 0 ] || [ "$hold" -eq 0 ] || [ -n "$stopping" ]; then exit "$code"; fi;',
    "trap 'stopping=1' TERM INT;",
    "host=;",
    "if [ -r /opt/ml/input/config/resourceconfig.json ]; then",
    'host=$(sed -n \'s/.*"current_host" *: *"\\([^"]*\\)".*/\\1/p\' '
    "/opt/ml/input/config/resourceconfig.json 2>/dev/null | head -n 1); fi;",
    "host=${host:-${SM_CURRENT_HOST:-$(hostname 2>/dev/null || echo unknown)}};",
    'if [ -d "$release" ] && [ ! -L "$release" ]; then',
    'say "$release is a directory: the release file cannot end this hold (remove it).";',
    'else rm -f "$release" 2>/dev/null; fi;',
    'say "training command failed with exit code $code; holding this container for $hold s'
    " so you can attach and inspect it. End the hold early with \\`touch $release\\`"
    ' (or sm-debug-entrypoint --release).";',
    'printf "SM_DEBUG_HOLD host=%s seconds=%s code=%s\\n" "$host" "$hold" "$code";',
    f"marks={MARK_DIR};",
    'marked() { [ -d "$marks/$1" ] && [ ! -L "$marks/$1" ]; };',
    "sessions() { ids=' '; mine=' ';",
    'for d in /proc/[0-9]*; do p=${d#/proc/}; stat_of "$p" || continue;',
    "case $comm in ssm-session-wor*) continue;; esac;",
    'if is_sshd "$comm"; then continue; fi; id=; cur=$ppid; n=0;',
    'while [ "$n" -lt 256 ] && stat_of "$cur"; do n=$((n+1));',
    "case $comm in ssm-session-wor*) id=$cur; break;; esac;",
    'if is_sshd "$comm"; then below=;',
    'while parent=$ppid; stat_of "$parent" && is_sshd "$comm"; do below=$cur; cur=$parent;',
    'done; id=$below; break; fi; cur=$ppid; done; [ -n "$id" ] || continue;',
    'has "$ids" "$id" || ids="$ids$id ";',
    'if ! has "$mine" "$id"; then if marked "$id" ||',
    f"grep -qs {TOOL_MARK} /proc/$p/cmdline /proc/$p/environ; then",
    'mine="$mine$id "; fi; fi; done; };',
    "tools=' '; people=' ';",
    "look() { sessions; closed=; for id in $people; do",
    'if ! has "$ids" "$id" && ! marked "$id"; then closed=1; fi; done;',
    "keep=' '; for id in $tools $mine; do",
    'if has "$ids" "$id" && ! has "$keep" "$id"; then keep="$keep$id "; fi; done; tools=$keep;',
    'people=\' \'; for id in $ids; do has "$tools" "$id" || people="$people$id "; done;',
    'for m in "$marks"/[0-9]*; do [ -d "/proc/${m##*/}" ] || rmdir "$m" 2>/dev/null; done; };',
    'start=$(date +%s); why="hold window over";',
    'while [ $(( $(date +%s) - start )) -lt "$hold" ]; do',
    'if [ -n "$stopping" ]; then why=stopped; break; fi;',
    'if [ -f "$release" ] && [ ! -L "$release" ]; then why=released; break; fi;',
    'look; if [ -n "$closed" ] && [ "$people" = " " ]; then why="last session closed"; break; fi;',
    "sleep 1 & wait $!; done;",
    'say "hold ended ($why); exiting with $code";',
    'exit "$code"',
]


# The extension's own sessions: every command the extension runs on a host (run, stacks,
# host state; files and kernels to come) goes through tool_argv, so the container side
# (SessionWatch, the wrapper's sessions) never takes it for a person's session:
# - TOOL_MARK is in the argv from the first exec: over SSH in the login shell's ``-c``
#   command (and sshd's SSH_ORIGINAL_COMMAND), and in the environment of every process the
#   command starts;
# - before the command runs, MARK_SCRIPT makes a directory named by each pid it descends
#   from (the SSM session worker, the sshd connection ...) in MARK_DIR, so a session that
#   opened and closed between two looks of the hold (an SSM shell is unmarked until the
#   command is typed into it) is still known as the extension's. mkdir never follows a
#   symlink, and only directories count as marks.
# Faking a mark can only make a session not count: a hold then lasts to its window's end
# or its release file, never shorter.
MARK_SCRIPT = (
    f'd={MARK_DIR}; mkdir -p -m 1777 "$d" 2>/dev/null;'
    " up() { set -- $1; p=$2; }; p=$$;"
    ' if [ -d "$d" ] && [ ! -L "$d" ]; then while [ "$p" -gt 1 ]; do'
    ' mkdir "$d/$p" 2>/dev/null; l=; { read -r l < /proc/$p/stat; } 2>/dev/null || break;'
    ' up "${l##*\\) }"; done; fi; exec "$@"'
)
TOOL_NAME = "sm-debug-tool"


def tool_argv(argv: list[str]) -> list[str]:
    """argv marked as the extension's own (see MARK_SCRIPT): it runs `argv` unchanged."""
    return ["env", TOOL_MARK, "sh", "-c", MARK_SCRIPT, TOOL_NAME, *argv]


def subtree_marked(root: int, table: dict[int, tuple[int, str]] | None = None) -> bool:
    """Whether the session whose first process is `root` (as this machine's /proc numbers
    it) is one of the extension's own: a process under it carries the mark, or the mark
    directory as that process sees it (its own /tmp, its own pid numbers inside a PID
    namespace) names it. For a host that counts sessions from outside its namespaces (the
    stand-in's SSM gateway)."""
    table = entrypoint.process_table() if table is None else table
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)
    todo = [root]
    while todo:
        pid = todo.pop()
        seen_from = f"/proc/{pid}/root{MARK_DIR}"  # its /tmp
        if entrypoint.carries_mark(pid) or any(
            entrypoint.mark_file_names(inner, seen_from) for inner in _inner_pids(pid)
        ):
            return True
        todo += children.get(pid, [])
    return False


def _inner_pids(pid: int) -> list[int]:
    """The pid's numbers in each PID namespace it is in (NSpid), outermost first."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return [int(n) for n in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return [pid]


def wrapper_script(one_line: bool = True) -> str:
    """The wrapper's text: one line as it travels, or one statement a line to read."""
    return (" " if one_line else "\n").join(WRAPPER_LINES)


def chunks(text: str, size: int = MAX_ITEM_LENGTH) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def wrapped_argv(command: list[str]) -> list[str]:
    """The whole argv the container runs: sh, BOOT, the wrapper in pieces, the command."""
    pieces = chunks(wrapper_script())
    return ["/bin/sh", "-c", BOOT, WRAPPER_NAME, str(len(pieces)), *pieces, *command]


def is_wrapped(argv: list[str]) -> bool:
    """Whether argv runs our hold wrapper unchanged (the stand-in asks this of every job)."""
    if len(argv) < 5 or argv[:4] != ["/bin/sh", "-c", BOOT, WRAPPER_NAME]:
        return False
    try:
        count = int(argv[4])
    except ValueError:
        return False
    return "".join(argv[5 : 5 + count]) == wrapper_script() and len(argv) > 5 + count


def unwrapped(argv: list[str]) -> list[str]:
    """The command a wrapped argv runs (argv itself when it is not wrapped)."""
    return argv[5 + int(argv[4]) :] if is_wrapped(argv) else argv


def container_fields(command: list[str], arguments: list[str]) -> dict:
    """ContainerEntrypoint/ContainerArguments that run ``command + arguments`` under the
    wrapper, within AWS's limits; ValueError (with the reason) when they cannot fit.

    SageMaker runs ContainerEntrypoint followed by ContainerArguments, so the wrapped argv
    may be split anywhere between the two: it keeps the source's split when that fits, and
    otherwise fills ContainerEntrypoint and puts the rest into ContainerArguments."""
    head = wrapped_argv(command)
    for item in [*head, *arguments]:
        if len(item) > MAX_ITEM_LENGTH:
            raise ValueError(
                f"an argument is longer than AWS's {MAX_ITEM_LENGTH} characters"
                " (ContainerEntrypoint/ContainerArguments items)"
            )
    if len(head) <= MAX_ITEMS and len(arguments) <= MAX_ITEMS:
        fields = {"ContainerEntrypoint": head}
        if arguments:
            fields["ContainerArguments"] = list(arguments)
        return fields
    whole = [*head, *arguments]
    if len(whole) > 2 * MAX_ITEMS:
        raise ValueError(
            f"the wrapped command has {len(whole)} items ({len(command) + len(arguments)}"
            f" of the job's own and {len(head) - len(command)} of the wrapper); AWS allows"
            f" {MAX_ITEMS} in ContainerEntrypoint and {MAX_ITEMS} in ContainerArguments"
        )
    return {"ContainerEntrypoint": whole[:MAX_ITEMS], "ContainerArguments": whole[MAX_ITEMS:]}


# -- AWS's limits, from botocore's model --------------------------------------------------


@functools.lru_cache(maxsize=4)
def _model_shape(operation: str = "CreateTrainingJob"):
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model(operation).input_shape


def limit_problems(params: dict, operation: str = "CreateTrainingJob") -> list[str]:
    """What in this request breaks a documented limit of botocore's model for the operation:
    sizes of strings, lists and maps, string patterns, number ranges. Empty: it passes."""
    problems: list[str] = []
    _check(_model_shape(operation), params, operation, problems)
    return problems


def _check(shape, value, path: str, problems: list[str]) -> None:  # noqa: C901
    meta, kind = shape.metadata, shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                _check(shape.members[key], item, f"{path}.{key}", problems)
        return
    if kind in ("list", "map", "string") and isinstance(value, (list, dict, str)):
        size = len(value)
        noun = {"list": "items", "map": "entries", "string": "characters"}[kind]
        if "max" in meta and size > meta["max"]:
            problems.append(f"{path} has {size} {noun}; AWS allows at most {meta['max']}")
        if "min" in meta and size < meta["min"]:
            problems.append(f"{path} has {size} {noun}; AWS needs at least {meta['min']}")
    if kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            _check(shape.key, key, f"{path} key {key!r}", problems)
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string" and isinstance(value, str) and meta.get("pattern"):
        try:
            matches = re.fullmatch(meta["pattern"], value) is not None
        except re.error:
            matches = True  # a pattern Python cannot read: AWS's own check decides
        if not matches:
            problems.append(f"{path} does not match AWS's pattern {meta['pattern']}")
    elif kind in ("integer", "long") and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            problems.append(f"{path} is {value}; AWS allows at most {meta['max']}")
        if "min" in meta and value < meta["min"]:
            problems.append(f"{path} is {value}; AWS needs at least {meta['min']}")


def environment_room(environment: dict | None) -> str:
    """Why HOLD_VARIABLE cannot join this Environment (AWS's map limit), or ""."""
    shape = _model_shape().members["Environment"]
    limit = shape.metadata.get("max")
    current = dict(environment or {})
    if HOLD_VARIABLE not in current and limit is not None and len(current) >= limit:
        return (
            f"The job's Environment already has {len(current)} entries, AWS's limit"
            f" ({limit}); the hold needs one more ({HOLD_VARIABLE})."
        )
    return ""


# -- how long a copy may run ---------------------------------------------------------------

# SageMaker's default StoppingCondition, and the default quota "Longest run time for a
# training job" (5 days; an account may have it raised up to 28 days). A copy asks for no
# more than the larger of this and what its source was already allowed.
DEFAULT_MAX_RUNTIME = 86400
RUNTIME_QUOTA_SECONDS = 432000


def stopping_condition(source: dict | None, hold_seconds: int) -> tuple[dict, str]:
    """(the copy's StoppingCondition, a note when it cannot cover the whole hold).

    MaxRuntimeInSeconds counts from the start of training, so the hold (which follows the
    failure) is covered when the runtime grows by the hold window: the copy asks for the
    source's runtime + the hold, within RUNTIME_QUOTA_SECONDS (or the source's own runtime
    when that was larger). With managed spot training MaxWaitTimeInSeconds must stay at or
    above MaxRuntimeInSeconds: it grows by as much."""
    condition = dict(source or {})
    runtime = int(condition.get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME)
    ceiling = max(runtime, RUNTIME_QUOTA_SECONDS)
    raised = min(runtime + max(0, hold_seconds), ceiling)
    condition["MaxRuntimeInSeconds"] = raised
    if condition.get("MaxWaitTimeInSeconds"):
        wait = int(condition["MaxWaitTimeInSeconds"])
        condition["MaxWaitTimeInSeconds"] = max(wait + (raised - runtime), raised)
    note = ""
    if raised < runtime + hold_seconds:
        note = (
            f" The copy may train for at most {_duration(raised)} (MaxRuntimeInSeconds, raised"
            f" from {_duration(runtime)} within the {_duration(ceiling)} limit), so SageMaker"
            " may stop it before the hold window ends."
        )
    return condition, note


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def runtime_end_ms(description: dict) -> int | None:
    """When SageMaker stops the job for MaxRuntimeInSeconds (ms since the epoch), if known."""
    started = description.get("TrainingStartTime")
    runtime = (description.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    if not started or not runtime:
        return None
    try:
        return int(started.timestamp() * 1000) + int(runtime) * 1000
    except (AttributeError, TypeError, ValueError):
        return None


# -- the effective command ---------------------------------------------------------------

IMAGE_URI = re.compile(
    r"(?P<registry>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[\w.-]{1,128})|@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


class ImageUnreadable(Exception):
    """The image's ENTRYPOINT could not be read; the message says why and what to grant."""


def parse_image(uri: str) -> dict:
    match = IMAGE_URI.match(uri or "")
    if not match:
        raise ImageUnreadable(
            f"{uri!r} is not an ECR image URI, so its ENTRYPOINT cannot be read from ECR."
        )
    return match.groupdict()


def image_config(ecr_call: Callable[..., dict], uri: str, fetch: Optional[Callable] = None) -> dict:
    """The image's config (``{"Entrypoint": [...], "Cmd": [...], ...}``) from ECR: BatchGetImage
    for the manifest, then the config blob through GetDownloadUrlForLayer.

    ``ecr_call(operation, **params)`` runs one ECR call and raises on failure."""
    image = parse_image(uri)
    image_id = (
        {"imageDigest": image["digest"]}
        if image["digest"]
        else {"imageTag": image["tag"] or "latest"}
    )
    answer = ecr_call(
        "batch_get_image",
        registryId=image["registry"],
        repositoryName=image["repository"],
        imageIds=[image_id],
        acceptedMediaTypes=MANIFEST_TYPES,
    )
    images = answer.get("images") or []
    if not images:
        failure = (answer.get("failures") or [{}])[0]
        raise ImageUnreadable(
            f"ECR has no image {uri} ({failure.get('failureCode', 'ImageNotFound')})."
        )
    try:
        manifest = json.loads(images[0]["imageManifest"])
        digest = manifest["config"]["digest"]
    except (KeyError, TypeError, ValueError):
        raise ImageUnreadable(f"the manifest of {uri} names no config blob.") from None
    url = ecr_call(
        "get_download_url_for_layer",
        registryId=image["registry"],
        repositoryName=image["repository"],
        layerDigest=digest,
    )["downloadUrl"]
    if not url.startswith(("https://", "http://")):
        raise ImageUnreadable(f"ECR gave no usable download URL for {uri}'s config.")
    raw = (fetch or _fetch)(url)
    try:
        return json.loads(raw).get("config") or {}
    except (ValueError, AttributeError):
        raise ImageUnreadable(f"the config blob of {uri} is not JSON.") from None


def read_image_config(ecr_client) -> Callable[[str], dict]:
    """plan's reader of an image's config through this boto3 ECR client: an AWS refusal
    becomes ImageUnreadable naming AWS's error code."""

    def call(operation: str, **params) -> dict:
        import botocore.exceptions

        try:
            return getattr(ecr_client, operation)(**params)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise ImageUnreadable(f"{operation} answered {code}.") from None
        except botocore.exceptions.BotoCoreError as error:
            raise ImageUnreadable(f"{operation} failed: {type(error).__name__}.") from None

    def read(uri: str) -> dict:
        try:
            return image_config(call, uri)
        except OSError as error:
            raise ImageUnreadable(f"the config blob could not be fetched ({error}).") from None

    return read


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as answer:  # noqa: S310 - http(s) only, above
        return answer.read(1 << 20)


def effective_command(algorithm: dict, config: Optional[dict]) -> tuple[list[str], list[str]]:
    """(command, arguments) that SageMaker runs for this AlgorithmSpecification: the
    job's ContainerEntrypoint, else the image's ENTRYPOINT; then the job's
    ContainerArguments, else ``train`` (``docker run <image> train``)."""
    arguments = list(algorithm.get("ContainerArguments") or [])
    if algorithm.get("ContainerEntrypoint"):
        command = list(algorithm["ContainerEntrypoint"])
        if is_wrapped(command):
            command = unwrapped(command)
        return command, arguments
    if config is None:
        raise ImageUnreadable("the image's config is unknown.")
    return list(config.get("Entrypoint") or []), arguments or ["train"]


def plan(algorithm: dict, read_config: Callable[[str], dict]) -> dict:
    """How a debug copy of a job with this AlgorithmSpecification holds:
    ``{mechanism, command, possible, reason, fields}`` (``fields``: what the copy's
    AlgorithmSpecification gets)."""
    if algorithm.get("AlgorithmName"):
        return _refused("Built-in algorithm and Marketplace containers cannot be wrapped.")
    config = None
    if not algorithm.get("ContainerEntrypoint"):
        try:
            config = read_config(algorithm.get("TrainingImage", ""))
        except ImageUnreadable as why:
            return _refused(
                f"Cannot read the image's ENTRYPOINT from ECR: {why} The hold needs "
                f"{' and '.join(ECR_ACTIONS)} on the image's repository."
            )
    command, arguments = effective_command(algorithm, config)
    if not command and not arguments:
        return _refused("The image has no ENTRYPOINT and the job no command to wrap.")
    try:
        fields = container_fields(command, arguments)
    except ValueError as why:
        return _refused(f"The wrapped command does not fit in AWS's limits: {why}.")
    shown = " ".join(_shell_word(word) for word in [*command, *arguments])
    if command and command[0].rsplit("/", 1)[-1] == "sm-debug-entrypoint":
        # The image holds by itself (SM_DEBUG_HOLD_ON_FAILURE reaches it): wrapping it
        # would hold a second time after its own hold.
        return {
            "mechanism": "entrypoint",
            "command": shown,
            "possible": True,
            "reason": f"holds with the image's own sm-debug-entrypoint (`{shown}`)",
            "fields": {},
        }
    return {
        "mechanism": "wrapper",
        "command": shown,
        "possible": True,
        "reason": f"holds by wrapping `{shown}`",
        "fields": fields,
    }


def refused(reason: str) -> dict[str, Any]:
    """A plan with no hold, and why."""
    return _refused(reason)


def _refused(reason: str) -> dict[str, Any]:
    return {"mechanism": "none", "command": None, "possible": False, "reason": reason}


def _shell_word(word: str) -> str:
    return word if re.fullmatch(r"[\w@%+=:,./-]+", word) else json.dumps(word)
