"""A Python kernel inside a host (issue 27, docs/kernels.md): agent.py runs in the
container, kernel.py is the Jupyter kernel process, service.py registers it with the
server's kernel manager."""

# What the kernel process is told by its kernel spec's env.
RELAY_VARIABLE = "SM_DEBUG_KERNEL_RELAY"  # the relay's Unix socket
LABEL_VARIABLE = "SM_DEBUG_KERNEL_LABEL"  # "algo-1 of <job>", for its messages
