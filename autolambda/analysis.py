"""Which alpha do the data support? Pure functions over trial records (no TensorFlow).

Per model size: the best ``lambda_eff`` among complete trials, the band of ``lambda_eff``
within a tolerance of the best, and flags for sizes that cannot inform alpha (best at the
edge of what was tried, a flat curve, too few trials). Then:

- ``alpha_hat``: minus the least-squares slope of log(lambda_opt) on log(N) over the
  unflagged sizes, where a size's ``lambda_opt`` is the vertex of a quadratic fitted (in
  log lambda) to its trials within a decade of its best trial: the argmax alone snaps to
  whichever lambda happened to be tried, and the gaps between tried values then bias
  the slope. Its bootstrap 95% interval resamples each size's trials *and* perturbs each
  trial's score by its noise (the larger of the spread of its last epochs and the
  scatter of its size's trials about a smooth curve, which holds seed noise), so noise
  widens the interval instead of hiding in an argmax;
- ``alpha_surface``: from a quadratic surrogate of the score over (log N, log lambda_eff)
  fitted to the better half of each size's trials; its optimum ridge has slope -alpha.
  It uses every trial, not one per size, so it helps where sizes are thinly sampled.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

#: The hypotheses the report names, with a plain-language reading of each.
HYPOTHESES: tuple[tuple[float, str], ...] = (
    (1.0, "lambda inversely proportional to N (the intuition: keep the total penalty fixed)"),
    (0.5, "lambda shrinks as 1/sqrt(N) ('Power Lines'-style, at fixed data)"),
    (0.0, "one lambda for all sizes (per-weight prior; decoupled decay at fixed lr)"),
    (-0.25, "lambda grows as N^0.25 (~ sqrt(width); Fan et al. 2025)"),
    (-0.5, "lambda grows as sqrt(N) (muP-style decay, prior following init scale)"),
)


@dataclass(frozen=True)
class TrialRecord:
    """What the analysis needs of one trial."""

    number: int
    state: str  # complete, pruned, diverged, failed, running
    width: int | None
    n_params: int | None
    lambda_eff: float | None
    value: float | None
    noise: float = 0.0  # standard error of the score, from the spread of its last epochs
    diverged_at_epoch: int | None = None
    lambda0: float | None = None
    alpha: float | None = None


@dataclass
class SizeSummary:
    """One model size: its trials and where its best lambda lies."""

    width: int
    n_params: int
    n_complete: int = 0
    n_pruned: int = 0
    n_diverged: int = 0
    n_failed: int = 0
    best_value: float | None = None
    best_lambda_eff: float | None = None  # of the best complete trial
    optimum_lambda_eff: float | None = None  # interpolated optimum (see size_optimum)
    band: tuple[float, float] | None = None  # lambda_eff of trials within tolerance of the best
    n_in_band: int = 0
    tried: tuple[float, float] | None = None  # lambda_eff range of all trials (pruned, diverged too)
    noise: float = 0.0  # trial-to-trial noise of the score near the best (see size_noise)
    flags: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Whether this size's optimum is located well enough to fit alpha through it."""
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["n_trials"] = self.n_complete
        out["usable"] = self.usable
        return out


@dataclass
class Analysis:
    """The result of ``analyze_records``; ``to_dict`` is the ``--json`` output."""

    n_trials: int
    states: dict[str, int]
    per_size: list[SizeSummary]
    alpha_hat: float | None
    alpha_ci: tuple[float, float] | None
    alpha_surface: float | None
    alpha_surface_ci: tuple[float, float] | None
    hypotheses: list[dict[str, Any]]
    divergence: list[dict[str, Any]]
    notes: list[str]
    tolerance: float
    n_boot: int
    verdict: str
    extrapolation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_size"] = [s.to_dict() for s in self.per_size]
        return out


def noise_of(history: Sequence[float] | None, window: int = 5) -> float:
    """Standard error of a final-window score from the spread of its last epochs."""
    if not history or len(history) < 2:
        return 0.0
    tail = np.asarray(history[-window:], dtype=float)
    tail = tail[np.isfinite(tail)]
    if len(tail) < 2:
        return 0.0
    return float(np.std(tail, ddof=1) / math.sqrt(len(tail)))


