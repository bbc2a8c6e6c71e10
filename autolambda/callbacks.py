"""Public path of the Keras pruning callback (it lives in ``autolambda.search.keras_callback``)."""

from autolambda.search.keras_callback import PruningCallback

__all__ = ["PruningCallback"]
