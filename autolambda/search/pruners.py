"""``WidthStratifiedPruner``: prune a trial only against trials of its own width.

Optuna's median, percentile and successive-halving pruners compare a trial's
intermediate value with every other trial's at the same step. Wide nets reach a lower
loss sooner, so a narrow net with a good lambda is pruned for being narrow, the small-N
end of the lambda-versus-size curve empties out, and alpha is biased.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

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


def first_pruning_step(pruner: optuna.pruners.BasePruner | None) -> int | None:
    """The first step at which ``pruner`` can prune at all (``None``: never).

    Before it, ``should_prune()`` only costs a storage round trip, so the objective does
    not ask (BENCHMARKS.md, "Pruning calls before the warm-up": 1,200 calls fewer in the
    default 100-trial study). Pruners this does not know are asked from step 0.
    """
    inner = pruner.pruner if isinstance(pruner, WidthStratifiedPruner) else pruner
    if inner is None or isinstance(inner, optuna.pruners.NopPruner):
        return None
    if isinstance(inner, optuna.pruners.PercentilePruner):  # MedianPruner is one
        return int(inner._n_warmup_steps)
    if isinstance(inner, optuna.pruners.SuccessiveHalvingPruner) and isinstance(inner._min_resource, int):
        # Rung 0 is reached at step min_resource * eta ** min_early_stopping_rate.
        return int(inner._min_resource * inner._reduction_factor ** inner._min_early_stopping_rate)
    if isinstance(inner, optuna.pruners.HyperbandPruner) and isinstance(inner._min_resource, int):
        return int(inner._min_resource)
    return 0
