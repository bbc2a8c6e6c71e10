"""Pruners that do not bias the answer.

``WidthStratifiedPruner``: prune a trial only against trials of its own width. Optuna's
median, percentile and successive-halving pruners compare a trial's intermediate value
with every other trial's at the same step. Wide nets reach a lower loss sooner, so a
narrow net with a good lambda is pruned for being narrow, the small-N end of the
lambda-versus-size curve empties out, and alpha is biased.

``AnswerAwarePruner``: stop a trial once its role in the analysis is settled: it is
far beyond the wall (collapsed, by default), by a margin its own width's trials say
training cannot close. A loss
pruner cuts the trials that carry the answer (the wall's rise, the dip's slow starters);
this one cuts only trials the analysis counts as "hurt" anyway, and the analysis counts
them so (``autolambda.analysis.records``, ``settled``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from autolambda.analysis.records import COLLAPSED
from autolambda.analysis.settings import DEFAULTS
from autolambda.core.trials import BLOCK_KEY, SETTLED_KEY
from autolambda.search.strata import stratum_of, stratum_study


class WidthStratifiedPruner(optuna.pruners.BasePruner):
    """Wrap any Optuna pruner so it decides using only trials of the same width.

    Until a width has the wrapped pruner's own start-up trials (e.g. ``n_startup_trials``
    complete trials for ``MedianPruner``), its trials are not pruned. When every trial
    has the same width this is exactly the wrapped pruner.

    Args:
        pruner: The pruner to wrap; ``MedianPruner()`` by default.
        key: The param (or user attribute) that defines a stratum.

    Example:
        >>> import optuna
        >>> pruner = WidthStratifiedPruner(optuna.pruners.MedianPruner(n_startup_trials=3))
        >>> study = optuna.create_study(pruner=pruner)
    """

    def __init__(self, pruner: optuna.pruners.BasePruner | None = None, *, key: str = "width") -> None:
        if pruner is not None and not isinstance(pruner, optuna.pruners.BasePruner):
            raise TypeError(f"pruner must be an optuna BasePruner but got {type(pruner).__name__}.")
        self.pruner = pruner if pruner is not None else optuna.pruners.MedianPruner()
        self.key = key
        self._views: dict[tuple, optuna.Study] = {}

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Ask the wrapped pruner, showing it only the trials of ``trial``'s width."""
        value = stratum_of(trial, self.key)
        if value is None:
            return self.pruner.prune(study, trial)
        # One view per study and width: building a Study looks its id up in the storage.
        cache_key = (id(study._storage), study._study_id, value)
        view = self._views.get(cache_key)
        if view is None:
            view = self._views[cache_key] = stratum_study(study, self.key, value, pruner=self.pruner)
        return self.pruner.prune(view, trial)

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_views": {}}


@dataclass(frozen=True)
class Peer:
    """A complete trial of the same width, as ``settled_verdict`` reads it."""

    block: Any  # its seed block (None: a seed of its own)
    final: float  # its score
    at_step: float  # its intermediate value at the step being decided


def _typical(values: dict[Any, list[float]], block: Any, q: float) -> float | None:
    """The ``q`` quantile of the block's values, when the block has 2+ of them; else of all
    blocks' values together (``None`` when there are none)."""
    own = values.get(block)
    if block is not None and own is not None and len(own) >= 2:
        return float(np.quantile(own, q))
    pooled = [v for vs in values.values() for v in vs]
    return float(np.quantile(pooled, q)) if pooled else None


