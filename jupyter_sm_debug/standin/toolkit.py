"""The stand-in image's ``train``: script mode as the SageMaker Training Toolkit runs it.

The real toolkit (``sagemaker-training`` 5.1.4 on PyPI) is an sdist with a C extension
that needs a compiler, and pulls gevent, scipy, numpy, protobuf and paramiko; hosts.py runs
it instead only when asked (SM_STANDIN_TOOLKIT=real) and it is importable.

Standard library only: hosts.py copies this file into each host as its ``train`` and runs
it with the stand-in's interpreter. The rules it follows are the
toolkit's (sagemaker-training 5.1.4), each cited where it applies:

- hyperparameters come from /opt/ml/input/config/hyperparameters.json, each value JSON-
  decoded when it parses (environment.read_hyperparameters); the ``sagemaker_*`` ones are
  SageMaker's own and are not passed to the script (params.SAGEMAKER_HYPERPARAMETERS);
- the user's entry point is ``sagemaker_program`` in the code directory (on AWS the toolkit
  downloads ``sagemaker_submit_directory`` there; the stand-in's host has unpacked it);
- the others become arguments ``--key value`` sorted by key, ``-k`` for one-letter keys and
  ``k=v,...`` for mappings (mapping.to_cmd_args);
- a ``.py`` entry point runs as ``python -- program args`` and anything else as
  ``/bin/sh -c "./program args"`` (process.ProcessRunner._create_command), in the code
  directory, with the script's stderr captured for the error report (process.check_error);
- a non-zero exit is an ExecuteUserScriptError, a ClientError: its text
  (``ExecuteUserScriptError:\\nExitCode N\\nErrorMessage "..."\\nCommand "..."``, errors.
  _CalledProcessError.__str__) goes to /opt/ml/output/failure unless that file exists, and
  ``train`` exits 1 (trainer.train: DEFAULT_FAILURE_CODE); success writes
  /opt/ml/output/success (files.write_success_file);
- log lines are ``<time> sagemaker-training-toolkit <LEVEL> <message>``
  (logging_config.get_logger).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time

ML = os.environ.get("SM_DEBUG_ML_ROOT", "/opt/ml")
CONFIG = os.path.join(ML, "input", "config")
OUTPUT = os.path.join(ML, "output")
CODE = os.path.join(ML, "code")
NAME = "sagemaker-training-toolkit"
SUCCESS, FAILURE = 0, 1  # trainer.SUCCESS_CODE, trainer.DEFAULT_FAILURE_CODE


def log(level: str, message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f",{int(now % 1 * 1000):03d}"
    print(f"{stamp} {NAME} {level:<8} {message}", flush=True)


def read_json(name: str) -> dict:
    try:
        with open(os.path.join(CONFIG, name)) as source:
            return json.load(source)
    except (OSError, ValueError):
        return {}


def decoded(value):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def arguments(hyperparameters: dict) -> list[str]:
    args = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(text(value))
    return args


def write_once(name: str, content: str) -> None:
    path = os.path.join(OUTPUT, name)
    if name == "failure" and os.path.exists(path):
        log("INFO", "Failure file exists. Skipping creation....")
        return
    os.makedirs(OUTPUT, exist_ok=True)
    with open(path, "w") as target:
        target.write(content)


def run(command: list[str], env: dict) -> tuple[int, str]:
    """Run the user's command; its stdout passes through, its stderr is passed through and
    kept for the report."""
    process = subprocess.Popen(command, cwd=CODE, env=env, stderr=subprocess.PIPE)
    kept: list[str] = []

    def pump() -> None:
        for raw in iter(process.stderr.readline, b""):
            sys.stderr.buffer.write(raw)
            sys.stderr.flush()
            kept.append(raw.decode("utf-8", "replace").rstrip("\n"))
            del kept[:-40]

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    log("INFO", "Waiting for the process to finish and give a return code.")
    code = process.wait()
    reader.join(timeout=5)
    log("INFO", f"Done waiting for a return code. Received {code} from exiting process.")
    # process.check_error: stderr lines, duplicates dropped, joined.
    return code, "\n".join(dict.fromkeys(kept)).strip()


def main() -> int:
    everything = {k: decoded(v) for k, v in read_json("hyperparameters.json").items()}
    user = {k: v for k, v in everything.items() if not k.startswith("sagemaker_")}
    program = everything.get("sagemaker_program")
    log("INFO", "No GPUs detected (normal if no gpus installed)")
    log("INFO", "No Neurons detected (normal if no neurons installed)")
    if not isinstance(program, str) or not program or program.startswith("-"):
        message = (
            "Framework Error: \nNo entry point: the hyperparameter sagemaker_program names "
            "the script to run"
        )
        write_once("failure", message)
        log("ERROR", "Reporting training FAILURE")
        log("ERROR", message)
        return FAILURE
    args = arguments(user)
    if program.endswith(".py"):
        command = [sys.executable, "--", program, *args]
    else:
        command = ["/bin/sh", "-c", f"./{shlex.quote(program)} {' '.join(map(shlex.quote, args))}"]
    env = dict(os.environ)
    env["SM_HPS"] = json.dumps(user, sort_keys=True)
    env["SM_USER_ARGS"] = json.dumps(args)
    env["SM_USER_ENTRY_POINT"] = program
    env["SM_MODULE_NAME"] = program.removesuffix(".py")
    for key, value in user.items():
        env["SM_HP_" + key.upper()] = text(value)
    # One environment string over the kernel's 128 KiB (MAX_ARG_STRLEN) fails every exec
    # (E2BIG): the largest hyperparameters AWS allows (100 x 2500 characters) would, in
    # SM_HPS. The script reads them from its arguments or hyperparameters.json instead.
    env = {k: v for k, v in env.items() if len(k) + len(v) < 64 * 1024}
    training_env = {
        "hyperparameters": user,
        "input_config_dir": CONFIG,
        "job_name": os.environ.get("TRAINING_JOB_NAME", ""),
        "module_dir": CODE,
        "module_name": env["SM_MODULE_NAME"],
        "user_entry_point": program,
    }
    log("INFO", "Invoking user script")
    print("\nTraining Env:\n", flush=True)
    print(json.dumps(training_env, indent=4, sort_keys=True), flush=True)
    print("\nInvoking script with the following command:\n", flush=True)
    shown = " ".join(shlex.quote(part) for part in command)
    print(shown + "\n", flush=True)
    try:
        code, stderr = run(command, env)
    except OSError as error:
        code, stderr = 127, str(error)
    if code == 0:
        log("INFO", "Reporting training SUCCESS")
        write_once("success", "")
        return SUCCESS
    message = (
        f'ExecuteUserScriptError:\nExitCode {code}\nErrorMessage "{stderr}"\nCommand "{shown}"'
    )
    write_once("failure", message)
    log("ERROR", "Reporting training FAILURE")
    log("ERROR", message)
    log("ERROR", f"Encountered exit_code {FAILURE}")
    return FAILURE


if __name__ == "__main__":
    sys.exit(main())
