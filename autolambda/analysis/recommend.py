"""A lambda a user can apply: for a parameter count N, the optimum's lambda_eff with its
95 % interval, the range that costs at most a tolerance over the optimum, the wall there,
and the regret of keeping the reference size's lambda unchanged.

The interval is a profile-likelihood one, like alpha's: the data are re-expressed with
``x`` measured from N (``CurveData.shifted``), so that the dip's centre ``c`` of the joint
fit *is* ``ln lambda_opt(N)``; ``c`` is held at each point of a grid, everything else
(alpha included) refitted, and the interval holds the values whose residual sum of
squares lies within ``F(1, dof) * noise**2`` of the best. It is widest far from the sizes
the study trained, as it should be.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from autolambda.analysis.curve import CurveFit, JointCurve, curve_loss, curve_shape
from autolambda.analysis.estimators import profile_interval

#: Half-width (nats of lambda) and step of the grid on which ln lambda_opt(N) is profiled.
_REACH = 5.0
_STEP = 0.2


@dataclass
class Recommendation:
    """What to use at ``n_params`` (see the module docstring); lambdas are ``lambda_eff``."""

    n_params: int
    lambda_opt: float
    ci: tuple[float, float] | None  # None: the profile reaches the end of its grid
    tolerance: float  # the near-optimal range costs at most this share of the optimum's loss
    near_range: tuple[float | None, float | None]  # None at an end: the range runs past what the fit covers
    lambda_wall: float | None  # where the loss exceeds the floor by the wall's cost (None: wall not identified)
    reference_n: float  # N_ref: the size whose lambda "unchanged" means
    reference_lambda: float  # the optimum at N_ref
    regret: float  # fitted loss at N with reference_lambda minus the loss at lambda_opt
    extrapolated: bool  # N outside the sizes the study trained

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def keras_line(penalty: str | None, strength: float, spec: str = ".3g") -> str | None:
    """Where a recommended ``lambda_eff`` goes in Keras for a study's penalty kind (``None``
    for kinds with no single number, e.g. ``l1l2``)."""
    value = format(strength, spec)
    return {"l2": f"kernel_regularizer=keras.regularizers.L2({value})",
            "l1": f"kernel_regularizer=keras.regularizers.L1({value})",
            "weight_decay": f"the optimizer's weight_decay={value}"}.get(penalty or "")


def span(near: tuple[float | None, float | None], spec: str = ".3g") -> str:
    """A near-best range; an open end (``None``) runs past what the fit covers."""
    return f"{'<' if near[0] is None else format(near[0], spec)} - {'>' if near[1] is None else format(near[1], spec)}"


def recommend(curve: JointCurve, full: CurveFit, sizes: Sequence[int], *, alpha: float, c_opt: float,
              noise: tuple[float, int], tolerance: float = 0.01, wall: tuple[float, float] | None = None,
              cutoff: float | None = None) -> list[Recommendation]:
    """Recommendations for each of ``sizes`` (parameter counts).

    Args:
        curve: The study's (weighted) joint curve.
        full: Its best fit with a dip.
        sizes: Parameter counts to recommend for.
        alpha: The optimum's exponent (the reported estimate) and ``c_opt`` its centre at
            ``curve.data.n_ref``, so that ``lambda_opt(N) = exp(c_opt) * (N / N_ref) ** -alpha``.
        noise: (SD, degrees of freedom) of the noise that scales the interval.
        tolerance: Share of the optimum's loss the near-optimal range may cost.
        wall: ``(c, beta)`` of the identified wall (``lambda_wall = exp(c) * (N/N_ref)**-beta``).
        cutoff: The profile cutoff (delta RSS / noise**2) of alpha's interval, calibrated
            for the study (``autolambda.analysis.estimators.bootstrap_level``); at least F(1, dof).
    """
    from scipy.special import fdtri

    data = curve.data
    level = max(float(fdtri(1, max(noise[1], 1), 0.95)), cutoff or 0.0)
    var = max(noise[0], 1e-12) ** 2
    trained = np.exp(data.x) * data.n_ref
    out = []
    for n in sizes:
        x = math.log(n / data.n_ref)
        centre = c_opt - alpha * x
        ci = _profile_centre(curve, full, x, centre, level, var)
        params = dict(full.params) | {"alpha": alpha, "c": c_opt}
        floor = float(np.interp(x, *_floor_line(curve, full)))
        grid = np.linspace(centre - 8.0, centre + 8.0, 1601)
        loss = np.array([_loss(params, floor, x, l) for l in grid])  # noqa: E741
        i = int(np.argmin(np.abs(grid - centre)))
        near_range = _near_range(grid, loss, i, float(loss[i]) + tolerance * abs(float(loss[i])))
        best = float(loss[i])
        reference = c_opt  # the optimum at N_ref (x = 0)
        regret = _loss(params, floor, x, reference) - best
        out.append(Recommendation(
            n_params=int(n), lambda_opt=math.exp(centre), ci=ci, tolerance=tolerance, near_range=near_range,
            lambda_wall=math.exp(wall[0] - wall[1] * x) if wall else None, reference_n=data.n_ref,
            reference_lambda=math.exp(reference), regret=float(regret),
            extrapolated=bool(n < trained.min() * 0.99 or n > trained.max() * 1.01)))
    return out


def _profile_centre(curve: JointCurve, full: CurveFit, x: float, centre: float, level: float, var: float
                    ) -> tuple[float, float] | None:
    """The 95 % profile interval of ln lambda_opt at ``x``, as lambdas (``None`` if unbounded)."""
    shifted = JointCurve(curve.data.shifted(x), curve.weights)
    start = curve_shape(full.params) | {"c": centre}
    if "beta" in start:  # the wall's position moves with the reference size too
        start["c_wall"] = full.params["c_wall"] - full.params["beta"] * x
    best = shifted.fit(starts=[start], coarse=False)
    grid = np.round(np.arange(centre - _REACH, centre + _REACH + 1e-9, _STEP), 10)
    rss = shifted.profile("c", grid, best, stop_above=4 * level * var + 1e-12, coarse=False)
    delta = (rss - min(float(rss.min()), best.rss, full.rss)) / var
    ci, _ = profile_interval(grid, delta, level)
    return (math.exp(ci[0]), math.exp(ci[1])) if ci else None


def _near_range(grid: np.ndarray, loss: np.ndarray, i: int, limit: float) -> tuple[float | None, float | None]:
    """The lambdas of the contiguous run around ``grid[i]`` whose loss is within ``limit``;
    an end that reaches the grid's is ``None`` (the range runs on: the dip is too shallow
    for the tolerance to close it there)."""
    lo = hi = i
    while lo > 0 and loss[lo - 1] <= limit:
        lo -= 1
    while hi < len(grid) - 1 and loss[hi + 1] <= limit:
        hi += 1
    return (None if lo == 0 else float(math.exp(grid[lo])), None if hi == len(grid) - 1 else float(math.exp(grid[hi])))


def _floor_line(curve: JointCurve, full: CurveFit) -> tuple[np.ndarray, np.ndarray]:
    """Each trained size's x and fitted floor, in order (interpolated between sizes, held beyond)."""
    xs = np.array([float(np.mean(curve.data.x[curve.data.group == k])) for k in range(curve.data.n_groups)])
    order = np.argsort(xs)
    return xs[order], np.asarray(full.floors)[order]


def _loss(params: dict[str, float], floor: float, x: float, l: float) -> float:  # noqa: E741
    """The fitted loss at ``x``, ``l = ln lambda_eff`` for a size whose floor is ``floor``."""
    return float(curve_loss(params, x, np.asarray(l, dtype=float), floor))
