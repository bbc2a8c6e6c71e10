"""The README's Python examples run as written, and its commands match .ci/run."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_ci_runs_the_readme_test_command():
    command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -n 2"
    assert command in README
    assert command.replace(".venv/bin/pip install -e", ".venv/bin/pip install -q -e") in (ROOT / ".ci" / "run").read_text()


def test_readme_names_the_main_job_command():
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/autolambda tune --trials 100" in README


@pytest.mark.e2e
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index):
    pytest.importorskip("tensorflow")
    exec(compile(BLOCKS[index], f"README-example-{index}", "exec"), {})
