"""The built-in Session Manager client: a shell on an SSM target from this terminal.

A pure-Python stand-in for ``aws ssm start-session`` + ``session-manager-plugin`` for
interactive shell sessions (SageMaker remote debug targets
``sagemaker-training-job:<job>_algo-<n>``)::

    python -m jupyter_sm_debug.ssm.client --target sagemaker-training-job:my-job_algo-1 \\
        [--region R] [--profile P] [--endpoint-url URL] [--reason TEXT] [--no-terminate]

    # a session someone else started (the StartSession response JSON):
    python -m jupyter_sm_debug.ssm.client --session-env VAR  [--region R ...]
    python -m jupyter_sm_debug.ssm.client --session-fd 3     [--region R ...]

    # the plugin's own calling convention, as the AWS CLI uses it:
    python -m jupyter_sm_debug.ssm.client '<response JSON>'|AWS_SSM_START_SESSION_RESPONSE_x \\
        <region> StartSession [<profile> [<request JSON> [<endpoint>]]]

boto3's usual configuration applies (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL(_SSM), ...).
Exit status: 0 when the remote end closed the session, 1 on errors, 2 on bad usage,
128+n when ended by signal n. TerminateSession is called on the way out unless
``--no-terminate``.

boto3 is imported only when an API call is needed (it costs half a second and 28 MiB of
memory); with an inherited session, only at exit (TerminateSession), on a lost connection
(ResumeSession) or for KMS. It is not loaded in advance: 32 sessions would hold 900 MiB for
a quicker exit. A client killed before its TerminateSession leaves that to whoever started
the session (the extension terminates every session when its terminal ends).

Where this differs from session-manager-plugin (shell sessions):

- the terminal is put in raw mode (the plugin uses ``stty cbreak -echo`` and forwards
  SIGINT/SIGQUIT/SIGTSTP as bytes; we forward them too when stdin is not a terminal);
- the size is sent at start and on SIGWINCH (the plugin polls it every 500 ms);
- when the websocket drops, ResumeSession and a new connection, five tries with backoff
  like the plugin, with a line in the terminal saying so; unacknowledged input is sent
  again and output already shown is never shown twice (sequence numbers);
- KMS-encrypted sessions as the plugin does them (``encryption.py``); port forwarding is
  refused in the handshake;
- no conversion of a lone "\n" keystroke to "\r" (a workaround for Windows targets).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional

from . import encryption
from .session import (  # noqa: F401 - also this module's names for run.py and the tests
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    ClientError,
    FrameReader,
    Session,
    Terminal,
    connect,
    no_shell_message,
    restore_signals,
    tls_options,
    wait_fds,
    write_all,
)

PROG = "python -m jupyter_sm_debug.ssm.client"
TARGET_VARIABLE = "SM_DEBUG_SSM_TARGET"  # the target of an inherited session (KMS context)
TIMEOUT_VARIABLE = "SM_DEBUG_SSM_CONNECT_TIMEOUT"  # default of --connect-timeout


class UsageError(Exception):
    pass


# ---------------------------------------------------------------------------- arguments


def parse_args(argv: List[str]) -> argparse.Namespace:
    if argv and not argv[0].startswith("-"):
        return _parse_plugin_args(argv)
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Open an interactive shell on an SSM target over Session Manager.",
    )
    ap.add_argument(
        "--target",
        help="SSM target, e.g. sagemaker-training-job:JOB_algo-1 (with an inherited session: "
        "only its id for KMS encryption)",
    )
    src = ap.add_mutually_exclusive_group()
    src.add_argument(
        "--session-env", metavar="NAME", help="environment variable holding StartSession JSON"
    )
    src.add_argument(
        "--session-fd", metavar="FD", type=int, help="inherited fd to read StartSession JSON from"
    )
    ap.add_argument("--region")
    ap.add_argument("--profile")
    ap.add_argument("--endpoint-url", help="SSM API endpoint (default: boto3's)")
    ap.add_argument("--document-name", help="session document (default: the shell)")
    ap.add_argument("--reason", help="reason recorded with the session")
    ap.add_argument(
        "--no-terminate", action="store_true", help="do not call TerminateSession on exit"
    )
    ap.add_argument(
        "--connect-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end the session with a message when no shell is up within this time",
    )
    args = ap.parse_args(argv)
    if not (args.target or args.session_env or args.session_fd is not None):
        ap.error("give --target, --session-env or --session-fd")
    args.session_json = None
    # What the extension passes by environment (it keeps job names out of argv).
    args.target = args.target or os.environ.get(TARGET_VARIABLE) or None
    if args.connect_timeout is None and os.environ.get(TIMEOUT_VARIABLE):
        try:
            args.connect_timeout = float(os.environ[TIMEOUT_VARIABLE])
        except ValueError:
            ap.error(f"{TIMEOUT_VARIABLE} must be a number of seconds")
    return args


def _parse_plugin_args(argv: List[str]) -> argparse.Namespace:
    """session-manager-plugin's positional form: response region operation [profile params ep]."""
    if len(argv) < 3 or argv[2] != "StartSession":
        raise UsageError(f"{PROG}: expected <response> <region> StartSession [...]")
    args = argparse.Namespace(
        target=None,
        session_env=None,
        session_fd=None,
        region=argv[1] or None,
        profile=argv[3] if len(argv) > 3 and argv[3] else None,
        endpoint_url=argv[5] if len(argv) > 5 and argv[5] else None,
        document_name=None,
        reason=None,
        no_terminate=False,
        session_json=None,
        connect_timeout=None,
    )
    if argv[0].startswith("AWS_SSM_START_SESSION_RESPONSE"):
        args.session_env = argv[0]
    else:
        args.session_json = argv[0]
    if len(argv) > 4:
        try:
            args.target = json.loads(argv[4]).get("Target")
        except (ValueError, AttributeError):
            args.target = None
    return args


