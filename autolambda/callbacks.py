"""Public path of the Keras pruning callback (it lives in ``autolambda.training.keras_callback``)."""

from autolambda.training.keras_callback import PruningCallback

__all__ = ["PruningCallback"]
