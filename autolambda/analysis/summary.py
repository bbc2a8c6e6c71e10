"""Which alpha do the data support? Pure functions over trial records (no TensorFlow).

All complete trials enter one joint fit (``autolambda.analysis.curve``): a per-size floor plus one
loss-versus-lambda shape shared by every size (flat, a dip, a wall), in which the dip's
position scales as ``N ** -alpha``. From it:

- ``alpha_hat`` and ``alpha_ci``: the optimum's exponent with its 95 % profile-likelihood
  interval, or ``None`` with ``identified = False`` when the dip is not distinguishable
  from noise or the data do not bound the interval;
- ``wall_alpha_hat`` and ``wall_alpha_ci``: how the lambda at which the penalty starts to
  cost (``wall_cost`` of the loss) scales with N, usually far better determined;
- ``noise_sd``: the trial-to-trial noise, measured: the residual SD of the joint fit
  below the wall, or of replicate trials at identical settings when there are 3+ degrees
  of freedom of them and they show more; never the spread of a trial's last epochs,
  which misses seed-to-seed variation. The dip's evidence is scaled by the residual SD
  of the fit *without* a dip (the right variance when there is none).

The per-size table (best trial, near-best band, flags) is a view of the data, not an input
to alpha: on a flat curve each size's best trial is just the luckiest seed.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
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
    flags: list[str] = field(default_factory=list)
    floor: float | None = None  # the joint fit's loss at a negligible penalty
    lambda_opt: float | None = None  # the joint fit's optimum at this N (when alpha is identified)
    lambda_wall: float | None = None  # where the penalty starts to cost (when the wall is identified)

    @property
    def usable(self) -> bool:
        """Whether this size's own best trial locates an optimum (no flag): a view of the
        data; every size's trials enter the joint fit either way."""
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
    alpha_hat: float | None  # None unless identified
    alpha_ci: tuple[float, float] | None
    identified: bool
    alpha_reason: str  # why alpha is not identified ("" when it is)
    wall_alpha_hat: float | None
    wall_alpha_ci: tuple[float, float] | None
    wall_identified: bool
    wall_reason: str
    wall_cost: float  # the wall is where a trial costs more than this share of its floor
    noise_sd: float | None  # trial-to-trial SD of the score: scales alpha's interval (the dip's evidence uses the no-dip fit's)
    noise_source: str
    replicate_noise_sd: float | None  # from trials repeated at identical settings (None: none)
    n_replicate_dof: int
    residual_noise_sd: float | None  # from the residuals of the joint fit
    epoch_noise_sd: float | None  # median standard error of a trial's last epochs (misses seed noise)
    dip_evidence: float  # (RSS without the dip - RSS with it) / (residual SD of the fit without a dip)**2
    dip_evidence_by_half: tuple[float, float]  # the same gain among the smaller and the larger half of the sizes
    dip_depth: float | None  # how far the optimum lies below the floor
    fit: dict[str, float]  # the joint fit's curve parameters
    alpha_profile: list[tuple[float, float]]  # (alpha, delta RSS / noise**2)
    wall_profile: list[tuple[float, float]]  # (beta, delta deviance)
    hypotheses: list[dict[str, Any]]
    divergence: list[dict[str, Any]]
    notes: list[str]
    tolerance: float
    verdict: str
    extrapolation: dict[str, Any] | None = None
    # Share of the complete trials inside the band where the fitted loss depends on lambda
    # (autolambda.analysis.curve.band_edges): the rest, on the flat floor or collapsed, inform little.
    informative_share: float | None = None
    mode: str = "search"
    # Transfer mode: the pairs, the best one's loss at each rung against its size's floor
    # (``transfer_summary``); None in search mode.
    transfer: dict[str, Any] | None = None

    def answer(self) -> dict[str, Any]:
        """The one answer to quote: the optimum's alpha when identified, else the wall's when
        identified, else none. ``tune --precision`` stops on it."""
        if self.identified:
            return {"which": "optimum", "alpha": self.alpha_hat, "ci": self.alpha_ci}
        if self.wall_identified:
            return {"which": "wall", "alpha": self.wall_alpha_hat, "ci": self.wall_alpha_ci}
        return {"which": "none", "alpha": None, "ci": None}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["answer"] = self.answer()
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
    """Turn Optuna ``FrozenTrial`` objects into ``TrialRecord`` s.

    A transfer trial (``autolambda.search.transfer``) gives one record per rung of its ladder
    (see ``rung_records``), so both modes enter the same analysis.
    """
    from autolambda.core.states import trial_state

    out = []
    for t in trials:
        attrs = t.user_attrs
        if is_transfer_trial(t):
            out.extend(rung_records(t, trial_state(t)))
            continue
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
                lambda0=trial_param(t, "lambda0"),
                alpha=trial_param(t, "alpha"),
            )
        )
    return out


