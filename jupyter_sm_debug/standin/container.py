"""What makes a stand-in host look like a training container: Linux namespaces.

Each host runs in its own UTS, PID, mount and IPC namespaces, made by util-linux ``unshare``
(root only, as in CI). The namespace's init (PID 1) runs what SageMaker would run (the job's
effective command: ContainerEntrypoint/Arguments, else the image's ENTRYPOINT + ``train``;
see ecr.py) and lives as long as the host. Its mount namespace
has ``/opt/ml`` (the sandbox's tree), a ``/tmp`` of its own (the sandbox's ``tmp``) and
``/opt/sm-debug`` (the stand-in's helpers: ``sm-debug-entrypoint``, the shell start-up); the
rest of the machine's file system is shared, as an image's would be. Every way into the host
(sshd's ForceCommand, the SSM gateway's shell) runs ``nsenter`` into that init's namespaces;
ending the init ends every process in them.

Where namespaces are not permitted (not root, a kernel or sandbox that refuses them), hosts
run as before, as plain shells on the machine, and say so in their banner.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

ISOLATION_VARIABLE = "SM_STANDIN_ISOLATION"  # "none": hosts without namespaces
INSIDE_ML = "/opt/ml"
INSIDE_HELPERS = "/opt/sm-debug"  # the stand-in's helpers inside a host
INSIDE_RELEASE_FILE = "/tmp/sm-debug-release"  # noqa: S108 - the container's own /tmp
NAMESPACES = ("--uts", "--pid", "--mount", "--ipc")

_probe_lock = threading.Lock()
_probed: dict[str, Optional[str]] = {}


def default_signals() -> None:  # pragma: no cover - runs in the child, before exec
    """SIGINT, SIGQUIT and SIGHUP at their defaults, as in a container's processes. A
    stand-in started in the background (`cmd &` in a script, nohup) has them ignored, and
    ignored signals survive exec: a host's shell would ignore ^C."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def unavailable() -> Optional[str]:
    """Why hosts cannot have namespaces here (None: they can). Probed once per process."""
    if os.environ.get(ISOLATION_VARIABLE, "").lower() == "none":
        return f"namespaces turned off ({ISOLATION_VARIABLE}=none)"
    with _probe_lock:
        if "reason" not in _probed:
            _probed["reason"] = _probe()
        return _probed["reason"]


