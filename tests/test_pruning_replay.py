"""scripts/pruning_replay.py replays pruners on an unpruned study and reports each one."""

import subprocess
import sys
from pathlib import Path

from autolambda.run.config import load_config
from autolambda.run.runner import run_study

ROOT = Path(__file__).parent.parent


def test_replay_reports_every_pruner_and_none_saves_nothing(tmp_path):
    storage = f"sqlite:///{tmp_path}/full.db"
    run_study(load_config(trials=30, epochs=8, pruner="none", trainer="surrogate", storage=storage), track=False)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pruning_replay.py"), "--storage", storage, "--orders", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line}
    assert "source: 30 trials x 8 epochs" in result.stdout
    assert rows["none"].split("|")[2].strip().startswith("0%")
    assert any(name.startswith("median") for name in rows) and any(name.startswith("successive halving") for name in rows)


def test_replay_refuses_a_pruned_study(tmp_path):
    storage = f"sqlite:///{tmp_path}/pruned.db"
    study = run_study(load_config(trials=30, epochs=8, pruner="successive-halving", trainer="surrogate", storage=storage),
                      track=False).study
    assert any(t.state.name == "PRUNED" for t in study.trials)
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "pruning_replay.py"), "--storage", storage],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "--pruner none" in result.stderr
