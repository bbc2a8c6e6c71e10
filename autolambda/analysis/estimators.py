"""What the joint fit (``autolambda.analysis.curve``) says, with intervals: the optimum's
exponent alpha, the wall's exponent, the measured noise and the informative band.

Intervals are profile-likelihood intervals. An exponent is held at each point of a grid,
the rest refitted, and the 95 % interval holds the values whose residual sum of squares
lies within ``cutoff * noise**2`` of the best, ``noise`` being the measured
trial-to-trial SD (the residuals below the wall, or replicates when they show more) and
the cutoff at least F(1, dof), calibrated by simulated studies (``bootstrap_level``, at
the best fit and at each edge).
Where the dip is not distinguishable from noise (overall and in each half of the sizes),
or the interval reaches the edge of the grid, alpha is *not identified* and no interval
is given. The wall's exponent comes from a separate hurt-or-not fit (``estimate_wall``).
The reasons given for "not identified" are worded in ``autolambda.analysis.verdict``.

>>> profile_interval(np.array([0.0, 1.0, 2.0]), np.array([5.0, 0.0, 5.0]), 2.5)
((0.5, 1.5), '')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from autolambda.analysis.curve import CurveData, CurveFit, JointCurve, below_wall, curve_shape, weighted_curve
from autolambda.analysis.records import TrialRecord
from autolambda.analysis.settings import DEFAULTS
from autolambda.analysis.verdict import (
    NO_INTERVALS,
    NO_MINIMUM,
    floors_unbounded_reason,
    no_dip_reason,
    one_end_reason,
    too_few_hurt_reason,
    unbounded_reason,
)

#: Where the profile of an exponent is computed: wider than alpha's search range, so an
#: answer near its bounds still gets a closed interval.
EXPONENT_GRID = np.round(np.arange(-2.5, 3.0001, 0.1), 10)
#: The dip counts as seen when its evidence (how much better, in ``delta RSS / noise**2``,
#: the curve with a dip fits than the curve without it) exceeds this quantile of the
#: evidence in studies simulated at the same trials *without* a dip (``null_evidence_level``).
#: The dip's parameters do not exist under "no dip", so no chi-square law holds, and the
#: null evidence depends on the design and the noise: on flat surrogates of the default
#: size it had a median of ~6 and a maximum of ~17, on real digits dips 14-40. A fixed
#: threshold (32, before) was a gate: it turned away most real dips whose intervals were
#: honest. Calibrated per study instead; ``analyze_records(detection_threshold=...)`` can
#: still fix one.
DETECTION_QUANTILE = 0.95
#: Simulated studies behind the profile's cutoff (at the best fit and at each edge): the
#: cutoff is the third largest of 60 (an exact Monte Carlo level, as for the detection).
#: The interpolated 95 % quantile of 30 (before) lies between the 2nd and 3rd largest, on
#: average the 92nd percentile of the statistic: on 20 surrogate studies per planted alpha
#: at 150 trials both covered 0.89-1.00, the 60 draws at +5-10 % interval width and ~15 s
#: more of analysis on a default study; a second calibration at 30 studies had covered
#: 0.86 and 0.89 at two alphas with 30.
NULL_DRAWS = 60
#: Simulated studies without a dip behind the detection level (a Monte Carlo test: the
#: third largest of 60; fewer when the answer is plain early, see ``null_evidence_level``).
NULL_TEST_DRAWS = 60
#: How far above the cutoff the profile is walked (the edges' own cutoffs may be larger).
EDGE_HEADROOM = 8.0
#: Evidence the dip must also carry within each half of the sizes (the smaller ones, the
#: larger ones): a check of the model more than a gate. The curve has one depth for every
#: size, so a dip seen only among the small nets (or only the large ones) is extrapolated
#: to the rest, and studies simulated from that fit (the profile's cutoff) show a clear
#: dip where the data show none: the interval comes out too narrow. On 80 realistic
#: surrogate studies, 3 of the 5 intervals that missed the planted alpha had under 2 in
#: one half, and the coverage of the rest was 0.95; at 4 (before) it turned away a fifth
#: of the studies for little more coverage.
HALF_THRESHOLD = 2.0
#: A share of trials on either side of the wall is misclassified by noise (a lucky
#: over-regularised seed, an unlucky tiny-lambda one): the wall's likelihood allows it, so
#: one stray trial cannot move the wall by decades.
_LAPSE = 0.02
#: Refits (trials resampled within each size, floors redrawn) behind the wall's interval.
RESAMPLE_DRAWS = 60
#: Where the loss depends on lambda (the informative band): within this share of the
#: dip's depth of its centre (the dip reaches a tenth of its depth 2.15 widths out), or
#: on the wall's rise, from 1 % of the way to collapse up to 90 % (beyond, a net has
#: collapsed and its loss says only "too much").
BAND_DIP_SHARE = 0.1
BAND_WALL_SHARES = (0.01, 0.9)


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
    evidence_level: float = 0.0  # the evidence needed to call it seen (calibrated per study)
    cutoff: float | None = None  # the profile's cutoff (delta RSS / noise**2) of the 95 % interval
    profile: list[tuple[float, float]] = field(default_factory=list)  # (value, delta RSS / noise**2)


def profile_interval(grid: np.ndarray, delta: np.ndarray, level: float) -> tuple[tuple[float, float] | None, str]:
    """The interval where ``delta <= level`` (the hull, if the set has gaps), interpolated
    between grid points; ``None`` and the reason when it reaches the edge of the grid."""
    if len(grid) == 0:
        return None, NO_INTERVALS
    inside = np.flatnonzero(delta <= level)
    if len(inside) == 0:
        return None, NO_MINIMUM
    i, j = int(inside[0]), int(inside[-1])
    if i == 0 or j == len(grid) - 1:
        return None, unbounded_reason(grid[0] if i == 0 else grid[-1])

    def cross(a: int, b: int) -> float:  # a outside, b inside
        if not math.isfinite(delta[a]):
            return float(grid[a])
        da, db = delta[a] - level, delta[b] - level
        return float(grid[b] + (grid[a] - grid[b]) * (-db) / (da - db))

    return (cross(i - 1, i), cross(j + 1, j)), ""


def estimate_optimum(data: CurveData, noise: tuple[float, int] | None = None, test_noise: tuple[float, int] | None = None,
                     *, grid: np.ndarray = EXPONENT_GRID, threshold: float | None = None,
                     half_threshold: float = HALF_THRESHOLD, curve: JointCurve | None = None
                     ) -> tuple[CurveFit, ExponentEstimate, float]:
    """Fit the joint curve and profile the optimum's exponent alpha (module docstring).

    Two noise figures, as (SD, degrees of freedom): ``test_noise`` scales the evidence for a
    dip (default: the residual SD of the curve without one, the right variance when there
    is no dip), ``noise`` scales the interval (default: the residual SD of the full fit).

    Args:
        data: The complete trials.
        noise: Noise for the interval.
        test_noise: Noise for the dip's evidence.
        grid: Values at which alpha's profile is computed.
        threshold: Evidence needed to call the dip seen; ``None``: calibrated on studies
            simulated without a dip (``null_evidence_level``).
        half_threshold: Evidence needed in each half of the sizes (``HALF_THRESHOLD``).
        curve: A ``JointCurve`` of ``data`` whose fits may be reused.

    Returns:
        The full fit, alpha's estimate, and the interval's noise SD.
    """
    curve = curve or JointCurve(data)
    full = curve.fit()
    reduced = curve.fit(dip=False)
    noise_sd, noise_dof = noise or (full.residual_sd, full.residual_dof)
    test_sd, _ = test_noise or (reduced.residual_sd, reduced.residual_dof)
    evidence, halves = _dip_evidence(curve, full, reduced, test_sd)
    calibrated = threshold is None
    if threshold is None and not len(grid):
        threshold = 0.0  # a quick look: no test, and no interval (profile_interval says so)
    elif threshold is None:
        threshold = null_evidence_level(curve, reduced, observed=evidence) if full.params["depth"] > 0 else math.inf
    seen = {"evidence": evidence, "evidence_by_half": halves, "evidence_level": threshold}
    if full.params["depth"] <= 0 or evidence < threshold:
        reason = no_dip_reason(evidence, threshold, test_sd, full.params["depth"], calibrated=calibrated)
    elif min(halves) < half_threshold:
        reason = one_end_reason(halves, half_threshold)
    else:
        point, ci, reason, prof, cutoff = _profile_alpha(curve, full, grid, noise_sd, noise_dof)
        return full, ExponentEstimate("alpha", point, ci, ci is not None, reason, profile=prof, cutoff=cutoff, **seen), noise_sd
    return full, ExponentEstimate("alpha", None, None, False, reason, **seen), noise_sd


def _dip_evidence(curve: JointCurve, full: CurveFit, reduced: CurveFit, test_sd: float) -> tuple[float, tuple[float, float]]:
    """How much the dip improves the fit (``full`` over ``reduced``, the fit without it), in
    variances of ``test_sd``: in all, and among the smaller and the larger half of the sizes."""
    data = curve.data
    test_var = max(test_sd, 1e-12) ** 2
    evidence = max(reduced.rss - full.rss, 0.0) / test_var
    gain = (curve.solve(curve_shape(reduced.params))[0] ** 2 - curve.solve(curve_shape(full.params))[0] ** 2) / test_var
    small = data.group < data.n_groups / 2
    return evidence, (float(gain[small].sum()), float(gain[~small].sum()))


def _profile_alpha(curve: JointCurve, full: CurveFit, grid: np.ndarray, noise_sd: float, noise_dof: int
                   ) -> tuple[float | None, tuple[float, float] | None, str, list[tuple[float, float]], float]:
    """alpha's profile over ``grid`` (plus the best fit's own alpha) and its 95 % interval,
    its edges refined by bisection: the estimate (the profile's best point, inside the
    interval), the interval, the reason when there is none, the profile and its cutoff
    (the larger of the two sides').

    The cutoff is calibrated by simulated studies (``bootstrap_level``), first from the
    best fit, then at each edge of that interval from the fit with alpha held there (a
    test of "alpha is this edge", inverted): how far the truth's profile lies above the
    minimum depends on where the truth is (a dip that the narrow or the wide nets barely
    show places alpha less well), and the edges are where coverage is decided. An edge
    moves out where its own simulated studies call for a larger cutoff."""
    from scipy.special import fdtri  # the F quantile; scipy.stats takes a second to import

    var = max(noise_sd, 1e-12) ** 2
    level = float(fdtri(1, max(noise_dof, 1), 0.95))
    if len(grid):  # a quick look (no grid) gets no interval: no simulated studies either
        level = max(level, bootstrap_level(curve, full))
    # The grid plus the best fit itself: a sharp profile can fall between grid points.
    grid = np.unique(np.append(grid, round(full.params["alpha"], 6))) if len(grid) else grid
    rss = curve.profile("alpha", grid, full, stop_above=EDGE_HEADROOM * level * var + 1e-12)
    best = min(float(rss.min()), full.rss) if len(rss) else full.rss
    delta = (rss - best) / var
    prof = [(float(a), float(d)) for a, d in zip(grid, delta) if math.isfinite(d)]
    ci, reason = profile_interval(grid, delta, level)
    if ci is None:
        return None, None, reason, prof, level
    levels = [level, level]
    for side in (0, 1):
        held = curve.fit(fixed={"alpha": ci[side]}, starts=[full.params], coarse=False)
        levels[side] = max(level, bootstrap_level(curve, held, seed=1 + side))
    if max(levels) > EDGE_HEADROOM * level:  # an edge's cutoff beyond the profile walked: walk further
        rss = np.minimum(rss, curve.profile("alpha", grid, full, stop_above=2 * max(levels) * var + 1e-12))
        best = min(float(rss.min()), full.rss)
        delta = (rss - best) / var
        prof = [(float(a), float(d)) for a, d in zip(grid, delta) if math.isfinite(d)]
    sides = [profile_interval(grid, delta, cut) for cut in levels]
    for side, reason in sides:
        if side is None:
            return None, None, reason, prof, max(levels)
    ci = (sides[0][0][0], sides[1][0][1])
    ci = tuple(_refine(lambda a: (curve.fit(fixed={"alpha": a}, starts=[full.params], coarse=False).rss - best) / var,
                       grid, delta, cut, edge)
               for cut, edge in zip(levels, ci))
    point = float(grid[int(np.argmin(rss))])
    return min(max(point, ci[0]), ci[1]), ci, "", prof, max(levels)


def _resampler(curve: JointCurve, fit: CurveFit, seed: int):
    """Simulated losses at ``curve``'s trials from ``fit``: its fitted loss plus residuals
    drawn (centred, with replacement) from the same size's trials below the wall."""
    d = curve.data
    residual, coef = curve.solve(curve_shape(fit.params))
    residual = residual / curve.weights
    fitted = d.y - residual
    below = below_wall(d, curve_shape(fit.params), coef)
    pools = {}
    for k in range(d.n_groups):
        mine = (d.group == k) & below
        r = residual[mine] if mine.sum() >= 3 else residual[d.group == k]
        blocks = len(set(d.unit[d.group == k].tolist()))
        inflate = math.sqrt(len(r) / max(len(r) - blocks, 1))  # each block's floor took a degree of freedom
        pools[k] = (r - r.mean()) * inflate
    rng = np.random.default_rng(seed)
    near = fit.params if "alpha" in fit.params else None  # the simulation's truth, where it has a dip

    def draw() -> JointCurve:
        # The noise weights are estimated anew, as for the study itself: held at the study's,
        # the simulated studies missed how the weights adapt to the noise, and a flat
        # surrogate's dip was called seen in 13 % of studies where 5 % was the goal.
        y = fitted + np.array([rng.choice(pools[k]) for k in d.group])
        return weighted_curve(CurveData(d.group, d.x, d.l, y, d.n_groups, d.n_ref, d.unit, d.unit_group), near=near)

    return draw


def null_evidence_level(curve: JointCurve, reduced: CurveFit, *, draws: int = NULL_TEST_DRAWS, seed: int = 0,
                        quantile: float = DETECTION_QUANTILE, observed: float | None = None) -> float:
    """The evidence a dip reaches by chance in studies like this one: the ``quantile`` of
    the dip's evidence over ``draws`` studies simulated from ``reduced`` (the fit without
    a dip) at the same trials, with this study's residuals (``_resampler``).

    With the study's own evidence ``observed``, the draws stop early (after 20, then in
    batches of 10: the largest of 20 is already a test at 5 %) once the decision is plain
    (a sequential Monte Carlo test): two simulated studies already beat it (it is not
    seen, whatever the rest give), or it is over three times the largest of them (a clear dip).

    The level is a Monte Carlo test's, not an interpolated quantile: the ``k``-th largest
    of the ``n`` draws made, ``k = max(1, floor((1 - quantile) * (n + 1)))`` (the third
    largest of 60), so that a study without a dip beats it with probability at most
    ``1 - quantile`` (``(1 + #{draws >= evidence}) / (n + 1) <= 0.05``). The interpolated
    95 % quantile of 30 draws (before) lies between the 2nd and 3rd largest: such a test
    rejected ~8 % of dip-free studies, and on realistic flat surrogates 4 of 30 beat it.
    """
    draw = _resampler(curve, reduced, seed)
    stats: list[float] = []
    for i in range(draws):
        sim = draw()
        without = sim.fit(dip=False)
        stats.append(max(without.rss - sim.fit().rss, 0.0) / max(without.residual_sd, 1e-12) ** 2)
        if observed is not None and i + 1 >= 20 and (i + 1) % 10 == 0 and i + 1 < draws:
            if sum(v >= observed for v in stats) >= 2 or observed > 3 * max(stats):
                break
    return monte_carlo_level(stats, 1.0 - quantile)


def monte_carlo_level(stats: Sequence[float], tail: float) -> float:
    """The level a statistic must reach to lie in the upper ``tail`` of ``stats`` (draws
    of it under the hypothesis tested), as an exact Monte Carlo test counts: the ``k``-th
    largest draw, ``k = max(1, floor(tail * (n + 1)))``; 0 without draws."""
    if not len(stats):
        return 0.0
    ordered = sorted(stats, reverse=True)
    k = max(1, int(math.floor(tail * (len(ordered) + 1) + 1e-9)))
    return float(ordered[min(k, len(ordered)) - 1])


def depth_test(curve: JointCurve, full: CurveFit) -> dict[str, Any] | None:
    """Does one dip depth fit every size? An approximate lack-of-fit check: an F test of
    a depth per size against one shared depth, both at ``full``'s curve shape (held: the
    nested fits are then linear), the degrees of freedom those of the full fit less the
    added depths. Approximate, because the shape and the trials' weights were fitted under
    one depth; and a size's own depth can also absorb misfit where the dip meets the wall's
    foot (at the narrowest nets on digits). On 20 surrogate studies with one planted depth,
    1 had p < 0.05; on the three default digits studies p was 0.001-0.008, each size's own
    depth 0.02 (width 32) to 0.07 (width 2). ``None`` without a dip, with fewer than three
    sizes that have trials near it, or without degrees of freedom left."""
    from scipy.special import fdtrc  # scipy.stats takes a second to import

    data = curve.data
    if data.n_groups < 3 or full.params.get("depth", 0.0) <= 0 or "beta" not in full.params:
        return None
    depths, shared, per_size, extra = curve.depth_by_size(full.params)
    dof = len(data.y) - full.n_free - extra
    if extra < 2 or dof < 1 or per_size <= 0:
        return None
    f = max(shared - per_size, 0.0) / extra / (per_size / dof)
    return {"f": float(f), "dof": (extra, int(dof)), "p": float(fdtrc(extra, dof, f)), "depth_by_size": depths}


def bootstrap_level(curve: JointCurve, full: CurveFit, *, draws: int = NULL_DRAWS, seed: int = 0,
                    quantile: float = 0.95) -> float:
    """The profile cutoff for alpha's 95 % interval, calibrated by a residual bootstrap.

    The F(1, dof) cutoff holds for a regular model with Gaussian noise; this one is neither
    (the dip's width and depth are weakly determined when the dip is shallow, each size has
    its own noise, and wide nets have spikes), and on realistic surrogates the F cutoff
    covered the planted alpha in only ~73 % of studies. So: simulate ``draws`` studies at
    the same trials from the fit ``full`` (its fitted loss plus residuals resampled within
    each size), redo the estimate on each (noise weights, free fit, fit with alpha held
    at the simulation's truth) and return the level of the statistic
    ``(RSS(alpha_true) - RSS_min) / noise**2`` that a Monte Carlo test at ``1 - quantile``
    uses (``monte_carlo_level``: the third largest of 60): how far the truth's profile sits
    above the minimum in studies like this one. The caller keeps the larger of this and
    the F cutoff.
    """
    draw = _resampler(curve, full, seed)
    truth = full.params["alpha"]
    stats = []
    for _ in range(draws):
        sim = draw()
        free = sim.fit()
        held = sim.fit(fixed={"alpha": truth}, starts=[curve_shape(free.params) | {"alpha": truth}])
        noise = max(free.residual_sd, 1e-12) ** 2
        stats.append(max(held.rss - free.rss, 0.0) / noise)
    return monte_carlo_level(stats, 1.0 - quantile)


def _refine(delta_at: Callable[[float], float], grid: np.ndarray, delta: np.ndarray, level: float, edge: float,
            steps: int = 4) -> float:
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


def estimate_wall(data: CurveData, floors: Sequence[float], *, cost: float = DEFAULTS.wall_cost,
                  grid: np.ndarray = EXPONENT_GRID, point_only: bool = False,
                  floor_cov: np.ndarray | None = None, seed: int = 0,
                  offsets: np.ndarray | None = None, ignore: np.ndarray | None = None) -> tuple[ExponentEstimate, dict[str, Any]]:
    """Where the penalty starts to hurt, and how that scales with N (the exponent beta).

    A trial is *hurt* when its loss exceeds its size's fitted floor by more than
    ``cost`` (a fraction of the floor); with ``offsets`` (each trial's seed block's floor
    minus its size's), against its own block's floor: on digits the narrow nets' seed
    offsets (SD 0.07) are most of 25 % of their floor, and a trial of an unlucky seed would
    look hurt at any lambda. The chance of being hurt is a logistic function
    of ``l + beta * x`` (with a small lapse rate), so ``lambda_wall(N) = exp(c) *
    (N / N_ref) ** -beta`` is the lambda at which half the trials cost more than
    ``cost``. Hurt-or-not does not care how far a collapsed net fell, so collapses (loss
    jumping to ln 10) do not dominate as they would in least squares. Trials marked in
    ``ignore`` (late spikes) are left out.

    The interval starts from the profile likelihood (chi-square, 1 degree of freedom):
    the labels' own noise, for these trials, under the logistic model. With ``floor_cov``
    (the floors' covariance) each side is widened in quadrature by 1.96 times the SD of
    the estimate over ``RESAMPLE_DRAWS`` refits, each on the trials resampled within each
    size and on floors drawn from N(floors, floor_cov) (``_resample_spread``). "Hurt" is
    measured against fitted floors (on digits, moving them within their standard errors
    moved the estimate by as much as the profile's half-width), and the trials of a study
    are a few blocks of seeds placed by an adaptive design, which the model does not
    describe: on 20 surrogate studies per planted alpha at 150 trials (the default then), the
    estimate scattered around the truth with an SD of 0.08-0.12, while the profile and the
    floors alone gave half-widths of 0.11-0.17 (coverage 0.80-0.95). The resampled SD
    sees that scatter (median 0.07-0.10), but it is itself noisy with ~15 hurt trials, and
    used alone (the larger of it and the profile) covered only 0.85 at one alpha. Added in
    quadrature the two overlap on the labels' noise, so the interval errs wide: coverage
    0.90-1.00 on the same studies, median width 0.34-0.51 (was 0.22-0.34).
    """
    from scipy.special import chdtri

    if ignore is not None and np.any(ignore):  # late spikes (``autolambda.analysis.summary._spikes``)
        keep = ~np.asarray(ignore, dtype=bool)
        data = data.take(keep)
        offsets = None if offsets is None else np.asarray(offsets, dtype=float)[keep]
    base = np.asarray(floors, dtype=float)[data.group] + (0.0 if offsets is None else np.asarray(offsets, dtype=float))
    hurt = data.y > base * (1.0 + cost)
    info: dict[str, Any] = {"cost": cost, "n_hurt": int(hurt.sum()), "n_labelled": int(len(hurt))}
    sizes_hurt = len(set(data.group[hurt].tolist()))
    if hurt.sum() < 3 or (~hurt).sum() < 3 or sizes_hurt < 2:
        return ExponentEstimate("beta", None, None, False, reason=too_few_hurt_reason(int(hurt.sum()), sizes_hurt, cost)), info
    likelihood = _HurtLikelihood(data, hurt)
    best_nll, theta = likelihood.fit(None)
    if point_only:
        return ExponentEstimate("beta", float(theta[0]), None, False), info
    level = float(chdtri(1, 0.05))  # the chi-square 95 % quantile, 1 degree of freedom
    delta, theta = _wall_profile(likelihood, grid, best_nll, theta)
    prof = [(float(a), float(d)) for a, d in zip(grid, delta)]
    info |= {"c": float(theta[1]), "steepness": float(math.exp(min(max(theta[2], -4.0), 3.0)))}
    ci, reason = profile_interval(grid, delta, level)
    if ci is None:
        return ExponentEstimate("beta", None, None, False, reason=reason, profile=prof), info
    estimate = float(min(max(theta[0], ci[0]), ci[1]))
    if floor_cov is not None and len(grid):
        spread = _resample_spread(data, floors, floor_cov, cost, seed, offsets)
        info["resample_sd"] = spread
        if spread > 0:
            z = float(np.sqrt(level))  # 1.96
            ci = (estimate - math.hypot(estimate - ci[0], z * spread), estimate + math.hypot(ci[1] - estimate, z * spread))
            if ci[0] < grid[0] or ci[1] > grid[-1]:
                return ExponentEstimate("beta", None, None, False, profile=prof,
                                        reason=floors_unbounded_reason(grid[0], grid[-1])), info
    return ExponentEstimate("beta", estimate, ci, True, profile=prof), info


class _HurtLikelihood:
    """The wall's hurt-or-not likelihood (``estimate_wall``): a logistic in
    ``l + beta * x - c`` with steepness ``exp(log_g)`` and a lapse rate, fitted by Nelder-Mead."""

    def __init__(self, data: CurveData, hurt: np.ndarray) -> None:
        self.data, self.hurt = data, hurt
        self.centres = np.linspace(data.l.min(), data.l.max(), 12)

    def nll(self, beta: float, c: float, log_g: float) -> float:
        """Negative log-likelihood of which trials were hurt."""
        z = math.exp(min(max(log_g, -4.0), 3.0)) * (self.data.l + beta * self.data.x - c)
        p = _LAPSE + (1 - 2 * _LAPSE) * 0.5 * (1.0 + np.tanh(0.5 * z))
        return float(-(np.log(p[self.hurt]).sum() + np.log1p(-p[~self.hurt]).sum()))

    def fit(self, beta: float | None, start: tuple[float, ...] | None = None) -> tuple[float, tuple[float, ...]]:
        """The smallest NLL and its ``(beta, c, log_g)``, with ``beta`` free (``None``) or held,
        from the best of a grid of starts and ``start``."""
        from scipy.optimize import minimize

        betas = (beta,) if beta is not None else (-0.5, 0.0, 0.5, 1.0)
        starts = [(b, c, g) for b in betas for c in self.centres for g in (-1.0, 0.5, 2.0)] + ([start] if start else [])
        best = min(starts, key=lambda t: self.nll(*t))
        if beta is None:
            res = minimize(lambda v: self.nll(*v), np.array(best), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8})
            return float(res.fun), tuple(res.x)
        res = minimize(lambda v: self.nll(beta, *v), np.array(best[1:]), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8})
        return float(res.fun), (beta, *res.x)


