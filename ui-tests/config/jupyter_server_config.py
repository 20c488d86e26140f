"""Jupyter server configuration for the UI tests (galata).

Used through JUPYTER_CONFIG_PATH by both `jlpm start:demo` (the project's demo: JupyterLab
against the local SageMaker stand-in) and `jlpm start:lab` (plain JupyterLab).

!! Never use this configuration in production: it turns off authentication and
exposes JupyterLab's JavaScript objects on the page's window.
"""

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821

# The tests run as root on CI machines.
c.ServerApp.allow_root = True  # noqa: F821