def settled_verdict(value: float, block: Any, peers: Sequence[Peer], *, cost: float = DEFAULTS.wall_cost, height: float = COLLAPSED,
                    margin: float = 0.2, min_trials: int = 5, study_median: float | None = None) -> dict[str, float] | None:
    """Whether a trial at intermediate ``value`` is settled as beyond the wall (a dict of
    the evidence) or not (``None``), from the complete trials of its width, ``peers``.

    A peer ended below the wall when its score is at most ``(1 + cost) * (1 + margin)``
    times its block's floor (the lower quartile of the block's scores: one lucky trial does
    not move it). Trials of one seed block share their initialisation and batch order, so
    at one step they sit close together until the penalty pulls one away: the trial is
    compared with the median of its block's peers below the wall at the same step
    (``reference``). How far above its block a trial can sit at this step and still end
    below the wall is read off those peers (``envelope``: the largest such ratio; slow
    starters set it). A trial more than ``1 + margin`` times the larger of the envelope and
    ``height`` above its reference, and more than ``height`` times ``study_median`` (the
    median score of the study's complete trials, every width: where the optimum's fit
    draws its collapse line), is settled. Needs ``min_trials`` peers below the wall.

    ``height`` (by default ``COLLAPSED``, 5) makes a stopped trial one the optimum's fit
    would leave out anyway (a collapsed net: ``autolambda.analysis.records``), so stopping it
    cannot move the optimum. Lower heights stop trials whose losses place the wall next to
    the dip, which the optimum's fit uses: replayed on the three default digits studies
    (scripts/pruning_replay.py), stopping from twice the block's value saved 4-6 % of the
    epochs and from 1.25 times 8-10 %, but widened the optimum's interval up to 1.1- and
    1.7-fold, and on 20 surrogate studies per planted alpha twice cost coverage (0.85 at
    one alpha) and 10 % of width; from 5 times: 1-5 %, the same intervals (BENCHMARKS.md,
    "The answer-aware pruner").

    >>> peers = [Peer(0, f, f * 1.3) for f in (0.30, 0.31, 0.33, 0.35, 0.36)] + [Peer(0, 0.9, 1.0)]
    >>> settled_verdict(2.30, 0, peers) is None  # 5.4 times the block's 0.43 at this step: not 6
    True
    >>> round(settled_verdict(2.30, 0, peers, height=2.0)["ratio"], 2)
    5.36
    """
    if not peers or not math.isfinite(value):
        return None
    finals: dict[Any, list[float]] = {}
    for p in peers:
        finals.setdefault(p.block, []).append(p.final)
    limit = (1.0 + cost) * (1.0 + margin)
    below = [p for p in peers if p.final <= limit * _typical(finals, p.block, 0.25)]
    if len(below) < min_trials:
        return None
    steps: dict[Any, list[float]] = {}
    for p in below:
        steps.setdefault(p.block, []).append(p.at_step)
    envelope = max(p.at_step / _typical(steps, p.block, 0.5) for p in below)
    reference = _typical(steps, block, 0.5)
    threshold = (1.0 + margin) * max(envelope, height, 1.0 + cost)
    ratio = value / reference
    if ratio <= threshold or (study_median is not None and value <= height * study_median):
        return None
    return {"value": float(value), "reference": float(reference), "ratio": float(ratio), "threshold": float(threshold),
            "envelope": float(envelope), "peers": len(peers)}


