"""The trial-record contract (``autolambda.core.trials``), the analysis settings and the
process-liveness rule: what studies written by earlier versions still read as."""

import os
import subprocess
import sys
import time

import optuna
import pytest

from autolambda import ConfigError
from autolambda.analysis.records import records_from_trials
from autolambda.analysis.settings import AnalysisConfig
from autolambda.base.processes import is_alive
from autolambda.core.trials import HISTORY_KEY, RUNGS_KEY, epoch_history, is_transfer_study, rung_history
from autolambda.search.transfer import TransferObjective


def _transfer_study():
    study = optuna.create_study(pruner=optuna.pruners.NopPruner(), sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(TransferObjective(trainer="surrogate", ladder=(4, 16), epochs=3), n_trials=2)
    return study


def _as_written_before_rungs(trial):
    """The trial as versions before the ``rungs`` key stored it: rungs under ``history``."""
    attrs = dict(trial.user_attrs)
    attrs[HISTORY_KEY] = attrs.pop(RUNGS_KEY)
    return optuna.trial.create_trial(state=trial.state, value=trial.value, params=trial.params,
                                     distributions=trial.distributions, user_attrs=attrs,
                                     intermediate_values=trial.intermediate_values)


def test_a_transfer_trial_stores_its_rungs_under_their_own_key():
    study = _transfer_study()
    for t in study.trials:
        assert HISTORY_KEY not in t.user_attrs
        assert rung_history(t.user_attrs)["rung_width"] == [4, 16]
        assert epoch_history(t.user_attrs) == {}
    assert is_transfer_study(study.trials)


def test_a_transfer_study_written_under_history_reads_the_same():
    trials = _transfer_study().trials
    old = [_as_written_before_rungs(t) for t in trials]
    assert [rung_history(t.user_attrs) for t in old] == [rung_history(t.user_attrs) for t in trials]
    strip = lambda records: [r.__class__(**{**r.__dict__, "number": 0}) for r in records]  # create_trial numbers -1
    assert strip(records_from_trials(old)) == strip(records_from_trials(trials))
    assert len(records_from_trials(old)) == 4  # two pairs, two rungs each


def test_a_search_trial_has_no_rungs():
    attrs = {HISTORY_KEY: {"val_ce": [0.5, 0.4]}}
    assert rung_history(attrs) == {} and epoch_history(attrs) == {"val_ce": [0.5, 0.4]}


def test_analysis_settings_come_from_the_study_and_refuse_bad_values():
    assert AnalysisConfig.for_study({"score_window": 7}, wall_cost=0.5) == AnalysisConfig(wall_cost=0.5, score_window=7)
    assert AnalysisConfig.for_study(None) == AnalysisConfig()
    assert "score_window" not in AnalysisConfig().fit_options()
    for bad, name in (({"wall_cost": 0}, "wall_cost"), ({"min_trials": 0}, "min_trials"), ({"n_params": (0,)}, "n-params"),
                      ({"tolerance": -0.1}, "tolerance")):
        with pytest.raises(ConfigError, match=name):
            AnalysisConfig(**bad)
    with pytest.raises(Exception):
        AnalysisConfig().wall_cost = 0.5  # frozen: one reading of a study's settings


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="zombies are told apart through /proc")
def test_a_zombie_is_not_alive():
    """A worker that exited but was not reaped will never finish its trial."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert is_alive(os.getpid())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    else:
        pytest.fail("the child did not exit")
    assert not is_alive(child.pid)
    child.wait()
    assert not is_alive(child.pid)


def test_mlflow_logs_a_pairs_rungs_whichever_key_stored_them():
    """A transfer trial's child run carries its per-rung series as metrics, for trials
    written now (``rungs``) and before (``history``)."""
    from autolambda.tracking.tracker import _trial_metrics

    trial = _transfer_study().trials[0]
    for t in (trial, _as_written_before_rungs(trial)):
        logged = {(m.key, m.step): m.value for m in _trial_metrics(t, 0, 1000)}
        for step, value in enumerate(rung_history(trial.user_attrs)["rung_val_ce"]):
            assert logged[("rung_val_ce", step)] == pytest.approx(value)


@pytest.mark.parametrize("mode", ["search", "transfer"])
def test_a_study_config_builds_the_objective_it_describes(mode):
    """Every setting StudyConfig shares with the objective reaches it, by name (transfer
    pairs seed each rung themselves: no seed blocks)."""
    from dataclasses import fields

    from autolambda.run.config import load_config

    config = load_config(trainer="surrogate", mode=mode, epochs=7, batch_size=16, seed=3, seed_blocks=2, n_train=200,
                         score="median", score_window=3, eval_every=2, planted_alpha=0.5, surrogate_dip=0.2, n_ref=5000.0)
    objective = config.objective()
    shared = {f.name for f in fields(objective)} & {f.name for f in fields(config)}
    assert {"epochs", "seed", "n_train", "score_window", "planted_alpha", "surrogate_dip", "n_ref", "space"} <= shared
    for name in shared - {"seed_blocks"}:
        assert getattr(objective, name) == getattr(config, name), name
    assert objective.seed_blocks == (2 if mode == "search" else 0)
    assert (getattr(objective, "ladder", None) is not None) == (mode == "transfer")
