"""CloudWatch Logs: moto's, with the training logs written into its backend (``backend``)
and the calls where moto differs from AWS corrected on the way (``api``)."""

from .api import SERVICE
from .backend import LOG_GROUP, LogWriter, stream_exists, streams_with_prefix

__all__ = ["LOG_GROUP", "SERVICE", "LogWriter", "stream_exists", "streams_with_prefix"]