def summarize_sizes(
    records: Sequence[TrialRecord], *, tolerance: float = 0.02, min_trials: int = 4, noise_sd: float = 0.0
) -> list[SizeSummary]:
    """Per width: counts, best lambda_eff, the near-best band and the flags.

    Flags: ``too_few`` (fewer than ``min_trials`` complete trials), ``at_bound`` (the best
    lambda is the smallest or largest one tried at that size, pruned and diverged trials
    included: the optimum may lie beyond),
    ``flat`` (the smallest lambda tried scores within ``tolerance`` or two noise SDs
    (``noise_sd``, the measured trial-to-trial noise) of the best, so the penalty made no
    measurable difference at that size).
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
        if smallest is not best and smallest.value <= best.value + max(tolerance * abs(best.value), 2 * noise_sd):
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


#: A trial whose loss exceeds this many times the median complete trial's has collapsed
#: (digits: ln 10 = 2.30 against ~0.2): it says "beyond the wall", which the wall's
#: hurt-or-not fit uses, but its height would dominate the least-squares fit of the dip.
COLLAPSED = 5.0


def trial_param(trial: Any, name: str) -> Any:
    """A trial's parameter: searched (``trial.params``) or fixed (``trial_params``)."""
    return trial.params.get(name, (trial.user_attrs.get("trial_params") or {}).get(name))


def is_transfer_trial(trial: Any) -> bool:
    """Whether ``trial`` trained a ladder of widths (transfer mode)."""
    return "ladder" in trial.user_attrs


def rung_records(trial: Any, state: str) -> list[TrialRecord]:
    """The records of one transfer trial: one ``complete`` record per rung it finished;
    if it diverged, failed or is still running, one record in that state at the rung
    where it stopped; if it was pruned, one ``pruned`` record (no value, no lambda_eff)
    per width it did not reach.

    Each rung is a whole training at its own ``lambda_eff`` with its own seed: one
    observation of the loss at (N, lambda_eff), like a search trial. The finished rungs
    of a *pruned* pair count too: the pruner stopped the pair on the values of those very
    rungs, so leaving the unseen rungs out does not bias a fit to the seen ones (missing
    at random, given what was observed).
    """
    attrs = trial.user_attrs
    rungs = attrs.get("history") or {}
    lambda0, alpha = trial_param(trial, "lambda0"), trial_param(trial, "alpha")
    out = []
    finished = list(zip(rungs.get("rung_width", []), rungs.get("rung_n_params", []),
                        rungs.get("rung_lambda_eff", []), rungs.get("rung_val_ce", [])))
    for width, n_params, lam, value in finished:
        ok = value is not None and math.isfinite(value)
        out.append(TrialRecord(number=trial.number, state="complete" if ok else "diverged", width=int(width),
                               n_params=int(n_params), lambda_eff=float(lam), value=float(value) if ok else None,
                               lambda0=lambda0, alpha=alpha))
    stopped = attrs.get("rung")
    ladder = list(attrs.get("ladder", []))
    # "step" tells the rung being trained from one finished before the stop (older trials lack it).
    at_stopped = stopped and stopped.get("step", len(finished)) == len(finished) < len(ladder)
    if state in ("diverged", "failed", "running") and at_stopped:
        out.append(TrialRecord(number=trial.number, state=state, width=int(stopped["width"]),
                               n_params=int(stopped["n_params"]), lambda_eff=float(stopped["lambda_eff"]), value=None,
                               diverged_at_epoch=attrs.get("diverged_at_epoch"), lambda0=lambda0, alpha=alpha))
    elif state == "pruned":
        sizes = list(attrs.get("ladder_n_params") or [None] * len(ladder))
        out += [TrialRecord(number=trial.number, state="pruned", width=int(w), n_params=n, lambda_eff=None, value=None,
                            lambda0=lambda0, alpha=alpha) for w, n in zip(ladder[len(finished):], sizes[len(finished):])]
    return out


