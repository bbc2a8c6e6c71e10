"""The pruner and the sampler a study file names, built and wrapped for width fairness.

The names are ``autolambda.core.choices.PRUNERS`` and ``SAMPLERS``.
"""

from __future__ import annotations

import optuna

from autolambda.errors import ConfigError
from autolambda.search.pruners import AnswerAwarePruner, WidthStratifiedPruner
from autolambda.search.samplers import WidthBalancedSampler


def make_pruner(name: str, epochs: int, *, stratify: bool = True) -> optuna.pruners.BasePruner:
    """The pruner called ``name``, scaled to ``epochs`` reported steps.

    With ``stratify`` (the default) it is wrapped in ``WidthStratifiedPruner``, so a trial
    is compared only with trials of its own width (``answer-aware`` compares within a
    width by itself).
    """
    base = _base_pruner(name, epochs)
    if stratify and name not in ("none", "answer-aware"):
        return WidthStratifiedPruner(base)
    return base


def _base_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "answer-aware":
        # Up to half the budget: later a stop saves little, and on digits a width-64 net's
        # passing spike at epochs 50-70 looked like the wall (scripts/pruning_replay.py).
        return AnswerAwarePruner(until_step=max(0, epochs // 2))
    if name == "median":
        # Per width (stratified): 5 complete trials first — one more than the analysis needs
        # to locate a width's optimum — then a trial worse than the median at a step from a
        # quarter of the budget on stops. Replayed on a 100-trial unpruned digits study
        # (scripts/pruning_replay.py): 33 % of epochs saved (a third of the budget: 27 %;
        # 3 start-up trials: 41 %, but a width can end with 3 complete trials, too few).
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 4))
    if name == "successive-halving":
        # One rung at a third of the budget: earlier rungs cut good-lambda trials that
        # only pull ahead once the unregularised ones overfit.
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 3))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 9), max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}.")


def make_sampler(name: str, seed: int, *, balance: bool = True) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``, seeded.

    With ``balance`` (the default) it is wrapped in ``WidthBalancedSampler``: widths take
    turns, and the sampler picks the other parameters from the trials of the same width.
    ``design`` is TPE so wrapped, then ``DesignSampler`` on top (see ``autolambda.search.design``).
    """
    base = _base_sampler("tpe" if name == "design" else name, seed, per_width=balance)
    if balance:
        base = WidthBalancedSampler(base, seed=seed)
    if name == "design":
        from autolambda.search.design import DesignSampler

        return DesignSampler(base, seed=seed)
    return base


def _base_sampler(name: str, seed: int, *, per_width: bool) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # Per width (balanced), 5 random start-up trials each; over all widths, 10.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5 if per_width else 10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}.")
