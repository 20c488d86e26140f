"""Moved to jupyter_sm_debug.api.forwards; `remote_port` is names.remote_port (kept here for
the proxy until it imports it from there)."""

from .names import remote_port

__all__ = ["remote_port"]
