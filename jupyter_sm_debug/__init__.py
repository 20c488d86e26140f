"""jupyter-sm-debug: a shell inside a running SageMaker training container, from JupyterLab."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-sm-debug"}]


def _jupyter_server_extension_points():
    """The server extension is an ExtensionApp (extension.SMDebugApp). Imported here, when
    the server links extensions, so `import jupyter_sm_debug` stays cheap."""
    from .extension import SMDebugApp

    return [{"module": "jupyter_sm_debug", "app": SMDebugApp}]


def _load_jupyter_server_extension(server_app):
    """Load into a server by hand (the bench does): the server loads the app itself."""
    from .extension import SMDebugApp

    return SMDebugApp._load_jupyter_server_extension(server_app)
