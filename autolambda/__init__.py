"""autolambda: how should L1/L2 regularization strength scale with network size?

An Optuna plugin that searches ``lambda_eff = lambda0 * (N / N_ref) ** -alpha`` over
Conv2D nets of several widths, and says which ``alpha`` the data support.

``import autolambda`` is light: TensorFlow, Keras and MLflow load only when a trial
trains or a run is logged.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "lambda_eff": "autolambda.core.scaling",
    "count_conv2d_params": "autolambda.core.scaling",
    "count_convnet_params": "autolambda.core.scaling",
    "make_regularizer": "autolambda.core.scaling",
    "PENALTIES": "autolambda.core.scaling",
    "SearchSpace": "autolambda.core.space",
    "TrialParams": "autolambda.core.space",
    "suggest_params": "autolambda.core.space",
    "suggest_lambda_eff": "autolambda.core.space",
    "suggest_scaled_penalty": "autolambda.core.space",
    "Dataset": "autolambda.training.data",
    "load_dataset": "autolambda.training.data",
    "build_convnet": "autolambda.training.model",
    "Penalty": "autolambda.training.model",
    "LambdaScalingObjective": "autolambda.search.objective",
    "score_history": "autolambda.search.objective",
    "TrialMonitor": "autolambda.search.monitor",
    "SurrogateTrainer": "autolambda.training.surrogate",
    "KerasTrainer": "autolambda.training.trainers",
    "AutolambdaError": "autolambda.errors",
    "ConfigError": "autolambda.errors",
    "DataError": "autolambda.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import autolambda` must not pull in optuna/numpy/tensorflow before they are used.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autolambda' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
