"""What skipping ``should_prune()`` before a pruner's warm-up saves (issue 14).

Runs the default study's settings with the surrogate trainer (no training time, so what
is left is the per-trial bookkeeping; ``--trainer keras``: the main job on digits) twice
per pruner: asking the pruner at every
validation pass as before, and only from its first possible step, as now. Prints the
calls made and the seconds of each run.

Example:
    python scripts/prune_calls.py --trials 100
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(pruner: str, trials: int, skip: bool, folder: Path, trainer: str = "surrogate") -> tuple[float, int]:
    import optuna

    import autolambda.search.monitor as monitor
    from autolambda.run.config import load_config
    from autolambda.run.runner import run_study

    calls = {"n": 0}
    original = optuna.trial.Trial.should_prune

    def counted(self):  # noqa: ANN001
        calls["n"] += 1
        return original(self)

    optuna.trial.Trial.should_prune = counted
    ask_from = monitor._ask_from
    if not skip:
        monitor._ask_from = lambda trial: 0  # the old behaviour: ask at every report
    try:
        config = load_config(None, trainer=trainer, pruner=pruner, trials=trials, study_name=f"{pruner}-{skip}",
                             storage=f"sqlite:///{folder / f'{pruner}-{skip}.db'}",
                             replicate_every=0 if trainer == "surrogate" else 10)
        started = time.perf_counter()
        run_study(config, track=False)
        return time.perf_counter() - started, calls["n"]
    finally:
        optuna.trial.Trial.should_prune = original
        monitor._ask_from = ask_from


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--pruners", default="none,median")
    parser.add_argument("--trainer", default="surrogate", help="keras: the main job itself, on digits (minutes a run)")
    parser.add_argument("--after-first", action="store_true",
                        help="run the new way first (the first run in a process also pays TensorFlow's warm-up)")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("| pruner | should_prune calls before | after | seconds before | after |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for pruner in args.pruners.split(","):
            if args.after_first:
                after = run(pruner, args.trials, True, Path(folder), args.trainer)
                before = run(pruner, args.trials, False, Path(folder), args.trainer)
            else:
                before = run(pruner, args.trials, False, Path(folder), args.trainer)
                after = run(pruner, args.trials, True, Path(folder), args.trainer)
            print(f"| {pruner} | {before[1]} | {after[1]} | {before[0]:.1f} | {after[0]:.1f} |")


if __name__ == "__main__":
    main()
