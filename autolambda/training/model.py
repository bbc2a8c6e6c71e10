"""The model family: Conv2D blocks whose filter counts scale with a width multiplier.

``build_convnet`` never sees an Optuna trial, so any code can reuse it.
"""

from __future__ import annotations

from typing import Any

from autolambda.core.scaling import convnet_layout, make_regularizer


def build_convnet(
    width: int,
    input_shape: tuple[int, int, int],
    n_classes: int,
    *,
    depth: int = 2,
    kernel_size: tuple[int, int] = (3, 3),
    penalty: str = "l2",
    strength: float = 0.0,
    l1_ratio: float = 0.5,
    penalize_bias: bool = False,
    regularizer: Any = None,
) -> Any:
    """Build a Conv2D classifier with ``strength`` as the in-loss penalty on its kernels.

    Block ``i`` is ``Conv2D(width * 2**i, kernel_size, padding="same", relu)``, followed by
    2x2 max-pooling while the map stays at least 4x4; then ``Flatten`` and a ``Dense``
    layer of logits. Penalties go on every Conv2D and Dense kernel (and biases when
    ``penalize_bias``); ``penalty="weight_decay"`` adds none here (the optimizer decays).
    A Keras ``regularizer`` given is used instead of the one ``penalty`` and ``strength``
    make (``autolambda.training.compiled.VariablePenalty`` for a strength set after building).

    Example:
        >>> model = build_convnet(8, (8, 8, 1), 10, strength=1e-3)  # doctest: +SKIP
        >>> model.count_params()  # doctest: +SKIP
        3818
    """
    import keras

    if regularizer is not None:
        reg = regularizer
    else:
        reg = make_regularizer(penalty, strength, l1_ratio=l1_ratio) if strength > 0 else None
    bias_reg = reg if penalize_bias else None
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
