"""The study design: trials where the loss depends on lambda, replicates, stopping on the answer."""

from __future__ import annotations

import math

import optuna
import pytest
from typer.testing import CliRunner

from autolambda.analysis.records import records_from_trials
from autolambda.analysis.summary import analyze_records
from autolambda.cli.app import app
from autolambda.run.config import load_config
from autolambda.analysis.estimators import band_edges
from autolambda.run.runner import run_study

runner = CliRunner()
SURROGATE = dict(trainer="surrogate", epochs=6, pruner="none", storage="sqlite:///d.db", tracking_uri="sqlite:///m.db")


def _share(sampler: str, seed: int = 0) -> float:
    config = load_config(None, **SURROGATE, sampler=sampler, trials=60, seed=seed, study_name=sampler, replicate_every=0)
    study = run_study(config, track=False).study
    analysis = analyze_records(records_from_trials(study.trials), intervals=False)
    return analysis.informative_share


def test_design_puts_most_trials_where_the_fitted_loss_depends_on_lambda():
    """The share `analyze` reports (issue 13's goal: >= 70 %). On the realistic surrogate
    width-balanced TPE often gets there too (its fitted band is wide); measured against
    the surrogate's true band the design was not better than TPE (docs/method.md, "Spending
    trials where they inform"), so this asserts the goal, not an advantage."""
    assert _share("design", seed=1) >= 0.7  # the seed where TPE's share was 0.47


def test_band_holds_the_dip_and_the_wall_rise_not_the_floor():
    params = {"alpha": 0.5, "c": -6.0, "s": 1.0, "depth": 0.05, "beta": 0.5, "c_wall": -3.0, "g": 3.0}
    lo, hi = band_edges(params, x=0.0)
    assert lo == pytest.approx(-6.0 - math.sqrt(2 * math.log(10)))  # the dip's tenth
    assert hi == pytest.approx(-3.0 + math.log(9) / 3.0)  # 90 % up the wall
    # At another size the band moves with the fitted exponents.
    lo2, hi2 = band_edges(params, x=2.0)
    assert lo2 == pytest.approx(lo - 1.0) and hi2 == pytest.approx(hi - 1.0)
    # No dip in the fit: the band is the wall's rise.
    assert band_edges(params | {"depth": 0.0}, 0.0)[0] == pytest.approx(-3.0 + math.log(0.01 / 0.99) / 3.0)


@pytest.mark.parametrize("blocks", [3, 0])
def test_replicates_repeat_settings_with_another_seed_and_feed_the_noise(blocks):
    """A repeat is the same lambda in another seed block. Blocks differ by their offsets,
    which the fit removes, so a blocked study's noise is its residual SD; without blocks
    the repeats measure it."""
    config = load_config(None, **SURROGATE, trials=45, replicate_every=10, study_name="rep", seed_blocks=blocks)
    study = run_study(config, track=False).study
    repeats = [t for t in study.trials if "replicate_of" in t.user_attrs]
    assert len(repeats) == 3  # after 20, 30 and 40 finished trials
    for t in repeats:
        source = study.trials[t.user_attrs["replicate_of"]]
        assert t.params == source.params and t.user_attrs["lambda_eff"] == source.user_attrs["lambda_eff"]
        assert t.value != source.value  # another seed, another loss
        assert t.user_attrs["seed"] != source.user_attrs["seed"]
        if blocks:
            assert t.user_attrs["block"] != source.user_attrs["block"]
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.WAITING]
    analysis = analyze_records(records_from_trials(study.trials), intervals=False)
    if blocks:
        assert analysis.n_replicate_dof == 0 and analysis.replicate_noise_sd is None
    else:
        assert analysis.n_replicate_dof == 3 and analysis.replicate_noise_sd > 0


def test_the_design_aims_at_each_widths_dip_from_both_sides_and_at_the_ends():
    """Once the fit exists, most trials land around the planted optimum of their width,
    on both sides of it, and the widths at the ends of the range (which fix a slope) get
    at least their share, none starved."""
    from collections import Counter

    from autolambda.training.surrogate import SurrogateTrainer

    config = load_config(None, **(SURROGATE | {"epochs": 80}), trials=90, study_name="aim", planted_alpha=0.5,
                         surrogate_dip=0.08, replicate_every=0)
    study = run_study(config, track=False).study
    sur = SurrogateTrainer(planted_alpha=0.5)
    late = [t for t in study.trials if t.number >= 40 and t.state == optuna.trial.TrialState.COMPLETE]
    u = [math.log(t.user_attrs["lambda_eff"] / sur.lambda_star(t.user_attrs["n_params"])) for t in late]
    near = [v for v in u if abs(v) <= 2.0]
    assert len(near) >= 0.5 * len(u)
    assert min(sum(v < 0 for v in near), sum(v > 0 for v in near)) >= 0.25 * len(near)
    counts = Counter(t.user_attrs["width"] for t in study.trials)
    assert min(counts.values()) >= 0.5 * 90 / 6
    assert counts[2] + counts[64] >= 2 * 90 / 6


