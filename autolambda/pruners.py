"""Public path of the width-stratified pruner (it lives in ``autolambda.search.pruners``)."""

from autolambda.search.pruners import WidthStratifiedPruner

__all__ = ["WidthStratifiedPruner"]
