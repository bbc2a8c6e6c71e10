"""The command line, driven with CliRunner; the surrogate trainer keeps it fast."""

import json
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from autolambda.cli.app import app

runner = CliRunner()
FAST = ["--trainer", "surrogate", "--epochs", "6"]


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def mlflow_runs(tracking="sqlite:///mlflow.db", experiment="autolambda"):
    from mlflow.tracking import MlflowClient

    from autolambda.base.stores import absolute_sqlite

    client = MlflowClient(absolute_sqlite(tracking))
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_help_lists_commands_and_every_option_has_help():
    result = invoke("--help")
    assert result.exit_code == 0 and "tune" in result.output and "ui" in result.output
    import typer.main

    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        for param in sub.params:
            if param.name != "help":
                assert param.help, f"{name} --{param.name} has no help text"


def test_help_does_not_import_tensorflow():
    code = (
        "import sys; from typer.testing import CliRunner; from autolambda.cli.app import app; "
        "r = CliRunner().invoke(app, ['tune', '--help']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules]; "
        "sys.exit(1 if heavy else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _study_file(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# (args, exit code, the one line): a ConfigError (bad option value) exits 2, like
# Typer's own usage errors; a data set that cannot be loaded is a DataError and exits 1
# (user_errors in autolambda/cli/app.py). Each line names the bad value.
BAD_INPUT = [
    (["--trials", "0"], 2, "Error: trials must be an integer >= 1 but got 0."),
    (["--pruner", "bogus"], 2, "Error: pruner must be one of answer-aware, median, hyperband, successive-halving, none but got 'bogus'."),
    (["--sampler", "grid"], 2, "Error: sampler must be one of design, tpe, random, qmc, gp but got 'grid'."),
    (["--study", "missing.toml"], 2, "Error: study file 'missing.toml' does not exist."),
    (["--storage", "notaurl"], 2, "Error: storage 'notaurl' is not a storage URL;"),
    (["--storage", "sqlite://x.db"], 2, "Error: storage 'sqlite://x.db': a SQLite URL needs three slashes"),
    (["--tracking-uri", "./mlruns"], 2, "Error: tracking URI './mlruns' is not supported;"),
    (["--dataset", "imagenet"], 1, "Error: unknown dataset 'imagenet': not one of"),
    (["--epochs", "0"], 2, "Error: epochs must be an integer >= 1 but got 0."),
    (["--penalty", "l3"], 2, "Error: space.penalty must be one of l2, l1, l1l2, weight_decay but got 'l3'."),
    (["--score", "last"], 2, "Error: score must be one of final, median, best but got 'last'."),
    (["--trainer", "torch"], 2, "Error: trainer must be one of keras, surrogate but got 'torch'."),
    (["--timeout", "-5"], 2, "Error: timeout must be a positive number of seconds but got -5.0."),
]


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=[" ".join(a) for a, _, _ in BAD_INPUT])
def test_bad_input_one_line_nonzero_nothing_written(tmp_path, args, code, message):
    result = invoke("tune", *args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(message), lines[0]
    assert result.stdout == ""  # the line goes to stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochz = 3\n", "unknown key 'epochz'"),
        ("[space]\nwidthz = [4]\n", "unknown key 'space.widthz'"),
        ("[space]\nlambda0 = [1e-2, 1e-5]\n", "space.lambda0 lower bound"),
        ("epochs = 'many'\n", "epochs must be an integer"),
        ("epochs = [\n", "not valid TOML"),
    ],
)
def test_bad_study_file_names_the_key(tmp_path, text, message):
    path = _study_file(tmp_path, text)
    result = invoke("tune", "--study", path)
    assert result.exit_code == 2 and message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_study_file_and_cli_merge_cli_wins(tmp_path):
    path = _study_file(tmp_path, 'trainer = "surrogate"\nepochs = 3\ntrials = 5\n[space]\nwidths = [4, 16]\n')
    result = invoke("tune", "--study", path, "--epochs", "4", "--no-progress")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db")
    stored = study.user_attrs["autolambda_config"]
    assert stored["epochs"] == 4 and stored["space"]["widths"] == [4, 16]
    assert len(study.trials) == 5
    assert {t.params["width"] for t in study.trials} <= {4, 16}
    _, parents, _ = mlflow_runs()
    assert parents[0].data.params["epochs"] == "4" and parents[0].data.params["space.widths"] == "[4, 16]"