def test_precision_stops_on_the_answer_and_resumes(tmp_path):
    args = ["tune", "--trainer", "surrogate", "--epochs", "6", "--pruner", "none", "--surrogate-seed-noise", "0.005",
            "--surrogate-dip", "0.15", "--precision", "0.5", "--trials", "150", "--no-progress", "--no-mlflow", "--no-analyze"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db")
    n = len(study.trials)
    assert n < 150
    analysis = analyze_records(records_from_trials(study.trials))
    ci = analysis.alpha_ci if analysis.identified else analysis.wall_alpha_ci
    assert ci is not None and (ci[1] - ci[0]) / 2 <= 0.5
    # The same command again: the study already holds the answer, so no trial is added.
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0 and "(0 new)" in result.output, result.output
    assert len(optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db").trials) == n


def test_tune_ends_with_the_answer_unless_told_not_to(tmp_path):
    base = ["tune", "--trainer", "surrogate", "--epochs", "6", "--trials", "8", "--no-progress"]
    result = runner.invoke(app, base, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Answer" in result.output and "The optimum's alpha" in result.output and "noise_sd" not in result.output
    assert (tmp_path / "autolambda-report" / "digits-l2-surrogate" / "report.md").exists()
    from mlflow.tracking import MlflowClient

    from autolambda.base.stores import absolute_sqlite

    client = MlflowClient(absolute_sqlite("sqlite:///mlflow.db"))
    study = optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db")
    run_id = study.user_attrs["mlflow_parent_run_id"]
    assert any(a.path == "analysis" for a in client.list_artifacts(run_id))
    result = runner.invoke(app, base[:-3] + ["--trials", "3", "--no-progress", "--no-analyze", "--study-name", "other"],
                           catch_exceptions=False)
    assert result.exit_code == 0 and "alpha of the optimum" not in result.output
    assert "autolambda analyze --study-name other" in result.output


def test_old_studies_stay_resumable():
    from autolambda.errors import ConfigError
    from autolambda.core.trials import CONFIG_KEY
    from autolambda.run.study import check_study

    # A study made before pool_val and lr_schedule existed: what it did then is what they mean now.
    config = load_config(None, **SURROGATE, pool_val=False, study_name="old")
    old = {k: v for k, v in config.fingerprint().items() if k not in ("pool_val", "lr_schedule")}
    study = optuna.create_study(study_name="old", storage="sqlite:///d.db")
    study.set_user_attr(CONFIG_KEY, old)
    assert check_study(config) is True
    with pytest.raises(ConfigError, match="pool_val"):
        check_study(load_config(None, **SURROGATE, study_name="old"))  # pooled now: other scores
    # A transfer study whose rungs shared one seed per pair is not topped up with independent ones.
    transfer = load_config(None, **SURROGATE, mode="transfer", ladder=(4, 16), study_name="old-transfer")
    assert transfer.fingerprint()["rung_seeds"] == "independent"
    old = {k: v for k, v in transfer.fingerprint().items() if k != "rung_seeds"}
    optuna.create_study(study_name="old-transfer", storage="sqlite:///d.db").set_user_attr(CONFIG_KEY, old)
    with pytest.raises(ConfigError, match="rung_seeds: 'shared' there, 'independent' now"):
        check_study(transfer)
    # A transfer study made now resumes (its fingerprint has no seed blocks).
    optuna.create_study(study_name="new-transfer", storage="sqlite:///d.db").set_user_attr(
        CONFIG_KEY, load_config(None, **SURROGATE, mode="transfer", ladder=(4, 16), study_name="new-transfer").fingerprint())
    assert check_study(load_config(None, **SURROGATE, mode="transfer", ladder=(4, 16), study_name="new-transfer")) is True
    # A search study made before seed blocks trained every trial with its own seed: it is
    # not topped up with blocked trials, and the refusal says how to resume it.
    before = {k: v for k, v in load_config(None, **SURROGATE, study_name="unblocked").fingerprint().items() if k != "seed_blocks"}
    optuna.create_study(study_name="unblocked", storage="sqlite:///d.db").set_user_attr(CONFIG_KEY, before)
    with pytest.raises(ConfigError, match="resumes with --seed-blocks 0"):
        check_study(load_config(None, **SURROGATE, study_name="unblocked"))
    assert check_study(load_config(None, **SURROGATE, study_name="unblocked", seed_blocks=0)) is True


def test_seed_repeats_the_study_on_the_same_images():
    a, b = load_config(None, seed=0).objective(), load_config(None, seed=2).objective()
    da, db = a.load_data(), b.load_data()
    assert (da.x_train == db.x_train).all() and (da.y_val == db.y_val).all()
    other = load_config(None, seed=0, data_seed=1).objective().load_data()
    assert not (other.x_train == da.x_train).all()
