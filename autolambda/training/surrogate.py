"""``SurrogateTrainer``: a stand-in trainer that trains nothing, with a planted answer.

Its validation loss is a known function of ``lambda_eff`` and ``N`` with a planted
optimum ``lambda_star(N) = c * N ** -planted_alpha``, so the analysis can be checked
against a known answer in milliseconds, through the same objective, pruning and
tracking paths as ``KerasTrainer``. No TensorFlow.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from autolambda.core.choices import DEFAULT_SURROGATE_DIP, DEFAULT_SURROGATE_SEED_NOISE
from autolambda.training.request import TrainRequest


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass(frozen=True)
class SurrogateTrainer:
    """A stand-in trainer with a planted answer and realistic noise; no TensorFlow.

    The loss curve has the shape measured on real digits (the numbers below; the
    surrogate's own calibration is in BENCHMARKS.md, "Calibration of the intervals"):
    flat for small lambda, a shallow dip around ``lambda_star(N) = c * N ** -planted_alpha``,
    then a wall where the penalty starts to hurt: a soft rise towards ``wall_top``, cut
    short by a collapse to the loss of a net that predicts uniformly (``ln(n_classes)``).
    With ``u = ln(lambda_eff / lambda_star(N))``::

        final = base(N) - dip * exp(-u**2 / (2 * dip_sd**2))
                + (wall_top - base(N)) * sigmoid(wall_steepness * (u - wall_offset))
        final = ln(C)  where u > collapse_offset (exactly, without seed noise)

    so the wall's midpoint sits ``wall_offset`` nats (a factor 20 by default) above the
    optimum and scales with N like it. On digits (default study, 3 seeds) the loss rises
    from ~0.2 to ~0.55 over the two nats above lambda ~0.01 and then jumps to ln 10; the
    joint fit puts the rise's top at ~0.78 and its steepness at 2.1-2.6 per nat. A wall
    that rose smoothly all the way to ln 10 (as this surrogate's once did) placed its
    exponent ~10x more precisely than digits allows, so its calibration said nothing about
    digits. Each trial adds one seed offset drawn from N(0,
    ``seed_noise``) that holds for all its epochs, as another initialisation and data
    order do on real data: it is invisible in the spread of the trial's last epochs.
    Each epoch approaches the final loss exponentially, plus N(0, ``noise``) epoch noise.
    ``lambda_eff > diverge_above`` gives NaN after a few epochs.

    The defaults match the default digits study; ``seed_noise=0, dip=0.15, noise=0.005``
    is a clean surrogate (signal-to-noise ~30, like the one this replaced), ``dip=0`` a flat one (no optimum).

    Args:
        planted_alpha: The exponent A in ``lambda_star(N) = c * N ** -A``.
        lambda_star_ref: ``lambda_star`` at ``n_star`` parameters (so ``c = lambda_star_ref * n_star ** A``).
        noise: Standard deviation of the per-epoch noise on the loss.
        seed_noise: Standard deviation of the per-trial (seed-to-seed) offset of wide nets.
        dip: How far the loss at ``lambda_star`` lies below the flat floor (nats of loss).
        dip_sd: The dip's standard deviation in ``ln(lambda)``: a Gaussian in ``u``.
        narrow_noise: The narrowest default net's (``narrow_n`` parameters) extra
            seed-to-seed SD, as a multiple of ``seed_noise``, added in quadrature (2.25: its
            SD is ~2.5x the wide nets'); the excess falls off as ``N ** -1.5`` (0: the same
            noise at every width). A collapsed net gets no offset.
    """

    planted_alpha: float = 0.0
    lambda_star_ref: float = 2e-3
    n_star: float = 20_000.0
    noise: float = 0.003
    seed_noise: float = DEFAULT_SURROGATE_SEED_NOISE
    dip: float = DEFAULT_SURROGATE_DIP
    narrow_noise: float = 2.25
    narrow_n: float = 746.0
    dip_sd: float = 1.0  # in ln(lambda): the dip spans about a decade, as on digits
    # The wall's midpoint 20x above the optimum and steep, as on digits (the loss is flat
    # up to ~1e-2, has risen ~0.15-0.25 by 0.02-0.04 and collapses by ~0.07).
    wall_offset: float = math.log(20.0)
    wall_steepness: float = 2.5
    wall_top: float = 0.8
    collapse_offset: float = math.log(20.0) + 0.8  # a jump: a net either collapses or not
    diverge_above: float = 10.0
    # Wall time each epoch takes (sleeping), to stand in for training in tests and benchmarks.
    epoch_seconds: float = 0.0

    def seed_sd(self, n_params: float) -> float:
        """SD of a trial's seed offset at ``n_params`` parameters."""
        excess = self.narrow_noise * (n_params / self.narrow_n) ** -1.5
        return self.seed_noise * math.sqrt(1.0 + excess * excess)

    def collapsed(self, n_params: float, strength: float) -> bool:
        """Whether the penalty has collapsed the net (it then predicts uniformly)."""
        return math.log(max(strength, 1e-300) / self.lambda_star(n_params)) > self.collapse_offset

    def lambda_star(self, n_params: float) -> float:
        """The planted best penalty for a model of ``n_params`` parameters."""
        return self.lambda_star_ref * (n_params / self.n_star) ** (-self.planted_alpha)

    def final_loss(self, n_params: float, strength: float, n_classes: int = 10) -> float:
        """Noise-free loss at the end of a long run."""
        base = 0.1 + 0.4 * (n_params / 1_000.0) ** -0.3
        u = math.log(max(strength, 1e-300) / self.lambda_star(n_params))
        dip = self.dip * math.exp(-(u**2) / (2 * self.dip_sd**2))
        if self.collapsed(n_params, strength):
            return math.log(n_classes)  # a collapsed net predicts every class alike
        wall = (self.wall_top - base) * _sigmoid(self.wall_steepness * (u - self.wall_offset))
        return base - dip + wall

    def wall_lambda(self, n_params: float, cost: float, n_classes: int = 10) -> float:
        """The planted wall: the lambda above the optimum at which the noise-free loss
        first exceeds its floor by ``cost`` (a share of the floor), as ``analyze`` defines it."""
        floor = self.final_loss(n_params, 1e-300, n_classes)
        lo = math.log(self.lambda_star(n_params))
        hi = lo + 30.0
        for _ in range(60):  # above the optimum the loss only rises
            mid = 0.5 * (lo + hi)
            if self.final_loss(n_params, math.exp(mid), n_classes) < floor * (1 + cost):
                lo = mid
            else:
                hi = mid
        return math.exp(lo)

    def wall_alpha(self, sizes: Sequence[float], cost: float, n_classes: int = 10) -> float:
        """Minus the log-log slope of ``wall_lambda`` over ``sizes``: the wall's true alpha.

        It differs a little from ``planted_alpha``: the cost is a share of each size's
        floor, and the floors differ."""
        x = np.log(np.asarray(sizes, dtype=float))
        y = np.log([self.wall_lambda(n, cost, n_classes) for n in sizes])
        return float(-np.polyfit(x, y, 1)[0])

    def train(self, request: TrainRequest) -> None:
        """Call ``request.on_epoch`` with each epoch's metrics, as ``KerasTrainer`` would."""
        n_params, strength, n_classes = request.n_params, request.strength, request.data.n_classes
        rng = np.random.default_rng(request.seed)
        final = self.final_loss(n_params, strength, n_classes)
        offset = rng.normal(0.0, self.seed_sd(n_params))
        if not self.collapsed(n_params, strength):  # a collapsed net's loss is exactly ln(C), as on digits
            final += offset
        start = math.log(n_classes)
        for epoch in range(request.epochs):
            if self.epoch_seconds > 0:
                time.sleep(self.epoch_seconds)
            decay = math.exp(-(epoch + 1) / 3.0)
            val = final + (start - final) * decay + rng.normal(0.0, self.noise)
            train_ce = max(val - 0.05, 1e-3)
            reg = strength * n_params * 0.01
            if strength > self.diverge_above and epoch >= 2:
                val = train_ce = float("nan")
            logs = {"train_loss": train_ce + reg, "train_ce": train_ce, "train_accuracy": float(math.exp(-train_ce)),
                    "reg_term": reg}
            if request.evaluates(epoch):
                logs |= {"val_loss": val + reg, "val_ce": val, "val_accuracy": float(math.exp(-val))}
            request.on_epoch(epoch, logs)
