"""The trainer API: one ``TrainRequest`` in, one ``on_epoch`` call per epoch out.

Every trainer (``KerasTrainer``, ``SurrogateTrainer``, a stand-in in a test) has one
method, ``train(request)``; the objectives build the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from autolambda.core.space import TrialParams
from autolambda.training.data import Dataset

OnEpoch = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainRequest:
    """One training run: what to train, on what, for how long, and where each epoch goes.

    Args:
        params: The trial's parameters (width, depth, penalty kind, optimizer, ...).
        n_params: The net's trainable parameter count ``N`` (the Keras trainer checks
            the built model against it).
        strength: The penalty strength ``lambda_eff`` the net trains with.
        data: The data set.
        epochs: Epochs to train.
        batch_size: Mini-batch size.
        seed: Seeds the initial weights and the batch order (the surrogate's noise).
        on_epoch: Called as ``on_epoch(epoch, metrics)`` after each epoch (0-based); it
            may raise to stop the run (divergence, pruning).
        evaluate: ``evaluate(epoch)`` says whether the validation pass runs after that
            epoch; ``None``: after every epoch.
    """

    params: TrialParams
    n_params: int
    strength: float
    data: Dataset
    epochs: int
    batch_size: int
    seed: int
    on_epoch: OnEpoch
    evaluate: Callable[[int], bool] | None = None

    def evaluates(self, epoch: int) -> bool:
        """Whether the validation pass runs after ``epoch``."""
        return self.evaluate is None or bool(self.evaluate(epoch))


class Trainer(Protocol):
    """Anything that trains a ``TrainRequest``, calling its ``on_epoch`` after each epoch."""

    def train(self, request: TrainRequest) -> None: ...
