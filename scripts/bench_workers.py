"""Worker scaling: trials per minute of `autolambda tune` with 1 and with K workers.

Same settings for each (real Keras on digits, pruning off so every trial trains the
same epochs, no MLflow), each in a fresh folder; prints a Markdown table.

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


def run(workers: int, trials: int, epochs: int, trainer: str = "keras") -> float:
    with tempfile.TemporaryDirectory() as folder:
        cmd = [sys.executable, "-m", "autolambda", "tune", "--trials", str(trials), "--epochs", str(epochs),
               "--pruner", "none", "--no-mlflow", "--no-progress", "--trainer", trainer]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        started = time.perf_counter()
        subprocess.run(cmd, cwd=folder, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.trials} trials x {args.epochs} epochs, pruning off, no MLflow")
    print("| workers | wall time (s) | trials per minute | speed-up |")
    print("|---|---|---|---|")
    base = None
    for k in args.workers:
        times = sorted(run(k, args.trials, args.epochs) for _ in range(args.repeats))
        wall = times[len(times) // 2]
        rate = args.trials / wall * 60
        base = base or rate
        print(f"| {k} | {wall:.1f} | {rate:.1f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
