"""Probe the training regime: for each width, the penalty-free validation loss over a
grid of lambda (alpha = 0, so lambda_eff = lambda0), several seeds.

Used to choose defaults where every width's best lambda is interior and clearly better
than lambda ~ 0. Prints a table; writes JSON with --out.

    python scripts/regime_probe.py --epochs 30 --n-train 400 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import optuna

from autolambda import LambdaScalingObjective, SearchSpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[1e-7, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = []
    for width in args.widths:
        row = []
        for lam in args.lambdas:
            values = []
            for seed in range(args.seeds):
                space = SearchSpace(widths=(width,), lambda0=lam, alpha=0.0, learning_rate=args.learning_rate)
                objective = LambdaScalingObjective(
                    space=space, epochs=args.epochs, n_train=args.n_train, batch_size=args.batch_size, seed=seed
                )
                study = optuna.create_study()
                started = time.perf_counter()
                study.optimize(objective, n_trials=1)
                values.append(study.trials[0].value)
                results.append({"width": width, "lambda": lam, "seed": seed, "value": study.trials[0].value,
                                "n_params": study.trials[0].user_attrs["n_params"],
                                "seconds": time.perf_counter() - started})
            row.append(statistics.mean(values))
        best = min(range(len(row)), key=row.__getitem__)
        print(f"width {width:4d}: " + " ".join(f"{v:.3f}" for v in row) + f"  best lambda {args.lambdas[best]:g}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
