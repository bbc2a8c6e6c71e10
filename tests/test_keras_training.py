"""Real Keras training on tiny data: penalty-free scoring, pruning callback, divergence."""

import math

import numpy as np
import optuna
import pytest
from optuna.testing.pruners import DeterministicPruner
from optuna.trial import TrialState

from autolambda import LambdaScalingObjective, SearchSpace

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.e2e


def test_score_is_penalty_free_not_val_loss(tiny_npz):
    space = SearchSpace(widths=(4,), lambda0=0.1, alpha=0.0)  # a large penalty
    objective = LambdaScalingObjective(str(tiny_npz), space, epochs=2, n_train=None, batch_size=16, score_window=1)
    study = optuna.create_study()
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    history = trial.user_attrs["history"]
    assert trial.value == pytest.approx(history["val_ce"][-1])
    # val_loss carries the penalty; the score does not.
    assert history["val_loss"][-1] > history["val_ce"][-1] + 0.5 * history["reg_term"][-1]
    assert history["reg_term"][-1] > 0.1


def test_weight_decay_kind_puts_nothing_in_the_loss(tiny_npz):
    space = SearchSpace(widths=(4,), lambda0=0.05, alpha=0.0, penalty="weight_decay")
    study = optuna.create_study()
    study.optimize(LambdaScalingObjective(str(tiny_npz), space, epochs=1, n_train=None), n_trials=1)
    history = study.trials[0].user_attrs["history"]
    assert history["reg_term"] == [0.0]
    assert history["train_loss"][0] == pytest.approx(history["train_ce"][0], rel=1e-3)


def test_pruning_callback_reports_and_prunes(tiny_npz):
    from autolambda.callbacks import PruningCallback

    def objective(trial):
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="ce")])
        data = np.load(tiny_npz)
        model.fit(data["x_train"][..., None], data["y_train"], validation_split=0.3, epochs=5, verbose=0,
                  callbacks=[PruningCallback(trial, monitor="val_ce")])
        return 0.0

    # Prune at the second report: DeterministicPruner cannot count steps; Optuna's
    # ThresholdPruner can. Every val_ce is above 0, so it prunes at the first step past its
    # warm-up, epoch 1: the callback has reported epochs 0 and 1 and stopped the fit there.
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0, n_warmup_steps=1))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED and sorted(trial.intermediate_values) == [0, 1]
    assert all(value > 0 for value in trial.intermediate_values.values())
    # Prune whenever asked: the first report, epoch 0, ends it.
    study = optuna.create_study(pruner=DeterministicPruner(True))
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == TrialState.PRUNED and sorted(study.trials[0].intermediate_values) == [0]
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE and len(study.trials[0].intermediate_values) == 5


def test_nan_loss_is_diverged_not_crashed(tiny_npz):
    space = SearchSpace(widths=(4,), lambda0=1e-6, alpha=0.0, learning_rate=1e12, optimizer="sgd")
    study = optuna.create_study()
    study.optimize(LambdaScalingObjective(str(tiny_npz), space, epochs=3, n_train=None), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["diverged_at_epoch"] == 0
    assert trial.user_attrs["epochs_run"] == 1


def test_twenty_trials_on_digits_with_pruning():
    """The issue's acceptance run: 20 trials, 3 epochs, a plain study; some pruned."""
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    study.optimize(LambdaScalingObjective(epochs=3), n_trials=20)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 20
    assert states.count(TrialState.PRUNED) >= 1
    assert all(math.isfinite(t.value) for t in study.trials if t.state == TrialState.COMPLETE)