def records_from_trials(trials: Iterable[Any], *, score_window: int = 5) -> list[TrialRecord]:
    """Turn Optuna ``FrozenTrial`` objects into ``TrialRecord`` s."""
    from autolambda.tracking import trial_state

    out = []
    for t in trials:
        attrs = t.user_attrs
        width = attrs.get("width", t.params.get("width"))
        history = (attrs.get("history") or {}).get("val_ce")
        value = t.value if t.values is not None and len(t.values) == 1 else None
        out.append(
            TrialRecord(
                number=t.number,
                state=trial_state(t),
                width=int(width) if width is not None else None,
                n_params=attrs.get("n_params"),
                lambda_eff=attrs.get("lambda_eff"),
                value=float(value) if value is not None and math.isfinite(value) else None,
                noise=noise_of(history, score_window),
                diverged_at_epoch=attrs.get("diverged_at_epoch"),
                lambda0=t.params.get("lambda0", (attrs.get("trial_params") or {}).get("lambda0")),
                alpha=t.params.get("alpha", (attrs.get("trial_params") or {}).get("alpha")),
            )
        )
    return out


def summarize_sizes(
    records: Sequence[TrialRecord], *, tolerance: float = 0.02, min_trials: int = 4
) -> list[SizeSummary]:
    """Per width: counts, best lambda_eff, the near-best band and the flags.

    Flags: ``too_few`` (fewer than ``min_trials`` complete trials), ``at_bound`` (the best
    lambda is the smallest or largest one tried at that size, pruned and diverged trials
    included: the optimum may lie beyond),
    ``flat`` (the smallest lambda tried scores within ``tolerance`` or two noise standard
    deviations of the best, so the penalty made no measurable difference).
    """
    sizes: dict[int, SizeSummary] = {}
    complete: dict[int, list[TrialRecord]] = {}
    tried: dict[int, list[float]] = {}
    for r in records:
        if r.width is None or r.n_params is None:
            continue
        s = sizes.setdefault(r.width, SizeSummary(width=r.width, n_params=int(r.n_params)))
        if r.lambda_eff and r.state in ("complete", "pruned", "diverged"):
            tried.setdefault(r.width, []).append(r.lambda_eff)
        if r.state == "complete" and r.value is not None and r.lambda_eff:
            s.n_complete += 1
            complete.setdefault(r.width, []).append(r)
        elif r.state in ("pruned", "diverged", "failed"):
            setattr(s, f"n_{r.state}", getattr(s, f"n_{r.state}") + 1)
    for width, s in sizes.items():
        rows = complete.get(width, [])
        if not rows:
            s.flags.append("too_few")
            continue
        best = min(rows, key=lambda r: r.value)
        s.best_value, s.best_lambda_eff = best.value, best.lambda_eff
        limit = best.value + tolerance * abs(best.value)
        near = [r.lambda_eff for r in rows if r.value <= limit]
        s.band = (min(near), max(near))
        s.n_in_band = len(near)
        lams = tried[width]
        s.tried = (min(lams), max(lams))
        s.optimum_lambda_eff = math.exp(
            size_optimum(np.log([r.lambda_eff for r in rows]), np.array([r.value for r in rows]))
        )
        if len(rows) < min_trials:
            s.flags.append("too_few")
            continue
        if best.lambda_eff in (s.tried[0], s.tried[1]):
            s.flags.append("at_bound")
        smallest = min(rows, key=lambda r: r.lambda_eff)
        noise = size_noise(np.log([r.lambda_eff for r in rows]), np.array([r.value for r in rows]))
        s.noise = noise
        if smallest is not best and smallest.value <= best.value + max(tolerance * abs(best.value), 2 * noise):
            s.flags.append("flat")
    return [sizes[w] for w in sorted(sizes)]


def size_optimum(log_lam: np.ndarray, values: np.ndarray, *, half_width: float = math.log(10)) -> float:
    """log of one size's optimal lambda: the vertex of a quadratic in log lambda fitted to
    the trials within ``half_width`` (a decade) of the best one, kept inside the range of
    those trials; the best trial's own log lambda when the fit is not possible or not convex.
    """
    best = int(np.argmin(values))
    near = np.abs(log_lam - log_lam[best]) <= half_width
    x, y = log_lam[near], values[near]
    if len(x) < 4 or np.ptp(x) < 0.5:
        return float(log_lam[best])
    center = x.mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)  # clustered points: fine
        a, b, _ = np.polyfit(x - center, y, 2)
    if a <= 0:
        return float(log_lam[best])
    return float(np.clip(center - b / (2 * a), x.min(), x.max()))


