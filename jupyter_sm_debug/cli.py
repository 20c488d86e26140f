"""`jupyter-sm-debug` (also `jupyter sm-debug`): run the local stand-in, or the whole demo."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time

# What each command needs beyond the extension itself, and the one pip line that brings it.
DEMO_INSTALL = 'pip install "jupyter-sm-debug[demo]"  (from a clone: pip install -e ".[demo]")'
NEEDS = {
    "demo": {"jupyterlab": "JupyterLab", "moto": "moto (the stand-in's AWS backends)"},
    "standin": {"moto": "moto (the stand-in's AWS backends)"},
}


def missing_modules(command: str) -> list[str]:
    """The optional modules `command` needs that this Python cannot import."""
    return [
        label
        for module, label in NEEDS[command].items()
        if importlib.util.find_spec(module) is None
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jupyter-sm-debug",
        description="Shells inside SageMaker training containers, from JupyterLab.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="JupyterLab with the extension against a local SageMaker stand-in (no AWS needed).",
    )
    demo.add_argument("--port", type=int, default=8888, help="JupyterLab port (default 8888).")
    demo.add_argument("--standin-port", type=int, default=0, help="Stand-in port (default: any).")
    demo.add_argument("--no-browser", action="store_true", help="Do not open a browser.")
    demo.add_argument(
        "--token", default=None, help="Jupyter token (default: random; '' disables auth)."
    )
    demo.add_argument("--root-dir", default=None, help="JupyterLab's root directory.")

    standin = commands.add_parser(
        "standin", help="Run the local SageMaker/CloudWatch Logs/SSM stand-in alone."
    )
    standin.add_argument("--port", type=int, default=5005, help="Port (default 5005).")
    standin.add_argument(
        "--address", default="127.0.0.1", help="Address (default 127.0.0.1; loopback only)."
    )
    standin.add_argument(
        "--allow-remote",
        action="store_true",
        help="Let --address be a non-loopback address: anyone who can reach it and holds the "
        "credentials gets shells as this user, over plain HTTP.",
    )
    standin.add_argument("--no-seed", action="store_true", help="Start with no jobs.")
    standin.add_argument(
        "--no-hosts", action="store_true", help="No host sandboxes or sshd (API only)."
    )
    standin.add_argument(
        "--latency", type=float, default=0.0, help="Seconds added to every API call."
    )
    standin.add_argument(
        "--channel-latency",
        type=float,
        default=0.0,
        help="Seconds of round trip on the SSM data channel (half each way).",
    )

    args = parser.parse_args(argv)
    missing = missing_modules(args.command)
    if missing:
        print(
            f"jupyter-sm-debug {args.command} needs {' and '.join(missing)}: {DEMO_INSTALL}",
            file=sys.stderr,
        )
        return 1
    if args.command == "standin":
        return run_standin(args)
    return run_demo(args)


def run_standin(args) -> int:
    from .standin import StandIn
    from .standin.core import is_loopback

    if not is_loopback(args.address):
        if not args.allow_remote:
            print(
                f"jupyter-sm-debug standin: {args.address} is not a loopback address. The "
                "stand-in's hosts are shells as this user, reached over plain HTTP; to listen "
                "there anyway, add --allow-remote.",
                file=sys.stderr,
            )
            return 2
        print(
            f"Warning: the stand-in listens on {args.address}: anyone who can reach it and "
            "holds its credentials gets a shell as this user; its traffic is not encrypted.",
            file=sys.stderr,
            flush=True,
        )
    server = StandIn(
        clock="real",
        seed=None if args.no_seed else "demo",
        hosts=not args.no_hosts,
        latency=args.latency,
        channel_latency=args.channel_latency,
    )
    url = server.start(port=args.port, address=args.address, allow_remote=args.allow_remote)
    print(f"SageMaker stand-in listening on {url}", flush=True)
    print("Use it from boto3 or the AWS CLI with:", flush=True)
    for line in client_exports(server.client_env(), server.credentials_file):
        print(f"  {line}", flush=True)
    if getattr(server, "sshd_missing_hint", None):
        print(f"Note: {server.sshd_missing_hint}", flush=True)
    server.serve_forever()
    return 0


# The client variables that are secrets: they stay in the credentials file (mode 0600).
SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def client_exports(env: dict, credentials_file) -> list[str]:
    """The shell lines a client needs to use the stand-in: every variable of its
    client_env() (the CA of its wss:// data channel included) except the secrets, which a
    client reads from the credentials file instead."""
    lines = [
        f"export {name}={shlex.quote(str(value))}"
        for name, value in env.items()
        if name not in SECRET_VARIABLES
    ]
    lines.append(f"export AWS_SHARED_CREDENTIALS_FILE={shlex.quote(str(credentials_file))}")
    lines.append("export AWS_CONFIG_FILE=/dev/null AWS_PROFILE=default")
    lines.append("unset " + " ".join(SECRET_VARIABLES))
    return lines


def demo_environment(base: dict, standin_env: dict, lab_dir=None) -> dict:
    """The demo's JupyterLab sees the stand-in and nothing of the user's own AWS setup;
    with ``lab_dir``, its settings and workspaces live there, not in the user's
    ~/.jupyter/lab (a theme or the open tabs of the demo would show up elsewhere)."""
    env = {name: value for name, value in base.items() if not name.startswith("AWS_")}
    env.update(standin_env)
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if lab_dir is not None:
        env["JUPYTERLAB_SETTINGS_DIR"] = str(lab_dir / "user-settings")
        env["JUPYTERLAB_WORKSPACES_DIR"] = str(lab_dir / "workspaces")
    return env


def jupyter_lab_command(args, server) -> list[str]:
    """JupyterLab's argv for the demo: no secret in it (argv is world-readable in /proc)."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--port={args.port}",
        "--ServerApp.port_retries=0",
        f"--SMDebug.ssh_user={server.ssh_user}",
        f"--SMDebug.ssh_key={server.client_key_path}",
    ]
    if args.token == "":
        command.append("--IdentityProvider.token=")  # auth off, as asked: nothing secret
    if args.no_browser:
        command.append("--no-browser")
    if args.root_dir:
        command.append(f"--ServerApp.root_dir={args.root_dir}")
    if os.geteuid() == 0:
        command.append("--allow-root")
    return command


