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


@pytest.mark.e2e
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index):
    pytest.importorskip("tensorflow")
    name, block = BLOCKS[index]
    exec(compile(block, f"{name}-example-{index}", "exec"), {})
