"""A seed-blocked grid on digits: every seed trained at every lambda of its width.

With common random numbers (one seed per block, all its lambdas), a seed's curve of loss
against lambda shows the dip without the seed-to-seed offset; the residual around each
block's smooth curve is the noise that the blocked fit has to carry. Each training's last
``--score-window`` epochs are kept, so several scores (mean, median) are compared
on the same trainings: which one removes Adam's late spikes without changing the recipe.

    python scripts/seed_grid.py --widths 4 16 64 --seeds 3 --json grid.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from autolambda.core.choices import DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE, DEFAULT_N_TRAIN
from autolambda.core.scaling import count_convnet_params
from autolambda.core.space import SearchSpace, TrialParams
from autolambda.training.data import load_dataset
from autolambda.training.request import TrainRequest
from autolambda.training.trainers import make_trainer

SCORES = {
    "mean": lambda tail: float(np.mean(tail)),
    "median": lambda tail: float(np.median(tail)),
}


def block_residuals(rows: list[dict], score: str) -> dict[int, dict[str, float]]:
    """Per width: the SD between seeds at one lambda, and the residual SD around each
    seed's own smooth curve (a quadratic in ln lambda per seed, the offset included)."""
    out: dict[int, dict[str, float]] = {}
    for width in sorted({r["width"] for r in rows}):
        mine = [r for r in rows if r["width"] == width]
        seeds = sorted({r["seed"] for r in mine})
        lams = sorted({r["lambda"] for r in mine})
        table = np.array([[next(r[score] for r in mine if r["seed"] == s and r["lambda"] == lam) for lam in lams] for s in seeds])
        between = float(np.sqrt(np.mean(np.var(table, axis=0, ddof=1)))) if len(seeds) > 1 else float("nan")
        x = np.log(lams)
        ss, dof = 0.0, 0
        for row in table:
            coef = np.polyfit(x, row, 2)
            resid = row - np.polyval(coef, x)
            ss += float(resid @ resid)
            dof += len(row) - 3
        best = [float(lams[int(np.argmin(np.polyval(np.polyfit(x, row, 2), x)))]) for row in table]
        out[width] = {"seed_sd": between, "within_sd": math.sqrt(ss / max(dof, 1)), "best_lambda": best}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--lambdas", type=int, default=8, help="log-spaced lambdas from --lo to --hi")
    parser.add_argument("--lo", type=float, default=1e-4)
    parser.add_argument("--hi", type=float, default=1e-2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--score-window", type=int, default=5)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    data = load_dataset("digits", n_train=DEFAULT_N_TRAIN, seed=0)
    space = SearchSpace()
    trainer = make_trainer("keras", lr_schedule=args.schedule)
    lambdas = np.geomspace(args.lo, args.hi, args.lambdas)
    rows = []
    started = time.perf_counter()
    for width in args.widths:
        n = count_convnet_params(width, space.depth, space.kernel_size, data.input_shape, data.n_classes)
        for s in range(args.seeds):
            seed = args.first_seed + 1000 * width + s
            for lam in lambdas:
                params = TrialParams(width=width, depth=space.depth, kernel_size=space.kernel_size, lambda0=float(lam),
                                     alpha=0.0, penalty="l2", l1_ratio=0.5, learning_rate=DEFAULT_LEARNING_RATE,
                                     optimizer="adam", penalize_bias=False)
                history: list[float] = []
                window = args.score_window
                request = TrainRequest(params, n, float(lam), data, epochs=args.epochs, batch_size=32, seed=seed,
                                       on_epoch=lambda e, logs: history.append(logs["val_ce"]) if "val_ce" in logs else None,
                                       evaluate=lambda e: e >= args.epochs - window)
                trainer.train(request)
                tail = history[-window:]
                row = {"width": width, "n_params": n, "seed": seed, "lambda": float(lam), "tail": tail}
                row |= {name: f(tail) for name, f in SCORES.items()}
                rows.append(row)
        print(f"width {width}: {time.perf_counter() - started:.0f} s", flush=True)
    summary = {score: block_residuals(rows, score) for score in SCORES}
    for score, per in summary.items():
        print(score)
        for width, s in per.items():
            best = ", ".join(f"{b:.1e}" for b in s["best_lambda"])
            print(f"  width {width:3d}: seed SD {s['seed_sd']:.4f}  within-seed SD {s['within_sd']:.4f}  best {best}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "summary": summary,
                       "seconds": time.perf_counter() - started}, f, indent=1)


if __name__ == "__main__":
    main()
