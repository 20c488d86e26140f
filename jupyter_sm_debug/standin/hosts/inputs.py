"""A host's filesystem and inputs: its sandbox, /opt/ml, config files, scripts, entrypoint."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Optional

from .. import container, ddp, procs, s3files, trainlog
from ..sagemaker.models import (
    HOMOGENEOUS_GROUP,
    HostSpec,
    Job,
)
from .live import RELEASE_FILE, LiveHost

ENTRYPOINT_BIN = "usr/local/bin"  # in the sandbox, first on the hosts' PATH
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _install_entrypoint(bin_dir: Path) -> None:
    """Put sm-debug-entrypoint on the host's PATH: this package's console script if it is
    installed next to the interpreter, else a wrapper running the module."""
    target = bin_dir / "sm-debug-entrypoint"
    target.unlink(missing_ok=True)
    installed = Path(sys.executable).parent / "sm-debug-entrypoint"
    if installed.is_file() and os.access(installed, os.X_OK):
        target.symlink_to(installed)
        return
    package_parent = Path(__file__).resolve().parents[2]
    target.write_text(
        "#!/bin/sh\n"
        "# sm-debug-entrypoint of the stand-in's own jupyter_sm_debug package.\n"
        f"PYTHONPATH={shlex.quote(str(package_parent))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f'exec {shlex.quote(sys.executable)} -m jupyter_sm_debug.entrypoint "$@"\n'
    )
    target.chmod(0o755)


TOOLKIT_VARIABLE = "SM_STANDIN_TOOLKIT"  # "real": the installed Training Toolkit's train


def _toolkit() -> str:
    """The image's ``train`` for a lived job: the stand-in's own (toolkit.py), or with
    SM_STANDIN_TOOLKIT=real the real Training Toolkit's when ``sagemaker-training`` is
    installed next to the stand-in. Opt-in: the real one downloads the submit directory
    from S3 itself, which a host reaches only with the stand-in's endpoint and credentials
    in the job's Environment (not verified here)."""
    installed = Path(sys.executable).parent / "train"
    if (
        os.environ.get(TOOLKIT_VARIABLE) == "real"
        and installed.is_file()
        and importlib.util.find_spec("sagemaker_training") is not None
    ):
        return f'#!/bin/sh\nexec {shlex.quote(str(installed))} "$@"\n'
    return container.toolkit_program(sys.executable)


# SageMaker hands a container large values through files (/opt/ml/input/config); one
# environment string over the kernel's limit (MAX_ARG_STRLEN, 128 KiB) makes every exec
# with it fail (E2BIG), so such variables are left out of the hosts' environment.
MAX_VARIABLE = 64 * 1024


def _small(env: dict) -> dict:
    return {k: v for k, v in env.items() if len(k) + len(v) < MAX_VARIABLE}


def _decoded(value: Optional[str]) -> Optional[str]:
    """A hyperparameter as the toolkit reads it: the SDK JSON-encodes values ('"x.py"')."""
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


