"""The objective inside plain and foreign Optuna studies (mostly with the surrogate trainer)."""

import pickle
import subprocess
import sys

import optuna
import pytest
from optuna.testing.pruners import DeterministicPruner
from optuna.trial import TrialState

from autolambda import ConfigError, LambdaScalingObjective, SearchSpace, score_history
from autolambda.training.surrogate import SurrogateTrainer


def surrogate(**kwargs):
    kwargs.setdefault("epochs", 6)
    return LambdaScalingObjective(trainer="surrogate", **kwargs)


def test_import_autolambda_loads_no_framework():
    code = (
        "import sys, autolambda; "
        "autolambda.SearchSpace; autolambda.lambda_eff; "
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_pruner_says_prune_trial_is_pruned():
    # DeterministicPruner(True) says prune whenever asked; an unknown pruner is asked from
    # step 0 (first_pruning_step), so every trial stops at its first report.
    study = optuna.create_study(pruner=DeterministicPruner(True))
    study.optimize(surrogate(eval_every=1), n_trials=3)  # validation (and the pruner) after every epoch
    assert all(t.state == TrialState.PRUNED for t in study.trials)
    assert all(t.user_attrs["epochs_run"] == 1 for t in study.trials)
    assert all(len(t.intermediate_values) == 1 for t in study.trials)


def test_pruner_says_keep_trial_completes():
    study = optuna.create_study(pruner=DeterministicPruner(False))
    study.optimize(surrogate(epochs=7, eval_every=1), n_trials=3)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert all(len(t.intermediate_values) == 7 for t in study.trials)
    # By default the pruner is asked only where the validation pass runs.
    study = optuna.create_study(pruner=DeterministicPruner(False))
    study.optimize(surrogate(epochs=30, eval_every=10), n_trials=1)
    assert sorted(study.trials[0].intermediate_values) == [9, 19, 25, 26, 27, 28, 29]


class CountingMedian(optuna.pruners.MedianPruner):
    """A median pruner that counts the steps it was asked at."""

    asked: list

    def prune(self, study, trial) -> bool:
        self.asked.append(trial.last_step)
        return super().prune(study, trial)


@pytest.mark.parametrize("stratify", [False, True])
def test_the_pruner_is_not_asked_before_it_can_prune(stratify):
    """Every report is kept (plots, replays), but should_prune() before the warm-up
    would only cost storage round trips."""
    from autolambda.pruners import WidthStratifiedPruner

    inner = CountingMedian(n_startup_trials=0, n_warmup_steps=5)
    inner.asked = []
    study = optuna.create_study(pruner=WidthStratifiedPruner(inner) if stratify else inner)
    study.optimize(surrogate(epochs=8, eval_every=1), n_trials=2)
    assert all(len(t.intermediate_values) == 8 for t in study.trials if t.state == TrialState.COMPLETE)
    assert inner.asked and min(inner.asked) == 5


def test_a_study_without_pruning_never_asks():
    class Never(optuna.pruners.NopPruner):
        def prune(self, study, trial):
            raise AssertionError("asked")

    study = optuna.create_study(pruner=Never())
    study.optimize(surrogate(epochs=4, eval_every=1), n_trials=2)
    assert all(t.state == TrialState.COMPLETE and len(t.intermediate_values) == 4 for t in study.trials)


def test_divergence_is_recorded_as_pruned_and_the_study_goes_on():
    space = SearchSpace(lambda0=(50.0, 100.0), alpha=0.0)  # far beyond the surrogate's divergence
    study = optuna.create_study()
    study.optimize(surrogate(space=space, epochs=8), n_trials=2)
    study.optimize(surrogate(epochs=8), n_trials=1)
    first = study.trials[0]
    assert first.state == TrialState.PRUNED
    assert first.user_attrs["diverged_at_epoch"] == 2
    assert "nan" in first.user_attrs["divergence_reason"]
    assert study.trials[2].state == TrialState.COMPLETE


def test_final_score_averages_the_last_epochs():
    study = optuna.create_study()
    study.optimize(surrogate(epochs=10, score_window=4), n_trials=1)
    trial = study.trials[0]
    history = trial.user_attrs["history"]["val_ce"]
    assert trial.value == pytest.approx(sum(history[-4:]) / 4)
    study = optuna.create_study()
    study.optimize(surrogate(epochs=10, score="best"), n_trials=1)
    assert study.trials[0].value == pytest.approx(min(study.trials[0].user_attrs["history"]["val_ce"]))


def test_validation_runs_every_few_epochs_and_at_every_scored_one():
    study = optuna.create_study()
    study.optimize(surrogate(epochs=30, eval_every=10, score_window=5), n_trials=1)
    history = study.trials[0].user_attrs["history"]
    assert history["eval_epoch"] == [9, 19, 25, 26, 27, 28, 29]
    assert len(history["val_ce"]) == 7 and len(history["train_ce"]) == 30
    assert study.trials[0].value == pytest.approx(sum(history["val_ce"][-5:]) / 5)
    # Scoring the best epoch needs every epoch.
    study = optuna.create_study()
    study.optimize(surrogate(epochs=30, eval_every=10, score="best"), n_trials=1)
    assert study.trials[0].user_attrs["history"]["eval_epoch"] == list(range(30))


def test_cosine_learning_rate_decays_to_near_zero():
    from autolambda.training.trainers import learning_rates

    assert learning_rates("constant", 3e-3, 80) is None
    lr = learning_rates("cosine", 3e-3, 80)
    assert lr(0) == pytest.approx(3e-3) and lr(40) == pytest.approx(1.5e-3)
    assert 0 < lr(79) < 3e-3 / 1000
    with pytest.raises(ConfigError, match="lr_schedule"):
        LambdaScalingObjective(lr_schedule="step")


def test_score_history():
    assert score_history([3.0, 2.0, 1.0], "final", 2) == pytest.approx(1.5)
    assert score_history([3.0, 1.0, 2.0], "best") == 1.0
    assert score_history([2.0], "final", 5) == 2.0
    with pytest.raises(ValueError):
        score_history([], "final")


def test_user_attributes_and_fixed_n_ref():
    study = optuna.create_study()
    study.optimize(surrogate(), n_trials=3)
    n_ref = study.user_attrs["n_ref"]
    for t in study.trials:
        attrs = t.user_attrs
        assert attrs["n_ref"] == n_ref
        assert attrs["lambda_eff"] == pytest.approx(t.params["lambda0"] * (attrs["n_params"] / n_ref) ** -t.params["alpha"])
        assert {"epochs_run", "train_seconds", "width", "history"} <= set(attrs)
    # Another objective over a narrower space joins the study: the stored n_ref wins.
    study.optimize(surrogate(space=SearchSpace(widths=(8,))), n_trials=1)
    assert study.trials[-1].user_attrs["n_ref"] == n_ref
    with pytest.raises(ConfigError, match="n_ref"):
        surrogate(n_ref=123.0).resolve_n_ref(study)


def test_objective_is_picklable_and_keeps_settings():
    obj = surrogate(epochs=3, space=SearchSpace(widths=(8, 16)), seed=4)
    copy = pickle.loads(pickle.dumps(obj))
    assert vars(copy) == vars(obj)
    study = optuna.create_study()
    study.optimize(copy, n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE


@pytest.mark.parametrize("sampler", [optuna.samplers.TPESampler(seed=0), optuna.samplers.RandomSampler(seed=0)])
def test_in_a_foreign_study(sampler):
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    study.optimize(surrogate(), n_trials=8)
    assert len(study.trials) == 8
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}


def test_in_a_multi_objective_study():
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.optimize(surrogate(objectives=("val_ce", "n_params")), n_trials=4)
    assert all(t.state == TrialState.COMPLETE and len(t.values) == 2 for t in study.trials)
    assert all(t.values[1] == t.user_attrs["n_params"] for t in study.trials)


def test_wrapped_by_a_users_objective():
    objective = surrogate()

    def mine(trial):
        trial.suggest_int("my_extra", 0, 3)
        return objective(trial) + 0.0

    study = optuna.create_study()
    study.optimize(mine, n_trials=3)
    assert all("my_extra" in t.params and "lambda0" in t.params for t in study.trials)


def test_surrogate_plants_its_optimum():
    sur = SurrogateTrainer(planted_alpha=0.7)
    n = 10_000
    star = sur.lambda_star(n)
    assert sur.final_loss(n, star) < sur.final_loss(n, star * 3) and sur.final_loss(n, star) < sur.final_loss(n, star / 3)
    assert sur.lambda_star(2 * n) == pytest.approx(star * 2**-0.7)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"epochs": 0}, "epochs"), ({"score": "last"}, "score"), ({"trainer": "torch"}, "trainer"),
     ({"objectives": ("loss",)}, "objectives"), ({"n_ref": -3}, "n_ref")],
)
def test_bad_objective_arguments(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        LambdaScalingObjective(**kwargs)