def _wall_profile(likelihood: _HurtLikelihood, grid: np.ndarray, best_nll: float, theta: tuple[float, ...]
                  ) -> tuple[np.ndarray, tuple[float, ...]]:
    """Twice the NLL over the best with beta held at each grid point (each fit starting from
    its neighbour's), and the best ``theta``: a grid point's, when it beats the free fit."""
    delta = np.empty(len(grid))
    start = theta
    for i, b in enumerate(grid):
        value, start = likelihood.fit(float(b), start)
        delta[i] = 2 * (value - best_nll)
    if len(delta) and delta.min() < 0:  # the grid found a better fit than the free one
        theta = likelihood.fit(float(grid[int(np.argmin(delta))]))[1]
        delta -= delta.min()
    return delta, theta


def _resample_spread(data: CurveData, floors: Sequence[float], cov: np.ndarray, cost: float, seed: int,
                     offsets: np.ndarray | None = None) -> float:
    """SD of the wall's exponent over ``RESAMPLE_DRAWS`` refits, each on the trials resampled
    with replacement within each size and on floors drawn from N(floors, cov) (see estimate_wall)."""
    rng = np.random.default_rng(seed)
    k = len(floors)
    chol = np.linalg.cholesky(np.asarray(cov, dtype=float) + 1e-12 * np.eye(k))
    by_size = [np.flatnonzero(data.group == g) for g in range(data.n_groups)]
    offsets = np.zeros(len(data.y)) if offsets is None else np.asarray(offsets, dtype=float)
    betas = []
    for _ in range(RESAMPLE_DRAWS):
        pick = np.concatenate([rng.choice(rows, len(rows)) for rows in by_size if len(rows)])
        drawn = np.asarray(floors, dtype=float) + chol @ rng.standard_normal(k)
        estimate = estimate_wall(data.take(pick), list(drawn), cost=cost, point_only=True, offsets=offsets[pick])[0].estimate
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


def measure_noise(rows: Sequence[TrialRecord]) -> tuple[float, int]:
    """Pooled SD of complete trials trained at identical settings (same width and
    lambda_eff, another seed), and its degrees of freedom; ``(0.0, 0)`` without replicates.

    Trials of different seed blocks differ by their blocks' offsets too, which the joint
    fit removes: only repeats within one block count (a blocked study's noise is its
    residual SD)."""
    keys = [(r.width, r.block, round(math.log(r.lambda_eff), 9)) for r in rows]
    return replicate_noise(keys, [r.value for r in rows])


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