def _probe() -> Optional[str]:
    if os.geteuid() != 0:
        return "namespaces need root"
    unshare, nsenter = shutil.which("unshare"), shutil.which("nsenter")
    if not unshare or not nsenter:
        return "util-linux unshare/nsenter not found"
    try:
        result = subprocess.run(
            [unshare, *NAMESPACES, "--fork", "--mount-proc", "--", "/bin/true"],
            capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if result.returncode != 0:
        return "unshare failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    return None


# -- the training process -------------------------------------------------------------------

# A DLC's start script: `train` runs the training toolkit, anything else is a command.
START_WITH_RIGHT_HOSTNAME = """#!/bin/bash
if [[ "$1" = "train" ]]; then exec train; else eval "$@"; fi
"""


def toolkit_train(program: str, arguments: list[str]) -> str:
    """A DLC's ``train``: the SageMaker training toolkit in script mode, which runs
    ``sagemaker_program`` from the code directory with the hyperparameters as arguments."""
    command = " ".join(shlex.quote(a) for a in ["python", program, *arguments])
    return (
        "#!/bin/bash\n"
        "# The training toolkit (script mode): the job's sagemaker_program from /opt/ml/code.\n"
        f'cd "$SM_MODULE_DIR" && exec {command}\n'
    )


def init_script(argv: list[str]) -> str:
    """The container's init: runs what SageMaker runs (the job's effective command), then
    waits. As the namespace's PID 1 it also reaps orphans and passes SIGTERM on."""
    command = " ".join(shlex.quote(a) for a in argv)
    return (
        "#!/bin/bash\n"
        "# The container's init: runs the job's command and stays up while the host lives.\n"
        "if [ $$ -eq 1 ]; then trap 'kill -TERM -1 2>/dev/null; exit 143' TERM; fi\n"
        f'(cd "$SM_MODULE_DIR" && exec {command}) &\n'
        "while :; do wait -n 2>/dev/null || { sleep 30 & wait $!; }; done\n"
    )


def exec_script(argv: list[str]) -> str:
    """A lived job's init: becomes the job's effective command, which is then PID 1 of the
    host's PID namespace as in a Docker container (no init of ours in between: a PID 1 that
    installs no SIGTERM handler ignores it, and Stop then ends with SIGKILL)."""
    command = " ".join(shlex.quote(a) for a in argv)
    return (
        "#!/bin/bash\n"
        "# The container's command, as PID 1.\n"
        'cd "$SM_MODULE_DIR" 2>/dev/null || cd /\n'
        f"exec {command}\n"
    )


def toolkit_program(python: str) -> str:
    """The stand-in's ``train`` (toolkit.py) as a program for ``python``."""
    source = (Path(__file__).parent / "toolkit.py").read_text()
    return f"#!{python}\n" + source


# -- the namespace --------------------------------------------------------------------------


def visible_paths() -> list[str]:
    """Directories of this machine under /tmp that a host must still see once it has a /tmp
    of its own: the Python the stand-in runs (a venv) and this package (an editable
    checkout), which the hosts' programs (sm-debug-entrypoint, train) run from."""
    found = set()
    for path in (
        sys.prefix,
        sys.base_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        str(Path(__file__).resolve().parents[2]),
    ):
        real = os.path.realpath(path)
        if real.startswith("/tmp/"):  # noqa: S108 - the machine's /tmp, hidden in a host
            found.add(real)
    # The outermost only: a bind of a parent shows its children.
    return sorted(p for p in found if not any(p.startswith(o + "/") for o in found))


def _init_script(
    hostname: str, sandbox: Path, meta: Path, bashrc: Path, keep: Optional[list] = None
) -> str:
    """Runs first as PID 1 of the new namespaces: sets the host's name and mounts, then
    becomes the container's ``init``. Paths of this machine are used before /tmp is
    replaced (the stand-in's own directories may be under it); ``keep``: directories
    under the machine's /tmp that stay visible at the same path (visible_paths())."""
    q = shlex.quote
    stage = meta / "stage"
    kept = [path for path in (keep or []) if path.startswith("/tmp/")]  # noqa: S108
    # Bound aside (under /opt, the host's own) while /tmp is the machine's, moved back after.
    aside = "".join(
        f"mkdir -p {INSIDE_HELPERS}/keep/{n}\nmount --rbind {q(path)} {INSIDE_HELPERS}/keep/{n}\n"
        for n, path in enumerate(kept)
    )
    back = "".join(
        f"mkdir -p {q(path)}\nmount --move {INSIDE_HELPERS}/keep/{n} {q(path)}\n"
        for n, path in enumerate(kept)
    )
    return (
        "#!/bin/bash\n"
        f"# Sets up the namespaces of stand-in host {hostname}, then runs its init.\n"
        "set -eu\n"
        f"exec 3>{q(str(meta / 'ready'))}\n"
        f"hostname {q(hostname)}\n"
        "mount --make-rprivate /\n"
        # /opt: the machine's, with a writable layer of the host's own (as an image's
        # layers), holding ml and sm-debug. Without overlayfs: a tmpfs with the machine's
        # entries bound back.
        f"mount -t tmpfs -o mode=700 layer {q(str(stage))}\n"
        f"mkdir {q(str(stage / 'upper'))} {q(str(stage / 'work'))}\n"
        f"if ! mount -t overlay -o lowerdir=/opt,upperdir={q(str(stage / 'upper'))},"
        f"workdir={q(str(stage / 'work'))} opt /opt 2>/dev/null; then\n"
        f"  mkdir {q(str(stage / 'opt'))}\n"
        f"  mount --rbind /opt {q(str(stage / 'opt'))}\n"
        "  mount -t tmpfs -o mode=755 opt /opt\n"
        f"  for entry in {q(str(stage / 'opt'))}/* {q(str(stage / 'opt'))}/.[!.]*; do\n"
        '    [ -e "$entry" ] || continue\n'
        '    target="/opt/${entry##*/}"\n'
        '    if [ -d "$entry" ]; then mkdir "$target"; else : > "$target"; fi\n'
        '    mount --rbind "$entry" "$target"\n'
        "  done\n"
        f"  umount -l {q(str(stage / 'opt'))}\n"
        "fi\n"
        f"mkdir -p {INSIDE_ML} {INSIDE_HELPERS}/bin\n"
        f"mount --bind {q(str(sandbox / 'opt' / 'ml'))} {INSIDE_ML}\n"
        f"mount --bind {q(str(sandbox / 'usr' / 'local' / 'bin'))} {INSIDE_HELPERS}/bin\n"
        f": > {INSIDE_HELPERS}/bashrc\n"
        f"mount --bind -o ro {q(str(bashrc))} {INSIDE_HELPERS}/bashrc\n"
        # What must stay visible of the machine's /tmp comes back at the same path.
        f"{aside}"
        f"mount --bind {q(str(sandbox / 'tmp'))} /tmp\n"
        f"{back}"
        # A devpts instance of its own: a host's processes see and open only its terminals,
        # never the machine's (/dev/pts/N of other users' sessions).
        "mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts\n"
        "mount --bind /dev/pts/ptmx /dev/ptmx\n"
        "echo ok >&3\n"
        "exec 3>&-\n"
        f"cd {INSIDE_ML}\n"
        f"exec /bin/bash {INSIDE_HELPERS}/bin/init\n"
    )


def start(
    hostname: str, sandbox: Path, meta: Path, bashrc: Path, env: dict, timeout: float = 10.0
) -> subprocess.Popen:
    """Start the host's namespaces with its train as PID 1; returns ``unshare``'s process
    (its one child is the init). Raises RuntimeError if they could not be set up."""
    (meta / "stage").mkdir(parents=True, exist_ok=True)
    init = meta / "init.sh"
    init.write_text(_init_script(hostname, sandbox, meta, bashrc, visible_paths()))
    ready = meta / "ready"
    ready.unlink(missing_ok=True)
    with open(meta / "train.log", "ab") as output:
        process = subprocess.Popen(
            [shutil.which("unshare") or "unshare", *NAMESPACES, "--fork", "--mount-proc",
             "--kill-child", "--", "/bin/bash", str(init)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env,
            cwd="/", start_new_session=True, preexec_fn=default_signals,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.exists() and ready.read_text().strip() == "ok":
            return process
        if process.poll() is not None:
            break
        time.sleep(0.01)
    if process.poll() is None:
        process.kill()
    process.wait()
    tail = (meta / "train.log").read_text(errors="replace").strip().splitlines()[-1:]
    raise RuntimeError("namespaces not set up: " + (tail[0] if tail else "timed out"))


def init_pid(unshare_pid: int) -> Optional[int]:
    """The namespace's init, as this machine sees it: ``unshare``'s only child."""
    try:
        with open(f"/proc/{unshare_pid}/task/{unshare_pid}/children") as children:
            found = children.read().split()
    except OSError:
        return None
    return int(found[0]) if found else None


def enter_argv(target: int) -> list[str]:
    """Prefix that runs a command inside the host whose init is ``target``, in the init's
    working directory (/opt/ml: nsenter would look a path up outside the namespace)."""
    nsenter = shutil.which("nsenter") or "nsenter"
    return [nsenter, f"--target={target}", *NAMESPACES, "--wd", "--"]


def training_env(resource: dict, channels: dict, hyperparameters: dict, job: str, ml: str,
                 cpus: int, entry_point: str) -> str:  # fmt: skip
    """SM_TRAINING_ENV as the SageMaker training toolkit sets it (a JSON object)."""
    hosts = resource["hosts"]
    groups = resource["instance_groups"]
    current_group = resource["current_group_name"]
    env = {
        "additional_framework_parameters": {},
        "channel_input_dirs": {name: f"{ml}/input/data/{name}" for name in channels},
        "current_host": resource["current_host"],
        "current_instance_group": current_group,
        "current_instance_group_hosts": next(
            g["hosts"] for g in groups if g["instance_group_name"] == current_group
        ),
        "current_instance_type": resource["current_instance_type"],
        "distribution_hosts": [],
        "distribution_instance_groups": [],
        "framework_module": "sagemaker_pytorch_container.training:main",
        "hosts": hosts,
        "hyperparameters": hyperparameters,
        "input_config_dir": f"{ml}/input/config",
        "input_data_config": channels,
        "input_dir": f"{ml}/input",
        "instance_groups": [g["instance_group_name"] for g in groups],
        "instance_groups_dict": {g["instance_group_name"]: g for g in groups},
        "is_hetero": len(groups) > 1,
        "is_master": resource["current_host"] == hosts[0],
        "is_modelparallel_enabled": None,
        "job_name": job,
        "log_level": 20,
        "master_hostname": hosts[0],
        "model_dir": f"{ml}/model",
        "module_dir": f"{ml}/code",
        "module_name": entry_point.removesuffix(".py"),
        "network_interface_name": resource["network_interface_name"],
        "num_cpus": cpus,
        "num_gpus": 0,
        "num_neurons": 0,
        "output_data_dir": f"{ml}/output/data",
        "output_dir": f"{ml}/output",
        "output_intermediate_dir": f"{ml}/output/intermediate",
        "resource_config": resource,
        "user_entry_point": entry_point,
    }
    return json.dumps(env, sort_keys=True)


def outside_pid(init: int, pid: int) -> Optional[int]:
    """This machine's pid of the process numbered ``pid`` inside the host whose init is
    ``init`` (a host in namespaces numbers its own processes). None: no such process."""
    try:
        namespace = os.readlink(f"/proc/{init}/ns/pid")
    except OSError:
        return None
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") != namespace:
                continue
            with open(f"/proc/{name}/status") as status:
                numbers = next(line for line in status if line.startswith("NSpid:")).split()
        except (OSError, StopIteration):
            continue
        if int(numbers[-1]) == pid:
            return int(name)
    return None
