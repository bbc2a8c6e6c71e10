"""The answer-aware pruner: it stops only trials settled far beyond the wall, and the
analysis counts what they showed (hurt), never their unfinished loss."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from typer.testing import CliRunner

from autolambda import LambdaScalingObjective, SurrogateTrainer
from autolambda.analysis.estimators import estimate_wall
from autolambda.analysis.records import complete_curve_data, records_from_trials
from autolambda.analysis.summary import analyze_records
from autolambda.cli.app import app
from autolambda.core.choices import DEFAULT_PRUNER
from autolambda.pruners import AnswerAwarePruner
from autolambda.search.factories import make_pruner
from autolambda.search.pruners import Peer, first_pruning_step, last_pruning_step, settled_verdict

PLANTED = 0.5


def _block(block, finals, ratio_at_step):
    return [Peer(block, f, f * ratio_at_step) for f in finals]


def test_a_trial_is_compared_with_its_own_seed_block_at_the_same_step():
    """A slow seed block sits 3x above its final losses at this step; a fast one 1.2x. A
    trial of the slow block at 3.2x its block's final floor is a slow starter, not the wall."""
    peers = _block(0, (0.30, 0.31, 0.33), 3.0) + _block(1, (0.30, 0.32, 0.34), 1.2)
    assert settled_verdict(1.0, 0, peers, height=2.0) is None  # 1.08x its own block's median 0.93 at this step
    verdict = settled_verdict(1.0, 1, peers, height=2.0)  # 2.6x the fast block's 0.384
    assert verdict is not None and verdict["ratio"] == pytest.approx(1.0 / 0.384)


def test_slow_starters_that_ended_below_the_wall_widen_what_counts_as_normal():
    fast = _block(0, (0.30, 0.31, 0.32, 0.33, 0.34), 1.0)
    assert settled_verdict(0.9, 0, fast, height=2.0) is not None  # 2.8x: nothing below the wall was ever so high
    slow_starter = [Peer(0, 0.31, 1.2)]  # ended below the wall, from 3.7x its block at this step
    assert settled_verdict(0.9, 0, fast + slow_starter, height=2.0) is None


def test_nothing_is_settled_before_a_width_has_enough_trials_below_the_wall():
    peers = _block(0, (0.30, 0.31, 0.32, 0.33), 1.0) + [Peer(0, 2.3, 2.3)]  # 4 below, 1 collapsed
    assert settled_verdict(2.3, 0, peers) is None
    assert settled_verdict(2.3, 0, peers + [Peer(0, 0.35, 0.35)]) is not None


def test_by_default_only_trials_the_optimum_s_fit_would_drop_are_stopped():
    """Trials a little beyond the wall place its foot, next to the dip: kept. By default a
    trial must sit where the optimum's fit calls a net collapsed (COLLAPSED, 5x), plus the margin."""
    peers = _block(0, (0.30, 0.31, 0.32, 0.33, 0.34), 1.0)
    assert settled_verdict(0.5, 0, peers, height=1.25) is not None  # 1.56x: hurt
    assert settled_verdict(0.5, 0, peers) is None and settled_verdict(1.8, 0, peers) is None  # 5.6x < 6x
    assert settled_verdict(2.3, 0, peers) is not None  # ln 10: a collapsed net
    # ... unless the study's other widths score so high that the optimum's fit would keep it
    assert settled_verdict(2.3, 0, peers, study_median=0.5) is None


