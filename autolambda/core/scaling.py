"""The math: parameter counting, the lambda scaling rule, and the penalty factory.

The rule is ``lambda_eff = lambda0 * (N / N_ref) ** -alpha`` where ``N`` is the model's
trainable parameter count (biases included). ``alpha = 0`` keeps one lambda for every
size, ``alpha = 1`` makes it inversely proportional to ``N``, negative alpha grows it.
"""

from __future__ import annotations

import math
from typing import Any

from autolambda.core.choices import PENALTIES  # re-exported as autolambda.PENALTIES
from autolambda.errors import ConfigError

Kernel = tuple[int, int]  # a Conv2D kernel, (height, width)
Shape = tuple[int, int, int]  # an input image, (height, width, channels)


def lambda_eff(lambda0: float, alpha: float, n_params: float, n_ref: float) -> float:
    """Return the effective penalty strength for a model of ``n_params`` parameters.

    Args:
        lambda0: Penalty strength at the reference size ``n_ref`` (> 0).
        alpha: Scaling exponent; any finite number.
        n_params: Trainable parameter count of the model (> 0).
        n_ref: Reference parameter count, fixed per study (> 0).

    Example:
        >>> lambda_eff(1e-3, 1.0, 2000, 1000)
        0.0005
    """
    for name, value in (("lambda0", lambda0), ("n_params", n_params), ("n_ref", n_ref)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive finite number but got {value!r}.")
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha)):
        raise ConfigError(f"alpha must be a finite number but got {alpha!r}.")
    return float(lambda0) * (float(n_params) / float(n_ref)) ** (-float(alpha))


def count_conv2d_params(
    filters: int, kernel_size: tuple[int, int], in_channels: int, *, use_bias: bool = True
) -> int:
    """Trainable parameters of one Conv2D layer: ``filters * (kh * kw * in + 1)``.

    Example:
        >>> count_conv2d_params(20, (2, 3), 10)  # the motivating question's layer
        1220
    """
    kh, kw = kernel_size
    return filters * (kh * kw * in_channels + (1 if use_bias else 0))


def convnet_layout(
    width: int, depth: int, input_shape: tuple[int, int, int]
) -> list[tuple[int, bool]]:
    """Filter count and pooling decision of each conv block of ``build_convnet``.

    Block ``i`` has ``width * 2**i`` filters; it is followed by 2x2 max-pooling while
    the pooled map stays at least 4x4, so small inputs (digits' 8x8) keep a spatial map.
    The one definition shared by the model builder and the parameter count.
    """
    height, wide, _ = input_shape
    layout = []
    for i in range(depth):
        pool = height // 2 >= 4 and wide // 2 >= 4
        if pool:
            height, wide = height // 2, wide // 2
        layout.append((width * 2**i, pool))
    return layout


def _convnet_maps(
    width: int, depth: int, input_shape: tuple[int, int, int]
) -> tuple[list[tuple[int, int, int, int]], tuple[int, int, int]]:
    """Each conv block of ``build_convnet`` as (height, width, in channels, filters) of the
    map it convolves ("same" padding), and the map the logits layer flattens."""
    height, wide, channels = input_shape
    blocks = []
    for filters, pool in convnet_layout(width, depth, input_shape):
        blocks.append((height, wide, channels, filters))
        channels = filters
        if pool:
            height, wide = height // 2, wide // 2
    return blocks, (height, wide, channels)


def count_convnet_params(width: int, depth: int, kernel_size: Kernel, input_shape: Shape, n_classes: int) -> int:
    """Trainable parameters of ``build_convnet`` without building it (no TensorFlow).

    Equals ``model.count_params()`` of the built Keras model (a test checks it).
    """
    blocks, (height, wide, channels) = _convnet_maps(width, depth, input_shape)
    convs = sum(count_conv2d_params(filters, kernel_size, c_in) for _, _, c_in, filters in blocks)
    return convs + height * wide * channels * n_classes + n_classes


def count_convnet_macs(width: int, depth: int, kernel_size: Kernel, input_shape: Shape, n_classes: int) -> int:
    """Multiply-adds of one image's forward pass through ``build_convnet`` (convolutions
    with "same" padding at each block's input size, then the logits layer).

    Example:
        >>> count_convnet_macs(64, 2, (3, 3), (8, 8, 1), 10)  # digits' widest default net
        1236992
    """
    kh, kw = kernel_size
    blocks, (height, wide, channels) = _convnet_maps(width, depth, input_shape)
    convs = sum(h * w * kh * kw * c_in * filters for h, w, c_in, filters in blocks)
    return convs + height * wide * channels * n_classes


def make_regularizer(penalty: str, strength: float, *, l1_ratio: float = 0.5) -> Any:
    """Keras regularizer for an in-loss penalty, or ``None`` for ``weight_decay``.

    ``l1l2`` splits ``strength`` as ``l1 = l1_ratio * strength`` and
    ``l2 = (1 - l1_ratio) * strength``.
    """
    if penalty not in PENALTIES:
        raise ConfigError(f"penalty must be one of {', '.join(PENALTIES)} but got {penalty!r}.")
    if penalty == "weight_decay":
        return None
    from keras import regularizers

    if penalty == "l2":
        return regularizers.L2(strength)
    if penalty == "l1":
        return regularizers.L1(strength)
    return regularizers.L1L2(l1=l1_ratio * strength, l2=(1.0 - l1_ratio) * strength)