def size_noise(log_lam: np.ndarray, values: np.ndarray, *, half_width: float = math.log(10)) -> float:
    """Trial-to-trial noise of one size: the residual standard deviation of its trials
    within a decade of the best about a quadratic in log lambda.

    A trial's own epoch-to-epoch spread misses seed noise (another initialisation, another
    data order), which on real data is the larger part; the scatter of neighbouring
    trials around a smooth curve holds both. 0 when there are too few trials to tell.
    """
    best = int(np.argmin(values))
    near = np.abs(log_lam - log_lam[best]) <= half_width
    x, y = log_lam[near], values[near]
    if len(x) < 6 or np.ptp(x) < 0.5:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        coef = np.polyfit(x - x.mean(), y, 2)
    residual = y - np.polyval(coef, x - x.mean())
    return float(np.sqrt(np.sum(residual**2) / (len(x) - 3)))


def fit_slope(log_n: np.ndarray, log_lam: np.ndarray) -> float:
    """``alpha`` from points (log N, log lambda): minus the least-squares slope."""
    x = log_n - log_n.mean()
    return float(-(x @ (log_lam - log_lam.mean())) / (x @ x))


def bootstrap_alpha(
    records: Sequence[TrialRecord], widths: Sequence[int], *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float], np.ndarray]:
    """``alpha_hat`` over ``widths`` and its 95% percentile interval.

    Each replicate resamples every size's complete trials with replacement, adds to each
    score Gaussian noise of that trial's own standard error or its size's trial-to-trial
    noise (``size_noise``), whichever is larger, re-locates each size's
    optimum (``size_optimum``) and refits the slope.
    """
    rng = np.random.default_rng(seed)
    groups = []  # per size: log N, scores, their noise, log lambda_eff
    for w in widths:
        rows = [r for r in records if r.width == w and r.state == "complete" and r.value is not None]
        values = np.array([r.value for r in rows])
        log_lam = np.log([r.lambda_eff for r in rows])
        noise = np.maximum([r.noise for r in rows], size_noise(log_lam, values))
        groups.append((math.log(rows[0].n_params), values, noise, log_lam))
    log_n = np.array([g[0] for g in groups])
    point = fit_slope(log_n, np.array([size_optimum(g[3], g[1]) for g in groups]))
    samples = np.empty(n_boot)
    for b in range(n_boot):
        picks = []
        for _, values, noise, log_lam in groups:
            idx = rng.integers(0, len(values), len(values))
            jittered = values[idx] + rng.normal(0.0, 1.0, len(idx)) * noise[idx]
            picks.append(size_optimum(log_lam[idx], jittered))
        samples[b] = fit_slope(log_n, np.array(picks))
    low, high = np.percentile(samples, [2.5, 97.5])
    return point, (float(low), float(high)), samples


def surface_alpha(records: Sequence[TrialRecord], widths: Sequence[int]) -> float | None:
    """alpha from a quadratic surrogate of the score over (log N, log lambda_eff).

    Fitted to the better half of each size's complete trials (the far tails of the
    loss-versus-lambda curve are not quadratic). ``None`` if the fit is not convex in
    log lambda.
    """
    xs, ys, zs = [], [], []
    for w in widths:
        rows = sorted(
            (r for r in records if r.width == w and r.state == "complete" and r.value is not None),
            key=lambda r: r.value,
        )
        keep = rows[: max(3, (len(rows) + 1) // 2)]
        for r in keep:
            xs.append(math.log(r.n_params))
            ys.append(math.log(r.lambda_eff))
            zs.append(r.value)
    if len(zs) < 7 or len(set(xs)) < 2:
        return None
    x = np.array(xs) - np.mean(xs)
    y = np.array(ys) - np.mean(ys)
    design = np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y])
    coef, *_ = np.linalg.lstsq(design, np.array(zs), rcond=None)
    if coef[4] <= 0:
        return None
    return float(coef[5] / (2 * coef[4]))


