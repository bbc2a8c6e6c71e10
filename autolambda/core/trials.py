"""The trial-record contract: what autolambda stores on an Optuna study and its trials,
the states it reads them in, and the readers of the per-epoch and per-rung series.

Every name here is stored in users' databases, so it is public API: a key is never
renamed; a new key gets a reader that still understands studies written before it
(``rung_history`` reads a transfer trial's rungs under ``rungs``, or under ``history``
where earlier versions put them).

States. Optuna knows COMPLETE, PRUNED, FAIL, RUNNING and WAITING. autolambda tells a
diverged trial (stopped on purpose when its loss blew up: PRUNED with
``diverged_at_epoch``) from one a pruner cut, because a diverged trial says something
about lambda: it lies beyond the wall. This module is the one place that rule, the
per-state counts and the MLflow status rule are written.

>>> RUN_STATUS["diverged"], run_status("pruned", {"orphaned": True})
('KILLED', 'KILLED')
>>> count_states([])
{'complete': 0, 'pruned': 0, 'diverged': 0, 'failed': 0, 'running': 0}
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from optuna.trial import TrialState

# Study user attributes.
#: The settings that define what the study's trials mean (``StudyConfig.fingerprint()``).
CONFIG_KEY = "autolambda_config"
#: The full effective configuration of the latest run on the study (secrets redacted).
RUN_CONFIG_KEY = "autolambda_run_config"
#: The reference size N_ref of ``lambda_eff = lambda0 * (N / N_ref) ** -alpha``.
N_REF_KEY = "n_ref"
#: The MLflow run id of the study's parent run.
PARENT_KEY = "mlflow_parent_run_id"

# Trial user attributes.
#: Per-epoch series of a search trial: ``val_ce``, ``val_accuracy``, ... and ``eval_epoch``.
HISTORY_KEY = "history"
#: The epochs (0-based) at which the validation series of ``history`` were measured.
EVAL_EPOCH = "eval_epoch"
#: Per-rung series of a transfer trial: ``rung_width``, ``rung_n_params``, ``rung_lambda_eff``,
#: ``rung_val_ce``, ``rung_seconds``. Studies before this key stored them under ``history``.
RUNGS_KEY = "rungs"
#: The widths a transfer trial trains, in order: its presence marks a transfer trial.
LADDER_KEY = "ladder"
#: The rung a transfer trial was training when it stopped.
RUNG_KEY = "rung"
#: Parameters fixed rather than searched (read by ``trial_param``).
TRIAL_PARAMS_KEY = "trial_params"
#: ``autolambda.search.pruners.AnswerAwarePruner``'s evidence for a trial it stopped.
SETTLED_KEY = "settled"
#: The epoch at which a diverged trial was stopped (its presence marks a divergence).
DIVERGED_KEY = "diverged_at_epoch"
#: ``host:pid`` of the process that ran the trial.
WORKER_KEY = "worker"
#: The seed block of a search trial (trials of one block share initialisation and batch order).
BLOCK_KEY = "block"

#: What a search trial trained: its width, trainable parameter count, penalty strength,
#: seed and trainer (``keras`` or ``surrogate``).
WIDTH_KEY = "width"
N_PARAMS_KEY = "n_params"
LAMBDA_EFF_KEY = "lambda_eff"
SEED_KEY = "seed"
TRAINER_KEY = "trainer"
#: The parameter counts of a transfer trial's ladder, in order.
LADDER_N_PARAMS_KEY = "ladder_n_params"
#: Epochs trained and seconds spent (every trial, finished or not).
EPOCHS_RUN_KEY = "epochs_run"
TRAIN_SECONDS_KEY = "train_seconds"
#: The error of a failed trial, ``Type: message`` (at most 2000 characters).
ERROR_KEY = "error"
#: A trial stopped by Ctrl-C or a stop signal (FAIL in Optuna, KILLED in MLflow).
INTERRUPTED_KEY = "interrupted"
#: A trial whose process died, marked FAIL by a later run (``run.study.fail_orphaned_trials``).
ORPHANED_KEY = "orphaned"
#: The number of the trial a replicate repeats in another seed block (``search.design.Replicator``).
REPLICATE_OF_KEY = "replicate_of"

#: Optuna's states of a finished trial: they count toward ``--trials``.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: Optuna's states of a trial that will not run again: finished, or failed.
ENDED = FINISHED + (TrialState.FAIL,)

#: Every state, in the order tables print them.
STATES = ("complete", "pruned", "diverged", "failed", "running")
#: The states of a finished trial (Optuna's COMPLETE or PRUNED): they count toward ``--trials``.
FINISHED_STATES = ("complete", "pruned", "diverged")

#: MLflow run status for each trial state: pruned and diverged trials were stopped on
#: purpose (KILLED), a trial that raised is FAILED.
RUN_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "diverged": "KILLED", "failed": "FAILED", "running": "RUNNING"}


def trial_state(trial: Any) -> str:
    """``complete``, ``pruned``, ``diverged``, ``failed`` or ``running`` for an Optuna trial."""
    if trial.state == TrialState.COMPLETE:
        return "complete"
    if trial.state == TrialState.PRUNED:
        return "diverged" if DIVERGED_KEY in trial.user_attrs else "pruned"
    if trial.state == TrialState.FAIL:
        return "failed"
    return "running"


def run_status(state: str, user_attrs: Mapping[str, Any]) -> str:
    """The MLflow status of a trial's run: a trial stopped by Ctrl-C (``interrupted``) or
    whose process died (``orphaned``) is KILLED, whatever Optuna recorded; else ``RUN_STATUS``."""
    if user_attrs.get(INTERRUPTED_KEY) or user_attrs.get(ORPHANED_KEY):
        return "KILLED"
    return RUN_STATUS[state]


def count_states(states: Iterable[str]) -> dict[str, int]:
    """How many of each state (every state present, zeros included), from state names."""
    counts = Counter(states)
    return {state: counts.get(state, 0) for state in STATES}


def is_transfer_trial(trial: Any) -> bool:
    """Whether ``trial`` trained a ladder of widths (transfer mode)."""
    return LADDER_KEY in trial.user_attrs


def is_transfer_study(trials: Iterable[Any]) -> bool:
    """Whether a study's trials are transfer pairs (the one rule every reader uses)."""
    return any(is_transfer_trial(t) for t in trials)


