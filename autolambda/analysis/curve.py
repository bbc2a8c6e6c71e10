"""The joint fit: one loss-versus-lambda curve shared by every model size.

Every complete trial enters one model; there is no per-size argmax, which on noisy data
is just the minimum of n draws from a flat curve. With ``x = ln(N / N_ref)`` and
``l = ln(lambda_eff)``::

    dip  = exp(-(l + alpha * x - c)**2 / (2 * s**2))        # 1 at the optimum
    wall = sigmoid(g * (l + beta * x - c_wall))              # 0 below the wall, 1 collapsed
    loss = floor[size, block] * (1 - wall) + top * wall - depth * dip

``floor`` is a size's loss with a negligible penalty, one per seed block when trials
share seeds (common random numbers: on digits a seed's curve against lambda is smooth
and seeds differ mostly by a constant offset, which a floor per block removes), ``top`` the loss of a net the
penalty has collapsed (ln 10 on digits), the dip is centred on the optimum
``lambda_opt(N) = exp(c) * (N / N_ref) ** -alpha`` and the wall, where the loss is
halfway from the floor to collapse, on ``lambda_wall(N) = exp(c_wall) * (N / N_ref) ** -beta``.
This is the shape measured on digits (flat, a shallow dip, a wall); a quadratic bowl was
measured to be biased on it. Given the six curve parameters the loss is linear in the
floors, ``top`` and ``depth``, which are solved exactly (``depth >= 0``): each fit is a
search over six numbers, not ten or more. The exponents' intervals are made of these
fits in ``autolambda.analysis.estimators``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

_DIP_WIDTHS = (0.7, 1.2, 2.0)  # nats of lambda tried as starting dip widths
_WALL_STEEPNESS = (0.8, 2.0, 5.0)
# Bounds of the searched shape parameters. A dip narrower than half a nat would fit one
# or two lucky trials; one wider than 2 nats (its half-depth 2.4 nats, a decade, either
# side) is no dip but the foot of the wall: seed-blocked grids on digits show dips about a
# decade wide (fitted s 1.5-1.8 on two default studies), while on a third the fit spent
# the dip on a slow ramp into the wall, its s ran to whatever bound it had (3, 5) and its
# alpha moved with the bound (1.09 at 3, 1.31 at 5; 0.85 at 2). The optimum lies below the wall: there the wall has risen at most
# 2 % of its way (``gap``, the distance from the optimum to the wall's midpoint times the
# wall's steepness g, is at least ln 49), so the dip cannot be spent on the wall's shape.
# With a bound of half a nat alone, a digits study's profile found a second minimum with a
# wide dip on the foot of a soft wall (17 % of the way up at the "optimum"); its fitted
# optimum otherwise sits 3-3.7 nats below a wall of steepness ~2.1 (0.1-0.2 % up).
_BOUNDS = {"s": (0.5, 2.0), "g": (0.3, 20.0), "gap": (math.log(49.0), np.inf)}
_LOG = ("s", "g")
_DIP = ("alpha", "c", "s")
_WALL = ("beta", "c_wall", "g")


@dataclass
class CurveData:
    """Complete trials as arrays: size index, x = ln(N/N_ref), l = ln(lambda_eff), loss,
    and the floor each trial shares (``unit``: its size, or its (size, seed block))."""

    group: np.ndarray
    x: np.ndarray
    l: np.ndarray  # noqa: E741 (the module docstring's name)
    y: np.ndarray
    n_groups: int
    n_ref: float  # the reference count of x; alpha does not depend on it
    unit: np.ndarray | None = None  # floor index per trial; None: one floor per size
    unit_group: np.ndarray | None = None  # the size of each floor

    def __post_init__(self) -> None:
        if self.unit is None:
            self.unit = np.asarray(self.group, dtype=int)
            self.unit_group = np.arange(self.n_groups)

    @property
    def n_units(self) -> int:
        return len(self.unit_group)

    @classmethod
    def from_rows(cls, widths: Sequence[int], n_params: Sequence[float], lambdas: Sequence[float],
                  values: Sequence[float], n_ref: float, blocks: Sequence[int | None] | None = None) -> "CurveData":
        """Arrays from per-trial lists (one entry per complete trial); ``blocks``: each
        trial's seed block (``None`` entries share one floor per size)."""
        index = {w: i for i, w in enumerate(sorted(set(widths)))}
        group = np.array([index[w] for w in widths], dtype=int)
        keys = list(zip(widths, blocks if blocks is not None else [None] * len(widths)))
        units = {k: i for i, k in enumerate(sorted(set(keys), key=lambda k: (k[0], -1 if k[1] is None else k[1])))}
        return cls(
            group=group,
            x=np.log(np.asarray(n_params, dtype=float) / n_ref),
            l=np.log(np.asarray(lambdas, dtype=float)),
            y=np.asarray(values, dtype=float),
            n_groups=len(index),
            n_ref=float(n_ref),
            unit=np.array([units[k] for k in keys], dtype=int),
            unit_group=np.array([index[w] for w, _ in sorted(units, key=units.get)], dtype=int),
        )

    def shifted(self, dx: float) -> "CurveData":
        """The same trials with ``x`` measured from ``N_ref * exp(dx)``: the dip's centre
        ``c`` of a fit to them is then ``ln lambda_opt`` at that size."""
        return CurveData(self.group, self.x - dx, self.l, self.y, self.n_groups, self.n_ref * math.exp(dx),
                         self.unit, self.unit_group)

    def take(self, rows: np.ndarray) -> "CurveData":
        """The trials at ``rows`` (a boolean mask or indices, repeats allowed), same sizes and floors."""
        return CurveData(self.group[rows], self.x[rows], self.l[rows], self.y[rows], self.n_groups, self.n_ref,
                         self.unit[rows], self.unit_group)


