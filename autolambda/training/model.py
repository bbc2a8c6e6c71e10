"""The model family: Conv2D blocks whose filter counts scale with a width multiplier,
and ``Penalty``, the one description of how a net is penalised.

``build_convnet`` never sees an Optuna trial, so any code can reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autolambda.core.choices import IN_LOSS_PENALTIES
from autolambda.core.scaling import PENALTIES, convnet_layout, make_regularizer
from autolambda.errors import ConfigError

if TYPE_CHECKING:
    from autolambda.core.space import TrialParams



@dataclass(frozen=True)
class Penalty:
    """How a net is penalised: its kernel regularizer and its optimizer's weight decay are
    both made from this.

    Args:
        kind: ``l2``, ``l1``, ``l1l2`` (a term in the loss: ``make_regularizer``'s values)
            or ``weight_decay`` (decoupled, in the optimizer: ``make_optimizer``).
        strength: The penalty strength (``lambda_eff``).
        l1_ratio: ``l1l2``'s L1 share of ``strength``.
        penalize_bias: Penalise the biases too, not only the kernels.
        variable: The in-loss strength and L1 share live in Keras variables
            (``autolambda.training.variable_penalty.VariablePenalty``) that a compiled program
            sets per trial, so one built net serves every strength; otherwise they are
            constants of the net. Only in-loss kinds can be variable.

    Example:
        >>> Penalty("l2", 1e-3).in_loss, Penalty("l2", 1e-3).decay
        (True, None)
        >>> Penalty("weight_decay", 1e-3).decay
        0.001
    """

    kind: str = "l2"
    strength: float = 0.0
    l1_ratio: float = 0.5
    penalize_bias: bool = False
    variable: bool = False

    def __post_init__(self) -> None:
        if self.kind not in PENALTIES:
            raise ConfigError(f"penalty must be one of {', '.join(PENALTIES)} but got {self.kind!r}.")
        if self.variable and not self.in_loss:
            raise ConfigError(f"only an in-loss penalty ({', '.join(IN_LOSS_PENALTIES)}) can be variable, not {self.kind!r}.")

    @classmethod
    def of(cls, params: TrialParams, strength: float, *, variable: bool = False) -> Penalty:
        """The penalty a trial with ``params`` trains with at ``strength``."""
        return cls(params.penalty, strength, params.l1_ratio, params.penalize_bias, variable)

    @property
    def in_loss(self) -> bool:
        """Whether the penalty is a term of the loss (not decoupled weight decay)."""
        return self.kind in IN_LOSS_PENALTIES

    @property
    def decay(self) -> float | None:
        """The optimizer's decoupled weight decay: ``strength`` for ``weight_decay``, else ``None``."""
        return None if self.in_loss else self.strength

    def regularizer(self) -> Any:
        """A new Keras regularizer for the net's kernels; ``None`` when nothing goes in the
        loss (weight decay, or a fixed strength of 0)."""
        if not self.in_loss:
            return None
        if self.variable:
            from autolambda.training.variable_penalty import VariablePenalty

            return VariablePenalty(self.kind, self.strength, self.l1_ratio)
        return make_regularizer(self.kind, self.strength, l1_ratio=self.l1_ratio) if self.strength > 0 else None


def build_convnet(
    width: int,
    input_shape: tuple[int, int, int],
    n_classes: int,
    *,
    depth: int = 2,
    kernel_size: tuple[int, int] = (3, 3),
    penalty: Penalty | None = None,
) -> Any:
    """Build a Conv2D classifier whose kernels carry ``penalty``'s regularizer.

    Block ``i`` is ``Conv2D(width * 2**i, kernel_size, padding="same", relu)``, followed by
    2x2 max-pooling while the map stays at least 4x4; then ``Flatten`` and a ``Dense``
    layer of logits. The penalty goes on every Conv2D and Dense kernel (and bias when
    ``penalty.penalize_bias``); ``None``, or a ``weight_decay`` penalty, adds none here
    (the optimizer decays). All layers share one regularizer object, so a variable
    penalty's strength is set once for the whole net.

    ``build_convnet(8, (8, 8, 1), 10, penalty=Penalty("l2", 1e-3))`` has 3818 trainable
    parameters (``count_convnet_params`` gives the count without TensorFlow).
    """
    import keras

    reg = penalty.regularizer() if penalty is not None else None
    bias_reg = reg if penalty is not None and penalty.penalize_bias else None
    layers: list[Any] = [keras.Input(shape=input_shape)]
    for filters, pool in convnet_layout(width, depth, input_shape):
        layers.append(
            keras.layers.Conv2D(
                filters,
                kernel_size,
                padding="same",
                activation="relu",
                kernel_regularizer=reg,
                bias_regularizer=bias_reg,
            )
        )
        if pool:
            layers.append(keras.layers.MaxPooling2D(2))
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(n_classes, kernel_regularizer=reg, bias_regularizer=bias_reg, name="logits"),
    ]
    return keras.Sequential(layers, name=f"convnet_w{width}_d{depth}")