class InputsMixin:
    """HostManager's sandbox part: everything written before a host starts."""

    def _build_sandbox(self, job: Job, spec: HostSpec, sandbox: Path) -> tuple[dict, str, dict]:
        """Writes the host's files; returns its environment and working directory in this
        machine's paths (for a host without namespaces, and for callers outside), and its
        environment as the container sees it (/opt/ml ...)."""
        request = job.request
        optml = sandbox / "opt" / "ml"
        config_dir = optml / "input" / "config"
        for sub in (config_dir, optml / "model", optml / "output" / "data", optml / "code",
                    optml / "checkpoints", sandbox / "root"):  # fmt: skip
            sub.mkdir(parents=True, exist_ok=True)
        hosts = [h.name for h in job.hosts]
        groups: dict[str, dict] = {}
        for h in job.hosts:
            group = groups.setdefault(
                h.group,
                {"instance_group_name": h.group, "instance_type": h.instance_type, "hosts": []},
            )
            group["hosts"].append(h.name)
        resource = {
            "current_host": spec.name,
            "current_instance_type": spec.instance_type,
            "current_group_name": spec.group,
            "hosts": hosts,
            "instance_groups": list(groups.values()),
            "network_interface_name": "eth0",
        }
        hyperparameters = {k: str(v) for k, v in (request.get("HyperParameters") or {}).items()}
        channels = {}
        for channel in request.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            channels[name] = {
                "TrainingInputMode": channel.get("InputMode")
                or (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File"),
                "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            (optml / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
        (config_dir / "resourceconfig.json").write_text(json.dumps(resource, indent=2))
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(channels, indent=2))
        if job.lived:
            # The job's own inputs: its channels from the stand-in's S3 (File mode), its
            # submit directory unpacked (on AWS the toolkit unpacks it; ours cannot reach S3).
            for channel in request.get("InputDataConfig") or []:
                uri = s3files.channel_uri(channel)
                if uri:
                    target = optml / "input" / "data" / channel["ChannelName"]
                    s3files.materialise(self.logs.account_id, uri, target)
            s3files.unpack_submit_directory(
                self.logs.account_id, request.get("HyperParameters") or {}, optml / "code"
            )
        else:
            (optml / "code" / "train.py").write_text(ddp.TRAIN_PY)
        (sandbox / RELEASE_FILE).parent.mkdir(parents=True, exist_ok=True)
        bin_dir = sandbox / ENTRYPOINT_BIN
        bin_dir.mkdir(parents=True, exist_ok=True)
        _install_entrypoint(bin_dir)
        # The image's programs (python, a DLC's start script and toolkit, the BYOC's entry
        # point) and the init that runs what SageMaker runs: the job's effective command.
        (bin_dir / "python").unlink(missing_ok=True)
        (bin_dir / "python").symlink_to(sys.executable)
        script_args = trainlog.entry_point(hyperparameters)[2:]
        program = _decoded(hyperparameters.get("sagemaker_program")) or "train.py"
        if job.lived:
            pass
        elif program != "train.py" and re.fullmatch(r"[\w.-]+\.py", program):
            (optml / "code" / program).write_text(ddp.TRAIN_PY)
        elif program != "train.py":
            program = "train.py"
        programs = {
            "start_with_right_hostname.sh": container.START_WITH_RIGHT_HOSTNAME,
            "train": container.toolkit_train(program, script_args),
            "byoc_train.py": ddp.TRAIN_PY,
            "init": container.init_script(job.command or ["python", "train.py", *script_args]),
        }
        if job.lived:
            programs["train"] = _toolkit()
            programs["init"] = container.exec_script(job.command or ["train"])
        for file_name, text in programs.items():
            (bin_dir / file_name).write_text(text)
            (bin_dir / file_name).chmod(0o755)
        smi = ddp.nvidia_smi(spec.instance_type, spec.name)
        if smi:
            (bin_dir / "nvidia-smi").write_text(smi)
            (bin_dir / "nvidia-smi").chmod(0o755)
        user = self.ssh.user
        # The job's Environment reaches the container, as on SageMaker; the variables
        # SageMaker itself sets win.
        base = {
            str(k): str(v)
            for k, v in (request.get("Environment") or {}).items()
            if _ENV_NAME.fullmatch(str(k))
        }
        base |= {
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            "USER": user,
            "LOGNAME": user,
            "HOSTNAME": spec.name,
            "TRAINING_JOB_NAME": job.name,
            "TRAINING_JOB_ARN": job.arn,
            "SM_TRAINING_JOB_NAME": job.name,
            "SM_CURRENT_HOST": spec.name,
            "SM_HOSTS": json.dumps(hosts),
            "SM_NETWORK_INTERFACE_NAME": "eth0",
            "SM_CURRENT_INSTANCE_TYPE": spec.instance_type,
            "SM_CURRENT_INSTANCE_GROUP": spec.group,
            "SM_CURRENT_INSTANCE_GROUP_HOSTS": json.dumps(groups[spec.group]["hosts"]),
            "SM_INSTANCE_GROUPS": json.dumps(list(groups)),
            "SM_IS_HETERO": "false" if list(groups) == [HOMOGENEOUS_GROUP] else "true",
            "SM_USER_ENTRY_POINT": "train.py",
            "SM_MODULE_NAME": "train",
            "SM_FRAMEWORK_MODULE": "sagemaker_pytorch_container.training:main",
            "SM_FRAMEWORK_PARAMS": "{}",
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(hyperparameters),
            "SM_USER_ARGS": json.dumps(trainlog.entry_point(hyperparameters)[2:]),
            "SM_RESOURCE_CONFIG": json.dumps(resource),
            "SM_INPUT_DATA_CONFIG": json.dumps(channels),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": str(ddp.gpus(spec.instance_type)[0]),
            "SM_NUM_NEURONS": "0",
            "SM_LOG_LEVEL": "20",
        }
        hang = {t.get("Key"): t.get("Value") for t in job.tags or []}.get(
            "standin:" + ddp.HANG_RANK_TAG
        )
        stall = ddp.parse_hang_rank(hang)
        if stall:
            base["SM_STANDIN_HANG_RANK"] = f"{stall[0]}@{stall[1]}"
        for key, value in hyperparameters.items():
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                base["SM_HP_" + key.upper()] = value
        machine_path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")

        def paths(ml: str) -> dict:
            # The toolkit's variables that name paths under /opt/ml (or the sandbox's).
            env = {
                "SM_MODEL_DIR": f"{ml}/model",
                "SM_OUTPUT_DIR": f"{ml}/output",
                "SM_OUTPUT_DATA_DIR": f"{ml}/output/data",
                "SM_OUTPUT_INTERMEDIATE_DIR": f"{ml}/output/intermediate",
                "SM_INPUT_DIR": f"{ml}/input",
                "SM_INPUT_CONFIG_DIR": f"{ml}/input/config",
                "SM_MODULE_DIR": f"{ml}/code",
                "SM_TRAINING_ENV": container.training_env(
                    resource,
                    channels,
                    hyperparameters,
                    job.name,
                    ml,
                    os.cpu_count() or 1,
                    "train.py",
                ),  # fmt: skip
                # Where sm-debug-entrypoint finds /opt/ml.
                "SM_DEBUG_ML_ROOT": ml,
            }
            for name in channels:
                env["SM_CHANNEL_" + re.sub(r"\W", "_", name).upper()] = f"{ml}/input/data/{name}"
            return env

        # In this machine's paths: a host without namespaces, and callers outside.
        outside = (
            base
            | paths(str(optml))
            | {
                "HOME": str(sandbox / "root"),
                "PATH": str(bin_dir) + os.pathsep + machine_path,
                "SM_STANDIN_SANDBOX": str(sandbox),
                "SM_DEBUG_RELEASE_FILE": str(sandbox / RELEASE_FILE),
            }
        )
        # As the container sees it, in its own mount namespace.
        inside = (
            base
            | paths(container.INSIDE_ML)
            | {
                "HOME": "/root",
                # The machine's /root is shared: history goes to the container's own /tmp.
                "HISTFILE": "/tmp/.bash_history",  # noqa: S108
                "PATH": f"{container.INSIDE_HELPERS}/bin" + os.pathsep + machine_path,
                "SM_DEBUG_RELEASE_FILE": container.INSIDE_RELEASE_FILE,
            }
        )
        return _small(outside), str(optml), _small(inside)

    def _write_scripts(
        self, spec: HostSpec, meta: Path, env: dict, cwd: str, host: LiveHost
    ) -> Path:
        """enter.sh: every way into the host (sshd's ForceCommand, the SSM gateway's shell).
        With namespaces it enters the init's; without, it starts a plain shell of the sandbox
        whose banner says what is not isolated."""
        rcfile = meta / "bashrc"
        enter = ""
        if host.init is not None:
            q = shlex.quote
            token = f"{procs.TOKEN_VARIABLE}={host.token}"
            # After env -i: nsenter stays for the session, with the environment out of argv.
            enter = " ".join(q(a) for a in container.enter_argv(host.init)) + " "
            # An interactive shell leads its own session on the terminal, as sshd's would:
            # a hangup then reaches it, and it passes it on to its jobs.
            lead = q(shutil.which("setsid") or "setsid")
            interactive = f'$([ -t 0 ] && echo "{lead} --ctty ")'
            rc = f"{container.INSIDE_HELPERS}/bashrc"
            # The init's pid could be reused once it is gone: enter only the host's own.
            check = (
                f"tr '\\0' '\\n' < /proc/{host.init}/environ 2>/dev/null "
                f"| grep -qxF {q(token)} || {{ echo {q(f'{spec.name} has ended')} >&2; exit 1; }}\n"
            )
        else:
            rc = str(rcfile)
            check = interactive = ""
            banner = (
                f"[stand-in] {spec.name} is not isolated ({host.not_isolated}): hostname, "
                f"processes and /opt/ml are this machine's; its /opt/ml is {cwd}"
            )
            rcfile.write_text(
                f"# Shell start-up of stand-in host {spec.name}.\n"
                "[ -r /etc/bash.bashrc ] && . /etc/bash.bashrc\n"
                f"echo {shlex.quote(banner)}\n"
                "# Show paths as the container sees them: the sandbox is its /.\n"
                "_sm_pwd() {\n"
                '  case "$PWD" in\n'
                '    "$SM_STANDIN_SANDBOX"|"$SM_STANDIN_SANDBOX"/*)\n'
                '      local p="${PWD#"$SM_STANDIN_SANDBOX"}"; printf %s "${p:-/}" ;;\n'
                '    *) printf %s "$PWD" ;;\n'
                "  esac\n"
                "}\n"
                f"PS1='\\u@{spec.name}:$(_sm_pwd)\\$ '\n"
            )
        assignments = " ".join(
            shlex.quote(f"{k}={v}") for k, v in sorted(env.items()) if k != "TERM"
        )
        script = meta / "enter.sh"
        script.write_text(
            "#!/bin/bash\n"
            f"# Enters stand-in host {spec.name}. Argument --ssh: started by sshd's ForceCommand,\n"
            "# which runs SSH_ORIGINAL_COMMAND instead of a shell when the client sent one.\n"
            f"cd {shlex.quote(cwd)} || exit 1\n"
            f"{check}"
            'extra=("TERM=${TERM:-xterm-256color}")\n'
            'if [ "${1-}" = "--ssh" ]; then\n'
            "  for name in SSH_CONNECTION SSH_CLIENT SSH_TTY; do\n"
            '    [ -n "${!name-}" ] && extra+=("$name=${!name}")\n'
            "  done\n"
            '  if [ -n "${SSH_ORIGINAL_COMMAND-}" ]; then\n'
            # --norc: bash reads ~/.bashrc when its stdin is sshd's socket, and inside the
            # host ~ is this machine's (pyenv's rehash there can wait 60 s on a stale lock).
            f'    exec env -i {assignments} "${{extra[@]}}" {enter}'
            '/bin/bash --norc -c "$SSH_ORIGINAL_COMMAND"\n'
            "  fi\n"
            "fi\n"
            f'exec env -i {assignments} "${{extra[@]}}" {enter}{interactive}/bin/bash --noprofile '
            f"--rcfile {shlex.quote(rc)} -i\n"
        )
        script.chmod(0o755)
        return script
