"""Trainers: turn one trial's parameters into a per-epoch history.

``KerasTrainer`` builds and fits the real model; ``SurrogateTrainer``
(``autolambda.training.surrogate``) trains nothing and has a planted answer. Both take a
``TrainRequest`` (``autolambda.training.request``); ``make_trainer`` picks one by name.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from autolambda.core.choices import IN_LOSS_PENALTIES, LR_SCHEDULES, TRAINERS
from autolambda.core.space import TrialParams
from autolambda.training.data import Dataset
from autolambda.training.model import Penalty, build_convnet
from autolambda.training.request import Trainer, TrainRequest
from autolambda.training.surrogate import SurrogateTrainer
from autolambda.errors import ConfigError


class KerasTrainer:
    """Train ``build_convnet`` with Keras layers, losses and optimizers; penalty-free
    metrics ``train_ce`` / ``val_ce`` and accuracies, plus ``reg_term``.

    Each epoch is one compiled TensorFlow call (see ``autolambda.training.compiled``). With
    ``reuse_models`` (the default) the in-loss penalties are variable: one program is kept
    per shape (width, depth, kernel, penalty kind, optimizer, batch size, input) and reset
    for each trial: fresh seeded weights, zeroed optimizer state, the trial's penalty
    strength. Without it, or for ``weight_decay`` (a constant in Keras' optimizer), the
    penalty is fixed and each trial builds its own. A trial's training depends only on its
    parameters and ``seed``, not on the trials the process ran before it.
    """

    def __init__(self, reuse_models: bool = True, lr_schedule: str = "constant") -> None:
        self.reuse_models = reuse_models
        self.lr_schedule = lr_schedule

    def train(self, request: TrainRequest) -> None:
        """Train ``request.params`` and call ``request.on_epoch`` after each epoch."""
        import keras

        from autolambda.training.compiled import PROGRAMS

        params, data, batch_size = request.params, request.data, request.batch_size
        # No keras.utils.set_random_seed here: seeding TensorFlow clears its kernel cache,
        # which costs ~0.15 s per trial to re-instantiate the compiled epoch. Nothing in
        # training draws from global generators: initial weights come from seeded
        # initializers (EpochProgram.reset), the batch order from a seeded NumPy generator.
        penalty = Penalty.of(params, request.strength, variable=self.reuse_models and params.penalty in IN_LOSS_PENALTIES)
        if penalty.variable:
            key = (params.width, params.depth, tuple(params.kernel_size), params.penalty, params.penalize_bias,
                   params.optimizer, batch_size, data.input_shape, data.n_classes)
            program = PROGRAMS.get(key, lambda: build_program(params, data, request.n_params, batch_size, penalty))
        else:
            keras.utils.clear_session(free_memory=False)
            program = build_program(params, data, request.n_params, batch_size, penalty)
        program.reset(seed=request.seed, learning_rate=params.learning_rate, penalty=penalty)
        program.fit(data, epochs=request.epochs, seed=request.seed, on_epoch=request.on_epoch, evaluate=request.evaluate,
                    learning_rate=learning_rates(self.lr_schedule, params.learning_rate, request.epochs))


def build_program(params: TrialParams, data: Dataset, n_params: int, batch_size: int, penalty: Penalty) -> Any:
    """A new ``EpochProgram`` for ``params``, its model and optimizer made with ``penalty``;
    checks the model's parameter count against ``n_params``."""
    from autolambda.training.compiled import EpochProgram

    model = build_convnet(params.width, data.input_shape, data.n_classes, depth=params.depth,
                          kernel_size=params.kernel_size, penalty=penalty)
    built = sum(math.prod(w.shape) for w in model.trainable_weights)
    if built != n_params:
        raise RuntimeError(f"parameter count mismatch: model has {built}, formula says {n_params}.")
    return EpochProgram(model, make_optimizer(params, penalty), batch_size, penalty)


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


def set_threads(intra_op: int, inter_op: int = 1) -> bool:
    """Size TensorFlow's thread pools (before its first op): threads per op (``intra_op``)
    and ops run at once (``inter_op``). False when TensorFlow had already started and keeps
    the pools it has."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # already initialised: keep what it has
        return False
    return True


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


#: Multiply-adds of a training step's forward pass (one batch through the space's costliest
#: net) under which each TensorFlow op runs on one thread and the cores run independent ops
#: side by side. Ops this small lose more to splitting than they gain. On 2 cores
#: (scripts/threads_bench.py, BENCHMARKS.md "Threads"), digits' nets trained 80 epochs in
#: 0.68-0.86x the time of TensorFlow's own pools (widths 2-64; the widest, 40 M a step of
#: 32, 0.86x; all six 0.77x); on 32x32x3 images width 16 (53 M) took 1.15x, widths 64 and
#: 128 (0.66 G, 2.5 G) 1.27x and 1.36x. The crossover lies between 40 M and 53 M.
SMALL_STEP_MACS = 45_000_000
#: Measured on 2 cores only: on more, TensorFlow's pools stay until a measurement says otherwise.
SMALL_NET_MAX_CORES = 4


def cpu_threads(step_macs: int, cores: int | None = None, env: dict[str, str] | None = None) -> tuple[int, int] | None:
    """TensorFlow's (intra-op, inter-op) threads for a study on the CPU whose costliest
    training step has ``step_macs`` multiply-adds: one thread per op and ``cores`` ops at
    once for small nets (``SMALL_STEP_MACS``) on up to ``SMALL_NET_MAX_CORES`` cores;
    ``None`` (TensorFlow's own pools) for larger nets, more cores, or when the user set
    ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``."""
    import os

    env = os.environ if env is None else env
    if any(env.get(name) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")):
        return None
    cores = usable_cores() if cores is None else max(1, cores)
    if step_macs > SMALL_STEP_MACS or cores > SMALL_NET_MAX_CORES:
        return None
    return 1, cores


def make_optimizer(params: TrialParams, penalty: Penalty) -> Any:
    """Keras optimizer for ``params``; carries ``penalty.decay`` as decoupled weight decay
    (a ``weight_decay`` penalty; biases excluded unless penalised)."""
    import keras

    decay = penalty.decay
    lr = params.learning_rate
    if params.optimizer == "adam":
        opt = keras.optimizers.Adam(lr, weight_decay=decay)
    elif params.optimizer == "adamw":
        # AdamW without the weight_decay penalty kind would decay by Keras' default 0.004:
        # that is a second, unscaled penalty, so it is 0 unless the penalty kind asks for it.
        opt = keras.optimizers.AdamW(lr, weight_decay=decay or 0.0)
    else:
        opt = keras.optimizers.SGD(lr, momentum=0.9, weight_decay=decay)
    if decay and not penalty.penalize_bias:
        opt.exclude_from_weight_decay(var_names=["bias"])
    return opt


def make_trainer(
    name: str, *, planted_alpha: float = 0.0, epoch_seconds: float = 0.0, reuse_models: bool = True,
    seed_noise: float | None = None, dip: float | None = None, lr_schedule: str = "constant",
    planted_wall_alpha: float | None = None,
) -> Trainer:
    """Trainer by name: ``keras`` or ``surrogate`` (which has no learning rate)."""
    if name == "keras":
        return KerasTrainer(reuse_models=reuse_models, lr_schedule=lr_schedule)
    if name == "surrogate":
        extra = {k: v for k, v in (("seed_noise", seed_noise), ("dip", dip)) if v is not None}
        return SurrogateTrainer(planted_alpha=planted_alpha, planted_wall_alpha=planted_wall_alpha,
                                epoch_seconds=epoch_seconds, **extra)
    raise ConfigError(f"trainer must be one of {', '.join(TRAINERS)} but got {name!r}.")