def trial_param(trial: Any, name: str) -> Any:
    """A trial's parameter: searched (``trial.params``) or fixed (``trial_params``)."""
    return trial.params.get(name, (trial.user_attrs.get(TRIAL_PARAMS_KEY) or {}).get(name))


def epoch_history(user_attrs: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A search trial's per-epoch series (empty for a transfer trial or none stored)."""
    if LADDER_KEY in user_attrs:
        return {}
    return dict(user_attrs.get(HISTORY_KEY) or {})


def rung_history(user_attrs: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A transfer trial's per-rung series: under ``rungs``, or under ``history`` in studies
    written before that key (empty for a search trial).

    >>> rung_history({"ladder": [2, 4], "history": {"rung_val_ce": [0.3]}})
    {'rung_val_ce': [0.3]}
    >>> rung_history({"history": {"val_ce": [0.3]}})
    {}
    """
    if LADDER_KEY not in user_attrs:
        return {}
    return dict(user_attrs.get(RUNGS_KEY) or user_attrs.get(HISTORY_KEY) or {})


def is_settled(user_attrs: Mapping[str, Any]) -> bool:
    """Whether a pruned trial's user attributes say it was stopped as settled beyond the
    wall (``SETTLED_KEY``, written by ``AnswerAwarePruner``)."""
    settled = user_attrs.get(SETTLED_KEY)
    return isinstance(settled, dict) and settled.get("as") == "hurt"
