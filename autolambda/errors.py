"""The project's exception types.

``AutolambdaError`` is the one exception the CLI turns into a one-line message and a
non-zero exit; everything a user can get wrong raises a subclass of it.
"""

from __future__ import annotations


class AutolambdaError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(AutolambdaError, ValueError):
    """Bad input: an option, a study-file key, a search-space bound (exit code 2)."""


class DataError(AutolambdaError, ValueError):
    """A data set that cannot be loaded or has the wrong shape, keys or labels."""


class TrialDiverged(Exception):
    """Raised inside a trial when its loss became NaN/inf or exploded.

    Not an ``AutolambdaError``: it is data about the trial, caught by the objective,
    which records the epoch and ends the trial PRUNED so samplers still learn from it.
    """

    def __init__(self, epoch: int, reason: str) -> None:
        super().__init__(f"diverged at epoch {epoch}: {reason}")
        self.epoch = epoch
        self.reason = reason
