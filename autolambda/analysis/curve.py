"""The joint fit: one loss-versus-lambda curve shared by every model size.

Every complete trial enters one model; there is no per-size argmax, which on noisy data
is just the minimum of n draws from a flat curve. With ``x = ln(N / N_ref)`` and
``l = ln(lambda_eff)``::

    dip  = exp(-(l + alpha * x - c)**2 / (2 * s**2))        # 1 at the optimum
    wall = sigmoid(g * (l + beta * x - c_wall))              # 0 below the wall, 1 collapsed
    loss = floor[size] * (1 - wall) + top * wall - depth * dip

``floor`` is a size's loss with a negligible penalty, ``top`` the loss of a net the
penalty has collapsed (ln 10 on digits), the dip is centred on the optimum
``lambda_opt(N) = exp(c) * (N / N_ref) ** -alpha`` and the wall, where the loss is
halfway from the floor to collapse, on ``lambda_wall(N) = exp(c_wall) * (N / N_ref) ** -beta``.
This is the shape measured on digits (flat, a shallow dip, a wall); a quadratic bowl was
measured to be biased on it. Given the six curve parameters the loss is linear in the
floors, ``top`` and ``depth``, which are solved exactly (``depth >= 0``): each fit is a
search over six numbers, not ten or more.

Intervals are profile-likelihood intervals. An exponent is held at each point of a grid,
the rest refitted, and the 95 % interval holds the values whose residual sum of squares
lies within ``F(1, dof) * noise**2`` of the best, ``noise`` being the measured
trial-to-trial SD (the residuals below the wall, or replicates when they show more).
Where the dip is not distinguishable from noise (overall and in each half of the sizes),
or the interval reaches the edge of the grid, alpha is *not identified* and no interval
is given. The wall's exponent comes from a separate hurt-or-not fit (``estimate_wall``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

#: Where the profile of an exponent is computed: wider than alpha's search range, so an
#: answer near its bounds still gets a closed interval.
EXPONENT_GRID = np.round(np.arange(-2.5, 3.0001, 0.1), 10)
#: How much better (in ``delta RSS / noise**2``) the curve with a dip must fit
#: than the curve without it for the term to count as seen. The term's parameters do not
#: exist under "no dip", so the chi-square law does not hold; the value is calibrated on
#: flat surrogate studies (scripts/calibration.py: at 16 a flat curve was called identified
#: in at most 10 % of them) and on real digits: at 16, intervals with evidence under 32
#: held the surrogate's truth in only 75-89 % of studies, and two of three default digits
#: studies (seeds 0 and 2, evidence 17.5 and 17.3) gave optimum intervals that did not
#: overlap ([-0.46, 0.37] and [0.82, 2.55]). So 32: what used to be called "tentative".
DETECTION_THRESHOLD = 32.0
#: Evidence the dip must also carry within each half of the sizes (the smaller ones, the
#: larger ones): alpha is a slope, and a dip seen only among the small nets (or only the
#: large ones) does not fix it. Calibrated with DETECTION_THRESHOLD.
HALF_THRESHOLD = 4.0
_DIP_WIDTHS = (0.7, 1.4, 2.8)  # nats of lambda tried as starting dip widths
_WALL_STEEPNESS = (0.8, 2.0, 5.0)
# Bounds of the searched shape parameters. A dip narrower than half a nat would fit one
# or two lucky trials; the optimum lies at least half a nat below the wall's midpoint
# (where the loss is halfway to collapse), so the dip cannot be spent on the wall's shape.
_BOUNDS = {"s": (0.5, 3.0), "g": (0.3, 20.0), "gap": (0.5, np.inf)}
_LOG = ("s", "g")
_DIP = ("alpha", "c", "s")
_WALL = ("beta", "c_wall", "g")


@dataclass
class CurveData:
    """Complete trials as arrays: size index, x = ln(N/N_ref), l = ln(lambda_eff), loss."""

    group: np.ndarray
    x: np.ndarray
    l: np.ndarray  # noqa: E741 (the module docstring's name)
    y: np.ndarray
    n_groups: int
    n_ref: float  # the reference count of x; alpha does not depend on it

    @classmethod
    def from_rows(cls, widths: Sequence[int], n_params: Sequence[float], lambdas: Sequence[float],
                  values: Sequence[float], n_ref: float) -> "CurveData":
        """Arrays from per-trial lists (one entry per complete trial)."""
        index = {w: i for i, w in enumerate(sorted(set(widths)))}
        return cls(
            group=np.array([index[w] for w in widths], dtype=int),
            x=np.log(np.asarray(n_params, dtype=float) / n_ref),
            l=np.log(np.asarray(lambdas, dtype=float)),
            y=np.asarray(values, dtype=float),
            n_groups=len(index),
            n_ref=float(n_ref),
        )


@dataclass
class CurveFit:
    """One least-squares fit of the curve: the residual sum of squares and the parameters."""

    rss: float
    n: int
    n_free: int
    params: dict[str, float]  # the curve parameters, plus top and depth
    floors: list[float]
    rss_below_wall: float = 0.0  # of the trials the wall has not reached (it adds < 10 % there)
    n_below_wall: int = 0

    def predict(self, group: int, x: float, l: float) -> float:  # noqa: E741
        """The fitted loss of size ``group`` at ``x = ln(N/N_ref)``, ``l = ln(lambda_eff)``."""
        p = self.params
        loss = self.floors[group]
        if "beta" in p:
            wall = 0.5 * (1.0 + math.tanh(0.5 * p["g"] * (l + p["beta"] * x - p["c_wall"])))
            loss = loss * (1 - wall) + p["top"] * wall
        if "alpha" in p:
            loss -= p["depth"] * math.exp(-0.5 * ((l + p["alpha"] * x - p["c"]) / p["s"]) ** 2)
        return loss

    @property
    def residual_sd(self) -> float:
        """Residual SD of the trials below the wall (the noise when the study has no
        replicates). Trials on the wall are left out: there a net either collapses or
        not, a jump of up to ln 10 that says nothing about the noise around the dip."""
        n, rss = (self.n_below_wall, self.rss_below_wall) if self.n_below_wall else (self.n, self.rss)
        return math.sqrt(rss / max(n - self.n_free * n / self.n, 1))

    @property
    def residual_dof(self) -> int:
        """Degrees of freedom of ``residual_sd``."""
        n = self.n_below_wall or self.n
        return max(int(round(n - self.n_free * n / self.n)), 1)


@dataclass
class ExponentEstimate:
    """One exponent (the optimum's alpha or the wall's beta) with its profile interval."""

    name: str
    estimate: float | None
    ci: tuple[float, float] | None
    identified: bool
    reason: str = ""
    evidence: float = 0.0  # (RSS without the term - RSS with it) / noise**2
    evidence_by_half: tuple[float, float] = (0.0, 0.0)  # that gain in the smaller and the larger half of the sizes
    profile: list[tuple[float, float]] = field(default_factory=list)  # (value, delta RSS / noise**2)


class JointCurve:
    """Least-squares fits of the shared curve to one study's complete trials."""

    def __init__(self, data: CurveData) -> None:
        self.data = data
        self._onehot = np.zeros((len(data.y), data.n_groups))
        self._onehot[np.arange(len(data.y)), data.group] = 1.0
        self._fits: dict[tuple, CurveFit] = {}  # coarse fits without starts, by what they held

    def solve(self, theta: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Residuals and linear coefficients (floors, then top, then depth) at ``theta``.

        ``depth`` is held >= 0 (a bump is not a dip) and ``top`` within twice the range of
        the losses seen above the largest (else a far-away wall with a huge top mimics an
        exponential ramp); a coefficient out of its range is fixed at the bound and the
        rest re-solved.
        """
        d = self.data
        g = d.n_groups
        wall = dip = None
        if "beta" in theta:
            wall = 0.5 * (1.0 + np.tanh(0.5 * theta["g"] * (d.l + theta["beta"] * d.x - theta["c_wall"])))
        if "alpha" in theta:
            z = (d.l + theta["alpha"] * d.x - theta["c"]) / theta["s"]
            dip = -np.exp(-0.5 * z * z)
        top_cap = float(d.y.max() + 2 * np.ptp(d.y))
        fixed_top = fixed_depth = None
        for _ in range(3):
            target = d.y.copy()
            cols = [self._onehot * (1.0 - wall)[:, None]] if wall is not None else [self._onehot]
            if wall is not None:
                if fixed_top is None:
                    cols.append(wall[:, None])
                else:
                    target -= fixed_top * wall
            if dip is not None:
                if fixed_depth is None:
                    cols.append(dip[:, None])
                else:
                    target -= fixed_depth * dip
            design = np.hstack(cols)
            coef = np.linalg.lstsq(design, target, rcond=None)[0]
            residual = target - design @ coef
            k = g
            top = depth = None
            if wall is not None:
                top = fixed_top if fixed_top is not None else coef[k]
                k += fixed_top is None
            if dip is not None:
                depth = fixed_depth if fixed_depth is not None else coef[k]
            if depth is not None and depth < 0:
                fixed_depth = 0.0
                continue
            if top is not None and top > top_cap:
                fixed_top = top_cap
                continue
            break
        full = list(coef[:g]) + ([top] if wall is not None else []) + ([depth] if dip is not None else [])
        return residual, np.asarray(full, dtype=float)

    def group_sd(self, params: dict[str, float], noise_sd: float) -> np.ndarray:
        """Noise SD per size: the residual SD of each size's trials below the wall, scaled
        so that their pooled value is ``noise_sd`` (the measured noise). On digits the
        narrow nets differ far more between seeds (SD ~0.04: which of their few units die is a
        lottery) than the wide ones (~0.015); one pooled SD overstates the wide nets' floors'
        uncertainty and understates the narrow ones'."""
        d = self.data
        residual, coef = self.solve(_shape(params))
        below = _below_wall(d, params, coef)
        sds = np.full(d.n_groups, np.nan)
        for k in range(d.n_groups):
            r = residual[(d.group == k) & below]
            if len(r) >= 4:
                sds[k] = math.sqrt(float(r @ r) / (len(r) - 1))
        if np.all(np.isnan(sds)):
            return np.full(d.n_groups, noise_sd)
        sds = np.where(np.isnan(sds), np.nanmax(sds), sds)
        pooled = math.sqrt(float(np.mean(sds**2)))
        return sds * (noise_sd / pooled) if pooled > 0 else np.full(d.n_groups, noise_sd)

    def floor_cov(self, params: dict[str, float], group_sd: np.ndarray | None = None) -> np.ndarray:
        """Covariance of the fitted floors, from the linear part (floors, top, depth) at the
        curve shape ``params``: ``(D'WD)^-1`` with each trial weighted by its size's noise
        variance (``group_sd``), or ``(D'D)^-1`` per unit noise variance without it. The
        shape parameters' own uncertainty is not included."""
        d = self.data
        cols = [self._onehot]
        if "beta" in params:
            wall = 0.5 * (1.0 + np.tanh(0.5 * params["g"] * (d.l + params["beta"] * d.x - params["c_wall"])))
            cols = [self._onehot * (1.0 - wall)[:, None], wall[:, None]]
        if "alpha" in params and params.get("depth", 0.0) > 0:
            z = (d.l + params["alpha"] * d.x - params["c"]) / params["s"]
            cols.append(-np.exp(-0.5 * z * z)[:, None])
        design = np.hstack(cols)
        if group_sd is not None:
            design = design / np.asarray(group_sd, dtype=float)[d.group][:, None]
        return np.linalg.pinv(design.T @ design)[: d.n_groups, : d.n_groups]

    def rss(self, theta: dict[str, float]) -> float:
        r = self.solve(theta)[0]
        return float(r @ r)

    def fit(self, *, dip: bool = True, wall: bool = True, fixed: dict[str, float] | None = None,
            starts: Sequence[dict[str, float]] = (), coarse: bool = True) -> CurveFit:
        """Best fit with the parameters in ``fixed`` held: the best of ``starts`` and (with
        ``coarse``) a coarse grid of starts, refined by a bounded trust-region
        least-squares search. Without ``coarse``, each start is also tried with its dip
        moved across the lambdas tried (the cheap part of the grid)."""
        key = (dip, wall, tuple(sorted((fixed or {}).items())))
        if coarse and not starts and key in self._fits:
            return self._fits[key]
        fit = self._fit(dip, wall, dict(fixed or {}), starts, coarse)
        if coarse and not starts:
            self._fits[key] = fit
        return fit

    def _fit(self, dip: bool, wall: bool, fixed: dict[str, float], starts: Sequence[dict[str, float]], coarse: bool) -> CurveFit:
        from scipy.optimize import least_squares

        names = list((_DIP if dip else ()) + (_WALL if wall else ()))
        if dip and wall:
            names[names.index("c")] = "gap"  # the optimum is searched as a distance below the wall
        free = [n for n in names if n not in fixed]

        def complete(theta: dict[str, float]) -> dict[str, float]:
            theta = dict(theta)
            if "gap" in names:
                theta.setdefault("gap", theta["c_wall"] - theta.get("c", theta["c_wall"] - 1.0))
                theta["gap"] = max(theta["gap"], _BOUNDS["gap"][0])
                theta["c"] = theta["c_wall"] - theta["gap"]
            for n in _LOG:
                if n in theta:
                    theta[n] = min(max(theta[n], _BOUNDS[n][0]), _BOUNDS[n][1])
            return theta

        candidates = [complete({n: s[n] for n in s if n in names or n == "c"} | fixed) for s in starts]
        if coarse:
            grid = self._grid(dip, wall, fixed)
            candidates += [complete(c | fixed) for c in grid]
            if dip and wall:
                # The optimised wall of the curve without a dip, with each dip start: the
                # nested fit can then never end worse than the curve without a dip.
                base = self.fit(dip=False, fixed={k: v for k, v in fixed.items() if k in _WALL}).params
                base_wall = {k: base[k] for k in _WALL}
                candidates += [complete(c | base_wall | fixed) for c in grid if "alpha" in c]
        elif dip and starts:
            for centre in np.linspace(*np.percentile(self.data.l, [3, 97]), 8):
                moved = {n: starts[0][n] for n in starts[0] if n in names or n == "c"} | {"c": float(centre)} | fixed
                moved.pop("gap", None)
                candidates.append(complete(moved))
        scored = sorted((self.rss(c), i) for i, c in enumerate(candidates))
        best_rss, best_theta = scored[0][0], candidates[scored[0][1]]
        if free:
            # The wall's midpoint stays near the lambdas tried: beyond them it is a ramp of any height.
            bounds = _BOUNDS | {"c_wall": (float(self.data.l.min()) - 2.0, float(self.data.l.max()) + 1.0)}
            lo = np.array([math.log(bounds[n][0]) if n in _LOG else bounds.get(n, (-np.inf,))[0] for n in free])
            hi = np.array([math.log(bounds[n][1]) if n in _LOG else bounds.get(n, (None, np.inf))[1] for n in free])

            def unpack(v: np.ndarray) -> dict[str, float]:
                return complete(fixed | {n: (math.exp(x) if n in _LOG else float(x)) for n, x in zip(free, v)})

            for _, i in scored[:2]:
                v0 = np.array([math.log(candidates[i][n]) if n in _LOG else candidates[i][n] for n in free])
                v0 = np.clip(v0, lo + 1e-9, np.minimum(hi - 1e-9, 1e6))
                res = least_squares(lambda v: self.solve(unpack(v))[0], v0, bounds=(lo, hi), method="trf",
                                    xtol=1e-6, ftol=1e-10, max_nfev=200)
                rss = float(res.fun @ res.fun)
                if rss < best_rss:
                    best_rss, best_theta = rss, unpack(res.x)
        residual, coef = self.solve(best_theta)
        g = self.data.n_groups
        below = _below_wall(self.data, best_theta, coef)
        params = {k: v for k, v in best_theta.items() if k != "gap"}
        if wall:
            params["top"] = float(coef[g])
        if dip:
            params["depth"] = float(coef[-1])
        n_free = g + len(free) + int(wall) + int(dip)
        return CurveFit(best_rss, len(self.data.y), n_free, params, [float(v) for v in coef[:g]],
                        float(residual[below] @ residual[below]), int(below.sum()))

    def _grid(self, dip: bool, wall: bool, fixed: dict[str, float]) -> list[dict[str, float]]:
        """Coarse starting points: dip centres and wall positions across the lambdas tried."""
        lo, hi = np.percentile(self.data.l, [3, 97])
        centres = np.linspace(lo, hi, 8)
        walls = [{"beta": b, "c_wall": c, "g": g} for b in ([fixed["beta"]] if "beta" in fixed else (-0.5, 0.0, 0.5, 1.0))
                 for c in centres[3:] for g in _WALL_STEEPNESS] if wall else [{}]
        if not dip:
            return walls
        wall_fixed = {k: v for k, v in fixed.items() if k in _WALL}
        best_wall = min(walls, key=lambda w: self.rss(w | wall_fixed)) if wall else {}
        alphas = [fixed["alpha"]] if "alpha" in fixed else (-0.5, 0.0, 0.5, 1.0)
        starts = [best_wall | {"alpha": a, "c": c, "s": s} for a in alphas for c in centres for s in _DIP_WIDTHS]
        if wall:  # the optimum lies below the wall
            starts = [t for t in starts if t["c"] <= best_wall["c_wall"] - _BOUNDS["gap"][0]] or starts
        return starts

    def profile(self, name: str, grid: np.ndarray, best: CurveFit, *, stop_above: float) -> np.ndarray:
        """RSS with ``name`` held at each grid point and the rest refitted.

        Walks out from the best value in both directions, each point starting from its
        neighbour's fit (and that fit with its dip moved across the lambdas tried); stops a direction once the RSS has stayed
        ``stop_above`` over the best for three points (``inf`` there).
        """
        out = np.full(len(grid), np.inf)
        if not len(grid):
            return out
        curve = _shape(best.params)
        centre = int(np.argmin(np.abs(grid - curve[name])))
        for indices in (range(centre, len(grid)), range(centre - 1, -1, -1)):
            start, high = dict(curve), 0
            for i in indices:
                fit = self.fit(fixed={name: float(grid[i])}, starts=[start], coarse=False)
                out[i] = fit.rss
                start = _shape(fit.params)
                high = high + 1 if fit.rss - best.rss > stop_above else 0
                if high >= 3:
                    break
        return out


def _below_wall(data: CurveData, theta: dict[str, float], coef: np.ndarray) -> np.ndarray:
    """Trials the wall has not reached (it adds less than 10 % to their loss), given the
    shape ``theta`` and the linear coefficients ``coef`` (floors, then top) of a fit."""
    if "beta" not in theta:
        return np.ones(len(data.y), dtype=bool)
    g = data.n_groups
    share = 0.5 * (1.0 + np.tanh(0.5 * theta["g"] * (data.l + theta["beta"] * data.x - theta["c_wall"])))
    floors = coef[:g][data.group]
    return (coef[g] - floors) * share < 0.1 * floors


def profile_interval(grid: np.ndarray, delta: np.ndarray, level: float) -> tuple[tuple[float, float] | None, str]:
    """The interval where ``delta <= level`` (the hull, if the set has gaps), interpolated
    between grid points; ``None`` and the reason when it reaches the edge of the grid."""
    if len(grid) == 0:
        return None, "its interval was not computed (a quick look, intervals=False)"
    inside = np.flatnonzero(delta <= level)
    if len(inside) == 0:
        return None, "the profile has no minimum on the grid"
    i, j = int(inside[0]), int(inside[-1])
    if i == 0 or j == len(grid) - 1:
        edge = grid[0] if i == 0 else grid[-1]
        return None, f"its 95 % interval runs to the edge of the range examined ({edge:+.1f}): the data do not bound it"

    def cross(a: int, b: int) -> float:  # a outside, b inside
        if not math.isfinite(delta[a]):
            return float(grid[a])
        da, db = delta[a] - level, delta[b] - level
        return float(grid[b] + (grid[a] - grid[b]) * (-db) / (da - db))

    return (cross(i - 1, i), cross(j + 1, j)), ""


def estimate_optimum(data: CurveData, noise: tuple[float, int] | None = None, test_noise: tuple[float, int] | None = None,
                     *, grid: np.ndarray = EXPONENT_GRID, threshold: float = DETECTION_THRESHOLD,
                     half_threshold: float = HALF_THRESHOLD, curve: JointCurve | None = None
                     ) -> tuple[CurveFit, ExponentEstimate, float, int]:
    """Fit the joint curve and profile the optimum's exponent alpha (module docstring).

    Two noise figures, as (SD, degrees of freedom): ``test_noise`` scales the evidence for a
    dip (default: the residual SD of the curve without one, the right variance when there
    is no dip), ``noise`` scales the interval (default: the residual SD of the full fit).

    Args:
        data: The complete trials.
        noise: Noise for the interval.
        test_noise: Noise for the dip's evidence.
        grid: Values at which alpha's profile is computed.
        threshold: Evidence needed to call the dip seen (``DETECTION_THRESHOLD``).
        half_threshold: Evidence needed in each half of the sizes (``HALF_THRESHOLD``).
        curve: A ``JointCurve`` of ``data`` whose fits may be reused.

    Returns:
        The full fit, alpha's estimate, and the interval's noise SD with its degrees of freedom.
    """
    from scipy.special import fdtri  # the F quantile; scipy.stats takes a second to import

    curve = curve or JointCurve(data)
    full = curve.fit()
    reduced = curve.fit(dip=False)
    noise_sd, noise_dof = noise or (full.residual_sd, full.residual_dof)
    test_sd, _ = test_noise or (reduced.residual_sd, reduced.residual_dof)
    var = max(noise_sd, 1e-12) ** 2
    level = float(fdtri(1, max(noise_dof, 1), 0.95))
    test_var = max(test_sd, 1e-12) ** 2
    evidence = max(reduced.rss - full.rss, 0.0) / test_var
    gain = (curve.solve(_shape(reduced.params))[0] ** 2 - curve.solve(_shape(full.params))[0] ** 2) / test_var
    small = data.group < data.n_groups / 2
    halves = (float(gain[small].sum()), float(gain[~small].sum()))
    if full.params["depth"] <= 0 or evidence < threshold:
        return full, ExponentEstimate("alpha", None, None, False, evidence=evidence, evidence_by_half=halves, reason=(
            f"the dip below the flat floor is not distinguishable from noise (evidence {evidence:.1f}, "
            f"{threshold:g} needed; residual SD without a dip {test_sd:.3g}, depth {max(full.params['depth'], 0):.3g})")), noise_sd, noise_dof
    if min(halves) < half_threshold:
        where = "smaller" if halves[0] < halves[1] else "larger"
        return full, ExponentEstimate("alpha", None, None, False, evidence=evidence, evidence_by_half=halves, reason=(
            f"the dip is seen only at one end of the sizes (evidence {halves[0]:.1f} among the smaller half, "
            f"{halves[1]:.1f} among the larger; {half_threshold:g} needed in each): the {where} nets do not place it")), noise_sd, noise_dof
    # The grid plus the best fit itself: a sharp profile can fall between grid points.
    grid = np.unique(np.append(grid, round(full.params["alpha"], 6))) if len(grid) else grid
    rss = curve.profile("alpha", grid, full, stop_above=4 * level * var + 1e-12)
    best = min(float(rss.min()), full.rss) if len(rss) else full.rss
    delta = (rss - best) / var
    prof = [(float(a), float(d)) for a, d in zip(grid, delta) if math.isfinite(d)]
    ci, reason = profile_interval(grid, delta, level)
    if ci is None:
        return full, ExponentEstimate("alpha", None, None, False, reason=reason, evidence=evidence, profile=prof,
                                      evidence_by_half=halves), noise_sd, noise_dof
    ci = tuple(_refine(lambda a: (curve.fit(fixed={"alpha": a}, starts=[full.params], coarse=False).rss - best) / var,
                       grid, delta, level, edge)
               for edge in ci)
    point = float(grid[int(np.argmin(rss))])
    estimate = ExponentEstimate("alpha", min(max(point, ci[0]), ci[1]), ci, True, evidence=evidence, profile=prof,
                                evidence_by_half=halves)
    return full, estimate, noise_sd, noise_dof


def _shape(params: dict[str, float]) -> dict[str, float]:
    """The curve parameters of a fit (without the linear ones)."""
    return {k: v for k, v in params.items() if k not in ("top", "depth")}


def _refine(delta_at: Any, grid: np.ndarray, delta: np.ndarray, level: float, edge: float, steps: int = 4) -> float:
    """Bisect the crossing of ``level`` near ``edge`` between its two grid neighbours."""
    i = int(np.searchsorted(grid, edge))
    if i == 0 or i >= len(grid):
        return edge
    lo, hi = float(grid[i - 1]), float(grid[i])
    lo_in = delta[i - 1] <= level  # which end is inside the interval
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if (delta_at(mid) <= level) == lo_in:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


#: A share of trials on either side of the wall is misclassified by noise (a lucky
#: over-regularised seed, an unlucky tiny-lambda one): the wall's likelihood allows it, so
#: one stray trial cannot move the wall by decades.
_LAPSE = 0.02


#: Floor draws used to carry the floors' uncertainty into the wall's interval.
FLOOR_DRAWS = 60


def estimate_wall(data: CurveData, floors: Sequence[float], *, cost: float = 0.25,
                  grid: np.ndarray = EXPONENT_GRID, point_only: bool = False,
                  floor_cov: np.ndarray | None = None, seed: int = 0) -> tuple[ExponentEstimate, dict[str, Any]]:
    """Where the penalty starts to hurt, and how that scales with N (the exponent beta).

    A trial is *hurt* when its loss exceeds its size's fitted floor by more than
    ``cost`` (a fraction of the floor). The chance of being hurt is a logistic function
    of ``l + beta * x`` (with a small lapse rate), so ``lambda_wall(N) = exp(c) *
    (N / N_ref) ** -beta`` is the lambda at which half the trials cost more than
    ``cost``. Hurt-or-not does not care how far a collapsed net fell, so collapses (loss
    jumping to ln 10) do not dominate as they would in least squares. The interval is
    the profile-likelihood one (chi-square, 1 degree of freedom), widened for the floors'
    own uncertainty when ``floor_cov`` (their covariance) is given: "hurt" is measured
    against fitted floors, and on digits moving them within their standard errors moved
    the estimate by as much as the profile interval's own half-width. The estimate is
    refitted for ``FLOOR_DRAWS`` floor vectors drawn from N(floors, floor_cov); the SD of
    those estimates is added in quadrature to each side of the profile interval.
    """
    from scipy.optimize import minimize
    from scipy.special import chdtri

    floors_arr = np.asarray(floors)[data.group]
    hurt = data.y > floors_arr * (1.0 + cost)
    info: dict[str, Any] = {"cost": cost, "n_hurt": int(hurt.sum()), "n_trials": int(len(hurt))}
    sizes_hurt = len(set(data.group[hurt].tolist()))
    if hurt.sum() < 3 or (~hurt).sum() < 3 or sizes_hurt < 2:
        return ExponentEstimate("beta", None, None, False, reason=(
            f"{int(hurt.sum())} trial(s) at {sizes_hurt} size(s) cost more than {cost:.0%} of the loss: "
            "too few to place the wall (3 at 2 sizes needed); try larger lambdas")), info

    def nll(beta: float, c: float, log_g: float) -> float:
        z = math.exp(min(max(log_g, -4.0), 3.0)) * (data.l + beta * data.x - c)
        p = _LAPSE + (1 - 2 * _LAPSE) * 0.5 * (1.0 + np.tanh(0.5 * z))
        return float(-(np.log(p[hurt]).sum() + np.log1p(-p[~hurt]).sum()))

    centres = np.linspace(data.l.min(), data.l.max(), 12)

    def fit(beta: float | None, start: tuple[float, ...] | None = None) -> tuple[float, tuple[float, ...]]:
        betas = (beta,) if beta is not None else (-0.5, 0.0, 0.5, 1.0)
        starts = [(b, c, g) for b in betas for c in centres for g in (-1.0, 0.5, 2.0)] + ([start] if start else [])
        best = min(starts, key=lambda t: nll(*t))
        if beta is None:
            res = minimize(lambda v: nll(*v), np.array(best), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8})
            return float(res.fun), tuple(res.x)
        res = minimize(lambda v: nll(beta, *v), np.array(best[1:]), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8})
        return float(res.fun), (beta, *res.x)

    best_nll, theta = fit(None)
    if point_only:
        return ExponentEstimate("beta", float(theta[0]), None, False, reason="point estimate only"), info
    level = float(chdtri(1, 0.05))  # the chi-square 95 % quantile, 1 degree of freedom
    delta = np.empty(len(grid))
    start = theta
    for i, b in enumerate(grid):
        value, start = fit(float(b), start)
        delta[i] = 2 * (value - best_nll)
    if len(delta) and delta.min() < 0:  # the grid found a better fit than the free one
        best_nll += delta.min() / 2
        theta = fit(float(grid[int(np.argmin(delta))]))[1]
        delta -= delta.min()
    prof = [(float(a), float(d)) for a, d in zip(grid, delta)]
    info |= {"c": float(theta[1]), "steepness": float(math.exp(min(max(theta[2], -4.0), 3.0)))}
    ci, reason = profile_interval(grid, delta, level)
    if ci is None:
        return ExponentEstimate("beta", None, None, False, reason=reason, profile=prof), info
    estimate = float(min(max(theta[0], ci[0]), ci[1]))
    if floor_cov is not None and len(grid):
        spread = _floor_spread(data, floors, floor_cov, cost, seed)
        info["floor_sd"] = spread
        if spread > 0:
            z = float(np.sqrt(level))  # 1.96
            lo = estimate - math.hypot(estimate - ci[0], z * spread)
            hi = estimate + math.hypot(ci[1] - estimate, z * spread)
            if lo < grid[0] or hi > grid[-1]:
                return ExponentEstimate("beta", None, None, False, profile=prof, reason=(
                    f"with the floors' uncertainty its 95 % interval runs past the range examined "
                    f"({grid[0]:+.1f} .. {grid[-1]:+.1f}): the data do not bound it")), info
            ci = (lo, hi)
    return ExponentEstimate("beta", estimate, ci, True, profile=prof), info