def say(message: str, stream=None) -> None:
    """Print, surviving a closed pipe (`demo | tee log` after Ctrl-C has killed tee)."""
    with contextlib.suppress(OSError):  # BrokenPipeError included
        print(message, file=stream or sys.stdout, flush=True)


class Stop(Exception):
    """SIGINT/SIGTERM asked the demo to stop."""


def run_demo(args) -> int:
    from .standin import StandIn

    stopping = False

    def stop(_signum, _frame):
        # The first signal stops the demo; later ones (a second Ctrl-C, systemd's SIGTERM)
        # only let the shutdown already under way finish, without a traceback.
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stop

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    server = StandIn(clock="real", seed="demo")
    lab = None
    try:
        standin_url = server.start(port=args.standin_port)
        say(f"jupyter-sm-debug demo: SageMaker stand-in on {standin_url}")
        if getattr(server, "sshd_missing_hint", None):
            say(f"Note: {server.sshd_missing_hint}")
        token = secrets.token_hex(24) if args.token is None else args.token
        env = demo_environment(dict(os.environ), server.client_env(), server.root / "lab")
        env.pop("JUPYTER_TOKEN", None)
        if token:
            env["JUPYTER_TOKEN"] = token  # read by Jupyter's IdentityProvider, not in argv
        # Its own session: a terminal's Ctrl-C reaches this process only, which then stops
        # JupyterLab itself (JupyterLab would otherwise ask "Shutdown?" on a tty, or be left
        # running when tee, our stdout, died of the same Ctrl-C).
        lab = subprocess.Popen(jupyter_lab_command(args, server), env=env, start_new_session=True)
        query = f"?token={token}" if token else ""
        say(f"\n    Open JupyterLab: http://localhost:{args.port}/lab{query}\n")
        return lab.wait()
    except Stop:
        say("\nStopping the demo...")
        return 0
    finally:
        stopping = True  # from here on, signals change nothing
        if lab is not None and lab.poll() is None:
            lab.terminate()  # SIGTERM: JupyterLab shuts down cleanly without asking
            deadline = time.monotonic() + 15
            while lab.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if lab.poll() is None:
                lab.kill()
                lab.wait()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
