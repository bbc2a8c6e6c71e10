"""Public path of autolambda's pruners (they live in ``autolambda.search.pruners``)."""

from autolambda.search.pruners import AnswerAwarePruner, WidthStratifiedPruner

__all__ = ["AnswerAwarePruner", "WidthStratifiedPruner"]
