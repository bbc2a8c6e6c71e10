"""The README's and docs/' Python examples run as written, their `autolambda` command
lines name commands and options that exist, and the README's commands match .ci/run."""

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {path.relative_to(ROOT).as_posix(): path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
BLOCKS = [(name, block) for name, text in DOCS.items() for block in re.findall(r"```python\n(.*?)```", text, flags=re.S)]


def _command_lines(text):
    """Every `autolambda ...` line of the indented code blocks (continuations joined, comments cut)."""
    text = re.sub(r"\\\n\s*", " ", text)
    for line in text.splitlines():
        if not line.startswith("    ") or "autolambda" not in line:
            continue
        code = line.split("  #")[0].strip()
        code = code.removeprefix(".venv/bin/").split("&& ")[-1].removeprefix(".venv/bin/")
        for part in code.split(" / "):
            if part.startswith("autolambda "):
                yield part


COMMANDS = sorted({(name, cmd) for name, text in DOCS.items() for cmd in _command_lines(text)})


def test_ci_runs_the_readme_test_command():
    command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -n 2"
    assert command in README
    assert command.replace(".venv/bin/pip install -e", ".venv/bin/pip install -q -e") in (ROOT / ".ci" / "run").read_text()


def test_readme_names_the_main_job_command():
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/autolambda tune --trials 100" in README


def test_readme_stays_short_and_links_the_docs():
    assert len(README.splitlines()) <= 250
    for name in DOCS:
        if name != "README.md":
            assert f"({name})" in README, name


@pytest.mark.parametrize("name,command", COMMANDS)
def test_documented_command_lines_parse(name, command):
    """Each documented command line names a command and options `autolambda` has, with
    values of the right kind (parsed as the CLI would, not run)."""
    import typer

    from autolambda.cli.app import app

    group = typer.main.get_command(app)
    args = shlex.split(command)[1:]
    sub = group.get_command(None, args[0]) if args and not args[0].startswith("-") else None
    if sub is None:
        assert args in (["--help"], []), (name, command)
        return
    sub.make_context(args[0], args[1:], resilient_parsing=False)


def _lambda_eff(lambda0, alpha, n_params, n_ref):
    return lambda0 * (n_params / n_ref) ** -alpha


def _check_keras_layer(namespace, printed, studies):
    """The layer of "Using the answer": the lambda_eff the prose says analyze prints, on the
    1220-weight layer (the example's own assert checks the count)."""
    assert printed == ""
    stated = float(re.search(r"prints, for the seed-0 study, `lambda_eff` = ([0-9.e+-]+)", README).group(1))
    layer = namespace["layer"]
    assert layer.count_params() == 1220
    assert layer.kernel_regularizer.get_config()["l2"] == pytest.approx(stated, rel=1e-6)


def _check_objective_example(namespace, printed, studies):
    """The objective in the user's own study: one line, the best trial's params, N and lambda_eff."""
    import ast

    from optuna.trial import TrialState

    study = namespace["study"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(study.trials) == 6 and complete
    best = min(complete, key=lambda t: t.value)
    match = re.fullmatch(r"(\{.*\}) (\d+) (\S+)\n", printed)
    assert match, printed
    params, n_params, lambda_eff = ast.literal_eval(match.group(1)), int(match.group(2)), float(match.group(3))
    assert params == best.params and set(params) == {"width", "lambda0", "alpha"}
    # The parameter count of the example's Conv2D net (depth 2, 3x3, digits) at each width.
    assert n_params == {4: 1626, 16: 9930, 64: 94986}[params["width"]]
    assert n_params == best.user_attrs["n_params"] and lambda_eff == best.user_attrs["lambda_eff"]
    assert lambda_eff == pytest.approx(_lambda_eff(params["lambda0"], params["alpha"], n_params, best.user_attrs["n_ref"]))
    # seed_blocks=3: each width's trials share 3 seeds.
    assert all(t.user_attrs["block"] in (0, 1, 2) for t in study.trials)


def _check_own_model_example(namespace, printed, studies):
    """The rule in the user's own Keras model: two trials, each penalised as
    suggest_scaled_penalty says, each reporting val_ce every epoch."""
    from optuna.trial import TrialState

    assert printed == ""
    (study,) = studies
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for t in study.trials:
        filters = t.params["filters"]
        assert set(t.params) == {"filters", "lambda0", "alpha"}
        assert t.user_attrs["n_params"] == filters * (3 * 3 * 1 + 1) + 8 * 8 * filters * 10 + 10
        assert t.user_attrs["n_ref"] == 10_000
        assert t.user_attrs["lambda_eff"] == pytest.approx(_lambda_eff(t.params["lambda0"], t.params["alpha"], t.user_attrs["n_params"], 10_000))
        assert sorted(t.intermediate_values) == [0, 1, 2]  # PruningCallback: val_ce after each of 3 epochs
        assert t.intermediate_values[2] == pytest.approx(t.value)


# Each Python example, by a line only it has, and what running it must show.
EXAMPLE_CHECKS = {
    "assert layer.count_params() == 1220": _check_keras_layer,
    "print(best.params, best.user_attrs[\"n_params\"], best.user_attrs[\"lambda_eff\"])": _check_objective_example,
    "optuna.create_study().optimize(objective, n_trials=2)": _check_own_model_example,
}


def test_every_python_example_has_its_check():
    for name, block in BLOCKS:
        assert sum(marker in block for marker in EXAMPLE_CHECKS) == 1, (name, block[:200])
    assert all(any(marker in block for _, block in BLOCKS) for marker in EXAMPLE_CHECKS)


@pytest.mark.e2e
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index, monkeypatch, capsys):
    pytest.importorskip("tensorflow")
    import optuna

    name, block = BLOCKS[index]
    (check,) = [check for marker, check in EXAMPLE_CHECKS.items() if marker in block]
    studies = []
    create_study = optuna.create_study

    def recording_create_study(*args, **kwargs):
        studies.append(create_study(*args, **kwargs))
        return studies[-1]

    monkeypatch.setattr(optuna, "create_study", recording_create_study)
    namespace = {}
    capsys.readouterr()
    exec(compile(block, f"{name}-example-{index}", "exec"), namespace)
    check(namespace, capsys.readouterr().out, studies)