def _floor_spread(data: CurveData, floors: Sequence[float], cov: np.ndarray, cost: float, seed: int) -> float:
    """SD of the wall's exponent over floors drawn from N(floors, cov) (see estimate_wall)."""
    rng = np.random.default_rng(seed)
    k = len(floors)
    chol = np.linalg.cholesky(np.asarray(cov, dtype=float) + 1e-12 * np.eye(k))
    betas = []
    for _ in range(FLOOR_DRAWS):
        drawn = np.asarray(floors, dtype=float) + chol @ rng.standard_normal(k)
        estimate = estimate_wall(data, list(drawn), cost=cost, point_only=True)[0].estimate
        if estimate is not None:
            betas.append(estimate)
    return float(np.std(betas, ddof=1)) if len(betas) > 2 else 0.0


def replicate_noise(keys: Sequence[Any], values: Sequence[float]) -> tuple[float, int]:
    """Pooled SD of trials that share the same settings (equal ``keys``), and its degrees
    of freedom; ``(0.0, 0)`` when no setting was trained twice."""
    groups: dict[Any, list[float]] = {}
    for k, v in zip(keys, values):
        groups.setdefault(k, []).append(v)
    ss, dof = 0.0, 0
    for vals in groups.values():
        if len(vals) > 1:
            arr = np.asarray(vals)
            ss += float(((arr - arr.mean()) ** 2).sum())
            dof += len(vals) - 1
    return (math.sqrt(ss / dof), dof) if dof else (0.0, 0)


