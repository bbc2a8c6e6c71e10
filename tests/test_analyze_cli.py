"""`autolambda analyze` end to end on surrogate studies: planted alphas, files, MLflow, edge cases."""

import json

import optuna
import pytest
from typer.testing import CliRunner

from autolambda.cli import app
from tests.test_cli import mlflow_runs

runner = CliRunner()


def tune(*args):
    result = runner.invoke(app, ["tune", "--trainer", "surrogate", "--no-progress", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def analyze_json(*args):
    result = runner.invoke(app, ["analyze", "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("planted", [-0.5, 0.0, 0.7])
def test_planted_alpha_is_recovered(planted):
    # A journal file: the same study as SQLite, about five times faster for instant trials.
    journal = ["--storage", "journal:./study.journal"]
    tune("--planted-alpha", str(planted), "--trials", "150", "--epochs", "20", "--no-mlflow", *journal)
    data = analyze_json("--no-mlflow", "--n-boot", "1000", *journal)
    assert abs(data["alpha_hat"] - planted) < 0.1, data["alpha_hat"]
    low, high = data["alpha_ci"]
    assert low <= planted <= high
    assert data["n_trials"] == 150
    assert [s["width"] for s in data["per_size"]] == [4, 8, 16, 32, 64, 128]
    assert all({"n_params", "best_lambda_eff", "n_trials"} <= set(s) for s in data["per_size"])
    inside = {h["alpha"]: h["inside_ci"] for h in data["hypotheses"]}
    assert set(inside) == {1.0, 0.5, 0.0, -0.25, -0.5}
    assert inside.get(planted, True) is True


def test_report_files_and_mlflow_artifacts(tmp_path):
    tune("--trials", "40", "--epochs", "10")
    result = runner.invoke(app, ["analyze", "--n-boot", "200", "--out", "rep"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "alpha_hat" in result.output and "Hypotheses" in result.output
    files = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"report.md", "analysis.json", "loss_vs_lambda.png", "best_lambda_vs_n.png", "optuna_contour.png",
            "optuna_importances.png", "optuna_intermediate.png", "loss_vs_lambda.html"} <= files
    report = (tmp_path / "rep" / "report.md").read_text()
    assert report.startswith("# Lambda scaling: digits-l2-surrogate") and "## Hypotheses" in report
    client, parents, _ = mlflow_runs()
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "analysis")}
    assert "analysis/report.md" in artifacts and "analysis/best_lambda_vs_n.png" in artifacts
    assert "alpha_hat" in client.get_run(parents[0].info.run_id).data.metrics


def _message(result):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    return lines[0]


def test_no_storage_or_no_study_is_a_clear_message(tmp_path):
    assert "run `autolambda tune` first" in _message(runner.invoke(app, ["analyze"]))
    optuna.create_study(study_name="empty", storage="sqlite:///autolambda.db")
    assert "no trials yet" in _message(runner.invoke(app, ["analyze", "--no-mlflow"]))
    assert "no study 'other'" in _message(runner.invoke(app, ["analyze", "--study-name", "other"]))


def test_all_pruned_is_a_clear_message(tmp_path):
    tune("--trials", "3", "--epochs", "5", "--no-mlflow")
    study = optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db")
    # A second study whose every trial is pruned.
    pruned = optuna.create_study(study_name="pruned", storage="sqlite:///autolambda.db")
    for t in study.trials:
        pruned.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, params=t.params,
                                                   distributions=t.distributions, user_attrs=t.user_attrs))
    message = _message(runner.invoke(app, ["analyze", "--study-name", "pruned", "--no-mlflow"]))
    assert "no complete trials (3 pruned)" in message


def test_one_width_says_why_there_is_no_alpha(tmp_path):
    (tmp_path / "one.toml").write_text('[space]\nwidths = [16]\n')
    tune("--study", "one.toml", "--trials", "12", "--epochs", "8", "--no-mlflow")
    data = analyze_json("--no-mlflow", "--n-boot", "200")
    assert data["alpha_hat"] is None and data["alpha_ci"] is None
    assert any("at least two sizes" in n for n in data["notes"])
    assert all(h["inside_ci"] is False for h in data["hypotheses"])


def test_bad_analyze_options():
    result = runner.invoke(app, ["analyze", "--tolerance", "2"])
    assert result.exit_code == 2 and "tolerance must lie in [0, 1)" in result.output
