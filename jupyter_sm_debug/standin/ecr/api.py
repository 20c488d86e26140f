"""ECR's API here: BatchGetImage and GetDownloadUrlForLayer, answered from the stand-in's
registry (backend.py); the layer download itself is the router's blob route."""

from __future__ import annotations

from ..service import Call, Service

TARGET = "AmazonEC2ContainerRegistry_V20150921"
ACTIONS = ("BatchGetImage", "GetDownloadUrlForLayer")


def dispatch(standin, call: Call) -> dict:
    images = standin.backends.ecr
    if call.action == "BatchGetImage":
        return images.batch_get_image(call.params, standin.account_id)
    return images.get_download_url_for_layer(call.params, standin.account_id, call.base_url)


SERVICE = Service("ecr", ACTIONS, dispatch, prefix=TARGET, model="ecr")
