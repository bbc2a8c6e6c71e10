"""``WidthBalancedSampler``: every width gets a near-equal share of trials.

Left alone, TPE learns that the widest net gives the lowest loss and stops proposing
small widths, whose lambda optimum is then never located. This sampler chooses the width
itself (the least-tried one) and lets the wrapped sampler choose every other parameter
from the trials of that width only, i.e. conditioned on the width.
"""

from __future__ import annotations

import random
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from autolambda.search.strata import stratum_of, stratum_study

# Failed trials count too: a width that always fails gets its share of attempts, not all.
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)


class WidthBalancedSampler(optuna.samplers.BaseSampler):
    """Give each width a near-equal share of trials; sample the rest per width.

    The width of a new trial is the one with the fewest trials so far (running ones
    included, so parallel workers stay balanced; failed ones too, so a width that always
    fails cannot take every trial), ties broken by a seeded draw. All other parameters come from the wrapped
    sampler's independent sampling over a study holding only that width's trials.

    Args:
        sampler: The sampler to wrap; ``TPESampler()`` by default.
        key: The categorical parameter to balance.
        seed: Seed of the tie-breaking draw.

    Example:
        >>> sampler = WidthBalancedSampler(optuna.samplers.TPESampler(seed=0))
        >>> study = optuna.create_study(sampler=sampler)
    """

    def __init__(self, sampler: optuna.samplers.BaseSampler | None = None, *, key: str = "width", seed: int | None = None) -> None:
        self.sampler = sampler if sampler is not None else optuna.samplers.TPESampler(seed=seed)
        self.key = key
        self._seed = seed

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        # The width is not known before the trial starts, so joint (relative) sampling
        # cannot be conditioned on it: everything is sampled independently, per width.
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        if param_name == self.key and isinstance(param_distribution, CategoricalDistribution):
            return self._least_tried(study, trial, param_distribution.choices)
        width = stratum_of(trial, self.key)
        view = study if width is None else stratum_study(study, self.key, width, sampler=self.sampler)
        return self.sampler.sample_independent(view, trial, param_name, param_distribution)

    def _least_tried(self, study: optuna.Study, trial: FrozenTrial, choices: tuple[Any, ...]) -> Any:
        counts = {c: 0 for c in choices}
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False, states=_COUNTED):
            if t.number != trial.number:
                value = stratum_of(t, self.key)
                if value in counts:
                    counts[value] += 1
        fewest = min(counts.values())
        tied = [c for c in choices if counts[c] == fewest]
        rng = random.Random(f"{self._seed}-{study.study_name}-{trial.number}")
        return rng.choice(tied)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
