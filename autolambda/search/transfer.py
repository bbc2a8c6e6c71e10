"""``TransferObjective``: does one (lambda0, alpha) pair transfer across sizes?

Each trial trains the same ``(lambda0, alpha)`` on a fixed ladder of widths, each at its
own ``lambda_eff``, and is scored by the mean penalty-free validation loss over the
ladder. The running mean is reported after each rung (step = rung index, the same
ladder order for every trial), so pruners compare like with like and stop a pair that
already fails on the first sizes.

Each rung is a whole training at its own ``lambda_eff``, with its own seed: to the
analysis (``autolambda.analysis.records.records_from_trials``) a rung is one observation of the
loss at (N, lambda_eff), as a search trial is, so both modes are analysed by the same
joint fit. Rung ``k`` of trial ``t`` trains with seed ``seed + t + RUNG_SEED_STRIDE * k``:
rung 0 is the search trial's seed; the other rungs' initialisation and batch order are
independent of it (the same seed at another width would share the batch order, and on
the surrogate the whole seed offset).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import optuna

from autolambda.core.trials import (
    EPOCHS_RUN_KEY, LADDER_KEY, LADDER_N_PARAMS_KEY, N_REF_KEY, RUNGS_KEY, RUNG_KEY, TRAINER_KEY,
    TRAIN_SECONDS_KEY, TRIAL_PARAMS_KEY, WORKER_KEY,
)
from autolambda.errors import ConfigError
from autolambda.search.monitor import TrialMonitor, can_prune
from autolambda.search.objective import LambdaScalingObjective, score_history, worker_id
from autolambda.core.scaling import count_convnet_params, lambda_eff
from autolambda.core.space import suggest_params

RUNG_SEED_STRIDE = 100_003


class TransferObjective(LambdaScalingObjective):
    """Score one ``(lambda0, alpha)`` by its mean loss over a ladder of widths.

    Takes the arguments of ``LambdaScalingObjective`` plus ``ladder`` (the widths, in
    training order; by default every width of the space, smallest first).

    Example:
        >>> objective = TransferObjective(trainer="surrogate", ladder=(4, 16, 64))
        >>> study = optuna.create_study()
        >>> study.optimize(objective, n_trials=2)
    """

    def __init__(self, *args: Any, ladder: tuple[int, ...] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ladder = tuple(ladder) if ladder is not None else tuple(self.space.widths)
        if len(ladder) < 2 or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in ladder):
            raise ConfigError(f"ladder must list at least two positive integer widths but got {list(ladder)!r}.")
        self.ladder = ladder

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        """Train every rung, report the running mean, return the mean over the ladder."""
        data = self.load_data()
        n_ref = self.resolve_n_ref(getattr(trial, "study", None), data)
        rungs: dict[str, list[float]] = {"rung_width": [], "rung_n_params": [], "rung_lambda_eff": [], "rung_val_ce": [],
                                         "rung_seconds": []}
        started = time.perf_counter()
        epochs_run = 0
        trial.set_user_attr(TRAINER_KEY, self.trainer)
        trial.set_user_attr(N_REF_KEY, n_ref)
        trial.set_user_attr(LADDER_KEY, list(self.ladder))
        trial.set_user_attr(WORKER_KEY, worker_id())
        prunable = can_prune(trial)
        try:
            for step, width in enumerate(self.ladder):
                # Re-suggesting lambda0/alpha in one trial returns the same values.
                params = suggest_params(trial, replace(self.space, widths=(width,)))
                n_params = count_convnet_params(width, params.depth, params.kernel_size, data.input_shape, data.n_classes)
                strength = lambda_eff(params.lambda0, params.alpha, n_params, n_ref)
                if step == 0:
                    trial.set_user_attr(TRIAL_PARAMS_KEY, params.as_dict() | {"width": None})
                    trial.set_user_attr(LADDER_N_PARAMS_KEY, [count_convnet_params(
                        w, params.depth, params.kernel_size, data.input_shape, data.n_classes) for w in self.ladder])
                # Where a trial that diverges or fails stopped (its finished rungs are under RUNGS_KEY).
                trial.set_user_attr(RUNG_KEY, {"step": step, "width": width, "n_params": n_params, "lambda_eff": strength})
                monitor = TrialMonitor(trial, divergence_threshold=self.divergence_threshold, prune=False, evaluates=self.evaluates)
                number = getattr(trial, "number", 0) or 0
                rung_started = time.perf_counter()
                try:
                    self.train(trial, params, n_params, strength, data, monitor,
                               seed=self.seed + number + RUNG_SEED_STRIDE * step)
                finally:
                    epochs_run += monitor.epochs_run
                score = score_history(monitor.history["val_ce"], self.score, self.score_window)
                for key, value in (("rung_width", width), ("rung_n_params", n_params), ("rung_lambda_eff", strength),
                                   ("rung_val_ce", score), ("rung_seconds", time.perf_counter() - rung_started)):
                    rungs[key].append(float(value))
                trial.set_user_attr(RUNGS_KEY, rungs)  # each finished rung is kept, even if the worker dies
                mean = sum(rungs["rung_val_ce"]) / len(rungs["rung_val_ce"])
                if prunable:
                    trial.report(mean, step=step)
                    if step < len(self.ladder) - 1 and trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after rung {step} (width {width}, mean val_ce {mean:.4g}).")
        finally:
            trial.set_user_attr(RUNGS_KEY, rungs)
            trial.set_user_attr(EPOCHS_RUN_KEY, epochs_run)
            trial.set_user_attr(TRAIN_SECONDS_KEY, round(time.perf_counter() - started, 4))
        return sum(rungs["rung_val_ce"]) / len(rungs["rung_val_ce"])