@dataclass
class CurveFit:
    """One least-squares fit of the curve: the residual sum of squares and the parameters."""

    rss: float
    n: int
    n_free: int
    params: dict[str, float]  # the curve parameters, plus top and depth
    floors: list[float]  # per size: the mean of its blocks' floors
    rss_below_wall: float = 0.0  # of the trials the wall has not reached (it adds < 10 % there)
    n_below_wall: int = 0
    unit_floors: list[float] | None = None  # per floor of the data (size, or size and seed block)

    def predict(self, group: int, x: float, l: float) -> float:  # noqa: E741
        """The fitted loss of size ``group`` at ``x = ln(N/N_ref)``, ``l = ln(lambda_eff)``."""
        return float(curve_loss(self.params, x, np.asarray(l, dtype=float), self.floors[group]))

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


class JointCurve:
    """Least-squares fits of the shared curve to one study's complete trials."""

    def __init__(self, data: CurveData, weights: np.ndarray | None = None) -> None:
        """``weights``: each trial's weight in the least squares (its size's noise SD over
        the pooled one, inverted: see ``noise_weights``); ``None``: all 1."""
        self.data = data
        self.weights = np.ones(len(data.y)) if weights is None else np.asarray(weights, dtype=float)
        self._onehot = np.zeros((len(data.y), data.n_units))
        self._onehot[np.arange(len(data.y)), data.unit] = 1.0
        self._fits: dict[tuple, CurveFit] = {}  # coarse fits without starts, by what they held
        self._top_cap = float(data.y.max() + 2 * np.ptp(data.y))

    def solve(self, theta: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Residuals and linear coefficients (floors, then top, then depth) at ``theta``.

        ``depth`` is held >= 0 (a bump is not a dip) and ``top`` within twice the range of
        the losses seen above the largest (else a far-away wall with a huge top mimics an
        exponential ramp); a coefficient out of its range is fixed at the bound and the
        rest re-solved.
        """
        d = self.data
        g = d.n_units
        w = self.weights
        wall = _wall_share(d, theta) if "beta" in theta else None
        dip = _dip_column(d, theta) if "alpha" in theta else None
        top_cap = self._top_cap
        fixed_top = fixed_depth = None
        base = w if wall is None else w * (1.0 - wall)  # each floor's column, weighted
        for _ in range(3):
            target = d.y.copy()
            extra = []
            if wall is not None:
                if fixed_top is None:
                    extra.append(wall)
                else:
                    target -= fixed_top * wall
            if dip is not None:
                if fixed_depth is None:
                    extra.append(dip)
                else:
                    target -= fixed_depth * dip
            columns = np.column_stack(extra) * w[:, None] if extra else np.zeros((len(w), 0))
            floors, more, residual = _floor_lstsq(base, columns, target * w, d.unit, g)
            coef = np.concatenate([floors, more])
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
        residual, coef = self.solve(curve_shape(params))
        residual = residual / self.weights  # in units of the loss
        below = below_wall(d, params, coef)
        sds = np.full(d.n_groups, np.nan)
        for k in range(d.n_groups):
            mine = (d.group == k) & below
            r = residual[mine]
            dof = len(r) - len(set(d.unit[mine].tolist()))  # each block's floor takes one
            if dof >= 3:
                sds[k] = math.sqrt(float(r @ r) / dof)
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
            wall = _wall_share(d, params)
            cols = [self._onehot * (1.0 - wall)[:, None], wall[:, None]]
        if "alpha" in params and params.get("depth", 0.0) > 0:
            cols.append(_dip_column(d, params)[:, None])
        design = np.hstack(cols)
        if group_sd is not None:
            design = design / np.asarray(group_sd, dtype=float)[d.group][:, None]
        cov = np.linalg.pinv(design.T @ design)[: d.n_units, : d.n_units]
        mean = _size_means(d)  # a size's floor is the mean of its blocks' floors
        return mean @ cov @ mean.T

    def depth_by_size(self, params: dict[str, float]) -> tuple[list[float | None], float, float, int]:
        """One dip depth for all sizes against a depth per size, at the curve shape
        ``params`` (a fit with a dip and a wall), the floors (and ``top``, unless the fit
        holds it at its cap, where both fits hold it) refitted with them: each size's own
        depth (``None`` for a size without trials where the dip is), the weighted residual
        sum of squares of the shared-depth and of the per-size fit, and how many depths the
        latter adds. Least squares without bounds: a size whose loss rises where the others
        dip gets a negative depth. For ``autolambda.analysis.estimators.depth_test``."""
        d = self.data
        w = self.weights
        wall = _wall_share(d, params)
        dip = _dip_column(d, params)
        target = d.y * w
        capped = params.get("top", 0.0) >= self._top_cap * (1 - 1e-9)  # solve() held top there
        lead = np.zeros((len(d.y), 0)) if capped else (wall * w)[:, None]
        if capped:
            target = target - self._top_cap * wall * w
        sizes = np.zeros((len(d.y), d.n_groups))
        sizes[np.arange(len(d.y)), d.group] = dip * w
        norms = np.sum(sizes**2, axis=0)
        seen = norms > 1e-6 * max(float(norms.max()), 1e-300)  # a size with no trial near the dip has no depth
        rss = []
        for extra in ((dip * w)[:, None], sizes[:, seen]):
            _, more, residual = _floor_lstsq(w * (1.0 - wall), np.column_stack([lead, extra]), target, d.unit, d.n_units)
            rss.append(float(residual @ residual))
        depths: list[float | None] = [None] * d.n_groups
        for k, v in zip(np.flatnonzero(seen), more[lead.shape[1]:]):
            depths[int(k)] = float(v)
        return depths, rss[0], rss[1], int(seen.sum()) - 1

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
        """``fit`` without the cache: score the starting points, refine the best two."""
        names = list((_DIP if dip else ()) + (_WALL if wall else ()))
        if dip and wall:  # the optimum and the wall are searched a gap apart
            names[names.index("c_wall" if "c" in fixed else "c")] = "gap"
        free = [n for n in names if n not in fixed]
        candidates = self._candidates(names, dip, wall, fixed, starts, coarse)
        scored = sorted((self.rss(c), i) for i, c in enumerate(candidates))
        best_rss, best_theta = scored[0][0], candidates[scored[0][1]]
        if free:
            best_rss, best_theta = self._search(names, free, fixed, [candidates[i] for _, i in scored[:2]],
                                                best_rss, best_theta)
        return self._result(best_theta, best_rss, dip, wall, len(free))

    def _candidates(self, names: list[str], dip: bool, wall: bool, fixed: dict[str, float],
                    starts: Sequence[dict[str, float]], coarse: bool) -> list[dict[str, float]]:
        """The starting points of a fit: ``starts``, then the coarse grid (``coarse``) or
        the first start with its dip moved across the lambdas tried."""
        candidates = [_complete(names, {n: s[n] for n in s if n in names or n in ("c", "c_wall")} | fixed) for s in starts]
        if coarse:
            grid = self._grid(dip, wall, fixed)
            candidates += [_complete(names, c | fixed) for c in grid]
            if dip and wall:
                # The optimised wall of the curve without a dip, with each dip start: the
                # nested fit can then never end worse than the curve without a dip.
                base = self.fit(dip=False, fixed={k: v for k, v in fixed.items() if k in _WALL}).params
                base_wall = {k: base[k] for k in _WALL}
                candidates += [_complete(names, c | base_wall | fixed) for c in grid if "alpha" in c]
        elif dip and starts:
            for centre in np.linspace(*np.percentile(self.data.l, [3, 97]), 8):
                moved = {n: starts[0][n] for n in starts[0] if n in names or n in ("c", "c_wall")} | {"c": float(centre)} | fixed
                moved.pop("gap", None)
                candidates.append(_complete(names, moved))
        return candidates

    def _search(self, names: list[str], free: list[str], fixed: dict[str, float], starts: list[dict[str, float]],
                best_rss: float, best_theta: dict[str, float]) -> tuple[float, dict[str, float]]:
        """A bounded trust-region least-squares search of the ``free`` parameters from each
        of ``starts``; the best result, or ``best_rss, best_theta`` when none beats them."""
        from scipy.optimize import least_squares

        # The wall's midpoint stays near the lambdas tried: beyond them it is a ramp of any height.
        bounds = _BOUNDS | {"c_wall": (float(self.data.l.min()) - 2.0, float(self.data.l.max()) + 1.0)}
        lo = np.array([math.log(bounds[n][0]) if n in _LOG else bounds.get(n, (-np.inf,))[0] for n in free])
        hi = np.array([math.log(bounds[n][1]) if n in _LOG else bounds.get(n, (None, np.inf))[1] for n in free])

        def unpack(v: np.ndarray) -> dict[str, float]:
            return _complete(names, fixed | {n: (math.exp(x) if n in _LOG else float(x)) for n, x in zip(free, v)})

        for start in starts:
            v0 = np.array([math.log(start[n]) if n in _LOG else start[n] for n in free])
            v0 = np.clip(v0, lo + 1e-9, np.minimum(hi - 1e-9, 1e6))
            res = least_squares(lambda v: self.solve(unpack(v))[0], v0, bounds=(lo, hi), method="trf",
                                xtol=1e-6, ftol=1e-10, max_nfev=200)
            rss = float(res.fun @ res.fun)
            if rss < best_rss:
                best_rss, best_theta = rss, unpack(res.x)
        return best_rss, best_theta

    def _result(self, theta: dict[str, float], rss: float, dip: bool, wall: bool, n_searched: int) -> CurveFit:
        """The ``CurveFit`` at the shape ``theta``: its linear coefficients and the residuals below the wall."""
        residual, coef = self.solve(theta)
        g = self.data.n_units
        below = below_wall(self.data, theta, coef)
        params = {k: v for k, v in theta.items() if k != "gap"}
        if wall:
            params["top"] = float(coef[g])
        if dip:
            params["depth"] = float(coef[-1])
        n_free = g + n_searched + int(wall) + int(dip)
        floors = _size_means(self.data) @ coef[:g]
        return CurveFit(rss, len(self.data.y), n_free, params, [float(v) for v in floors],
                        float(residual[below] @ residual[below]), int(below.sum()),
                        unit_floors=[float(v) for v in coef[:g]])

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
            starts = [t for t in starts if (best_wall["c_wall"] - t["c"]) * best_wall["g"] >= _BOUNDS["gap"][0]] or starts
        return starts

    def profile(self, name: str, grid: np.ndarray, best: CurveFit, *, stop_above: float, coarse: bool = True) -> np.ndarray:
        """RSS with ``name`` held at each grid point and the rest refitted.

        Walks out from the best value in both directions, each point starting from its
        neighbour's fit (and that fit with its dip moved across the lambdas tried); stops a direction once the RSS has stayed
        ``stop_above`` over the best for three points (``inf`` there).
        """
        out = np.full(len(grid), np.inf)
        if not len(grid):
            return out
        curve = curve_shape(best.params)
        centre = int(np.argmin(np.abs(grid - curve[name])))
        for indices in (range(centre, len(grid)), range(centre - 1, -1, -1)):
            start, high = dict(curve), 0
            for i in indices:
                # The neighbour's fit and the coarse grid of starts: a profile point stuck in a
                # local minimum lies too high, and the interval comes out too narrow.
                fit = self.fit(fixed={name: float(grid[i])}, starts=[start], coarse=coarse)
                out[i] = fit.rss
                start = curve_shape(fit.params)
                high = high + 1 if fit.rss - best.rss > stop_above else 0
                if high >= 3:
                    break
        return out


def _floor_lstsq(base: np.ndarray, extra: np.ndarray, target: np.ndarray, unit: np.ndarray, n_units: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of ``target`` on one column per floor (``base`` on that floor's trials,
    0 elsewhere) and the columns of ``extra`` (at most a few): the floors, the extra
    coefficients and the residuals.

    The floors' block of the normal equations is diagonal, so they are eliminated (each
    extra column and the target projected off the floors' columns) and only a system as
    large as ``extra`` is solved: the same answer as a dense least squares over every
    floor, in a fraction of the time (the fits call this tens of thousands of times). A floor without weight (every trial of its block up the
    wall) gets 0, as the dense minimum-norm solution gives."""
    diag = np.bincount(unit, base * base, n_units)
    ok = diag > 1e-28 * max(float(diag.max()), 1e-300)  # as a dense solver's cut of tiny singular values
    inv = np.where(ok, 1.0 / np.where(ok, diag, 1.0), 0.0)
    rhs = np.bincount(unit, base * target, n_units)
    if extra.shape[1]:
        # The extra columns and the target with each floor's part projected out (not a
        # difference of normal equations, which loses the digits a near-collinear column keeps).
        cross = np.stack([np.bincount(unit, base * extra[:, j], n_units) for j in range(extra.shape[1])], axis=1)
        columns = extra - base[:, None] * (cross * inv[:, None])[unit]
        rest = target - base * (rhs * inv)[unit]
        if extra.shape[1] == 1:  # the common case, without a solver's overhead
            norm = float(columns[:, 0] @ columns[:, 0])
            scale = float(extra[:, 0] @ extra[:, 0])
            more = np.array([float(columns[:, 0] @ rest) / norm if norm > (len(rest) * 2.2e-16) ** 2 * scale else 0.0])
        else:
            more = np.linalg.lstsq(columns, rest, rcond=None)[0]
        floors = (rhs - cross @ more) * inv
        fitted = floors[unit] * base + extra @ more
    else:
        more = np.zeros(0)
        floors = rhs * inv
        fitted = floors[unit] * base
    return floors, more, target - fitted


def _complete(names: Sequence[str], theta: dict[str, float]) -> dict[str, float]:
    """``theta`` made whole for a fit of ``names``: the width and steepness within their
    bounds, the dip's centre from the wall and the gap (at least the smallest gap)."""
    theta = dict(theta)
    for n in _LOG:
        if n in theta:
            theta[n] = min(max(theta[n], _BOUNDS[n][0]), _BOUNDS[n][1])
    if "gap" in names and "c_wall" in names:  # in units of the wall's steepness: the optimum lies below the wall
        theta.setdefault("gap", (theta["c_wall"] - theta.get("c", theta["c_wall"] - 3.0)) * theta["g"])
        theta["gap"] = max(theta["gap"], _BOUNDS["gap"][0])
        theta["c"] = theta["c_wall"] - theta["gap"] / theta["g"]
    elif "gap" in names:  # the optimum held (a profile of c): the wall lies above it
        theta.setdefault("gap", (theta.get("c_wall", theta["c"] + 3.0) - theta["c"]) * theta["g"])
        theta["gap"] = max(theta["gap"], _BOUNDS["gap"][0])
        theta["c_wall"] = theta["c"] + theta["gap"] / theta["g"]
    return theta


def curve_loss(params: dict[str, float], x: float, l: np.ndarray, floor: float) -> np.ndarray:  # noqa: E741
    """The curve of a fit's ``params`` (with ``top`` and ``depth``) at ``x = ln(N/N_ref)``
    over ``l = ln(lambda_eff)``, from ``floor`` (a size's, or a seed block's)."""
    loss = np.full(np.shape(l), float(floor))
    if "beta" in params:
        wall = 0.5 * (1.0 + np.tanh(0.5 * params["g"] * (l + params["beta"] * x - params["c_wall"])))
        loss = loss * (1 - wall) + params["top"] * wall
    if "alpha" in params:
        loss = loss - params["depth"] * np.exp(-0.5 * ((l + params["alpha"] * x - params["c"]) / params["s"]) ** 2)
    return loss


def curve_shape(params: dict[str, float]) -> dict[str, float]:
    """The curve parameters of a fit (without the linear ones)."""
    return {k: v for k, v in params.items() if k not in ("top", "depth")}


def _wall_share(data: CurveData, theta: dict[str, float]) -> np.ndarray:
    """How far each trial is up the wall at the shape ``theta``: 0 below it, 1 collapsed."""
    return 0.5 * (1.0 + np.tanh(0.5 * theta["g"] * (data.l + theta["beta"] * data.x - theta["c_wall"])))


def _dip_column(data: CurveData, theta: dict[str, float]) -> np.ndarray:
    """The dip's column of the linear design at the shape ``theta``: -1 at the optimum."""
    z = (data.l + theta["alpha"] * data.x - theta["c"]) / theta["s"]
    return -np.exp(-0.5 * z * z)


def below_wall(data: CurveData, theta: dict[str, float], coef: np.ndarray) -> np.ndarray:
    """Trials the wall has not reached (it adds less than 10 % to their loss), given the
    shape ``theta`` and the linear coefficients ``coef`` (floors, then top) of a fit."""
    if "beta" not in theta:
        return np.ones(len(data.y), dtype=bool)
    g = data.n_units
    share = _wall_share(data, theta)
    floors = coef[:g][data.unit]
    return (coef[g] - floors) * share < 0.1 * floors


def _size_means(data: CurveData) -> np.ndarray:
    """The (sizes x floors) matrix that averages each size's blocks' floors."""
    out = np.zeros((data.n_groups, data.n_units))
    for u, k in enumerate(data.unit_group):
        out[k, u] = 1.0
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1.0)


