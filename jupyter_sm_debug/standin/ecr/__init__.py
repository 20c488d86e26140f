"""ECR: the stand-in's registry of images (``backend``) and the two calls it answers
(``api``); see backend.py."""

from .api import SERVICE
from .backend import (
    BLOB_PATH,
    BYOC_ENTRYPOINT,
    BYOC_REPOSITORY,
    CONFIG_TYPE,
    DLC_ENTRYPOINT,
    DLC_REGISTRY,
    DLC_REPOSITORIES,
    MANIFEST_TYPE,
    URL_LIFETIME,
    Registry,
    is_dlc,
)

__all__ = [
    "BLOB_PATH",
    "BYOC_ENTRYPOINT",
    "BYOC_REPOSITORY",
    "CONFIG_TYPE",
    "DLC_ENTRYPOINT",
    "DLC_REGISTRY",
    "DLC_REPOSITORIES",
    "MANIFEST_TYPE",
    "SERVICE",
    "URL_LIFETIME",
    "Registry",
    "is_dlc",
]
