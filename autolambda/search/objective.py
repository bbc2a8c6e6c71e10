"""``LambdaScalingObjective``: the importable, picklable Optuna objective.

Per trial: suggest parameters, count N, compute ``lambda_eff``, train, and return the
**penalty-free** validation cross-entropy averaged over the last epochs of the budget.
Keras' ``val_loss`` includes the penalty and is never used for scoring; picking the best
epoch is early stopping, which hides lambda's effect, so it is an option, not the default.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import KW_ONLY, dataclass
from typing import Any

import optuna

from autolambda.core.choices import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_EVAL_EVERY,
    DEFAULT_N_TRAIN,
    DEFAULT_SCORE_WINDOW,
    LR_SCHEDULES,
    SCORES,
    TRAINERS,
)
from autolambda.core.scaling import count_convnet_params, lambda_eff
from autolambda.core.space import SearchSpace, suggest_params
from autolambda.core.trials import (
    BLOCK_KEY, DIVERGED_KEY, EPOCHS_RUN_KEY, ERROR_KEY, FINISHED, HISTORY_KEY, INTERRUPTED_KEY,
    LAMBDA_EFF_KEY, N_PARAMS_KEY, N_REF_KEY, REPLICATE_OF_KEY, SEED_KEY, TRAINER_KEY, TRAIN_SECONDS_KEY,
    TRIAL_PARAMS_KEY, WIDTH_KEY, WORKER_KEY,
)
from autolambda.errors import ConfigError, TrialDiverged
from autolambda.search.monitor import TrialMonitor
from autolambda.training.data import Dataset, load_dataset
from autolambda.training.request import TrainRequest
from autolambda.training.trainers import make_trainer

OBJECTIVE_VALUES = ("val_ce", "val_accuracy", "n_params", "train_seconds")


@dataclass(eq=False)  # an objective equals only itself; the dataclass makes __init__ and repr
class LambdaScalingObjective:
    """Optuna objective searching ``lambda0``, ``alpha`` and width of a Conv2D net.

    Args:
        dataset: Data set name or path (see ``autolambda.load_dataset``).
        space: The search space; ``SearchSpace()`` by default.
        epochs: Training budget per trial.
        batch_size: Mini-batch size.
        seed: Base seed; trial ``k`` trains with ``seed + k`` (or with its seed block's
            seed, see ``seed_blocks``); also seeds the data split unless ``data_seed`` is given.
        seed_blocks: Seeds per width (common random numbers). ``0``: every trial its own
            seed (``seed + k``). ``B > 0``: each width has ``B`` fixed seeds (``block_seed``),
            and a trial trains with the one its width has used least (a repeat of an
            earlier trial, ``replicate_of``, with another block than its source). On digits
            a seed's loss against lambda is smooth and seeds differ mostly by a constant
            offset, which the analysis then removes with a floor per (width, block). The
            trial's ``seed`` and ``block`` are stored on it; the seeds depend only on
            ``seed``, the width and the block, so a resumed study keeps its blocks.
        data_seed: Seed of the data split and subsets (which images train and which score);
            ``None``: ``seed``. ``autolambda tune`` fixes it at 0, so ``--seed`` repeats a
            study on the same data.
        n_train: Training images kept (a seeded, stratified subset); ``None`` keeps all.
        n_val: Validation images kept; ``None`` keeps all.
        pool_val: The training images ``n_train`` leaves out join the validation set
            (when the data set has no validation split of its own; see ``load_dataset``).
        score: ``"final"`` (mean of the last ``score_window`` epochs, the default),
            ``"median"`` (their median: a one-epoch Adam spike does not move it) or
            ``"best"`` (the best epoch: early stopping, which hides lambda's effect).
        score_window: Epochs averaged by ``"final"`` scoring (one epoch is noisy under Adam).
        eval_every: Run the validation pass (and report to the pruner) every this many
            epochs, and at every epoch the score reads (the last ``score_window``; all of
            them with ``score="best"``); 1 evaluates every epoch.
        lr_schedule: ``"constant"`` or ``"cosine"`` (the step size decays to ~0 over the
            budget, so the scored last epochs are calm).
        trainer: ``"keras"`` or ``"surrogate"`` (the stand-in with a planted answer).
        planted_alpha: The surrogate's planted exponent.
        planted_wall_alpha: The exponent of the surrogate's wall (``None``: ``planted_alpha``).
        surrogate_epoch_seconds: Wall time of one surrogate epoch (tests, benchmarks).
        surrogate_seed_noise: The surrogate's seed-to-seed SD of the loss (``None``: its
            default, measured on digits; 0 for the clean surrogate).
        surrogate_dip: How far the surrogate's optimum lies below its flat floor
            (``None``: its default; 0 for a flat curve with no optimum).
        n_ref: Reference parameter count; by default the geometric mean of the smallest
            and largest model in ``space``. Stored on the study so every trial shares it.
        divergence_threshold: Training cross-entropy above which a trial counts as diverged.
        objectives: What ``__call__`` returns: one name gives a float, several a tuple,
            for multi-objective studies (``val_ce``, ``val_accuracy``, ``n_params``,
            ``train_seconds``).
        reuse_models: Keep one compiled Keras model per shape in the process and reset it
            per trial (fresh seeded weights, optimizer state, penalty) instead of building
            and tracing a new one: about 0.8 s saved per trial on 2 cores.

    Example (the surrogate trainer, so it runs in a blink; the default ``trainer="keras"``
    trains the real nets):
        >>> import optuna
        >>> study = optuna.create_study(pruner=optuna.pruners.MedianPruner())
        >>> study.optimize(LambdaScalingObjective(epochs=3, trainer="surrogate"), n_trials=5)
        >>> sorted(study.trials[0].user_attrs)[:4]
        ['block', 'epochs_run', 'history', 'lambda_eff']
    """

    dataset: str = "digits"
    space: SearchSpace | None = None
    _: KW_ONLY
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0
    seed_blocks: int = 0
    data_seed: int | None = None
    n_train: int | None = DEFAULT_N_TRAIN
    n_val: int | None = None
    pool_val: bool = True
    score: str = "final"
    score_window: int = DEFAULT_SCORE_WINDOW
    eval_every: int = DEFAULT_EVAL_EVERY
    lr_schedule: str = "constant"
    trainer: str = "keras"
    planted_alpha: float = 0.0
    planted_wall_alpha: float | None = None
    surrogate_epoch_seconds: float = 0.0
    surrogate_seed_noise: float | None = None
    surrogate_dip: float | None = None
    n_ref: float | None = None
    divergence_threshold: float | None = 1e3
    objectives: tuple[str, ...] | str = ("val_ce",)
    reuse_models: bool = True

    def __post_init__(self) -> None:
        self.space = self.space if self.space is not None else SearchSpace()
        self.pool_val = bool(self.pool_val)
        self.planted_alpha = float(self.planted_alpha)
        self.surrogate_epoch_seconds = float(self.surrogate_epoch_seconds)
        self.objectives = (self.objectives,) if isinstance(self.objectives, str) else tuple(self.objectives)
        self.reuse_models = bool(self.reuse_models)
        self._check()

    def _check(self) -> None:
        """Raise ``ConfigError`` for a setting out of its range."""
        for name in ("epochs", "batch_size", "score_window", "eval_every"):
            _positive_int(name, getattr(self, name))
        if not isinstance(self.seed_blocks, int) or isinstance(self.seed_blocks, bool) or self.seed_blocks < 0:
            raise ConfigError(f"seed_blocks must be an integer >= 0 but got {self.seed_blocks!r}.")
        for name, choices in (("lr_schedule", LR_SCHEDULES), ("score", SCORES), ("trainer", TRAINERS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)} but got {getattr(self, name)!r}.")
        n_ref = self.n_ref
        if n_ref is not None and not (isinstance(n_ref, (int, float)) and n_ref > 0):
            raise ConfigError(f"n_ref must be a positive number but got {n_ref!r}.")
        if not self.objectives or any(o not in OBJECTIVE_VALUES for o in self.objectives):
            raise ConfigError(f"objectives must be names from {', '.join(OBJECTIVE_VALUES)} but got {self.objectives!r}.")

    def load_data(self) -> Dataset:
        """The data set this objective trains on (cached per process)."""
        data_seed = self.seed if self.data_seed is None else self.data_seed
        return load_dataset(self.dataset, n_train=self.n_train, n_val=self.n_val, seed=data_seed, spare_to_val=self.pool_val)

    def resolve_n_ref(self, study: Any | None, data: Dataset | None = None) -> float:
        """The study's reference count: stored on the study on first use, then reused."""
        data = data or self.load_data()
        computed = float(self.n_ref or self.space.default_n_ref(data.input_shape, data.n_classes))
        if study is None:
            return computed
        stored = study.user_attrs.get(N_REF_KEY)
        if stored is None:
            study.set_user_attr(N_REF_KEY, computed)
            return computed
        if self.n_ref is not None and not math.isclose(float(stored), float(self.n_ref), rel_tol=1e-9):
            raise ConfigError(f"n_ref={self.n_ref!r} differs from the study's stored n_ref={stored!r}.")
        return float(stored)

    def __call__(self, trial: optuna.trial.BaseTrial) -> float | tuple[float, ...]:
        """Train one trial and return its penalty-free score (see class docstring)."""
        data = self.load_data()
        n_ref = self.resolve_n_ref(getattr(trial, "study", None), data)
        params = suggest_params(trial, self.space)
        n_params = count_convnet_params(params.width, params.depth, params.kernel_size, data.input_shape, data.n_classes)
        strength = lambda_eff(params.lambda0, params.alpha, n_params, n_ref)
        block, seed = self.trial_seed(trial, params.width)
        for key, value in (
            (SEED_KEY, seed),
            (BLOCK_KEY, block),
            (N_PARAMS_KEY, n_params),
            (LAMBDA_EFF_KEY, strength),
            (N_REF_KEY, n_ref),
            (WIDTH_KEY, params.width),
            (TRIAL_PARAMS_KEY, params.as_dict()),
            (TRAINER_KEY, self.trainer),
            (WORKER_KEY, worker_id()),
        ):
            trial.set_user_attr(key, value)
        monitor = TrialMonitor(
            trial, monitor="val_ce", divergence_threshold=self.divergence_threshold, evaluates=self.evaluates
        )
        started = time.perf_counter()
        try:
            self.train(trial, params, n_params, strength, data, monitor, seed=seed)
        finally:
            trial.set_user_attr(TRAIN_SECONDS_KEY, round(time.perf_counter() - started, 4))
            trial.set_user_attr(EPOCHS_RUN_KEY, monitor.epochs_run)
            trial.set_user_attr(HISTORY_KEY, monitor.history)
        values = {
            "val_ce": score_history(monitor.history["val_ce"], self.score, self.score_window),
            "val_accuracy": score_history(monitor.history["val_accuracy"], "final", self.score_window)
            if "val_accuracy" in monitor.history
            else float("nan"),
            "n_params": float(n_params),
            "train_seconds": time.perf_counter() - started,
        }
        out = tuple(values[name] for name in self.objectives)
        return out[0] if len(out) == 1 else out

    def trial_seed(self, trial: Any, width: int) -> tuple[int | None, int]:
        """The trial's seed block (``None`` without ``seed_blocks``) and seed.

        The block is the one of this width with the fewest trials so far (running ones
        included, so parallel workers spread too; failed ones not, they are retried); a
        repeat (user attribute ``replicate_of``) avoids its source's block.
        """
        number = getattr(trial, "number", 0) or 0
        if not self.seed_blocks:
            return None, self.seed + number
        study = getattr(trial, "study", None)
        counts = [0] * self.seed_blocks
        avoid = None
        if study is not None:
            from optuna.trial import TrialState

            others = study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,))
            source = trial.user_attrs.get(REPLICATE_OF_KEY) if hasattr(trial, "user_attrs") else None
            for t in others:
                b = t.user_attrs.get(BLOCK_KEY)
                if t.number == source:
                    avoid = b
                if t.number != number and t.user_attrs.get(WIDTH_KEY) == width and isinstance(b, int) and 0 <= b < len(counts):
                    counts[b] += 1
        order = sorted(range(self.seed_blocks), key=lambda b: (b == avoid, counts[b], b))
        block = order[0]
        return block, block_seed(self.seed, width, block)

    def train(self, trial: Any, params: Any, n_params: int, strength: float, data: Dataset, monitor: TrialMonitor,
              *, seed: int | None = None) -> None:
        """Train ``params`` at penalty ``strength``, feeding ``monitor`` each epoch.

        ``seed`` defaults to the objective's ``seed`` plus the trial number.

        A divergence is recorded on the trial and ends it PRUNED; any other error is
        recorded (user attribute ``error``) and re-raised, so Optuna marks the trial FAIL.
        """
        trainer = make_trainer(
            self.trainer,
            planted_alpha=self.planted_alpha,
            planted_wall_alpha=self.planted_wall_alpha,
            epoch_seconds=self.surrogate_epoch_seconds,
            seed_noise=self.surrogate_seed_noise,
            dip=self.surrogate_dip,
            reuse_models=self.reuse_models,
            lr_schedule=self.lr_schedule,
        )
        number = getattr(trial, "number", 0) or 0
        request = TrainRequest(params, n_params, strength, data, epochs=self.epochs, batch_size=self.batch_size,
                               seed=self.seed + number if seed is None else seed, on_epoch=monitor.on_epoch,
                               evaluate=self.evaluates)
        try:
            trainer.train(request)
        except TrialDiverged as exc:
            trial.set_user_attr(DIVERGED_KEY, exc.epoch)
            trial.set_user_attr("divergence_reason", exc.reason)
            raise optuna.TrialPruned(str(exc)) from None
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            # Optuna marks the trial FAIL and re-raises; the tracker logs its run KILLED.
            trial.set_user_attr(INTERRUPTED_KEY, True)
            raise
        except Exception as exc:
            trial.set_user_attr(ERROR_KEY, f"{type(exc).__name__}: {exc}"[:2000])
            raise

    def evaluates(self, epoch: int) -> bool:
        """Whether the validation pass runs after ``epoch`` (0-based): see ``eval_every``."""
        return (
            self.score == "best"
            or epoch >= self.epochs - self.score_window
            or (epoch + 1) % self.eval_every == 0
        )


def score_history(values: list[float], score: str = "final", window: int = DEFAULT_SCORE_WINDOW) -> float:
    """Score a per-epoch metric history: mean of the last ``window`` values, or the best (min).

    Example:
        >>> score_history([1.0, 0.5, 0.7, 0.6], "final", 2)
        0.6499999999999999
        >>> score_history([1.0, 0.5, 0.7, 0.6], "best")
        0.5
    """
    if not values:
        raise ValueError("no epochs to score.")
    if score == "best":
        return float(min(values))
    tail = values[-window:]
    if score == "median":
        return float(statistics.median(tail))
    return float(sum(tail) / len(tail))


def block_seed(seed: int, width: int, block: int) -> int:
    """The training seed of seed block ``block`` of ``width`` in a study seeded ``seed``:
    a hash, so studies and widths never share a seed by accident.

    Example:
        >>> block_seed(0, 8, 1) == block_seed(0, 8, 1) != block_seed(1, 8, 1)
        True
    """
    import hashlib

    digest = hashlib.sha256(f"autolambda-block-{seed}-{width}-{block}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


def worker_id() -> str:
    """``host:pid`` of this process: lets a later run tell a dead worker's trial."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer but got {value!r}.")
