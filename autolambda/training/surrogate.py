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

from autolambda.core.choices import DEFAULT_EPOCHS, DEFAULT_SURROGATE_DIP, DEFAULT_SURROGATE_SEED_NOISE
from autolambda.training.request import TrainRequest


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


#: Noise measured on digits with seed-blocked grids (80 epochs, Adam 3e-3, 300 images; each
#: seed trained at 9 lambdas from 1e-4 to 1e-2 at its width; DESIGN.md, "Seeds are
#: blocks", and scripts/seed_grid.py), by the net's parameter count (widths 2 ... 64 of
#: the default space): the SD between seeds at one lambda (a seed's offset, which holds
#: across lambda) and the SD around a seed's own smooth curve once its offset is removed
#: (the two independent seed sets averaged where both were measured).
MEASURED_N = (746, 1626, 3818, 9930, 29066, 94986)
MEASURED_BLOCK_SD = (0.075, 0.071, 0.024, 0.005, 0.010, 0.025)
MEASURED_RESIDUAL_SD = (0.026, 0.016, 0.009, 0.010, 0.015, 0.022)
#: Adam's late spikes under a constant step: at width 64 about one training in eight
#: scored 0.05-0.15 above its block's neighbours; none were seen at width 16 or below.
SPIKE_RATE = 0.12
SPIKE_SIZE = (0.05, 0.15)
SPIKE_FROM_N = 20_000
#: The dip's depth by size, relative to its mean over the sizes: each size's own depth at
#: the joint fit's shape on the three default digits studies (150 trials, the default then; seeds 0-2;
#: ``autolambda.analysis.estimators.depth_test``): 0.064 / 0.047 / 0.033 / 0.044 / 0.022 /
#: 0.044 at widths 2-64 (mean 0.042), the same pattern in each study; one depth for all
#: sizes was rejected in each (F test, p 0.001-0.008).
MEASURED_DIP_SHAPE = (1.51, 1.11, 0.78, 1.04, 0.52, 1.04)
#: How fast a training approaches its final loss, measured on digits (six default studies,
#: 175 and 200 trials, seeds 0-2; trials below the wall): the time constant ``tau`` (epochs)
#: of ``val_ce - final ~ (ln C - final) * exp(-epoch / tau)`` at the 10th epoch, its
#: median by size; it grows with lambda (log tau per nat of lambda, within a block), a
#: seed block moves it as a whole (SD of log tau between blocks) and each training on top
#: (SD within a block; width 2 now and then sits at ln C for a while before it learns).
#: The pruners see these curves, so the surrogate draws them too.
MEASURED_TAU = (9.9, 5.7, 3.7, 3.0, 2.5, 2.4)
SHORT_RUN = 20
MEASURED_TAU_LAMBDA_SLOPE = (0.19, 0.04, 0.03, 0.06, 0.05, 0.04)
MEASURED_TAU_BLOCK_SD = (0.30, 0.13, 0.11, 0.08, 0.09, 0.09)
MEASURED_TAU_RESIDUAL_SD = (0.57, 0.06, 0.03, 0.07, 0.14, 0.13)


def _interp_log(n_params: float, table: Sequence[float]) -> float:
    """``table`` (one value per ``MEASURED_N``) at ``n_params``, linear in log N, held at the ends."""
    return float(np.interp(math.log(n_params), np.log(MEASURED_N), table))


def _approach(t: int, epochs: int, tau: float) -> float:
    """The share of the way from ``ln(C)`` still to go after ``t`` of ``epochs`` epochs:
    ``exp(-t / tau)``, shifted and scaled to reach 0 at the last epoch (a slow training
    still ends at its final loss, which the planted answer is about)."""
    if tau <= 0 or t >= epochs:
        return 0.0
    end = math.exp(-epochs / tau)
    return (math.exp(-t / tau) - end) / (1.0 - end)