def test_tune_logs_parent_and_children_and_resumes(tmp_path):
    result = invoke("tune", *FAST, "--trials", "10", "--pruner", "successive-halving", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "Per model size" in result.output and "Answer" in result.output and "autolambda ui" in result.output
    client, parents, children = mlflow_runs()
    assert len(parents) == 1 and len(children) == 10
    parent = parents[0]
    assert parent.info.status == "FINISHED" and "n_ref" in parent.data.params
    summary = {a.path for a in client.list_artifacts(parent.info.run_id, "summary")}
    assert summary == {"summary/loss_vs_lambda.png", "summary/best_lambda_vs_n.png"}
    assert any(k.startswith("version.") for k in parent.data.tags)
    study = optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db")
    by_number = {int(r.data.tags["autolambda.trial_number"]): r for r in children}
    assert sorted(by_number) == list(range(10))
    states = set()
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"trial-{trial.number:04d}"
        for key in ("width", "depth", "lambda0", "alpha", "penalty", "n_params", "lambda_eff"):
            assert key in run.data.params
        assert float(run.data.params["lambda_eff"]) == pytest.approx(trial.user_attrs["lambda_eff"])
        # The seed it trained with and its seed block: the trials a fit's floor shares, browsable in MLflow.
        assert run.data.params["seed"] == str(trial.user_attrs["seed"])
        assert run.data.params["block"] == str(trial.user_attrs["block"])
        assert run.data.metrics["n_params"] == trial.user_attrs["n_params"]
        history = client.get_metric_history(run.info.run_id, "val_ce")
        # The validation pass runs at the epochs the score reads (the last 5 of 6 here).
        assert [m.step for m in history] == trial.user_attrs["history"]["eval_epoch"]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_ce")] == list(range(trial.user_attrs["epochs_run"]))
        for key in ("train_loss", "train_ce", "val_accuracy", "reg_term"):
            assert key in run.data.metrics
        state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}[trial.state]
        states.add(state)
        assert run.data.tags["autolambda.state"] == state
        assert run.info.status == {"complete": "FINISHED", "pruned": "KILLED"}[state]
    assert states == {"complete", "pruned"}
    # The same command with a bigger budget tops up the same study and parent run.
    result = invoke("tune", *FAST, "--trials", "13", "--pruner", "successive-halving", "--no-progress")
    assert result.exit_code == 0, result.output
    client, parents, children = mlflow_runs()
    assert len(parents) == 1 and parents[0].info.run_id == parent.info.run_id
    assert len(children) == 13
    study = optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db")
    assert len(study.trials) == 13 and len({t.number for t in study.trials}) == 13
    # Already at the budget: nothing new.
    result = invoke("tune", *FAST, "--trials", "13", "--pruner", "successive-halving", "--no-progress")
    assert "(0 new)" in result.output
    assert len(optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db").trials) == 13


def test_same_name_other_settings_is_refused(tmp_path):
    assert invoke("tune", *FAST, "--trials", "2", "--no-progress").exit_code == 0
    result = invoke("tune", "--trainer", "surrogate", "--epochs", "9", "--trials", "3", "--no-progress")
    assert result.exit_code == 2
    assert "exists with a different configuration" in result.output and "epochs: 6 there, 9 now" in result.output
    study = optuna.load_study(study_name="digits-l2-surrogate", storage="sqlite:///autolambda.db")
    assert len(study.trials) == 2


def test_no_mlflow_writes_no_tracking_store(tmp_path):
    result = invoke("tune", *FAST, "--trials", "2", "--no-mlflow", "--no-progress")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "mlflow.db").exists() and (tmp_path / "autolambda.db").exists()


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "autolambda", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "tune" in out.stdout


def test_printed_next_commands_are_whole_lines_that_run(tmp_path):
    """Output to a file or CI is 80 columns wide to rich: a long storage path must still
    come out on one line, and the line, copied, must run."""
    import shlex

    deep = tmp_path / ("a-folder-with-a-long-name-" * 3) / "and-another-one"
    deep.mkdir(parents=True)
    journal = f"journal:{deep / 'autolambda.journal'}"
    tracking = f"sqlite:///{deep / 'mlflow.db'}"
    result = invoke("tune", *FAST, "--trials", "2", "--no-progress", "--no-analyze", "--storage", journal, "--tracking-uri", tracking)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    analyze_line = next(line for line in lines if line.strip().startswith("autolambda analyze"))
    ui_line = next(line for line in lines if line.strip().startswith("autolambda ui"))
    assert str(deep / "autolambda.journal") in analyze_line and str(deep / "mlflow.db") in ui_line
    argv = shlex.split(analyze_line, comments=True)
    copied = runner.invoke(app, argv[1:] + ["--no-mlflow", "--json"])
    assert copied.exit_code != 2, copied.output  # the options parse as printed
    # Two complete trials (one per width): analyze reads them from the deep journal and
    # answers, on stdout, one JSON object saying too few trials for alpha; it exits 0.
    assert copied.exit_code == 0, copied.output
    answer = json.loads(copied.stdout)
    assert answer["study_name"] == "digits-l2-surrogate"
    assert answer["n_records"] == 2 and answer["states"] == {"complete": 2, "pruned": 0, "diverged": 0, "failed": 0, "running": 0}
    assert answer["answer"] == {"which": "none", "alpha": None, "ci": None}
    assert answer["alpha_reason"] == "too few complete trials for the joint fit"