def complete_curve_data(records: Sequence[TrialRecord], widths: Sequence[int] | None = None, *,
                        drop_collapsed: bool = True) -> tuple[Any, list[TrialRecord]]:
    """The complete trials (of ``widths``, default all) as ``CurveData``, with the records;
    collapsed trials (see ``COLLAPSED``) left out unless ``drop_collapsed`` is false."""
    from autolambda.analysis.curve import CurveData

    rows = [r for r in records if r.state == "complete" and r.value is not None and r.lambda_eff and r.n_params
            and r.width is not None and (widths is None or r.width in widths)]
    if drop_collapsed and rows:
        limit = COLLAPSED * float(np.median([r.value for r in rows]))
        kept = [r for r in rows if r.value <= limit]
        widths_kept = {r.width for r in kept}
        rows = [r for r in rows if r.value <= limit or r.width not in widths_kept]  # never drop a size
    sizes = [r.n_params for r in rows]
    n_ref = math.sqrt(min(sizes) * max(sizes)) if rows else 1.0  # alpha does not depend on it
    data = CurveData.from_rows([r.width for r in rows], sizes, [r.lambda_eff for r in rows], [r.value for r in rows], n_ref)
    return data, rows


def measure_noise(rows: Sequence[TrialRecord]) -> tuple[float, int]:
    """Pooled SD of complete trials trained at identical settings (same width and
    lambda_eff, another seed), and its degrees of freedom; ``(0.0, 0)`` without replicates."""
    from autolambda.analysis.curve import replicate_noise

    keys = [(r.width, round(math.log(r.lambda_eff), 9)) for r in rows]
    return replicate_noise(keys, [r.value for r in rows])


