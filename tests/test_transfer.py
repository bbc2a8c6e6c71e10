"""Transfer mode: one (lambda0, alpha) per trial on a ladder of widths; and extrapolation."""

import json

import optuna
import pytest
from optuna.testing.pruners import DeterministicPruner
from optuna.trial import TrialState
from typer.testing import CliRunner

from autolambda import ConfigError
from autolambda.analysis.sizes import summarize_sizes
from autolambda.analysis.summary import analyze_records, extrapolate
from autolambda.cli.app import app
from autolambda.search.transfer import TransferObjective
from tests.test_analysis import synthetic


def test_each_trial_trains_the_whole_ladder_with_one_pair():
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    study.optimize(TransferObjective(trainer="surrogate", ladder=(4, 16, 64), epochs=5), n_trials=3)
    for t in study.trials:
        assert set(t.params) == {"lambda0", "alpha"}
        rungs = t.user_attrs["rungs"]
        assert rungs["rung_width"] == [4, 16, 64]
        assert sorted(t.intermediate_values) == [0, 1, 2]
        assert t.value == pytest.approx(sum(rungs["rung_val_ce"]) / 3)
        n_ref = study.user_attrs["n_ref"]
        for n, lam in zip(rungs["rung_n_params"], rungs["rung_lambda_eff"]):
            assert lam == pytest.approx(t.params["lambda0"] * (n / n_ref) ** -t.params["alpha"])


def test_transfer_trials_are_pruned_per_rung():
    # Prune whenever asked: each pair stops at its first report, after its first rung.
    study = optuna.create_study(pruner=DeterministicPruner(True))
    study.optimize(TransferObjective(trainer="surrogate", ladder=(4, 16, 64), epochs=5), n_trials=2)
    assert all(t.state == TrialState.PRUNED and t.user_attrs["rungs"]["rung_width"] == [4] for t in study.trials)
    assert all(sorted(t.intermediate_values) == [0] for t in study.trials)


def test_bad_ladder():
    with pytest.raises(ConfigError, match="ladder"):
        TransferObjective(ladder=(8,))


def test_rungs_train_with_their_own_seeds(monkeypatch):
    """Each rung is an independent observation: the trainer gets another seed than for
    the other rungs of its pair (the same seed at another width would share the batch
    order, and on the surrogate the whole seed offset) and than for the other trials."""
    from autolambda.training.surrogate import SurrogateTrainer

    seen = []
    original = SurrogateTrainer.train

    def spy(self, request):
        seen.append((request.params.width, request.seed))
        return original(self, request)

    monkeypatch.setattr(SurrogateTrainer, "train", spy)
    study = optuna.create_study()
    study.optimize(TransferObjective(trainer="surrogate", ladder=(4, 16, 64), epochs=3, seed=7), n_trials=2)
    assert [w for w, _ in seen] == [4, 16, 64, 4, 16, 64]
    assert len({s for _, s in seen}) == 6 and seen[0][1] == 7  # rung 0 keeps a search trial's seed
    assert study.trials[0].user_attrs["ladder_n_params"] == study.trials[0].user_attrs["rungs"]["rung_n_params"]