def weighted_curve(data: CurveData, near: dict[str, float] | None = None) -> JointCurve:
    """The joint curve of ``data`` with each trial weighted by its size's noise
    (``noise_weights`` at the unweighted fit): the curve every estimate is made on.
    ``near``: a fit's parameters known to lie close (a simulated study's truth): the
    unweighted fits start there instead of from the coarse grid (half a simulated study's time)."""
    unweighted = JointCurve(data)
    if near is None:
        full, reduced = unweighted.fit(), unweighted.fit(dip=False)
    else:
        shape = curve_shape(near)
        full = unweighted.fit(starts=[shape], coarse=False)
        reduced = unweighted.fit(dip=False, starts=[{k: v for k, v in shape.items() if k in _WALL}], coarse=False)
    return JointCurve(data, noise_weights(unweighted, full.params, also=reduced.params))


def noise_weights(curve: JointCurve, params: dict[str, float], *, prior_dof: float = 4.0,
                  huber: float | None = 2.5, also: dict[str, float] | None = None) -> np.ndarray:
    """Per-trial least-squares weights for a refit of ``curve``'s data: each size's residual
    SD (below the wall, at the fit ``params``), shrunk towards the pooled SD with
    ``prior_dof`` degrees of freedom, as ``pooled / sd`` (so the weighted residuals stay in
    units of the pooled noise); then, with ``huber``, a trial whose residual is more than
    ``huber`` of its size's SDs is down-weighted as Huber's loss would (Adam's late spikes
    at wide widths on digits: single trainings 0.1-0.15 above their block's curve). With
    ``also`` (another fit's parameters, e.g. the curve without a dip) a trial is
    down-weighted only if it is that far off both fits: a spike is, while a trial that only
    one of the two curves misses is not, so the weights favour neither curve (and a test of
    one against the other, simulated with these weights held, stays fair).

    On digits the residual SD within a seed block differs ~7x between sizes (0.004 at
    width 16, 0.03 at width 64): one pooled SD lets the noisiest size drive alpha."""
    d = curve.data
    residual, coef = curve.solve(curve_shape(params))
    residual = residual / curve.weights
    below = below_wall(d, params, coef)
    ss, dofs = np.zeros(d.n_groups), np.zeros(d.n_groups)
    for k in range(d.n_groups):
        mine = (d.group == k) & below
        ss[k] = float(residual[mine] @ residual[mine])
        dofs[k] = max(int(mine.sum()) - len(set(d.unit[mine].tolist())), 0)
    if dofs.sum() <= 0:
        return np.ones(len(d.y))
    pooled = ss.sum() / dofs.sum()
    if pooled <= 0:
        return np.ones(len(d.y))
    var = (ss + prior_dof * pooled) / (dofs + prior_dof)
    sd = np.sqrt(var)
    weights = (math.sqrt(pooled) / sd)[d.group]
    if huber:
        off = np.abs(residual)
        if also is not None:
            off = np.minimum(off, np.abs(curve.solve(curve_shape(also))[0] / curve.weights))
        z = off / sd[d.group]
        weights = weights * np.where(z > huber, np.sqrt(huber / np.maximum(z, 1e-12)), 1.0)
    return weights