#: Where the loss depends on lambda (the informative band): within this share of the
#: dip's depth of its centre (the dip reaches a tenth of its depth 2.15 widths out), or
#: on the wall's rise, from 1 % of the way to collapse up to 90 % (beyond, a net has
#: collapsed and its loss says only "too much").
BAND_DIP_SHARE = 0.1
BAND_WALL_SHARES = (0.01, 0.9)


def band_edges(params: dict[str, float], x: float) -> tuple[float, float] | None:
    """The informative band of ln(lambda_eff) for a size at ``x = ln(N/N_ref)`` under a
    joint fit's ``params``: from the dip's lower tenth to 90 % up the wall (the hull; the
    loss depends on lambda everywhere between). ``None`` without a wall in ``params``."""
    if "beta" not in params:
        return None
    wall = params["c_wall"] - params["beta"] * x
    lo_share, hi_share = BAND_WALL_SHARES
    lo = wall + math.log(lo_share / (1 - lo_share)) / params["g"]
    hi = wall + math.log(hi_share / (1 - hi_share)) / params["g"]
    if "alpha" in params and params.get("depth", 0.0) > 0:
        reach = params["s"] * math.sqrt(-2.0 * math.log(BAND_DIP_SHARE))
        centre = params["c"] - params["alpha"] * x
        lo = min(lo, centre - reach)
        hi = max(hi, centre + reach)
    return lo, hi


def informative_share(params: dict[str, float], data: CurveData) -> float | None:
    """Share of ``data``'s trials inside the informative band of ``params`` (``None``
    without a wall in the fit)."""
    if not len(data.y) or "beta" not in params:
        return None
    inside = 0
    for x, l in zip(data.x, data.l):  # noqa: E741
        lo, hi = band_edges(params, float(x))
        inside += lo <= l <= hi
    return inside / len(data.y)