def analyze_records(
    records: Sequence[TrialRecord],
    *,
    tolerance: float = 0.02,
    min_trials: int = 4,
    wall_cost: float = 0.25,
    detection_threshold: float | None = None,
    half_threshold: float | None = None,
    intervals: bool = True,
) -> Analysis:
    """The whole analysis of one study's trials (see the module docstring).

    Args:
        records: The study's trials.
        tolerance: Relative width of the per-size near-best band (a view of the data).
        min_trials: Complete trials a size needs for its own row to count as located.
        wall_cost: The wall is where a trial's loss exceeds its size's floor by this share.
        detection_threshold: Evidence the dip needs to count as seen; default
            ``autolambda.analysis.curve.DETECTION_THRESHOLD`` (calibrated; 0 in calibration runs,
            which apply thresholds afterwards).
        half_threshold: Evidence it needs in each half of the sizes; default
            ``autolambda.analysis.curve.HALF_THRESHOLD``.
        intervals: Profile the exponents (seconds); False gives the fits and the per-size
            table only, every exponent "not identified" (the quick plots at the end of tune).
    """
    from autolambda.analysis.curve import DETECTION_THRESHOLD, EXPONENT_GRID, HALF_THRESHOLD, estimate_optimum, estimate_wall

    grid = EXPONENT_GRID if intervals else np.array([])

    detection_threshold = DETECTION_THRESHOLD if detection_threshold is None else detection_threshold
    half_threshold = HALF_THRESHOLD if half_threshold is None else half_threshold
    from autolambda.errors import AutolambdaError

    states: dict[str, int] = {}
    for r in records:
        states[r.state] = states.get(r.state, 0) + 1
    if not records:
        raise AutolambdaError("the study has no trials yet: run `autolambda tune` first.")
    if not any(r.state == "complete" for r in records):
        counts = ", ".join(f"{v} {k}" for k, v in sorted(states.items()))
        raise AutolambdaError(f"the study has no complete trials ({counts}): nothing to analyze yet.")
    data, rows = complete_curve_data(records)
    rep_sd, rep_dof = measure_noise(rows)
    notes: list[str] = []
    epoch = [r.noise for r in rows if r.noise > 0]
    epoch_sd = float(np.median(epoch)) if epoch else None
    n_sizes = data.n_groups
    fit_params: dict[str, float] = {}
    floors: list[float] = []
    alpha = wall = None
    residual_sd = noise_sd = None
    share = None
    source = "not measured"
    if n_sizes >= 2 and len(rows) >= n_sizes + 16:  # the fit has n_sizes + 8 parameters; 8+ left for the noise
        from autolambda.analysis.curve import JointCurve

        # Two residual SDs: of the full curve (the interval's noise) and of the curve
        # without a dip (the evidence's: the right variance when there is no dip; a dip
        # free to sit anywhere also fits some noise). Replicates win when they show more.
        curve = JointCurve(data)
        first, no_dip = curve.fit(), curve.fit(dip=False)
        residual_sd = first.residual_sd
        noise = (residual_sd, first.residual_dof)
        test = (no_dip.residual_sd, no_dip.residual_dof)
        source = f"residuals of the joint fit below the wall ({noise[1]} degrees of freedom)"
        if rep_dof >= 3 and rep_sd > residual_sd:
            noise = (rep_sd, rep_dof)
            test = max(test, noise)
            source = f"replicates ({rep_dof} degrees of freedom; larger than the residual SD {residual_sd:.3g})"
        elif rep_dof >= 3:
            source += f"; replicates give {rep_sd:.3g} ({rep_dof} degrees of freedom), the smaller is not used"
        full, alpha, noise_sd, _ = estimate_optimum(data, noise, test, threshold=detection_threshold,
                                                    half_threshold=half_threshold, grid=grid, curve=curve)
        fit_params, floors = dict(full.params), full.floors
        if alpha.identified:  # the optimum's position at the reported alpha (a grid point of the profile)
            c_opt = curve.fit(fixed={"alpha": alpha.estimate}, starts=[full.params], coarse=False).params["c"]
        every, _ = complete_curve_data(records, drop_collapsed=False)  # collapsed nets are hurt too
        # The floors' covariance with each size's own noise (narrow nets are noisier),
        # pooled to the measured noise: how uncertain "hurt" is.
        floor_cov = curve.floor_cov(full.params, curve.group_sd(full.params, noise_sd)) if noise_sd else None
        wall, wall_info = estimate_wall(every, floors, cost=wall_cost, grid=grid, floor_cov=floor_cov)
        from autolambda.analysis.curve import CurveData, informative_share

        # ``every`` has its own N_ref; the fit's x is relative to ``data``'s.
        shifted = CurveData(every.group, every.x + math.log(every.n_ref / data.n_ref), every.l, every.y, every.n_groups, data.n_ref)
        share = informative_share(fit_params, shifted)
    else:
        notes.append(f"the joint fit needs complete trials at two or more sizes and {n_sizes + 16}+ in all; "
                     f"this study has {len(rows)} at {n_sizes}. Run more trials.")
    per_size = summarize_sizes(records, tolerance=tolerance, min_trials=min_trials, noise_sd=noise_sd or 0.0)
    widths = sorted({r.width for r in rows})
    for s in per_size:
        if s.width in widths:
            i = widths.index(s.width)
            s.floor = floors[i] if floors else None
            x = math.log(s.n_params / data.n_ref)
            if alpha is not None and alpha.identified:
                s.lambda_opt = math.exp(c_opt - alpha.estimate * x)
            if wall is not None and wall.identified:
                s.lambda_wall = math.exp(wall_info["c"] - wall.estimate * x)
        if "too_few" in s.flags:
            notes.append(f"width {s.width}: only {s.n_complete} complete trial(s); its own best is not located (its trials still enter the joint fit).")
        if "at_bound" in s.flags:
            notes.append(f"width {s.width}: its best trial ({s.best_lambda_eff:.3g}) is the edge of what was tried there.")
        if "flat" in s.flags:
            notes.append(f"width {s.width}: its smallest lambda scores within {tolerance:.0%} or two noise SDs of its best: flat within noise.")
    identified = bool(alpha is not None and alpha.identified)
    wall_identified = bool(wall is not None and wall.identified)
    alpha_reason = "" if identified else (alpha.reason if alpha is not None else "too few complete trials for the joint fit")
    wall_reason = "" if wall_identified else (wall.reason if wall is not None else "too few complete trials for the joint fit")
    if not identified and intervals:
        notes.append("alpha of the optimum is not identified: " + alpha_reason + ". What would help: more epochs "
                     "(the penalty matters more once nets overfit), replicate trials, or a lambda range centred on the dip.")
    alpha_hat = alpha.estimate if identified else None
    alpha_ci = alpha.ci if identified else None
    wall_hat = wall.estimate if wall_identified else None
    wall_ci = wall.ci if wall_identified else None
    hypotheses = [
        {
            "alpha": a,
            "meaning": meaning,
            "inside_ci": (alpha_ci[0] <= a <= alpha_ci[1]) if alpha_ci else None,
            "inside_wall_ci": (wall_ci[0] <= a <= wall_ci[1]) if wall_ci else None,
        }
        for a, meaning in HYPOTHESES
    ]
    extrapolation = extrapolate(records, per_size, curve=curve) if identified and n_sizes >= 3 and intervals else None
    return Analysis(
        n_trials=len(records),
        states=states,
        per_size=per_size,
        alpha_hat=alpha_hat,
        alpha_ci=alpha_ci,
        identified=identified,
        alpha_reason=alpha_reason,
        wall_alpha_hat=wall_hat,
        wall_alpha_ci=wall_ci,
        wall_identified=wall_identified,
        wall_reason=wall_reason,
        wall_cost=wall_cost,
        noise_sd=noise_sd,
        noise_source=source,
        replicate_noise_sd=rep_sd if rep_dof else None,
        n_replicate_dof=rep_dof,
        residual_noise_sd=residual_sd,
        epoch_noise_sd=epoch_sd,
        dip_evidence=alpha.evidence if alpha is not None else 0.0,
        dip_evidence_by_half=alpha.evidence_by_half if alpha is not None else (0.0, 0.0),
        dip_depth=fit_params.get("depth"),
        fit=fit_params,
        informative_share=share,
        alpha_profile=alpha.profile if alpha is not None else [],
        wall_profile=wall.profile if wall is not None else [],
        hypotheses=hypotheses,
        divergence=divergence_boundary(records),
        notes=notes,
        tolerance=tolerance,
        verdict=verdict(alpha_hat, alpha_ci, wall_hat, wall_ci, alpha_reason=alpha_reason, wall_reason=wall_reason, wall_cost=wall_cost),
        extrapolation=extrapolation,
    )


