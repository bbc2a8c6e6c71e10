"""Worker scaling: trials per minute of `autolambda tune` with 1 and with K workers.

Same settings for each (real Keras on digits, pruning off so every trial trains the
same epochs, no MLflow, Optuna's journal file), each in a fresh folder; prints a
Markdown table. Trials per minute are counted over the study itself (first trial's
start to last trial's end, from the storage's timestamps) and over the whole command
(with its start-up: imports, spawning workers).

    python scripts/bench_workers.py --trials 24 --epochs 10 --workers 1 2
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(workers: int, trials: int, epochs: int, trainer: str = "keras") -> tuple[float, float, float]:
    """(wall seconds of the command, seconds from the first trial's start to the last's end,
    CPU seconds the command's processes used)."""
    import resource

    import optuna

    from autolambda.base.storage import make_storage

    with tempfile.TemporaryDirectory() as folder:
        cmd = [sys.executable, "-m", "autolambda", "tune", "--trials", str(trials), "--epochs", str(epochs),
               "--pruner", "none", "--no-mlflow", "--no-progress", "--trainer", trainer,
               "--storage", "journal:autolambda.journal"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(cmd, cwd=folder, check=True, capture_output=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = make_storage(f"journal:{folder}/autolambda.journal")
        study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
        done = [t for t in study.trials if t.datetime_complete is not None]
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        return wall, span, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.trials} trials x {args.epochs} epochs, pruning off, no MLflow")
    print("| workers | wall time (s) | trials per minute (study) | speed-up | trials per minute (command) | cores busy |")
    print("|---|---|---|---|---|---|")
    base = None
    for k in args.workers:
        runs = sorted((run(k, args.trials, args.epochs) for _ in range(args.repeats)), key=lambda r: r[1])
        wall, span, cpu = runs[len(runs) // 2]
        rate = args.trials / span * 60
        base = base or rate
        print(f"| {k} | {wall:.1f} | {rate:.1f} | {rate / base:.2f}x | {args.trials / wall * 60:.1f} | {cpu / wall:.2f} |", flush=True)


if __name__ == "__main__":
    main()