def surface_alpha_ci(
    records: Sequence[TrialRecord], widths: Sequence[int], *, n_boot: int = 500, seed: int = 0
) -> tuple[float, float] | None:
    """Bootstrap 95% interval of ``surface_alpha`` (trials resampled within sizes)."""
    rng = np.random.default_rng(seed + 1)
    by_width = {w: [r for r in records if r.width == w and r.state == "complete" and r.value is not None] for w in widths}
    samples = []
    for _ in range(n_boot):
        resampled = [rows[i] for rows in by_width.values() for i in rng.integers(0, len(rows), len(rows))]
        value = surface_alpha(resampled, widths)
        if value is not None and math.isfinite(value):
            samples.append(value)
    if len(samples) < n_boot // 2:
        return None
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def divergence_boundary(records: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    """Per width with diverged trials: the smallest lambda_eff that diverged and the
    largest that did not."""
    out = []
    widths = sorted({r.width for r in records if r.state == "diverged" and r.width is not None})
    for w in widths:
        rows = [r for r in records if r.width == w and r.lambda_eff]
        diverged = [r.lambda_eff for r in rows if r.state == "diverged"]
        fine = [r.lambda_eff for r in rows if r.state in ("complete", "pruned")]
        out.append(
            {
                "width": w,
                "n_params": rows[0].n_params,
                "n_diverged": len(diverged),
                "min_diverged_lambda_eff": min(diverged),
                "max_stable_lambda_eff": max(fine) if fine else None,
                "diverged_at_epochs": sorted({r.diverged_at_epoch for r in rows if r.diverged_at_epoch is not None}),
            }
        )
    return out


def analyze_records(
    records: Sequence[TrialRecord],
    *,
    tolerance: float = 0.02,
    min_trials: int = 4,
    n_boot: int = 2000,
    seed: int = 0,
) -> Analysis:
    """The whole analysis of one study's trials (see the module docstring)."""
    from autolambda.errors import AutolambdaError

    states: dict[str, int] = {}
    for r in records:
        states[r.state] = states.get(r.state, 0) + 1
    if not records:
        raise AutolambdaError("the study has no trials yet: run `autolambda tune` first.")
    if not any(r.state == "complete" for r in records):
        counts = ", ".join(f"{v} {k}" for k, v in sorted(states.items()))
        raise AutolambdaError(f"the study has no complete trials ({counts}): nothing to analyze yet.")
    per_size = summarize_sizes(records, tolerance=tolerance, min_trials=min_trials)
    usable = [s.width for s in per_size if s.usable]
    notes = []
    for s in per_size:
        if "too_few" in s.flags:
            notes.append(f"width {s.width}: only {s.n_complete} complete trial(s); at least {min_trials} are needed to locate its optimum.")
        if "at_bound" in s.flags:
            notes.append(f"width {s.width}: the best lambda_eff ({s.best_lambda_eff:.3g}) is the edge of what was tried; its optimum may lie beyond, so it is left out of the fit.")
        if "flat" in s.flags:
            notes.append(f"width {s.width}: the smallest lambda tried scores within {tolerance:.0%} or two noise SDs ({s.noise:.3g}) of the best: the penalty made no measurable difference; left out of the fit.")
    alpha_hat = alpha_ci = alpha_surface = alpha_surface_ci = None
    if len(usable) >= 2:
        alpha_hat, alpha_ci, _ = bootstrap_alpha(records, usable, n_boot=n_boot, seed=seed)
        alpha_surface = surface_alpha(records, usable)
        if alpha_surface is not None:
            alpha_surface_ci = surface_alpha_ci(records, usable, n_boot=max(100, n_boot // 4), seed=seed)
    else:
        notes.append(
            f"alpha needs at least two sizes with a located optimum; this study has {len(usable)} "
            f"({', '.join(map(str, usable)) or 'none'}). Run more trials or widen the search."
        )
    extrapolation = extrapolate(records, per_size) if len(usable) >= 3 else None
    hypotheses = [
        {
            "alpha": a,
            "meaning": meaning,
            "inside_ci": bool(alpha_ci is not None and alpha_ci[0] <= a <= alpha_ci[1]),
        }
        for a, meaning in HYPOTHESES
    ]
    return Analysis(
        n_trials=len(records),
        states=states,
        per_size=per_size,
        alpha_hat=alpha_hat,
        alpha_ci=alpha_ci,
        alpha_surface=alpha_surface,
        alpha_surface_ci=alpha_surface_ci,
        hypotheses=hypotheses,
        divergence=divergence_boundary(records),
        notes=notes,
        tolerance=tolerance,
        n_boot=n_boot,
        verdict=verdict(alpha_hat, alpha_ci),
        extrapolation=extrapolation,
    )


def extrapolate(records: Sequence[TrialRecord], per_size: Sequence[SizeSummary]) -> dict[str, Any] | None:
    """Fit alpha on the smaller usable sizes, predict lambda for the largest, and compare
    the loss there with the best found by direct search (the regret).

    The loss at the predicted lambda is read off the largest size's own trials: a
    quadratic in log lambda through those within a decade of the prediction, or the
    trial nearest to it when there are too few.
    """
    usable = [s for s in per_size if s.usable]
    if len(usable) < 3:
        return None
    small, largest = usable[:-1], usable[-1]
    log_n = np.log([s.n_params for s in small])
    log_lam = np.log([s.optimum_lambda_eff for s in small])
    alpha = fit_slope(log_n, log_lam)
    predicted = float(np.exp(log_lam.mean() - alpha * (math.log(largest.n_params) - log_n.mean())))
    rows = [r for r in records if r.width == largest.width and r.state == "complete" and r.value is not None]
    ll = np.log([r.lambda_eff for r in rows])
    values = np.array([r.value for r in rows])
    target = math.log(predicted)
    near = np.abs(ll - target) <= math.log(10)
    how = "nearest trial"
    loss = float(values[np.argmin(np.abs(ll - target))])
    if near.sum() >= 4 and np.ptp(ll[near]) >= 0.5 and ll[near].min() <= target <= ll[near].max():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.RankWarning)
            coef = np.polyfit(ll[near], values[near], 2)
        loss = float(np.polyval(coef, target))
        how = "quadratic through the trials within a decade"
    return {
        "fitted_on_widths": [s.width for s in small],
        "alpha_small": alpha,
        "target_width": largest.width,
        "target_n_params": largest.n_params,
        "predicted_lambda_eff": predicted,
        "best_lambda_eff": largest.best_lambda_eff,
        "loss_at_predicted": loss,
        "best_loss": largest.best_value,
        "regret": loss - largest.best_value,
        "loss_estimated_by": how,
    }


def analyze_transfer(records: Sequence[TrialRecord], *, tolerance: float = 0.02) -> dict[str, Any]:
    """A transfer study: the best (lambda0, alpha) pair and the alphas of the near-best
    pairs (trials whose mean loss over the ladder is within ``tolerance`` of the best)."""
    from autolambda.errors import AutolambdaError

    done = [r for r in records if r.state == "complete" and r.value is not None and r.alpha is not None]
    if not done:
        raise AutolambdaError("the transfer study has no complete trials: nothing to analyze yet.")
    best = min(done, key=lambda r: r.value)
    near = [r for r in done if r.value <= best.value + tolerance * abs(best.value)]
    alphas = [r.alpha for r in near]
    return {
        "mode": "transfer",
        "n_trials": len(records),
        "n_complete": len(done),
        "best": {"number": best.number, "value": best.value, "lambda0": best.lambda0, "alpha": best.alpha},
        "alpha_hat": best.alpha,
        "near_best_alpha_range": [min(alphas), max(alphas)],
        "n_near_best": len(near),
        "tolerance": tolerance,
        "hypotheses": [
            {"alpha": a, "meaning": m, "near_best": bool(min(alphas) <= a <= max(alphas))} for a, m in HYPOTHESES
        ],
    }


def verdict(alpha_hat: float | None, ci: tuple[float, float] | None) -> str:
    """One plain-language sentence on what the interval says."""
    if alpha_hat is None or ci is None:
        return "No verdict: fewer than two model sizes have a located optimum."
    inside = [a for a, _ in HYPOTHESES if ci[0] <= a <= ci[1]]
    outside = [a for a, _ in HYPOTHESES if a not in inside]
    if ci[0] <= 0.0 <= ci[1]:
        lead = "One lambda for all sizes is consistent with the data (alpha = 0 is inside the interval)"
    elif ci[0] > 0:
        lead = "lambda should shrink as the network grows (alpha > 0)"
    else:
        lead = "lambda should grow with the network (alpha < 0)"
    text = f"{lead}; alpha = {alpha_hat:.2f}, 95% interval [{ci[0]:.2f}, {ci[1]:.2f}]."
    if 1.0 in outside:
        text += " lambda proportional to 1/N (alpha = 1) is ruled out."
    elif 1.0 in inside:
        text += " lambda proportional to 1/N (alpha = 1) is not ruled out."
    return text
