"""Trainers: turn one trial's parameters into a per-epoch history.

``KerasTrainer`` builds and fits the real model. ``SurrogateTrainer`` trains nothing: its
validation loss is a known function of ``lambda_eff`` and ``N`` with a planted optimum
``lambda_star(N) = c * N ** -planted_alpha``, so the analysis can be checked against a
known answer in milliseconds, through the same objective, pruning and tracking paths.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from autolambda.training.data import Dataset
from autolambda.core.space import TrialParams

OnEpoch = Callable[[int, dict[str, float]], None]
TRAINERS = ("keras", "surrogate")


class Trainer(Protocol):
    """Anything that trains ``params`` for ``epochs`` and calls ``on_epoch`` after each."""

    def train(
        self,
        params: TrialParams,
        *,
        n_params: int,
        strength: float,
        data: Dataset,
        epochs: int,
        batch_size: int,
        seed: int,
        on_epoch: OnEpoch,
        evaluate: Callable[[int], bool] | None = None,
    ) -> None: ...


class KerasTrainer:
    """Train ``build_convnet`` with Keras layers, losses and optimizers; penalty-free
    metrics ``train_ce`` / ``val_ce`` and accuracies, plus ``reg_term``.

    Each epoch is one compiled TensorFlow call (see ``autolambda.training.compiled``). With
    ``reuse_models`` (the default) one program is kept per shape (width, depth, kernel,
    penalty kind, optimizer, batch size, input) and reset for each trial: fresh seeded
    weights, zeroed optimizer state, the trial's penalty strength. Without it, or for
    ``weight_decay`` (a constant in Keras' optimizer), each trial builds its own.
    A trial's training depends only on its parameters and ``seed``, not on the trials
    the process ran before it.
    """

    def __init__(self, reuse_models: bool = True, lr_schedule: str = "constant") -> None:
        self.reuse_models = reuse_models
        self.lr_schedule = lr_schedule

    def train(
        self,
        params: TrialParams,
        *,
        n_params: int,
        strength: float,
        data: Dataset,
        epochs: int,
        batch_size: int,
        seed: int,
        on_epoch: OnEpoch,
        evaluate: Callable[[int], bool] | None = None,
    ) -> None:
        import keras

        from autolambda.training.compiled import IN_LOSS, PROGRAMS

        # No keras.utils.set_random_seed here: seeding TensorFlow clears its kernel cache,
        # which costs ~0.15 s per trial to re-instantiate the compiled epoch. Nothing in
        # training draws from global generators: initial weights come from seeded
        # initializers (EpochProgram.reset), the batch order from a seeded NumPy generator.
        if self.reuse_models and params.penalty in IN_LOSS:
            key = (params.width, params.depth, tuple(params.kernel_size), params.penalty, params.penalize_bias,
                   params.optimizer, batch_size, data.input_shape, data.n_classes)
            program = PROGRAMS.get(key, lambda: _program(params, data, n_params, batch_size, variable_penalty=True))
        else:
            keras.utils.clear_session(free_memory=False)
            program = _program(params, data, n_params, batch_size, strength=strength)
        program.reset(seed=seed, learning_rate=params.learning_rate, strength=strength, l1_ratio=params.l1_ratio)
        program.fit(data, epochs=epochs, seed=seed, on_epoch=on_epoch, evaluate=evaluate,
                    learning_rate=learning_rates(self.lr_schedule, params.learning_rate, epochs))


def _program(
    params: TrialParams, data: Dataset, n_params: int, batch_size: int, *, strength: float = 0.0,
    variable_penalty: bool = False,
) -> Any:
    """A new ``EpochProgram`` for ``params``: the penalty from variables (set per trial)
    or fixed at ``strength`` (weight decay: in the optimizer)."""
    from autolambda.training.compiled import EpochProgram, VariablePenalty
    from autolambda.training.model import build_convnet

    penalty = VariablePenalty(params.penalty, strength, params.l1_ratio) if variable_penalty else None
    in_loss = params.penalty != "weight_decay"
    model = build_convnet(
        params.width,
        data.input_shape,
        data.n_classes,
        depth=params.depth,
        kernel_size=params.kernel_size,
        penalty=params.penalty,
        strength=strength if in_loss else 0.0,
        l1_ratio=params.l1_ratio,
        penalize_bias=params.penalize_bias,
        regularizer=penalty,
    )
    built = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    if built != n_params:
        raise RuntimeError(f"parameter count mismatch: model has {built}, formula says {n_params}.")
    return EpochProgram(model, make_optimizer(params, strength), batch_size, penalty)


LR_SCHEDULES = ("cosine", "constant")


def learning_rates(schedule: str, base: float, epochs: int) -> Callable[[int], float] | None:
    """The step size of each epoch: ``constant``, or ``cosine`` (from ``base`` down to
    near 0 at the last epoch, so the last epochs, which the score averages, are calm:
    under a constant step Adam's late spikes on nets that fit their data move a score
    by up to 0.1)."""
    if schedule == "constant":
        return None
    if schedule == "cosine":
        return lambda epoch: base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"schedule must be one of {', '.join(LR_SCHEDULES)} but got {schedule!r}.")


def import_tensorflow_quietly() -> list[str]:
    """Import TensorFlow with its C++ start-up lines silenced; return the devices it sees.

    TensorFlow prints oneDNN and CUDA notices to the process's stderr before its logging
    is initialised, where TF_CPP_MIN_LOG_LEVEL does not reach; they would scroll the
    progress bar away. They are captured and shown only if the import fails.
    """
    import os
    import sys
    import tempfile

    if "tensorflow" in sys.modules:
        import tensorflow as tf

        return [d.device_type for d in tf.config.list_physical_devices()]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            devices = [d.device_type for d in tf.config.list_physical_devices()]
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return devices


def set_threads(intra_op: int) -> None:
    """Size TensorFlow's thread pools (before its first op): one worker's share of cores."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised: keep what it has
        pass


def make_optimizer(params: TrialParams, strength: float) -> Any:
    """Keras optimizer for ``params``; carries ``strength`` as decoupled weight decay
    when ``params.penalty == "weight_decay"`` (biases excluded unless penalised)."""
    import keras

    decay = strength if params.penalty == "weight_decay" else None
    lr = params.learning_rate
    if params.optimizer == "adam":
        opt = keras.optimizers.Adam(lr, weight_decay=decay)
    elif params.optimizer == "adamw":
        # AdamW without the weight_decay penalty kind would decay by Keras' default 0.004:
        # that is a second, unscaled penalty, so it is 0 unless the penalty kind asks for it.
        opt = keras.optimizers.AdamW(lr, weight_decay=decay or 0.0)
    else:
        opt = keras.optimizers.SGD(lr, momentum=0.9, weight_decay=decay)
    if decay and not params.penalize_bias:
        opt.exclude_from_weight_decay(var_names=["bias"])
    return opt


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass(frozen=True)
class SurrogateTrainer:
    """A stand-in trainer with a planted answer and realistic noise; no TensorFlow.

    The loss curve has the shape measured on real digits (BENCHMARKS.md, "Calibration of the intervals"):
    flat for small lambda, a shallow dip around ``lambda_star(N) = c * N ** -planted_alpha``,
    then a wall where the penalty starts to hurt: a soft rise towards ``wall_top``, cut
    short by a collapse to the loss of a net that predicts uniformly (``ln(n_classes)``).
    With ``u = ln(lambda_eff / lambda_star(N))``::

        final = base(N) - dip * exp(-u**2 / (2 * dip_width**2))
                + (wall_top - base(N)) * sigmoid(wall_steepness * (u - wall_offset))
        final = ln(C)  where u > collapse_offset (exactly, without seed noise)

    so the wall's midpoint sits ``wall_offset`` nats (a factor 20 by default) above the
    optimum and scales with N like it. On digits (default study, 3 seeds) the loss rises
    from ~0.2 to ~0.55 over the two nats above lambda ~0.01 and then jumps to ln 10; the
    joint fit puts the rise's top at ~0.78 and its steepness at 2.1-2.6 per nat. A wall
    that rose smoothly all the way to ln 10 (as this surrogate's once did) placed its
    exponent ~10x more precisely than digits allows, so its calibration said nothing about
    digits. Each trial adds one seed offset drawn from N(0,
    ``seed_noise``) that holds for all its epochs, as another initialisation and data
    order do on real data: it is invisible in the spread of the trial's last epochs.
    Each epoch approaches the final loss exponentially, plus N(0, ``noise``) epoch noise.
    ``lambda_eff > diverge_above`` gives NaN after a few epochs.

    The defaults match the default digits study; ``seed_noise=0, dip=0.15, noise=0.005``
    is a clean surrogate (signal-to-noise ~30, like the one this replaced), ``dip=0`` a flat one (no optimum).

    Args:
        planted_alpha: The exponent A in ``lambda_star(N) = c * N ** -A``.
        lambda_star_ref: ``lambda_star`` at ``n_star`` parameters (so ``c = lambda_star_ref * n_star ** A``).
        noise: Standard deviation of the per-epoch noise on the loss.
        seed_noise: Standard deviation of the per-trial (seed-to-seed) offset of wide nets.
        dip: How far the loss at ``lambda_star`` lies below the flat floor.
        narrow_noise: The narrowest default net's (``narrow_n`` parameters) extra
            seed-to-seed SD, as a multiple of ``seed_noise``, added in quadrature (2.25: its
            SD is ~2.5x the wide nets'); the excess falls off as ``N ** -1.5`` (0: the same
            noise at every width). A collapsed net gets no offset.
    """

    planted_alpha: float = 0.0
    lambda_star_ref: float = 2e-3
    n_star: float = 20_000.0
    noise: float = 0.003
    seed_noise: float = 0.02
    dip: float = 0.03
    narrow_noise: float = 2.25
    narrow_n: float = 746.0
    dip_width: float = 1.0  # nats of lambda: the dip spans about a decade, as on digits
    # The wall's midpoint 20x above the optimum and steep, as on digits (the loss is flat
    # up to ~1e-2, has risen ~0.15-0.25 by 0.02-0.04 and collapses by ~0.07).
    wall_offset: float = math.log(20.0)
    wall_steepness: float = 2.5
    wall_top: float = 0.8
    collapse_offset: float = math.log(20.0) + 0.8  # a jump: a net either collapses or not
    diverge_above: float = 10.0
    # Wall time each epoch takes (sleeping), to stand in for training in tests and benchmarks.
    epoch_seconds: float = 0.0

    def seed_sd(self, n_params: float) -> float:
        """SD of a trial's seed offset at ``n_params`` parameters."""
        excess = self.narrow_noise * (n_params / self.narrow_n) ** -1.5
        return self.seed_noise * math.sqrt(1.0 + excess * excess)

    def collapsed(self, n_params: float, strength: float) -> bool:
        """Whether the penalty has collapsed the net (it then predicts uniformly)."""
        return math.log(max(strength, 1e-300) / self.lambda_star(n_params)) > self.collapse_offset

    def lambda_star(self, n_params: float) -> float:
        """The planted best penalty for a model of ``n_params`` parameters."""
        return self.lambda_star_ref * (n_params / self.n_star) ** (-self.planted_alpha)

    def final_loss(self, n_params: float, strength: float, n_classes: int = 10) -> float:
        """Noise-free loss at the end of a long run."""
        base = 0.1 + 0.4 * (n_params / 1_000.0) ** -0.3
        u = math.log(max(strength, 1e-300) / self.lambda_star(n_params))
        dip = self.dip * math.exp(-(u**2) / (2 * self.dip_width**2))
        if self.collapsed(n_params, strength):
            return math.log(n_classes)  # a collapsed net predicts every class alike
        wall = (self.wall_top - base) * _sigmoid(self.wall_steepness * (u - self.wall_offset))
        return base - dip + wall

    def wall_lambda(self, n_params: float, cost: float, n_classes: int = 10) -> float:
        """The planted wall: the lambda above the optimum at which the noise-free loss
        first exceeds its floor by ``cost`` (a share of the floor), as ``analyze`` defines it."""
        floor = self.final_loss(n_params, 1e-300, n_classes)
        lo = math.log(self.lambda_star(n_params))
        hi = lo + 30.0
        for _ in range(60):  # above the optimum the loss only rises
            mid = 0.5 * (lo + hi)
            if self.final_loss(n_params, math.exp(mid), n_classes) < floor * (1 + cost):
                lo = mid
            else:
                hi = mid
        return math.exp(lo)

    def wall_alpha(self, sizes: Sequence[float], cost: float, n_classes: int = 10) -> float:
        """Minus the log-log slope of ``wall_lambda`` over ``sizes``: the wall's true alpha.

        It differs a little from ``planted_alpha``: the cost is a share of each size's
        floor, and the floors differ."""
        x = np.log(np.asarray(sizes, dtype=float))
        y = np.log([self.wall_lambda(n, cost, n_classes) for n in sizes])
        return float(-np.polyfit(x, y, 1)[0])

    def train(
        self,
        params: TrialParams,
        *,
        n_params: int,
        strength: float,
        data: Dataset,
        epochs: int,
        batch_size: int,
        seed: int,
        on_epoch: OnEpoch,
        evaluate: Callable[[int], bool] | None = None,
    ) -> None:
        rng = np.random.default_rng(seed)
        final = self.final_loss(n_params, strength, data.n_classes)
        offset = rng.normal(0.0, self.seed_sd(n_params))
        if not self.collapsed(n_params, strength):  # a collapsed net's loss is exactly ln(C), as on digits
            final += offset
        start = math.log(data.n_classes)
        for epoch in range(epochs):
            if self.epoch_seconds > 0:
                time.sleep(self.epoch_seconds)
            decay = math.exp(-(epoch + 1) / 3.0)
            val = final + (start - final) * decay + rng.normal(0.0, self.noise)
            train_ce = max(val - 0.05, 1e-3)
            reg = strength * n_params * 0.01
            if strength > self.diverge_above and epoch >= 2:
                val = train_ce = float("nan")
            logs = {"train_loss": train_ce + reg, "train_ce": train_ce, "train_accuracy": float(math.exp(-train_ce)),
                    "reg_term": reg}
            if evaluate is None or evaluate(epoch):
                logs |= {"val_loss": val + reg, "val_ce": val, "val_accuracy": float(math.exp(-val))}
            on_epoch(epoch, logs)


def make_trainer(
    name: str, *, planted_alpha: float = 0.0, epoch_seconds: float = 0.0, reuse_models: bool = True,
    seed_noise: float | None = None, dip: float | None = None, lr_schedule: str = "constant",
) -> Trainer:
    """Trainer by name: ``keras`` or ``surrogate`` (which has no learning rate)."""
    from autolambda.errors import ConfigError

    if name == "keras":
        return KerasTrainer(reuse_models=reuse_models, lr_schedule=lr_schedule)
    if name == "surrogate":
        extra = {k: v for k, v in (("seed_noise", seed_noise), ("dip", dip)) if v is not None}
        return SurrogateTrainer(planted_alpha=planted_alpha, epoch_seconds=epoch_seconds, **extra)
    raise ConfigError(f"trainer must be one of {', '.join(TRAINERS)} but got {name!r}.")
