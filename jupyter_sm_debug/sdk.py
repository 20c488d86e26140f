"""Notebook helper for the SageMaker Python SDK (optional extra: pip install jupyter-sm-debug[sdk]).

    from jupyter_sm_debug.sdk import debuggable
    debuggable(estimator, hold_on_failure=1800).fit(inputs)

turns on SageMaker remote debug for the job the estimator (SDK v2 `Estimator`) or trainer
(SDK v3 `ModelTrainer`) launches, and sets the hold window that `sm-debug-entrypoint` honours
(SM_DEBUG_HOLD_ON_FAILURE), so a crashed container stays up to be inspected. Nothing here
imports the SDK: the server extension never loads it (importing it costs seconds).
"""

from __future__ import annotations

from typing import Any

HOLD_VARIABLE = "SM_DEBUG_HOLD_ON_FAILURE"


def debuggable(trainer: Any, hold_on_failure: int = 1800) -> Any:
    """Configure `trainer` in place to launch with remote debug and the hold; returns it."""
    if isinstance(hold_on_failure, bool) or not isinstance(hold_on_failure, int):
        raise TypeError("hold_on_failure is a whole number of seconds")
    if not 0 <= hold_on_failure <= 86400:
        raise ValueError("hold_on_failure must be between 0 and 86400 seconds")
    if hasattr(trainer, "with_remote_debug_config"):
        # SDK v3 ModelTrainer: None means RemoteDebugConfig(enable_remote_debug=True).
        trainer.with_remote_debug_config(None)
    elif hasattr(trainer, "get_remote_debug_config"):
        # SDK v2 Estimator: the constructor's enable_remote_debug, set after construction
        # (its public enable_remote_debug() updates an already running job instead).
        trainer._enable_remote_debug = True
    else:
        raise TypeError(
            f"{type(trainer).__name__} is neither a SageMaker SDK Estimator nor a ModelTrainer"
        )
    environment = dict(getattr(trainer, "environment", None) or {})
    environment[HOLD_VARIABLE] = str(hold_on_failure)
    trainer.environment = environment
    return trainer
