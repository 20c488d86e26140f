"""All settings of the server extension, as one traitlets Configurable.

Set them like any Jupyter option, e.g. in ``jupyter_server_config.py``::

    c.SMDebug.region = "eu-west-1"
    c.SMDebug.ssh_key = "~/.ssh/sm-debug"

AWS settings default to boto3's own chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL,
instance/role credentials), so a plain ``jupyter lab`` in Studio or on a Notebook Instance
needs none of them.
"""

from traitlets import Bool, Dict, Enum, Float, Int, Unicode
from traitlets.config import Configurable


class SMDebug(Configurable):
    region = Unicode(
        None,
        allow_none=True,
        config=True,
        help="AWS region of the SageMaker jobs. Default: boto3's (AWS_REGION, profile, IMDS).",
    )
    profile = Unicode(
        None,
        allow_none=True,
        config=True,
        help="AWS named profile to use. Default: boto3's (AWS_PROFILE or the default profile).",
    )
    endpoint_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Endpoint URL for every AWS service called (e.g. a local stand-in). "
        "Default: boto3's own (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, or AWS).",
    )
    max_concurrency = Int(
        20,
        config=True,
        help="Most AWS calls in flight at once. The default covers the sidebar's page of 20, "
        "so a page's descriptions go out in one wave; botocore's standard retry mode backs "
        "off if SageMaker throttles Describe* calls.",
    )
    api_timeout = Float(10.0, config=True, help="Connect and read timeout of one AWS call (s).")
    max_attempts = Int(
        4,
        config=True,
        help="Attempts per AWS call, the first one included, with botocore's standard retry "
        "backoff on throttling.",
    )
    running_cache_ttl = Float(
        5.0,
        config=True,
        help="Seconds a running job's description is reused. Finished jobs never change "
        "and are cached for good. The job list reuses a running job's description beyond "
        "this (at most 60 s) while ListTrainingJobs shows the job unchanged.",
    )
    default_transport = Enum(
        ["ssm", "ssh"], "ssm", config=True, help="Transport used when a request names none."
    )
    ssm_client = Enum(
        ["auto", "plugin", "builtin"],
        "auto",
        config=True,
        help="SSM session client: AWS's session-manager-plugin, the built-in Python client, "
        "or auto (the plugin when it is on PATH and 1.2.536.0 or newer, else the built-in "
        "one; an older plugin cannot take the session without a token in its argv).",
    )
    ssm_connect_timeout = Float(
        30.0,
        config=True,
        help="Seconds an SSM session client has to show the remote shell. A client that "
        "ends or shows nothing by then leaves a line in the tab saying so (and is ended).",
    )
    ssm_document = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Session document for SSM attach (a SessionManagerRunShell-type document, e.g. "
        "one that sets a KMS key, a shell profile or Run As). Default: the account's "
        "SSM-SessionManagerRunShell.",
    )
    ssh_user = Unicode("root", config=True, help="User name for SSH attach.")
    ssh_port = Int(
        22,
        min=1,
        max=65535,
        config=True,
        help="Port of sshd in the training container when an address names none.",
    )
    ssh_key = Unicode(
        None, allow_none=True, config=True, help="Private key file for SSH attach (ssh -i)."
    )
    ssh_config = Unicode(
        None,
        allow_none=True,
        config=True,
        help="OpenSSH client configuration file the SSH attach reads (e.g. '~/.ssh/config' "
        "for a ProxyJump). Default: none (ssh -F /dev/null). Host key pinning and forwarding "
        "off are set on the command line, which wins over any file.",
    )
    ssh_strict_host_key_checking = Bool(
        False,
        config=True,
        help="Announced hosts are always verified against the host key their entrypoint "
        "announced. This decides explicit addresses given without a host key: False connects "
        "and pins the key the host presents for that session (the answer says the host is "
        "not verified); True refuses them (409 host_key_required).",
    )
    ssh_addresses = Dict(
        {},
        config=True,
        help="Explicit SSH addresses per job and host, optionally with the host key: "
        '{"my-job": {"algo-1": "10.0.1.7:22", "algo-2": {"address": "10.0.1.8:22", '
        '"host_key": "ssh-ed25519 AAAA..."}}}.',
    )
    stacks_py_spy = Enum(
        ["auto", "push"],
        "auto",
        config=True,
        help="Stack dumps: 'auto' uses the container's py-spy when it has one, else sends the "
        "one installed beside this extension; 'push' always sends ours (e.g. when the image's "
        "py-spy is too old for its Python).",
    )
    run_timeout = Float(
        30.0,
        config=True,
        help="Default seconds a command on a host (stacks, host state, run) may take before "
        "the host is reported as not answering.",
    )
    forward_idle_seconds = Float(
        600.0,
        min=0.0,
        config=True,
        help="A port forward nothing used (no proxied request, no open websocket) for this "
        "many seconds ends: the browser never says reliably that its last tab closed. "
        "0 keeps forwards until DELETE or the job ends.",
    )
    files_idle_seconds = Float(
        300.0,
        min=0.0,
        config=True,
        help="A host's file session (SFTP over the pinned SSH connection, or the file agent "
        "over SSM) that no request used for this many seconds is closed; the next request "
        "opens a new one. 0 keeps them until the server stops.",
    )
    files_max_open_bytes = Int(
        16 * 1024 * 1024,
        min=1,
        config=True,
        help="Largest file the browser may open (GET with content) or save in one request "
        "(and largest chunk of an upload); a larger file answers 413 file_too_large and is "
        "downloaded instead (?download=1 streams any size).",
    )