def test_a_pair_gives_one_record_per_finished_rung():
    """Pruned pairs' finished rungs are observations too; a pair that diverged leaves one
    diverged record at the rung where it stopped."""
    from autolambda.analysis.records import records_from_trials, rung_records

    # Prune at the second report (after rung 16): DeterministicPruner cannot count steps;
    # Optuna's ThresholdPruner can. Every reported mean val_ce is above 0, so it prunes at
    # the first step past its warm-up, step 1.
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0, n_warmup_steps=1))
    study.optimize(TransferObjective(trainer="surrogate", ladder=(4, 16, 64), epochs=5), n_trials=2)
    assert all(sorted(t.intermediate_values) == [0, 1] and t.intermediate_values[1] > 0 for t in study.trials)
    records = records_from_trials(study.trials)
    assert [(r.number, r.width, r.state) for r in records] == [(0, 4, "complete"), (0, 16, "complete"), (0, 64, "pruned"),
                                                                 (1, 4, "complete"), (1, 16, "complete"), (1, 64, "pruned")]
    assert records[2].n_params == study.trials[0].user_attrs["ladder_n_params"][2] and records[2].value is None
    rungs = study.trials[0].user_attrs["rungs"]
    assert [r.lambda_eff for r in records[:2]] == rungs["rung_lambda_eff"] and [r.value for r in records[:2]] == rungs["rung_val_ce"]
    assert all(r.lambda0 == study.trials[0].params["lambda0"] for r in records[:2])

    # A pair that diverged at its third rung, and one still running there.
    from optuna.distributions import FloatDistribution

    history = {"rung_width": [4, 16], "rung_n_params": [1626, 9930], "rung_lambda_eff": [1e-3, 5e-4], "rung_val_ce": [0.4, 0.3]}
    attrs = {"ladder": [4, 16, 64], "history": history, "rung": {"width": 64, "n_params": 94986, "lambda_eff": 2e-4}}
    dists = {"lambda0": FloatDistribution(1e-5, 1e-1, log=True), "alpha": FloatDistribution(-1, 2)}
    diverged = optuna.trial.create_trial(state=TrialState.PRUNED, params={"lambda0": 1e-3, "alpha": 0.5}, distributions=dists,
                                         user_attrs=attrs | {"diverged_at_epoch": 3}, intermediate_values={0: 0.4, 1: 0.35})
    records = records_from_trials([diverged])
    assert [(r.width, r.state) for r in records] == [(4, "complete"), (16, "complete"), (64, "diverged")]
    assert records[-1].value is None and records[-1].diverged_at_epoch == 3 and records[-1].lambda_eff == 2e-4
    failed = optuna.trial.create_trial(state=TrialState.FAIL, params={"lambda0": 1e-3, "alpha": 0.5}, distributions=dists,
                                       user_attrs=attrs)
    assert [(r.width, r.state) for r in records_from_trials([failed])][-1] == (64, "failed")
    assert [(r.width, r.state) for r in rung_records(failed, "running")][-1] == (64, "running")
    # Stopped after rung 1 finished but before rung 2 began: no record for a rung that never ran.
    between = optuna.trial.create_trial(state=TrialState.FAIL, params={"lambda0": 1e-3, "alpha": 0.5}, distributions=dists,
                                        user_attrs=attrs | {"rung": attrs["rung"] | {"width": 16, "step": 1}})
    assert [(r.width, r.state) for r in records_from_trials([between])] == [(4, "complete"), (16, "complete")]