def extrapolate(records: Sequence[TrialRecord], per_size: Sequence[SizeSummary], *, curve: Any = None) -> dict[str, Any] | None:
    """Fit the joint curve on all sizes but the largest, predict the largest's optimal
    lambda, and compare the loss there with the loss at its own optimum (the regret).

    Both losses are read off the joint fit over *all* sizes (the largest size's trials
    are noisy single seeds; the fit pools them); ``curve``, the ``JointCurve`` of all
    sizes, reuses that fit when the caller already made it.
    """
    from autolambda.analysis.curve import JointCurve

    sized = [s for s in per_size if s.n_complete > 0]
    if len(sized) < 3:
        return None
    small, largest = sized[:-1], sized[-1]
    smaller = JointCurve(complete_curve_data(records, [s.width for s in small])[0])
    part = smaller.fit()
    curve = curve or JointCurve(complete_curve_data(records)[0])
    full = curve.fit()
    if part.params.get("depth", 0.0) <= 0 or full.params.get("depth", 0.0) <= 0:
        return None
    predicted = math.exp(part.params["c"] - part.params["alpha"] * math.log(largest.n_params / smaller.data.n_ref))
    x = math.log(largest.n_params / curve.data.n_ref)
    own = full.params["c"] - full.params["alpha"] * x
    group = curve.data.n_groups - 1
    loss_at_predicted = full.predict(group, x, math.log(predicted))
    best_loss = full.predict(group, x, own)
    return {
        "fitted_on_widths": [s.width for s in small],
        "alpha_small": part.params["alpha"],
        "target_width": largest.width,
        "target_n_params": largest.n_params,
        "predicted_lambda_eff": predicted,
        "best_lambda_eff": math.exp(own),
        "loss_at_predicted": loss_at_predicted,
        "best_loss": best_loss,
        "regret": loss_at_predicted - best_loss,
        "loss_estimated_by": "the joint fit over all sizes",
    }


