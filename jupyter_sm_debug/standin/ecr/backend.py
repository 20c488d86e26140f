"""The stand-in's ECR: images with their ENTRYPOINT/CMD, readable as AWS serves them.

moto 5.2.5's ECR keeps manifests but has no GetDownloadUrlForLayer (NotImplementedError),
and images of AWS's own registries (the Deep Learning Containers, account 763104351884)
live in another account than the caller's. So the two calls that read an image's config,
BatchGetImage and GetDownloadUrlForLayer, are answered here from a small registry of images:
the manifest names the config blob by digest, and the download URL is a short-lived URL
whose random path is its own credential (as an S3 presigned URL is).

What the images run inside a stand-in host (files under /opt/sm-debug/bin, first on PATH):
- DLC-like images: ENTRYPOINT ``bash -m start_with_right_hostname.sh``; its ``train`` is the
  training toolkit's script mode: ``python <sagemaker_program>`` from /opt/ml/code with the
  hyperparameters as arguments;
- the BYOC image: only an ENTRYPOINT, ``python /opt/sm-debug/bin/byoc_train.py``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from typing import Optional

from ..errors import StandInError

DLC_REGISTRY = "763104351884"
DLC_ENTRYPOINT = ["bash", "-m", "start_with_right_hostname.sh"]
BYOC_REPOSITORY = "byoc-trainer"
BYOC_ENTRYPOINT = ["python", "/opt/sm-debug/bin/byoc_train.py"]
DLC_REPOSITORIES = ("pytorch-training", "tensorflow-training", "huggingface-pytorch-training")
URL_LIFETIME = 3600.0  # AWS's download URLs live an hour
BLOB_PATH = "/_standin/ecr-blob/"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


def is_dlc(repository: str) -> bool:
    return repository in DLC_REPOSITORIES


class Registry:
    """Images by (registry id, repository, tag); DLC images answer any tag, as AWS has many."""

    def __init__(self, account_id: str):
        self.account_id = account_id
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}
        self._images: dict[tuple[str, str, str], str] = {}  # -> manifest
        self._urls: dict[str, tuple[float, str]] = {}  # token -> (expiry, digest)
        for repository in DLC_REPOSITORIES:
            self.put(DLC_REGISTRY, repository, "*", DLC_ENTRYPOINT, ["/bin/bash"])
        self.put(account_id, BYOC_REPOSITORY, "latest", BYOC_ENTRYPOINT, None)

    def put(
        self, registry: str, repository: str, tag: str, entrypoint: list, cmd: Optional[list]
    ) -> None:
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": "/"},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode()
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": digest},
                "layers": [],
            }
        )
        with self._lock:
            self._blobs[digest] = config
            self._images[(registry, repository, tag)] = manifest

    def config(self, registry: str, repository: str, tag: str) -> Optional[dict]:
        """The image's config (what the stand-in's hosts run), None if there is no image."""
        manifest = self._manifest(registry, repository, tag)
        if manifest is None:
            return None
        digest = json.loads(manifest)["config"]["digest"]
        return json.loads(self._blobs[digest])["config"]

    def _manifest(self, registry: str, repository: str, tag: str) -> Optional[str]:
        with self._lock:
            return self._images.get((registry, repository, tag)) or self._images.get(
                (registry, repository, "*")
            )

    def _require_repository(self, registry: str, repository: str) -> None:
        """ECR's RepositoryNotFoundException, worded as ECR words it, for an unknown one."""
        if not self._repository_known(registry, repository):
            raise StandInError(
                "RepositoryNotFoundException",
                f"The repository with name '{repository}' does not exist in the registry "
                f"with id '{registry}'",
                400,
            )

    def _repository_known(self, registry: str, repository: str) -> bool:
        with self._lock:
            return any(key[:2] == (registry, repository) for key in self._images)

    # -- the API ---------------------------------------------------------------------------

    def batch_get_image(self, params: dict, caller: str) -> dict:
        registry = params.get("registryId") or caller
        repository = params["repositoryName"]
        self._require_repository(registry, repository)
        images, failures = [], []
        for image_id in params.get("imageIds") or []:
            tag = image_id.get("imageTag")
            manifest = self._manifest(registry, repository, tag) if tag else None
            if manifest is None:
                failures.append(
                    {
                        "imageId": image_id,
                        "failureCode": "ImageNotFound",
                        "failureReason": "Requested image not found",
                    }
                )
                continue
            images.append(
                {
                    "registryId": registry,
                    "repositoryName": repository,
                    "imageId": {
                        "imageTag": tag,
                        "imageDigest": "sha256:" + hashlib.sha256(manifest.encode()).hexdigest(),
                    },
                    "imageManifest": manifest,
                    "imageManifestMediaType": MANIFEST_TYPE,
                }
            )
        return {"images": images, "failures": failures}

    def get_download_url_for_layer(self, params: dict, caller: str, base_url: str) -> dict:
        registry = params.get("registryId") or caller
        repository, digest = params["repositoryName"], params["layerDigest"]
        self._require_repository(registry, repository)
        with self._lock:
            if digest not in self._blobs:
                raise StandInError(
                    "LayersNotFoundException", f"The layer with digest {digest} does not exist."
                )
            token = secrets.token_urlsafe(24)
            now = time.monotonic()
            self._urls = {k: v for k, v in self._urls.items() if v[0] > now}
            self._urls[token] = (now + URL_LIFETIME, digest)
        return {"downloadUrl": f"{base_url}{BLOB_PATH}{token}", "layerDigest": digest}

    def blob(self, token: str) -> Optional[bytes]:
        with self._lock:
            entry = self._urls.get(token)
            if entry is None or entry[0] < time.monotonic():
                return None
            return self._blobs.get(entry[1])
