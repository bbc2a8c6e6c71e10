"""Per-epoch bookkeeping shared by every trainer: history, divergence, pruning.

Framework-free, so the Keras trainer (through a thin Keras callback) and the surrogate
trainer go through exactly the same reporting, pruning and divergence path.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna

from autolambda.core.trials import EVAL_EPOCH
from autolambda.errors import TrialDiverged
from autolambda.search.pruners import first_pruning_step, last_pruning_step


class TrialMonitor:
    """Record each epoch's metrics, stop on divergence, report and prune.

    Args:
        trial: The Optuna trial (``FixedTrial`` and multi-objective trials are fine:
            they are not reported to, as Optuna cannot prune them).
        monitor: Penalty-free metric reported to the pruner (``val_ce`` by default;
            never ``val_loss``, which includes the penalty).
        divergence_threshold: A training cross-entropy above this counts as diverged,
            as does any NaN/inf in the loss or the monitored metric. ``None``: only NaN/inf.
        prune: Ask the pruner after each epoch.
        evaluates: ``evaluates(epoch)`` says whether the trainer runs the validation pass
            after that epoch (``None``: every epoch); other epochs are recorded quietly.
    """

    def __init__(
        self,
        trial: Any,
        *,
        monitor: str = "val_ce",
        divergence_threshold: float | None = None,
        prune: bool = True,
        evaluates: Any = None,
    ) -> None:
        self.trial = trial
        self.monitor = monitor
        self.divergence_threshold = divergence_threshold
        self.history: dict[str, list[float]] = {}
        self.epochs_run = 0
        self.evaluates = evaluates
        self._prune = prune and can_prune(trial)
        # No should_prune() before the pruner can prune (each call reads the storage).
        self._ask_from = _ask_from(trial) if self._prune else None
        # ... nor after its last step (AnswerAwarePruner's until_step).
        self._ask_until = last_pruning_step(getattr(getattr(trial, "study", None), "pruner", None))
        self._warned = False

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Take epoch ``epoch``'s (0-based) metrics; may raise ``TrialDiverged`` or ``TrialPruned``."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        if self.monitor in logs:  # the epochs the validation metrics belong to
            self.history.setdefault(EVAL_EPOCH, []).append(epoch)
        self.epochs_run = epoch + 1
        for key in ("train_loss", "loss", self.monitor):
            value = logs.get(key)
            if value is not None and not math.isfinite(float(value)):
                raise TrialDiverged(epoch, f"{key} is {float(value)}")
        train_ce = logs.get("train_ce")
        if (
            self.divergence_threshold is not None
            and train_ce is not None
            and float(train_ce) > self.divergence_threshold
        ):
            raise TrialDiverged(epoch, f"train_ce {float(train_ce):.4g} > {self.divergence_threshold:g}")
        value = logs.get(self.monitor)
        if value is None:
            if self.evaluates is not None and not self.evaluates(epoch):
                return  # an epoch without the validation pass, as scheduled
            if not self._warned:
                warnings.warn(f"metric {self.monitor!r} is not in the epoch logs ({sorted(logs)}); not pruning.")
                self._warned = True
            return
        if self._prune:
            self.trial.report(float(value), step=epoch)
            asks = self._ask_from is not None and epoch >= self._ask_from and (self._ask_until is None or epoch <= self._ask_until)
            if asks and self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.monitor}={float(value):.4g}).")


def _ask_from(trial: Any) -> int | None:
    """The first step worth a ``should_prune()`` for ``trial``'s study (0 when unknown)."""
    study = getattr(trial, "study", None)
    if study is None or not hasattr(study, "pruner"):
        return 0
    return first_pruning_step(study.pruner)


def can_prune(trial: Any) -> bool:
    """Whether Optuna can take intermediate values from ``trial`` (not multi-objective)."""
    study = getattr(trial, "study", None)
    if study is None:  # FixedTrial and friends: report() is a no-op anyway
        return hasattr(trial, "report")
    return len(study.directions) == 1
