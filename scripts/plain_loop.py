"""The baseline of the overhead benchmark: a minimal hand-written Optuna + Keras search.

What a user would write without autolambda: the same data, the same model family and the
same lambda rule, `model.fit` on NumPy arrays, no tracking, no pruning.

    python scripts/plain_loop.py --trials 20 --epochs 10
"""

from __future__ import annotations

import argparse
import math

import optuna

from autolambda.training.data import load_dataset
from autolambda.training.model import Penalty, build_convnet
from autolambda.core.scaling import count_convnet_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import keras

    data = load_dataset("digits", n_train=300, seed=args.seed)
    widths = (4, 8, 16, 32, 64, 128)
    counts = [count_convnet_params(w, 2, (3, 3), data.input_shape, data.n_classes) for w in widths]
    n_ref = math.sqrt(min(counts) * max(counts))

    def objective(trial: optuna.Trial) -> float:
        keras.utils.clear_session()
        width = trial.suggest_categorical("width", list(widths))
        lambda0 = trial.suggest_float("lambda0", 1e-7, 1e-1, log=True)
        alpha = trial.suggest_float("alpha", -1.0, 1.5)
        n = count_convnet_params(width, 2, (3, 3), data.input_shape, data.n_classes)
        penalty = Penalty("l2", lambda0 * (n / n_ref) ** -alpha)
        model = build_convnet(width, data.input_shape, data.n_classes, penalty=penalty)
        ce = keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="ce")
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=[ce])
        history = model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                            epochs=args.epochs, batch_size=32, verbose=0)
        return sum(history.history["val_ce"][-5:]) / len(history.history["val_ce"][-5:])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.optimize(objective, n_trials=args.trials)


if __name__ == "__main__":
    main()
