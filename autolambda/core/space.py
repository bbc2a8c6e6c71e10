"""The search space and the one function that asks an Optuna trial for values.

A dimension given as a scalar is pinned (not suggested, so a foreign sampler never sees
it); a numeric ``(low, high)`` pair is searched; a tuple of choices is categorical.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from autolambda.errors import ConfigError
from autolambda.core.choices import DEFAULT_LEARNING_RATE, DEFAULT_PENALTY
from autolambda.core.scaling import PENALTIES, count_convnet_macs, count_convnet_params, lambda_eff, make_regularizer

OPTIMIZERS = ("adam", "sgd", "adamw")

Range = tuple[float, float]


@dataclass(frozen=True)
class TrialParams:
    """Everything one trial trains with; the model builder and trainers take this."""

    width: int
    depth: int
    kernel_size: tuple[int, int]
    lambda0: float
    alpha: float
    penalty: str
    l1_ratio: float
    learning_rate: float
    optimizer: str
    penalize_bias: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain values for MLflow params and Optuna user attributes."""
        out = asdict(self)
        out["kernel_size"] = _kernel_to_str(self.kernel_size)
        return out


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of a lambda-scaling study. Scalars pin a dimension.

    Example:
        >>> space = SearchSpace(widths=(8, 32), alpha=0.0)  # alpha pinned to 0
        >>> space.is_searched("alpha")
        False
    """

    # Log-spaced so the points are evenly spread in log N, where alpha is a slope.
    # Width 128 trains ~30 s a trial at the default 120 epochs; 2..64 spans as many
    # decades of N (746..95k parameters) at a tenth of the cost.
    widths: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    # Two conv blocks: enough to see the penalty act on a real Conv2D stack, cheap on 8x8.
    depth: int | tuple[int, ...] = 2
    # (kh, kw); several kernels as a tuple of pairs. (2, 3) as in the motivating question works.
    kernel_size: tuple[int, int] | tuple[tuple[int, int], ...] = (3, 3)
    # Every size's optimum and wall inside, with a decade of flat floor below (at 120
    # epochs the loss stops depending on lambda below ~1e-4); the design sampler then
    # spends most trials where the loss depends on lambda.
    lambda0: float | Range = (1e-5, 1e-1)
    # Covers the hypotheses in the literature: -0.5 (muP decay) ... +1 (lambda ~ 1/N).
    alpha: float | Range = (-1.0, 1.5)
    # Penalty kind(s): l2 (Keras default case), l1, l1l2, weight_decay.
    penalty: str | tuple[str, ...] = DEFAULT_PENALTY
    # Share of l1 in l1l2; searched when a (low, high) pair.
    l1_ratio: float | Range = 0.5
    # Fixed by default: searching it confounds lambda with the step size.
    learning_rate: float | Range = DEFAULT_LEARNING_RATE
    # Adam is what most Keras users run.
    optimizer: str | tuple[str, ...] = "adam"
    # Biases are usually left unpenalised; turn on to penalise them too.
    penalize_bias: bool = False

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        widths = _as_tuple(self.widths)
        if not widths:
            raise ConfigError("space.widths must list at least one width but got [].")
        for w in widths:
            _check_int("space.widths", w, minimum=1)
        set_("widths", tuple(sorted(set(int(w) for w in widths))))
        depth = _as_tuple(self.depth)
        for d in depth:
            _check_int("space.depth", d, minimum=1)
        set_("depth", int(depth[0]) if len(depth) == 1 else tuple(int(d) for d in depth))
        kernels = self.kernel_size
        if isinstance(kernels, str):
            kernels = (_kernel_from_str(kernels),)
        elif _is_pair_of_ints(kernels):
            kernels = (tuple(kernels),)
        else:
            kernels = tuple(_kernel_from_str(k) if isinstance(k, str) else tuple(k) for k in kernels)
        if not kernels:
            raise ConfigError("space.kernel_size must name at least one kernel.")
        for k in kernels:
            if not _is_pair_of_ints(k) or min(k) < 1:
                raise ConfigError(f"space.kernel_size entries must be two positive integers but got {k!r}.")
        set_("kernel_size", kernels[0] if len(kernels) == 1 else kernels)
        set_("lambda0", _check_range("space.lambda0", self.lambda0, log=True))
        set_("alpha", _check_range("space.alpha", self.alpha, log=False))
        set_("learning_rate", _check_range("space.learning_rate", self.learning_rate, log=True))
        l1r = _check_range("space.l1_ratio", self.l1_ratio, log=False)
        for v in _as_tuple(l1r):
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"space.l1_ratio must lie in [0, 1] but got {v!r}.")
        set_("l1_ratio", l1r)
        set_("penalty", _check_choices("space.penalty", self.penalty, PENALTIES))
        set_("optimizer", _check_choices("space.optimizer", self.optimizer, OPTIMIZERS))
        if not isinstance(self.penalize_bias, bool):
            raise ConfigError(f"space.penalize_bias must be true or false but got {self.penalize_bias!r}.")

    def is_searched(self, name: str) -> bool:
        """Whether dimension ``name`` is left to the sampler (not pinned)."""
        value = getattr(self, name)
        if name == "kernel_size":
            return not _is_pair_of_ints(value)
        return isinstance(value, tuple) and len(value) > 1

    def kernels(self) -> tuple[tuple[int, int], ...]:
        """All kernel sizes in the space."""
        return (self.kernel_size,) if _is_pair_of_ints(self.kernel_size) else self.kernel_size

    def n_params_range(self, input_shape: tuple[int, int, int], n_classes: int) -> tuple[int, int]:
        """Smallest and largest trainable parameter count a model of this space can have."""
        counts = [count_convnet_params(*model, input_shape, n_classes) for model in self._models()]
        return min(counts), max(counts)

    def max_macs(self, input_shape: tuple[int, int, int], n_classes: int) -> int:
        """Multiply-adds of one image's forward pass through the space's costliest model."""
        return max(count_convnet_macs(*model, input_shape, n_classes) for model in self._models())

    def _models(self) -> list[tuple[int, int, tuple[int, int]]]:
        """(width, depth, kernel size) of every model the space holds."""
        return [(w, d, k) for w in self.widths for d in _as_tuple(self.depth) for k in self.kernels()]

    def default_n_ref(self, input_shape: tuple[int, int, int], n_classes: int) -> float:
        """Geometric mean of the smallest and largest model's parameter count."""
        low, high = self.n_params_range(input_shape, n_classes)
        return math.sqrt(low * high)

    def to_dict(self) -> dict[str, Any]:
        """TOML/JSON-friendly form (kernel sizes as lists); inverse of ``SearchSpace(**d)``."""
        out = {}
        for f in fields(self):
            out[f.name] = _to_plain(getattr(self, f.name))
        return out


