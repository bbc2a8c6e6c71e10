"""A study seen through one model size: the trials of one width only.

Both the width-stratified pruner and the width-balanced sampler hand Optuna's own
pruners and samplers a study whose storage returns only the trials of the current
trial's width. Filtering at the storage (not the ``Study`` object) keeps it working for
pruners that build studies of their own from ``study._storage`` (Hyperband's brackets).
"""

from __future__ import annotations

from typing import Any, Container

import optuna
from optuna.trial import FrozenTrial, TrialState


def stratum_of(trial: FrozenTrial, key: str = "width") -> Any:
    """The trial's value of ``key``: a searched param, else the user attribute."""
    value = trial.params.get(key)
    return trial.user_attrs.get(key) if value is None else value


class _StratumStorage:
    """Storage proxy whose trial listings hold only one stratum; all else delegated."""

    def __init__(self, storage: Any, key: str, value: Any) -> None:
        self._storage = storage
        self._key = key
        self._value = value

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return [t for t in trials if stratum_of(t, self._key) == self._value]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def stratum_study(study: optuna.Study, key: str, value: Any, **kwargs: Any) -> optuna.Study:
    """``study`` as seen by trials whose ``key`` equals ``value``.

    ``kwargs`` (``sampler``, ``pruner``) go to the new ``Study`` object.
    """
    return optuna.Study(
        study_name=study.study_name,
        storage=_StratumStorage(study._storage, key, value),  # type: ignore[arg-type]
        sampler=kwargs.get("sampler", study.sampler),
        pruner=kwargs.get("pruner", study.pruner),
    )