def test_transfer_mode_from_the_cli_answers_with_an_interval(tmp_path):
    """The joint fit of the rungs: search mode's keys and verdicts; the plots and tables
    fit the mode (no log-scale warning, no "width -"); the best pairs are a check."""
    runner = CliRunner()
    args = ["tune", "--mode", "transfer", "--ladder", "4,16,64", "--trainer", "surrogate", "--planted-alpha", "0.5",
            "--surrogate-seed-noise", "0.005", "--surrogate-dip", "0.15", "--trials", "40", "--epochs", "8", "--no-progress"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Transfer mode: " in result.output and "Best pairs by mean val_ce" in result.output
    assert "…" not in result.output  # no number cut, whatever the ladder
    assert "width -" not in result.output and "Warning" not in result.output and "log-scal" not in result.output
    assert "counts are rungs" in " ".join(result.output.split())  # a table title, wrapped at 80 columns
    from mlflow.tracking import MlflowClient

    from autolambda.base.stores import absolute_sqlite

    run_id = optuna.load_study(study_name="digits-l2-surrogate-transfer", storage="sqlite:///autolambda.db").user_attrs["mlflow_parent_run_id"]
    summary = {a.path for a in MlflowClient(absolute_sqlite("sqlite:///mlflow.db")).list_artifacts(run_id, "summary")}
    assert {"summary/transfer_pairs.png", "summary/loss_vs_lambda.png"} <= summary
    result = runner.invoke(app, ["analyze", "--json"], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert data["mode"] == "transfer" and data["study_name"] == "digits-l2-surrogate-transfer"
    assert {"alpha_hat", "alpha_ci", "identified", "noise_sd", "wall_alpha_ci", "answer"} <= set(data)
    assert data["identified"] and data["alpha_ci"][0] <= 0.5 <= data["alpha_ci"][1]
    assert data["alpha_ci"][1] - data["alpha_ci"][0] < 1.0
    assert data["noise_sd"] > 0 and "residuals" in data["noise_source"]
    t = data["transfer"]
    assert t["n_pairs"] == 40 and t["ladder"] == [4, 16, 64] and sum(t["pair_states"].values()) == 40
    assert [r["width"] for r in t["best_pairs"][0]["rungs"]] == [4, 16, 64]
    assert [s["n_complete"] for s in data["per_size"]] == [40, 40, 40]  # every rung of every pair
    report = (tmp_path / "autolambda-report" / "digits-l2-surrogate-transfer")
    assert (report / "transfer_pairs.png").exists() and "## Transfer pairs" in (report / "report.md").read_text()
    text = " ".join(runner.invoke(app, ["analyze"], catch_exceptions=False).output.split())
    assert "120 rungs of 40 transfer pairs" in text and "Answer " in text and "The best lambda shrinks as the network grows" in text
    bad = runner.invoke(app, ["tune", "--mode", "transfer", "--ladder", "4,x"])
    assert bad.exit_code == 2 and "ladder must be comma-separated" in bad.output


def test_transfer_and_search_agree_on_one_surrogate():
    """Both modes, the same surrogate and widths: intervals that overlap and hold the truth."""
    from autolambda import LambdaScalingObjective
    from autolambda.analysis.records import records_from_trials
    from autolambda.analysis.summary import analyze_records, analyze_transfer
    from autolambda.core.space import SearchSpace

    common = {"trainer": "surrogate", "planted_alpha": -0.5, "surrogate_seed_noise": 0.005, "surrogate_dip": 0.15,
              "epochs": 8, "space": SearchSpace(widths=(4, 16, 64))}
    nop = optuna.pruners.NopPruner()
    transfer = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), pruner=nop)
    transfer.optimize(TransferObjective(ladder=(4, 16, 64), **common), n_trials=40)
    search = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), pruner=nop)
    search.optimize(LambdaScalingObjective(**common), n_trials=120)
    a, b = analyze_transfer(transfer.trials), analyze_records(records_from_trials(search.trials))
    assert a.identified and b.identified and a.mode == "transfer"
    assert a.alpha_ci[0] <= b.alpha_ci[1] and b.alpha_ci[0] <= a.alpha_ci[1]
    assert a.alpha_ci[0] <= -0.5 <= a.alpha_ci[1]
    # `tune --precision` works in transfer mode too: the same interval, from the rungs.
    from autolambda.run.stops import PrecisionStop

    stop = PrecisionStop(1.0)
    stop.check(transfer)
    assert stop.half_width == pytest.approx((a.alpha_ci[1] - a.alpha_ci[0]) / 2)


def test_extrapolation_regret_is_small_when_alpha_holds():
    records = synthetic(0.6, noise=0.003, per_width=21)
    result = analyze_records(records)
    e = result.extrapolation
    assert e["target_width"] == 128 and e["fitted_on_widths"] == [4, 8, 16, 32, 64]
    assert e["alpha_small"] == pytest.approx(0.6, abs=0.1)
    assert abs(e["regret"]) < 0.01
    assert extrapolate(records, summarize_sizes(records)[:2]) is None  # needs three sizes
