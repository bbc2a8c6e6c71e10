"""End to end with real TensorFlow: `autolambda tune` on digits, 2 epochs, tracked in MLflow."""

import optuna
import pytest
from typer.testing import CliRunner

from autolambda.cli.app import app
from tests.test_cli import mlflow_runs

pytestmark = pytest.mark.e2e
pytest.importorskip("tensorflow")


def test_tune_real_keras_then_top_up(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["tune", "--trials", "4", "--epochs", "2", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    client, parents, children = mlflow_runs()
    assert len(parents) == 1 and len(children) == 4
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        for key in ("width", "depth", "lambda0", "alpha", "penalty", "n_params", "lambda_eff", "learning_rate"):
            assert key in run.data.params
        assert {"n_params", "lambda_eff"} <= set(run.data.metrics)
        epochs = int(run.data.metrics["epochs_run"])
        for key in ("train_loss", "train_ce", "train_accuracy", "val_ce", "val_accuracy", "val_loss", "reg_term"):
            assert len(client.get_metric_history(run.info.run_id, key)) == epochs
    result = runner.invoke(app, ["tune", "--trials", "6", "--epochs", "2", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    _, parents, children = mlflow_runs()
    assert len(parents) == 1 and len(children) == 6
    study = optuna.load_study(study_name="digits-l2", storage=f"sqlite:///{tmp_path / 'autolambda.db'}")
    assert len(study.trials) == 6