def suggest_params(trial: Any, space: SearchSpace) -> TrialParams:
    """Ask ``trial`` for every searched dimension of ``space``; pinned ones pass through.

    The only place in autolambda that calls ``trial.suggest_*``. Parameter names
    (``width``, ``depth``, ``kernel_size``, ``lambda0``, ``alpha``, ``penalty``,
    ``l1_ratio``, ``learning_rate``, ``optimizer``) are public API.
    """

    def categorical(name: str, value: Any) -> Any:
        if isinstance(value, tuple) and len(value) > 1:
            return trial.suggest_categorical(name, list(value))
        return value[0] if isinstance(value, tuple) else value

    def floating(name: str, value: Any, log: bool) -> float:
        if isinstance(value, tuple):
            return float(trial.suggest_float(name, value[0], value[1], log=log))
        return float(value)

    width = int(categorical("width", space.widths))
    depth = int(categorical("depth", space.depth))
    if space.is_searched("kernel_size"):
        kernel = _kernel_from_str(
            trial.suggest_categorical("kernel_size", [_kernel_to_str(k) for k in space.kernel_size])
        )
    else:
        kernel = tuple(space.kernel_size)
    lambda0 = floating("lambda0", space.lambda0, log=True)
    alpha = floating("alpha", space.alpha, log=False)
    penalty = str(categorical("penalty", space.penalty))
    l1_ratio = floating("l1_ratio", space.l1_ratio, log=False) if penalty == "l1l2" else _first(space.l1_ratio)
    learning_rate = floating("learning_rate", space.learning_rate, log=True)
    optimizer = str(categorical("optimizer", space.optimizer))
    return TrialParams(
        width=width,
        depth=depth,
        kernel_size=kernel,
        lambda0=lambda0,
        alpha=alpha,
        penalty=penalty,
        l1_ratio=l1_ratio,
        learning_rate=learning_rate,
        optimizer=optimizer,
        penalize_bias=space.penalize_bias,
    )


