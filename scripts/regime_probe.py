"""Probe the training regime: for each width, the penalty-free validation loss over a
grid of lambda (alpha = 0, so lambda_eff = lambda0), several seeds.

Used to choose the defaults: at every width the dip (loss at lambda ~ 0 minus the loss
at the best lambda of the grid) should be at least twice the seed-to-seed noise (SD of
the loss between seeds at one setting, pooled over the grid). Each trained net is scored
on two validation sets at once (paired, so the comparison is not itself noise): the
30 % split alone, and the split plus the training images ``n_train`` leaves unused.

    python scripts/regime_probe.py --epochs 120 --n-train 300 --seeds 3 --json probe.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from autolambda.training.data import load_dataset
from autolambda.training.trainers import learning_rates
from autolambda.core.scaling import count_convnet_params
from autolambda.core.space import SearchSpace, TrialParams


def _trial(width: int, lam: float, lr: float, space: SearchSpace) -> TrialParams:
    return TrialParams(width=width, depth=space.depth, kernel_size=space.kernel_size, lambda0=lam, alpha=0.0,
                       penalty="l2", l1_ratio=0.5, learning_rate=lr, optimizer="adam", penalize_bias=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[1e-7, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--score-window", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant", help="learning rate over the epochs")
    parser.add_argument("--json", default=None, help="write every trial's scores here")
    args = parser.parse_args()

    import keras

    from autolambda.training.compiled import PROGRAMS
    from autolambda.training.model import Penalty
    from autolambda.training.trainers import build_program

    split = load_dataset("digits", n_train=args.n_train, spare_to_val=False)
    pooled = load_dataset("digits", n_train=args.n_train, spare_to_val=True)
    # The pooled set is the split followed by the spare images (see load_dataset).
    n_split = len(split.y_val)
    assert np.array_equal(pooled.x_val[:n_split], split.x_val)
    x_all, y_all = pooled.x_val, pooled.y_val
    space = SearchSpace()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    rows = []
    for width in args.widths:
        n_params = count_convnet_params(width, space.depth, space.kernel_size, split.input_shape, split.n_classes)
        for lam in args.lambdas:
            for seed in range(args.seeds):
                params = _trial(width, lam, args.learning_rate, space)
                penalty = Penalty.of(params, lam, variable=True)
                key = ("probe", width, args.batch_size)
                program = PROGRAMS.get(key, lambda: build_program(params, split, n_params, args.batch_size, penalty))
                program.reset(seed=seed, learning_rate=args.learning_rate, penalty=penalty)
                tails = {"split": [], "pooled": []}

                def on_epoch(epoch: int, logs: dict, program=program, tails=tails) -> None:
                    if epoch >= args.epochs - args.score_window:
                        per_image = np.asarray(loss(y_all, program.model(x_all, training=False)))
                        tails["split"].append(float(per_image[:n_split].mean()))
                        tails["pooled"].append(float(per_image.mean()))

                started = time.perf_counter()
                # The program's own validation pass is skipped: the scores above are the probe's.
                program.fit(split, epochs=args.epochs, seed=seed, on_epoch=on_epoch, evaluate=lambda epoch: False,
                            learning_rate=learning_rates(args.schedule, args.learning_rate, args.epochs))
                rows.append({"width": width, "n_params": n_params, "lambda": lam, "seed": seed,
                             "split": statistics.mean(tails["split"]), "pooled": statistics.mean(tails["pooled"]),
                             "seconds": time.perf_counter() - started})
            cell = [r for r in rows if r["width"] == width and r["lambda"] == lam]
            print(f"width {width:4d} lambda {lam:8.1e}: split {statistics.mean(r['split'] for r in cell):.4f} "
                  f"pooled {statistics.mean(r['pooled'] for r in cell):.4f}  "
                  f"{statistics.mean(r['seconds'] for r in cell):.2f} s", flush=True)
    print(f"\nn_train {args.n_train}, epochs {args.epochs}, Adam {args.learning_rate:g} ({args.schedule}), batch {args.batch_size}, "
          f"{args.seeds} seeds; validation split {n_split} images, pooled {len(y_all)}")
    print("| width | N | best lambda | dip (split) | SD (split) | dip (pooled) | SD (pooled) | s/trial |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for width in args.widths:
        mine = [r for r in rows if r["width"] == width]
        out = [str(width), str(mine[0]["n_params"])]
        for which in ("split", "pooled"):
            means = {lam: statistics.mean(r[which] for r in mine if r["lambda"] == lam) for lam in args.lambdas}
            sds = [statistics.stdev([r[which] for r in mine if r["lambda"] == lam]) for lam in args.lambdas
                   if means[lam] < 1.0] if args.seeds > 1 else [float("nan")]
            best = min(means, key=means.get)
            if which == "split":
                out.append(f"{best:g}")
            out += [f"{means[args.lambdas[0]] - means[best]:.3f}", f"{float(np.sqrt(np.mean(np.square(sds)))):.3f}"]
        out.append(f"{statistics.mean(r['seconds'] for r in mine):.2f}")
        print("| " + " | ".join(out) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
