"""Keras 3 callback for users' own ``fit`` loops: Optuna pruning on a penalty-free metric,
and the divergence guard.

Importing this module imports Keras; ``import autolambda`` does not.
"""

from __future__ import annotations

from typing import Any

import keras

from autolambda.search.monitor import TrialMonitor


class PruningCallback(keras.callbacks.Callback):
    """Report ``monitor`` to an Optuna trial each epoch and raise ``TrialPruned`` when told.

    Works with any Optuna pruner. Also stops on NaN/inf loss by raising
    ``autolambda.errors.TrialDiverged``. Use a penalty-free metric: Keras' ``val_loss``
    includes the regularization penalty and rewards small lambda for the wrong reason.

    In a user's objective (tests/test_keras_training.py runs one)::

        model.compile(loss=..., metrics=[keras.metrics.SparseCategoricalCrossentropy(
            from_logits=True, name="ce")])
        model.fit(..., callbacks=[PruningCallback(trial, monitor="val_ce")])
    """

    def __init__(self, trial: Any, monitor: str = "val_ce") -> None:
        super().__init__()
        self.monitor = TrialMonitor(trial, monitor=monitor)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.monitor.on_epoch(epoch, dict(logs or {}))
