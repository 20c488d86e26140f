"""The notebook helper's checks that need no SDK (tests/sdk runs it against the real SDKs):
remote debug alone (hold_on_failure=0) on objects shaped like the SDK's, refused input, the
SDK version floor, and that the server never imports the SDK."""

import os
import subprocess
import sys

import pytest

from jupyter_sm_debug.sdk import HOLD_VARIABLE, debuggable


class EstimatorLike:
    """The parts of sagemaker.estimator.EstimatorBase (v2) the helper relies on."""

    def __init__(self, environment=None):
        self.environment = environment
        self._enable_remote_debug = None

    def get_remote_debug_config(self):
        if self._enable_remote_debug is None:
            return None
        return {"EnableRemoteDebug": self._enable_remote_debug}


class ModelTrainerLike:
    """The parts of sagemaker.train.ModelTrainer (v3) the helper relies on."""

    def __init__(self):
        self.environment = {"EPOCHS": "3"}
        self.remote_debug = None

    def with_remote_debug_config(self, config):
        self.remote_debug = config or {"enable_remote_debug": True}
        return self


def test_estimator_gets_remote_debug():
    estimator = debuggable(EstimatorLike(), hold_on_failure=0)
    assert estimator.get_remote_debug_config() == {"EnableRemoteDebug": True}
    assert estimator.environment == {HOLD_VARIABLE: "0"}


def test_model_trainer_keeps_its_environment():
    trainer = debuggable(ModelTrainerLike(), hold_on_failure=0)
    assert trainer.remote_debug == {"enable_remote_debug": True}
    assert trainer.environment == {"EPOCHS": "3", HOLD_VARIABLE: "0"}


def test_an_sdk_without_remote_debug_is_refused_clearly(tmp_path):
    """sagemaker 2.200.0's metadata on the path: the helper names the floor."""
    info = tmp_path / "sagemaker-2.200.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sagemaker\nVersion: 2.200.0\n")
    code = (
        "from jupyter_sm_debug.sdk import debuggable\n"
        "class E:\n"
        "    def get_remote_debug_config(self): return None\n"
        "try:\n"
        "    debuggable(E(), 0)\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    path = os.pathsep.join([str(tmp_path), *sys.path])
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    assert "sagemaker 2.200.0 has no remote debug" in result.stdout, result.stderr
    assert "2.202.1" in result.stdout


@pytest.mark.parametrize("hold", [-1, 86401, "60", True])
def test_bad_hold_windows_are_refused(hold):
    with pytest.raises((TypeError, ValueError)):
        debuggable(EstimatorLike(), hold_on_failure=hold)


def test_other_objects_are_refused():
    with pytest.raises(TypeError):
        debuggable(object())


def test_loading_the_extension_never_imports_the_sdk():
    code = (
        "import sys, jupyter_sm_debug.extension, jupyter_sm_debug.sdk, jupyter_sm_debug.jobs;"
        "print(any(m == 'sagemaker' or m.startswith('sagemaker.') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