# ---------------------------------------------------------------------------- AWS calls


class Api:
    """The two or three SSM calls we make, with boto3 imported on first use."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                session = boto3.Session(
                    profile_name=self.args.profile, region_name=self.args.region
                )
                self._client = session.client(
                    "ssm",
                    endpoint_url=self.args.endpoint_url,
                    config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2}),
                )
            return self._client

    def start_session(self, target: str) -> Dict[str, Any]:
        params: Dict[str, Any] = {"Target": target}
        if self.args.document_name:
            params["DocumentName"] = self.args.document_name
        if self.args.reason:
            params["Reason"] = self.args.reason
        try:
            return self.client().start_session(**params)
        except Exception as exc:  # noqa: BLE001 - every boto failure becomes one message
            raise ClientError(describe_aws_error(exc, "StartSession", target)) from None

    def generate_data_key(self, key_id: str, context: Dict[str, str]) -> tuple:
        """kms:GenerateDataKey for a KMS-encrypted session: (CiphertextBlob, Plaintext)."""
        import boto3
        from botocore.config import Config

        session = boto3.Session(profile_name=self.args.profile, region_name=self.args.region)
        # The KMS endpoint is boto3's own (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, or AWS);
        # --endpoint-url is SSM's.
        kms = session.client(
            "kms", config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2})
        )
        try:
            return encryption.kms_data_key(kms, key_id, context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the action's error
            raise ClientError(describe_aws_error(exc, "GenerateDataKey", key_id)) from None

    def resume_session(self, session_id: str) -> Dict[str, str]:
        """A new token and stream URL for a session whose connection was lost."""
        try:
            answer = self.client().resume_session(SessionId=session_id)
        except Exception as exc:  # noqa: BLE001 - every boto failure becomes one message
            raise ClientError(describe_aws_error(exc, "ResumeSession", session_id)) from None
        if not answer.get("TokenValue"):
            raise ClientError(f"Session {session_id} timed out.")
        return {
            "SessionId": session_id,
            "TokenValue": answer["TokenValue"],
            "StreamUrl": answer.get("StreamUrl") or "",
        }

    def terminate_session(self, session_id: str) -> Optional[str]:
        try:
            self.client().terminate_session(SessionId=session_id)
        except Exception as exc:  # noqa: BLE001 - the session ends anyway; say why not cleanly
            return describe_aws_error(exc, "TerminateSession", session_id)
        return None


def describe_aws_error(exc: Exception, operation: str, subject: str) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code", "")
        message = response["Error"].get("Message", "")
        text = f"An error occurred ({code}) when calling the {operation} operation: {message}"
        if code == "TargetNotConnected":
            text += (
                f"\nIs the training job running with remote debug enabled, and does {subject}"
                " exist? SSM registers a host a minute or two after the job starts training."
            )
        return text
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return f"{operation} failed: no AWS credentials found ({exc})."
    if name == "NoRegionError":
        return f"{operation} failed: no AWS region configured; pass --region or set AWS_REGION."
    return f"{operation} failed: {exc}"


def load_session(args: argparse.Namespace) -> Dict[str, str]:
    """The StartSession response this run uses: inherited, or from our own StartSession."""
    raw: Optional[str] = args.session_json
    if args.session_env:
        raw = os.environ.pop(args.session_env, None)
        if raw is None:
            raise ClientError(f"environment variable {args.session_env} is not set")
    elif args.session_fd is not None:
        try:
            with os.fdopen(args.session_fd, "rb") as f:
                raw = f.read().decode()
        except OSError as exc:
            raise ClientError(f"cannot read the session from fd {args.session_fd}: {exc}") from None
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ClientError("the StartSession response is not JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data.get(k)
        for k in ("SessionId", "StreamUrl", "TokenValue")
    ):
        raise ClientError("the StartSession response needs SessionId, StreamUrl and TokenValue")
    return data


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    api = Api(args)
    try:
        info = load_session(args)
        if not info:
            info = api.start_session(args.target)
    except ClientError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"\nStarting session with SessionId: {info['SessionId']}", flush=True)
    code, message = 1, ""
    try:
        code, message = run_session(
            info,
            connect_timeout=args.connect_timeout,
            resume=api.resume_session,
            target=args.target or "",
            generate_data_key=api.generate_data_key,
        )
    except ClientError as exc:
        message = str(exc)
    except KeyboardInterrupt:  # ^C before the terminal went raw
        code = 128 + signal.SIGINT
    finally:
        if message:
            print(f"\n\n{message}\n", file=sys.stdout if code == 0 else sys.stderr, flush=True)
        if not args.no_terminate:
            problem = api.terminate_session(info["SessionId"])
            if problem and code != 0:
                print(problem, file=sys.stderr)
    return code


def run_session(
    info: Dict[str, str],
    on_ready: Optional[Callable[[], None]] = None,
    connect_timeout: Optional[float] = None,
    resume: Optional[Callable[[str], Dict[str, str]]] = None,
    target: str = "",
    generate_data_key: Optional[encryption.GenerateDataKey] = None,
) -> tuple:
    """Connect and run the session until it ends; (exit status, message to print)."""
    ws = connect(info, connect_timeout or 30)
    terminal = Terminal()
    session = Session(
        ws,
        info,
        terminal,
        on_ready,
        connect_timeout,
        resume,
        target,
        generate_data_key,
    )
    undo = session.install_signals()
    try:
        with terminal:
            code = session.run()
    finally:
        restore_signals(undo)
        session.close()
    return code, session.exit_message


if __name__ == "__main__":
    sys.exit(main())