@dataclass(frozen=True)
class SurrogateTrainer:
    """A stand-in trainer with a planted answer and realistic noise; no TensorFlow.

    The loss curve has the shape measured on real digits: flat for small lambda, a shallow
    dip around ``lambda_star(N) = c * N ** -planted_alpha``, then a wall where the penalty
    starts to hurt: a soft rise towards ``wall_top``, cut short by a collapse to the loss
    of a net that predicts uniformly (``ln(n_classes)``). With ``u = ln(lambda_eff /
    lambda_star(N))`` and ``v = ln(lambda_eff / lambda_wall(N))``::

        final = base(N) - depth(N) * exp(-u**2 / (2 * dip_sd**2))
                + (wall_top - base(N)) * sigmoid(wall_steepness * v)
        final = ln(C)  where v > collapse_offset - wall_offset (exactly, without noise)

    The wall's midpoint ``lambda_wall(N)`` sits ``wall_offset`` nats (a factor 20) above
    the optimum at ``n_star`` parameters and scales as ``N ** -planted_wall_alpha``: by
    default the optimum's exponent (the two move together), or another one, so that a
    calibration can show when the wall's exponent is quoted for the optimum's.

    The noise is that of seed-blocked grids on digits (``MEASURED_*``, by parameter
    count): a trial's seed gives an offset that holds for every lambda trained with that
    seed below the wall (``MEASURED_BLOCK_SD``: initialisation and batch order; it fades up
    the wall, ``wall_share``), plus a residual drawn
    anew for each (seed, lambda) (``MEASURED_RESIDUAL_SD``), plus, at wide nets, a rare
    late spike (``SPIKE_*``). Both SD tables are scaled by ``seed_noise / 0.02``; 0 gives a
    clean surrogate (no spikes either). Each epoch approaches the final loss from ``ln(C)``
    exponentially, with the time constant measured on digits (``MEASURED_TAU*``: slower for
    narrow nets and larger lambdas, per seed block and per training; ``speed`` scales it; as a
    share of an 80-epoch budget, so a shorter run keeps the pace relative to its length), reaching it
    at the last epoch (runs under SHORT_RUN epochs keep a fixed 3-epoch approach), plus
    N(0, ``noise``) epoch noise. A collapsed net gets no noise. ``lambda_eff > diverge_above``
    gives NaN after a few epochs.

    The dip's depth ``depth(N)`` is ``dip`` times the relative depth measured at that size
    on digits (``MEASURED_DIP_SHAPE``: deepest for the narrowest nets, shallowest at width
    32), or ``dip`` at every size with ``dip_by_size=False``.

    ``seed_noise=0, dip=0.15, noise=0.005`` is a clean surrogate (signal-to-noise ~30),
    ``dip=0`` a flat one (no optimum).

    Args:
        planted_alpha: The exponent A in ``lambda_star(N) = c * N ** -A``.
        planted_wall_alpha: The wall's exponent (``None``: ``planted_alpha``).
        lambda_star_ref: ``lambda_star`` at ``n_star`` parameters (so ``c = lambda_star_ref * n_star ** A``).
        noise: Standard deviation of the per-epoch noise on the loss.
        seed_noise: Scale of the seed noise: the measured tables times ``seed_noise / 0.02``.
        dip: How far the loss at ``lambda_star`` lies below the flat floor (nats of
            loss), on average over the measured sizes.
        dip_by_size: Scale the depth by size as measured on digits (``MEASURED_DIP_SHAPE``).
        dip_sd: The dip's standard deviation in ``ln(lambda)``: a Gaussian in ``u``.
        spikes: Whether wide nets get Adam's rare late spikes.
    """

    planted_alpha: float = 0.0
    planted_wall_alpha: float | None = None
    lambda_star_ref: float = 2e-3
    n_star: float = 20_000.0
    noise: float = 0.003
    seed_noise: float = DEFAULT_SURROGATE_SEED_NOISE
    dip: float = DEFAULT_SURROGATE_DIP
    dip_sd: float = 1.2  # in ln(lambda): on digits a seed's dip spans a decade or more
    dip_by_size: bool = True
    # The wall's midpoint 20x above the optimum and steep, as on digits (the loss is flat
    # up to ~1e-2, has risen ~0.15-0.25 by 0.02-0.04 and collapses by ~0.07).
    wall_offset: float = math.log(20.0)
    wall_steepness: float = 2.5
    wall_top: float = 0.8
    collapse_offset: float = math.log(20.0) + 0.8  # a jump: a net either collapses or not
    diverge_above: float = 10.0
    spikes: bool = True
    # Scales the measured time constants of the approach to the final loss (0: at once).
    speed: float = 1.0
    # Wall time each epoch takes (sleeping), to stand in for training in tests and benchmarks.
    epoch_seconds: float = 0.0

    @property
    def _scale(self) -> float:
        return self.seed_noise / DEFAULT_SURROGATE_SEED_NOISE if DEFAULT_SURROGATE_SEED_NOISE else 0.0

    def block_sd(self, n_params: float) -> float:
        """SD of a seed's offset at ``n_params`` parameters (it holds across lambda)."""
        return self._scale * _interp_log(n_params, MEASURED_BLOCK_SD)

    def residual_sd(self, n_params: float) -> float:
        """SD of a training around its seed's own curve at ``n_params`` parameters."""
        return self._scale * _interp_log(n_params, MEASURED_RESIDUAL_SD)

    def seed_sd(self, n_params: float) -> float:
        """SD between independent seeds at one lambda (offset and residual, spikes aside)."""
        return math.hypot(self.block_sd(n_params), self.residual_sd(n_params))

    def spike_rate(self, n_params: float) -> float:
        """The chance that a training at ``n_params`` parameters ends in a late spike."""
        if not self.spikes or self._scale <= 0 or n_params < SPIKE_FROM_N:
            return 0.0
        return SPIKE_RATE * min(1.0, math.log(n_params / SPIKE_FROM_N) / math.log(MEASURED_N[-1] / SPIKE_FROM_N))

    def depth(self, n_params: float) -> float:
        """The dip's depth at ``n_params`` parameters."""
        return self.dip * (_interp_log(n_params, MEASURED_DIP_SHAPE) if self.dip_by_size else 1.0)

    def lambda_wall(self, n_params: float) -> float:
        """The planted wall's midpoint (where the soft rise is halfway to ``wall_top``)."""
        beta = self.planted_alpha if self.planted_wall_alpha is None else self.planted_wall_alpha
        return self.lambda_star_ref * math.exp(self.wall_offset) * (n_params / self.n_star) ** (-beta)

    def collapsed(self, n_params: float, strength: float) -> bool:
        """Whether the penalty has collapsed the net (it then predicts uniformly)."""
        v = math.log(max(strength, 1e-300) / self.lambda_wall(n_params))
        return v > self.collapse_offset - self.wall_offset

    def wall_share(self, n_params: float, strength: float) -> float:
        """How far up the wall's soft rise a trial is (0 below the wall, 1 at its top). A
        seed's offset fades in the same proportion: a net the penalty dominates depends
        less on its initialisation, and a collapsed one (exactly ln C) not at all. On the
        three default digits studies a fit whose offsets fade so matched the trials better
        than one whose offsets hold up the wall (residual sum of squares 2-3 % lower, with
        as many parameters), and it is the joint fit's own model
        (``autolambda.analysis.curve``). An offset held up to the collapse biased the
        surrogate's fits: the fit bent its wall to absorb the narrow nets' large offsets
        (SD 0.07) on the rise, and the dip's centre moved with it."""
        v = math.log(max(strength, 1e-300) / self.lambda_wall(n_params))
        return _sigmoid(self.wall_steepness * v)

    def time_constant(self, n_params: float, strength: float, seed: int) -> float:
        """Epochs over which a training at ``n_params`` and ``strength`` with ``seed``
        approaches its final loss (``MEASURED_TAU*``; drawn from generators of its own, so
        the final losses are those of a surrogate without a time course)."""
        if self.speed <= 0:
            return 0.0
        u = math.log(max(strength, 1e-300) / self.lambda_star(n_params))
        block = np.random.default_rng([seed, n_params, 7]).normal()
        own = np.random.default_rng([seed, n_params, int(np.float64(strength).view(np.int64)) & 0x7FFFFFFF, 7]).normal()
        log_tau = (math.log(_interp_log(n_params, MEASURED_TAU)) + _interp_log(n_params, MEASURED_TAU_LAMBDA_SLOPE) * u
                   + _interp_log(n_params, MEASURED_TAU_BLOCK_SD) * block + _interp_log(n_params, MEASURED_TAU_RESIDUAL_SD) * own)
        return self.speed * math.exp(min(log_tau, 6.0))

    def lambda_star(self, n_params: float) -> float:
        """The planted best penalty for a model of ``n_params`` parameters."""
        return self.lambda_star_ref * (n_params / self.n_star) ** (-self.planted_alpha)

    def final_loss(self, n_params: float, strength: float, n_classes: int = 10) -> float:
        """Noise-free loss at the end of a long run."""
        base = 0.1 + 0.4 * (n_params / 1_000.0) ** -0.3
        u = math.log(max(strength, 1e-300) / self.lambda_star(n_params))
        dip = self.depth(n_params) * math.exp(-(u**2) / (2 * self.dip_sd**2))
        if self.collapsed(n_params, strength):
            return math.log(n_classes)  # a collapsed net predicts every class alike
        return base - dip + (self.wall_top - base) * self.wall_share(n_params, strength)

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
        # The seed's offset holds for every lambda trained with it (common random numbers)
        # below the wall, and fades as the penalty takes over (``wall_share``); the residual,
        # the spike and the epoch noise are drawn anew for each (seed, lambda).
        offset = np.random.default_rng([request.seed, n_params]).normal(0.0, self.block_sd(n_params))
        rng = np.random.default_rng([request.seed, n_params, int(np.float64(strength).view(np.int64)) & 0x7FFFFFFF])
        final = self.final_loss(n_params, strength, n_classes)
        if not self.collapsed(n_params, strength):  # a collapsed net's loss is exactly ln(C), as on digits
            final += offset * (1.0 - self.wall_share(n_params, strength)) + rng.normal(0.0, self.residual_sd(n_params))
            if rng.random() < self.spike_rate(n_params):
                final += rng.uniform(*SPIKE_SIZE)
        start = math.log(n_classes)
        # The pace measured over digits' 80 epochs, as a share of the budget. Under SHORT_RUN
        # epochs (tests, quick looks) the last epochs' window would hold the approach itself:
        # such runs keep a fixed, fast approach (3 epochs), the same for every trial.
        short = request.epochs < SHORT_RUN
        tau = self.time_constant(n_params, strength, request.seed) * request.epochs / DEFAULT_EPOCHS
        for epoch in range(request.epochs):
            if self.epoch_seconds > 0:
                time.sleep(self.epoch_seconds)
            decay = math.exp(-(epoch + 1) / 3.0) if short else _approach(epoch + 1, request.epochs, tau)
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
