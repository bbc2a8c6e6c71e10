"""An in-loss penalty whose strength a traced TensorFlow graph reads from a variable, so
one compiled program serves every trial's lambda (``autolambda.training.compiled``).

Importing this module imports Keras; ``import autolambda`` does not.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from autolambda.core.choices import IN_LOSS_PENALTIES


class VariablePenalty(keras.regularizers.Regularizer):
    """An L2, L1 or L1L2 penalty whose strength (and L1 share) are Keras variables.

    ``l2``: ``strength * sum(x**2)``; ``l1``: ``strength * sum(|x|)``; ``l1l2``:
    ``strength * (l1_ratio * sum(|x|) + (1 - l1_ratio) * sum(x**2))`` — the values of
    ``keras.regularizers.L2(strength)``, ``L1(strength)`` and ``L1L2(l1_ratio * strength,
    (1 - l1_ratio) * strength)``, but a traced graph reads the current values.
    """

    def __init__(self, kind: str, strength: float = 0.0, l1_ratio: float = 0.5) -> None:
        if kind not in IN_LOSS_PENALTIES:
            raise ValueError(f"kind must be one of {', '.join(IN_LOSS_PENALTIES)} but got {kind!r}.")
        self.kind = kind
        self.strength = keras.Variable(strength, trainable=False, dtype="float32", name="penalty_strength")
        self.l1_ratio = keras.Variable(l1_ratio, trainable=False, dtype="float32", name="penalty_l1_ratio")

    def set(self, strength: float, l1_ratio: float = 0.5) -> None:
        """Set the values the next steps read."""
        self.strength.assign(strength)
        self.l1_ratio.assign(l1_ratio)

    def __call__(self, x: Any) -> Any:
        strength = ops.cast(self.strength, x.dtype)
        if self.kind == "l2":
            return strength * ops.sum(ops.square(x))
        if self.kind == "l1":
            return strength * ops.sum(ops.absolute(x))
        ratio = ops.cast(self.l1_ratio, x.dtype)
        return strength * (ratio * ops.sum(ops.absolute(x)) + (1.0 - ratio) * ops.sum(ops.square(x)))

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "strength": float(self.strength.numpy()), "l1_ratio": float(self.l1_ratio.numpy())}
