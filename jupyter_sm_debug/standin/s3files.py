"""A job's inputs from the stand-in's S3 (moto's backend), put where SageMaker puts them.

File mode: every object under a channel's S3Prefix lands in /opt/ml/input/data/<channel>
under its key relative to the prefix (a prefix naming one object lands as that object's
base name), as SageMaker downloads before the container starts. The script-mode submit
directory (``sagemaker_submit_directory``, a tar.gz) is unpacked into /opt/ml/code.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from pathlib import Path
from typing import Optional

from .logs.backend import _lock as _moto_lock  # moto's backends are not thread-safe

log = logging.getLogger(__name__)


def _split(uri: str) -> Optional[tuple[str, str]]:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket else None


def _backend(account_id: str):
    from moto.s3.models import s3_backends

    backends = s3_backends[account_id]
    for partition in ("aws", "global"):
        if partition in backends:
            return backends[partition]
    return backends["aws"]


def objects(account_id: str, uri: str) -> list[tuple[str, bytes]]:
    """(key, bytes) of every object under the S3 prefix ``uri``; [] if there is none."""
    where = _split(uri)
    if where is None:
        return []
    bucket_name, prefix = where
    with _moto_lock:
        backend = _backend(account_id)
        try:
            bucket = backend.get_bucket(bucket_name)
        except Exception:  # noqa: BLE001 - moto's MissingBucket: nothing there
            return []
        found = [
            (key, value.value)
            for key, value in list(bucket.keys.items())
            if key.startswith(prefix) and not key.endswith("/")
        ]
    return sorted(found)


def materialise(account_id: str, uri: str, target: Path) -> int:
    """Copy the objects under ``uri`` into ``target``; returns how many."""
    prefix = (_split(uri) or ("", ""))[1]
    count = 0
    for key, data in objects(account_id, uri):
        relative = key[len(prefix) :].lstrip("/") or os.path.basename(key)
        path = (target / relative).resolve()
        if not path.is_relative_to(target.resolve()):
            continue  # a key with ".." in it: not below the channel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        count += 1
    return count


def channel_uri(channel: dict) -> Optional[str]:
    source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        return None  # a manifest: not materialised
    return source.get("S3Uri")


def unpack_submit_directory(account_id: str, hyperparameters: dict, code: Path) -> bool:
    """Unpack ``sagemaker_submit_directory`` (JSON-encoded by the SDK) into ``code``."""
    value = hyperparameters.get("sagemaker_submit_directory")
    try:
        uri = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        uri = value
    if not isinstance(uri, str):
        return False
    found = objects(account_id, uri)
    where = _split(uri)
    data = next((d for k, d in found if where and k == where[1]), None)
    if data is None:
        return False
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            archive.extractall(code, filter="data")
    except (tarfile.TarError, OSError) as error:
        log.warning("submit directory %s not unpacked: %s", uri, error)
        return False
    return True
