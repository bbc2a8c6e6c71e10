"""Trial states as autolambda reads them, and the MLflow run status each one gets.

Optuna knows COMPLETE, PRUNED, FAIL, RUNNING and WAITING. autolambda tells a diverged
trial (stopped on purpose when its loss blew up: PRUNED with ``diverged_at_epoch``) from
one a pruner cut, because a diverged trial says something about lambda: it lies beyond
the wall. This module is the one place that rule, the per-state counts and the MLflow
status rule are written.

>>> RUN_STATUS["diverged"], run_status("pruned", {"orphaned": True})
('KILLED', 'KILLED')
>>> count_states([])
{'complete': 0, 'pruned': 0, 'diverged': 0, 'failed': 0, 'running': 0}
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

#: Every state, in the order tables print them.
STATES = ("complete", "pruned", "diverged", "failed", "running")
#: The states of a finished trial (Optuna's COMPLETE or PRUNED): they count toward ``--trials``.
FINISHED_STATES = ("complete", "pruned", "diverged")

#: MLflow run status for each trial state: pruned and diverged trials were stopped on
#: purpose (KILLED), a trial that raised is FAILED.
RUN_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "diverged": "KILLED", "failed": "FAILED", "running": "RUNNING"}


def trial_state(trial: Any) -> str:
    """``complete``, ``pruned``, ``diverged``, ``failed`` or ``running`` for an Optuna trial."""
    from optuna.trial import TrialState

    if trial.state == TrialState.COMPLETE:
        return "complete"
    if trial.state == TrialState.PRUNED:
        return "diverged" if "diverged_at_epoch" in trial.user_attrs else "pruned"
    if trial.state == TrialState.FAIL:
        return "failed"
    return "running"


def run_status(state: str, user_attrs: Mapping[str, Any]) -> str:
    """The MLflow status of a trial's run: a trial stopped by Ctrl-C (``interrupted``) or
    whose process died (``orphaned``) is KILLED, whatever Optuna recorded; else ``RUN_STATUS``."""
    if user_attrs.get("interrupted") or user_attrs.get("orphaned"):
        return "KILLED"
    return RUN_STATUS[state]


def count_states(states: Iterable[str]) -> dict[str, int]:
    """How many of each state (every state present, zeros included), from state names."""
    counts = Counter(states)
    return {state: counts.get(state, 0) for state in STATES}