def analyze_transfer(trials: Sequence[Any], *, records: Sequence[TrialRecord] | None = None, top: int = 5,
                     **kwargs: Any) -> Analysis:
    """A transfer study: the joint fit of its rungs (``analyze_records`` on
    ``records_from_trials``, the same estimators and intervals as search mode) plus the
    pairs' view (``transfer_summary``). ``records``: ``records_from_trials(trials)`` when
    the caller has them already. ``kwargs`` go to ``analyze_records``.

    Why the joint fit answers the transfer question: a pair (lambda0, alpha) transfers
    when ``lambda0 * (N / N_ref) ** -alpha`` is each size's best lambda, and the joint fit's
    optimum is exactly ``exp(c) * (N / N_ref) ** -alpha``. The mean loss over the ladder
    of the single best pair is not an estimator: with a flat optimum it is the luckiest
    pair, and its alpha is noise (a 40-trial study gave an "interval" of one point).
    """
    records = records_from_trials(trials) if records is None else records
    analysis = analyze_records(records, **kwargs)
    old = sum(1 for t in trials if is_transfer_trial(t) and (t.user_attrs.get("history") or {}).get("rung_val_ce")
              and "rung_seconds" not in t.user_attrs["history"])
    if old:
        analysis.notes.append(f"{old} pair(s) were trained before autolambda gave each rung its own seed: their rungs "
                              "share a seed, so their noise is not independent and the intervals may be too narrow. "
                              "Re-run the study in a new one for an interval to trust.")
    analysis.mode = "transfer"
    analysis.transfer = transfer_summary(trials, analysis, top=top)
    return analysis


def transfer_summary(trials: Sequence[Any], analysis: Analysis, *, top: int = 5) -> dict[str, Any]:
    """The pairs of a transfer study: how many, and the ``top`` best complete pairs with
    each rung's loss and its cost over the size's fitted floor (None before the fit)."""
    from autolambda.core.states import trial_state

    pairs = [t for t in trials if is_transfer_trial(t)]
    states = dict(Counter(trial_state(t) for t in pairs))
    floors = {s.width: s.floor for s in analysis.per_size}
    done = sorted((t for t in pairs if trial_state(t) == "complete" and t.value is not None and math.isfinite(t.value)),
                  key=lambda t: t.value)
    best = []
    for t in done[:top]:
        rungs = []
        for r in rung_records(t, "complete"):
            floor = floors.get(r.width)
            rungs.append({"width": r.width, "n_params": r.n_params, "lambda_eff": r.lambda_eff, "value": r.value,
                          "floor": floor, "over_floor": None if floor is None or r.value is None else r.value - floor})
        best.append({"number": t.number, "value": t.value, "lambda0": trial_param(t, "lambda0"),
                     "alpha": trial_param(t, "alpha"), "rungs": rungs})
    ladder = list(pairs[0].user_attrs.get("ladder", [])) if pairs else []
    return {"n_pairs": len(pairs), "pair_states": states, "ladder": ladder, "best_pairs": best}


def verdict(
    alpha_hat: float | None,
    ci: tuple[float, float] | None,
    wall_hat: float | None = None,
    wall_ci: tuple[float, float] | None = None,
    *,
    alpha_reason: str = "",
    wall_reason: str = "",
    wall_cost: float = 0.25,
) -> str:
    """Plain-language sentences on what the two intervals say (and do not say)."""
    if alpha_hat is None or ci is None:
        text = ("The optimum's alpha is not identified: " + (alpha_reason or "too few trials") +
                ". No hypothesis about the best lambda is ruled out.")
    else:
        inside = [a for a, _ in HYPOTHESES if ci[0] <= a <= ci[1]]
        if ci[0] <= 0.0 <= ci[1]:
            lead = "One lambda for all sizes is consistent with the data (alpha = 0 is inside the interval)"
        elif ci[0] > 0:
            lead = "The best lambda shrinks as the network grows (alpha > 0)"
        else:
            lead = "The best lambda grows with the network (alpha < 0)"
        text = f"{lead}; alpha = {alpha_hat:.2f}, 95% interval [{ci[0]:.2f}, {ci[1]:.2f}]."
        text += (" lambda proportional to 1/N (alpha = 1) is " + ("not ruled out." if 1.0 in inside else "ruled out."))
    if wall_hat is None or wall_ci is None:
        text += " The wall's scaling is not identified: " + (wall_reason or "too few trials") + "."
    else:
        text += (f" The wall (the lambda at which a trial costs {wall_cost:.0%} more than its size's floor) scales with "
                 f"alpha = {wall_hat:.2f}, 95% interval [{wall_ci[0]:.2f}, {wall_ci[1]:.2f}]")
        text += ": a summed penalty " + ("does" if wall_ci[0] > 0 else "does not") + " force lambda down as N grows" + (
            "." if wall_ci[0] > 0 else (" (it lets lambda grow)." if wall_ci[1] < 0 else " at these sizes."))
    return text
