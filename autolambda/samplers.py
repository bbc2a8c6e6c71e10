"""Public path of the width-balanced sampler (it lives in ``autolambda.search.samplers``)."""

from autolambda.search.samplers import WidthBalancedSampler

__all__ = ["WidthBalancedSampler"]