@pytest.mark.parametrize("kwargs", [{"margin": -0.1}, {"height": math.nan}, {"n_startup_trials": 1.5},
                                    {"until_step": -1}, {"cost": True}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AnswerAwarePruner(**kwargs)


def test_the_factory_builds_it_for_the_first_half_of_the_budget():
    pruner = make_pruner("answer-aware", 80)
    assert isinstance(pruner, AnswerAwarePruner)  # width-fair by itself: not wrapped
    assert (first_pruning_step(pruner), last_pruning_step(pruner)) == (0, 40)
    assert DEFAULT_PRUNER == "answer-aware"


def _plain_study(pruner, n_trials=90, seed=0):
    """A plain Optuna study with the importable objective (the surrogate stands in for Keras)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), pruner=pruner)
    objective = LambdaScalingObjective(trainer="surrogate", planted_alpha=PLANTED, seed=seed, seed_blocks=3, epochs=30)
    study.optimize(objective, n_trials=n_trials)
    return study


def test_in_a_plain_optuna_study_it_stops_only_trials_beyond_the_wall():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _plain_study(AnswerAwarePruner(height=2.0, until_step=15), n_trials=150)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(pruned) >= 4
    truth = SurrogateTrainer(planted_alpha=PLANTED)
    for t in pruned:
        n, lam = t.user_attrs["n_params"], t.user_attrs["lambda_eff"]
        assert t.user_attrs["settled"]["as"] == "hurt" and t.user_attrs["settled"]["step"] <= 15
        # noise-free: beyond the wall, where the analysis calls a trial hurt
        assert truth.final_loss(n, lam) > 1.25 * truth.final_loss(n, 1e-12), (t.number, n, lam)
    epochs = sum(t.user_attrs["epochs_run"] for t in study.trials)
    assert epochs < 30 * len(study.trials) - 10 * len(pruned)  # each stop saved at least 10 epochs
    records = records_from_trials(study.trials)
    assert sum(r.settled for r in records) == len(pruned)


def test_the_wall_counts_a_settled_trial_as_hurt_and_the_optimum_leaves_it_out():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _plain_study(optuna.pruners.NopPruner(), n_trials=100, seed=1)
    records = records_from_trials(study.trials)
    floor = {w: min(r.value for r in records if r.width == w) for w in {r.width for r in records}}
    far = {r.number for r in records if r.value > 2 * floor[r.width]}
    assert len(far) >= 3
    settled = [r.__class__(**{**r.__dict__, "state": "pruned", "value": None, "settled": r.number in far})
               if r.number in far else r for r in records]
    unsettled = [r.__class__(**{**r.__dict__, "settled": False}) for r in settled]  # pruned by a loss pruner

    curve, rows = complete_curve_data(settled)
    assert far.isdisjoint(r.number for r in rows)  # no unfinished loss in the optimum's fit

    def wall(recs):
        data, _ = complete_curve_data(recs, drop_collapsed=False, settled=True)
        floors = [floor[w] for w in sorted(floor)]
        estimate, info = estimate_wall(data, floors, point_only=True)
        return estimate.estimate, info["n_hurt"]

    assert wall(settled) == pytest.approx(wall(records), abs=1e-6)  # hurt either way: the same labels, the same wall
    assert wall(unsettled)[1] == wall(records)[1] - len(far)
    assert analyze_records(settled, intervals=False).n_settled == len(far)


def test_default_tune_prunes_and_says_so():
    result = CliRunner().invoke(app, ["tune", "--trainer", "surrogate", "--trials", "150", "--epochs", "20", "--no-mlflow",
                                      "--no-analyze", "--storage", "sqlite:///p.db", "--sampler", "random", "--seed", "1"])
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name=None, storage="sqlite:///p.db")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.user_attrs["settled"]["as"] == "hurt" for t in pruned)
    assert f"pruned {len(pruned)} ({len(pruned)} beyond the wall)" in " ".join(result.output.split())


def test_the_surrogate_trains_narrow_nets_slower_and_ends_at_its_final_loss():
    """The pruners see the approach, so the surrogate draws digits' (MEASURED_TAU)."""
    from autolambda.training.surrogate import _approach

    t = SurrogateTrainer()
    narrow = np.median([t.time_constant(746, 1e-3, seed) for seed in range(50)])
    wide = np.median([t.time_constant(94986, 1e-3, seed) for seed in range(50)])
    assert narrow > 2.5 * wide
    heavy = np.median([t.time_constant(746, 1e-2, seed) for seed in range(50)])
    assert heavy > np.median([t.time_constant(746, 1e-4, seed) for seed in range(50)])  # larger lambdas learn slower
    assert _approach(80, 80, 30.0) == 0.0 and _approach(10, 80, 10.0) == pytest.approx(math.exp(-1), rel=0.01)
    assert SurrogateTrainer(speed=0).time_constant(746, 1e-3, 0) == 0.0