def suggest_lambda_eff(
    trial: Any,
    n_params: int,
    n_ref: float,
    *,
    lambda0: float | Range = (1e-7, 1e-1),
    alpha: float | Range = (-1.0, 1.5),
) -> float:
    """Add ``lambda0`` and ``alpha`` to any trial and return ``lambda_eff`` for ``n_params``.

    For users with their own architecture. Records ``n_params``, ``n_ref`` and
    ``lambda_eff`` as user attributes, as autolambda's own objective does, so
    ``autolambda analyze`` can read the study.

    Example:
        >>> import optuna
        >>> trial = optuna.trial.FixedTrial({"lambda0": 1e-3, "alpha": 1.0})
        >>> suggest_lambda_eff(trial, n_params=2000, n_ref=1000)
        0.0005
    """
    # Through suggest_params, the one caller of trial.suggest_*: same names, same ranges.
    params = suggest_params(trial, SearchSpace(widths=(1,), lambda0=lambda0, alpha=alpha))
    lam0, alp = params.lambda0, params.alpha
    value = lambda_eff(lam0, alp, n_params, n_ref)
    for key, v in (("n_params", int(n_params)), ("n_ref", float(n_ref)), ("lambda_eff", value)):
        trial.set_user_attr(key, v)
    return value


def suggest_scaled_penalty(
    trial: Any,
    n_params: int,
    n_ref: float,
    *,
    penalty: str = "l2",
    lambda0: float | Range = (1e-7, 1e-1),
    alpha: float | Range = (-1.0, 1.5),
    l1_ratio: float = 0.5,
) -> Any:
    """Like ``suggest_lambda_eff`` but return a Keras regularizer for ``kernel_regularizer``.

    ``penalty`` is ``l2``, ``l1`` or ``l1l2`` (decoupled weight decay is an optimizer
    setting: use ``suggest_lambda_eff`` and pass the value as ``weight_decay``).

    Example (in your objective, ``n`` is your model's trainable count):
        >>> import optuna
        >>> trial = optuna.trial.FixedTrial({"lambda0": 1e-4, "alpha": 1.0})
        >>> reg = suggest_scaled_penalty(trial, 200_000, n_ref=50_000)   # 1e-4 * 4 ** -1
        >>> round(reg.get_config()["l2"], 10)
        2.5e-05
        >>> # keras.layers.Conv2D(32, 3, kernel_regularizer=reg)
    """
    if penalty == "weight_decay" or penalty not in PENALTIES:
        raise ConfigError(
            f"penalty must be one of l2, l1, l1l2 for a regularizer but got {penalty!r}."
        )
    value = suggest_lambda_eff(trial, n_params, n_ref, lambda0=lambda0, alpha=alpha)
    return make_regularizer(penalty, value, l1_ratio=l1_ratio)


# ---- helpers -------------------------------------------------------------------------


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def _is_pair_of_ints(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _kernel_to_str(kernel: tuple[int, int]) -> str:
    return f"{kernel[0]}x{kernel[1]}"


def _kernel_from_str(text: str) -> tuple[int, int]:
    try:
        kh, kw = (int(p) for p in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"kernel_size must look like '3x3' but got {text!r}.") from None
    return kh, kw


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be integers >= {minimum} but got {value!r}.")


def _check_range(name: str, value: Any, *, log: bool) -> float | Range:
    values = _as_tuple(value)
    if len(values) not in (1, 2):
        raise ConfigError(f"{name} must be a number or a [low, high] pair but got {value!r}.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name} must be finite numbers but got {v!r}.")
        if log and v <= 0:
            raise ConfigError(f"{name} is on a log scale and must be positive but got {v!r}.")
        out.append(float(v))
    if len(out) == 1:
        return out[0]
    if out[0] > out[1]:
        raise ConfigError(f"{name} lower bound {out[0]!r} is above its upper bound {out[1]!r}.")
    if out[0] == out[1]:
        return out[0]
    return (out[0], out[1])


def _check_choices(name: str, value: Any, allowed: tuple[str, ...]) -> str | tuple[str, ...]:
    values = _as_tuple(value)
    if not values:
        raise ConfigError(f"{name} must name at least one of {', '.join(allowed)}.")
    for v in values:
        if v not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)} but got {v!r}.")
    values = tuple(dict.fromkeys(values))
    return values[0] if len(values) == 1 else values


def _to_plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value
