"""Keras 3 callbacks: Optuna pruning on a penalty-free metric, and the divergence guard.

Importing this module imports Keras; ``import autolambda`` does not.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from autolambda.monitor import TrialMonitor


class EpochCallback(keras.callbacks.Callback):
    """Forward each epoch's logs (with the regularization term added) to ``on_epoch``.

    Keras' names are mapped to autolambda's (``loss`` → ``train_loss``, ``ce`` →
    ``train_ce``, ``accuracy`` → ``train_accuracy``); ``reg_term`` is the penalty part
    of the loss, the sum of ``model.losses`` at the end of the epoch.
    """

    _RENAME = {"loss": "train_loss", "ce": "train_ce", "accuracy": "train_accuracy"}

    def __init__(self, on_epoch: Callable[[int, dict[str, float]], None]) -> None:
        super().__init__()
        self._on_epoch = on_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        out = {self._RENAME.get(k, k): float(v) for k, v in (logs or {}).items()}
        losses = self.model.losses
        out["reg_term"] = float(sum(float(v) for v in losses)) if losses else 0.0
        self._on_epoch(epoch, out)


class PruningCallback(keras.callbacks.Callback):
    """Report ``monitor`` to an Optuna trial each epoch and raise ``TrialPruned`` when told.

    Works with any Optuna pruner. Also stops on NaN/inf loss by raising
    ``autolambda.errors.TrialDiverged``. Use a penalty-free metric: Keras' ``val_loss``
    includes the regularization penalty and rewards small lambda for the wrong reason.

    Example:
        >>> model.compile(loss=..., metrics=[keras.metrics.SparseCategoricalCrossentropy(
        ...     from_logits=True, name="ce")])  # doctest: +SKIP
        >>> model.fit(..., callbacks=[PruningCallback(trial, monitor="val_ce")])  # doctest: +SKIP
    """

    def __init__(self, trial: Any, monitor: str = "val_ce") -> None:
        super().__init__()
        self.monitor = TrialMonitor(trial, monitor=monitor)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.monitor.on_epoch(epoch, dict(logs or {}))