class AnswerAwarePruner(optuna.pruners.BasePruner):
    """Stop a trial whose loss is settled beyond the wall; leave every other trial alone.

    At each reported step from ``n_warmup_steps`` to ``until_step``, the trial is compared
    with the complete trials of its own width (width-fair by construction) and of its
    own seed block (``settled_verdict``). A stopped trial gets the user attribute
    ``settled`` (``SETTLED_KEY``: step, value, its block's reference, the ratio and the
    threshold, ``"as": "hurt"``), and autolambda's analysis counts it as a trial the
    penalty hurt in the wall's fit; its unfinished loss never enters the optimum's fit.
    Trials without a width (transfer mode's ladders) are never stopped.

    Args:
        cost: The wall's cost: a trial is hurt when its loss exceeds its floor by this
            share (the analysis' ``wall_cost``).
        height: How many times its block's value a trial must reach (see ``settled_verdict``;
            the default: where the optimum's fit calls a net collapsed).
        margin: How far beyond what its width's trials have shown a trial must sit.
        n_startup_trials: Complete trials of a width below the wall before its trials
            can be stopped.
        n_warmup_steps: No stop before this step.
        until_step: No stop after this step (``None``: any step). Late in training the
            saving is small and a wide net's passing spike can look like the wall.
        key: The param (or user attribute) that defines a width.
        block_key: The user attribute that names a trial's seed block.

    Example (the surrogate trainer stands in for Keras; a stopped trial carries ``settled``):
        >>> import optuna
        >>> from autolambda import LambdaScalingObjective
        >>> study = optuna.create_study(pruner=AnswerAwarePruner(until_step=10))
        >>> study.optimize(LambdaScalingObjective(trainer="surrogate", seed_blocks=3, epochs=20), n_trials=8)
    """

    def __init__(self, *, cost: float = DEFAULTS.wall_cost, height: float = COLLAPSED, margin: float = 0.2, n_startup_trials: int = 5,
                 n_warmup_steps: int = 0, until_step: int | None = None, key: str = "width", block_key: str = BLOCK_KEY) -> None:
        for name, v in (("cost", cost), ("margin", margin), ("height", height)):
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a number >= 0 but got {v!r}.")
        for name, v in (("n_startup_trials", n_startup_trials), ("n_warmup_steps", n_warmup_steps)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0 but got {v!r}.")
        if until_step is not None and (not isinstance(until_step, int) or isinstance(until_step, bool) or until_step < n_warmup_steps):
            raise ValueError(f"until_step must be None or an integer >= n_warmup_steps but got {until_step!r}.")
        self.cost, self.height, self.margin = float(cost), float(height), float(margin)
        self.n_startup_trials, self.n_warmup_steps, self.until_step = n_startup_trials, n_warmup_steps, until_step
        self.key, self.block_key = key, block_key

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether ``trial`` is settled beyond the wall at its last reported step (recorded on it)."""
        step = trial.last_step
        if step is None or step < self.n_warmup_steps or (self.until_step is not None and step > self.until_step):
            return False
        width = stratum_of(trial, self.key)
        if width is None:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        scores = [t.value for t in complete if t.values is not None and len(t.values) == 1 and math.isfinite(t.value)]
        verdict = settled_verdict(trial.intermediate_values[step], trial.user_attrs.get(self.block_key),
                                  list(_peers(complete, width, step, self.key, self.block_key)),
                                  cost=self.cost, height=self.height, margin=self.margin,
                                  min_trials=self.n_startup_trials, study_median=float(np.median(scores)) if scores else None)
        if verdict is None:
            return False
        record = {"as": "hurt", "step": int(step)} | {k: round(v, 6) if isinstance(v, float) else v for k, v in verdict.items()}
        study._storage.set_trial_user_attr(trial._trial_id, SETTLED_KEY, record)
        return True


def _peers(trials: Iterable[FrozenTrial], width: Any, step: int, key: str, block_key: str) -> Iterable[Peer]:
    """The complete trials of ``width`` with a finite score and a value at ``step``."""
    for t in trials:
        if t.values is None or len(t.values) != 1 or stratum_of(t, key) != width:
            continue
        at = t.intermediate_values.get(step)
        if at is not None and math.isfinite(at) and math.isfinite(t.value) and at > 0:
            yield Peer(t.user_attrs.get(block_key), float(t.value), float(at))


def first_pruning_step(pruner: optuna.pruners.BasePruner | None) -> int | None:
    """The first step at which ``pruner`` can prune at all (``None``: never).

    Before it, ``should_prune()`` only costs a storage round trip, so the objective does
    not ask (BENCHMARKS.md, "Pruning calls before the warm-up": 1,200 calls fewer in the
    default 100-trial study). Pruners this does not know are asked from step 0.
    """
    inner = pruner.pruner if isinstance(pruner, WidthStratifiedPruner) else pruner
    if inner is None or isinstance(inner, optuna.pruners.NopPruner):
        return None
    if isinstance(inner, AnswerAwarePruner):
        return inner.n_warmup_steps
    if isinstance(inner, optuna.pruners.PercentilePruner):  # MedianPruner is one
        return int(inner._n_warmup_steps)
    if isinstance(inner, optuna.pruners.SuccessiveHalvingPruner) and isinstance(inner._min_resource, int):
        # Rung 0 is reached at step min_resource * eta ** min_early_stopping_rate.
        return int(inner._min_resource * inner._reduction_factor ** inner._min_early_stopping_rate)
    if isinstance(inner, optuna.pruners.HyperbandPruner) and isinstance(inner._min_resource, int):
        return int(inner._min_resource)
    return 0


def last_pruning_step(pruner: optuna.pruners.BasePruner | None) -> int | None:
    """The last step at which ``pruner`` can prune (``None``: no such step known)."""
    pruner = pruner.pruner if isinstance(pruner, WidthStratifiedPruner) else pruner
    if isinstance(pruner, AnswerAwarePruner):
        return pruner.until_step
    return None
