"""Compare width-fair search with plain Optuna on the surrogate trainer (planted alpha).

For each planted alpha and seed, three set-ups run the same trial budget:
plain TPE + plain median pruner, balanced sampler + plain median, and the default
(balanced sampler + width-stratified median). Prints, per set-up, the complete trials of
the smallest width, alpha_hat, its 95% interval and whether it covers the planted value.

    python scripts/fairness_compare.py --trials 150 --seeds 3
"""

from __future__ import annotations

import argparse
import warnings

import optuna

from autolambda import LambdaScalingObjective
from autolambda.analysis.records import records_from_trials
from autolambda.analysis.summary import analyze_records
from autolambda.errors import AutolambdaError
from autolambda.search.factories import make_pruner, make_sampler

SETUPS = {
    "plain TPE + median": dict(balance=False, stratify=False),
    "balanced + median": dict(balance=True, stratify=False),
    "balanced + stratified (default)": dict(balance=True, stratify=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--alphas", type=float, nargs="+", default=[-0.5, 0.0, 0.7])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    print("| set-up | planted | seed | complete at width 4 | alpha_hat | 95% interval | covers |")
    print("|---|---|---|---|---|---|---|")
    for name, setup in SETUPS.items():
        for planted in args.alphas:
            for seed in range(args.seeds):
                study = optuna.create_study(
                    study_name="digits-l2-surrogate",
                    sampler=make_sampler("tpe", seed, balance=setup["balance"]),
                    pruner=make_pruner("median", args.epochs, stratify=setup["stratify"]),
                )
                objective = LambdaScalingObjective(trainer="surrogate", planted_alpha=planted, epochs=args.epochs, seed=seed)
                study.optimize(objective, n_trials=args.trials)
                records = records_from_trials(study.trials)
                smallest = sum(1 for r in records if r.width == 4 and r.state == "complete")
                try:
                    a = analyze_records(records)
                except AutolambdaError as exc:
                    print(f"| {name} | {planted} | {seed} | {smallest} | — | {exc} | — |")
                    continue
                if a.alpha_hat is None:
                    print(f"| {name} | {planted} | {seed} | {smallest} | — | not identified: {a.alpha_reason} | — |")
                    continue
                lo, hi = a.alpha_ci
                print(f"| {name} | {planted} | {seed} | {smallest} | {a.alpha_hat:.3f} | [{lo:.3f}, {hi:.3f}] | {'yes' if lo <= planted <= hi else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
