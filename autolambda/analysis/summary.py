"""Which alpha do the data support? Pure functions over trial records (no TensorFlow).

All complete trials enter one joint fit (``autolambda.analysis.curve``): a per-size floor plus one
loss-versus-lambda shape shared by every size (flat, a dip, a wall), in which the dip's
position scales as ``N ** -alpha``. From it (``autolambda.analysis.estimators``):

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

The per-size table (``autolambda.analysis.sizes``) is a view of the data, not an input to
alpha. The sentences for people are worded in ``autolambda.analysis.verdict``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from autolambda.analysis.curve import CurveData, CurveFit, JointCurve, below_wall, curve_shape, weighted_curve
from autolambda.analysis.estimators import (
    EXPONENT_GRID,
    HALF_THRESHOLD,
    ExponentEstimate,
    depth_test,
    estimate_optimum,
    estimate_wall,
    informative_share,
    measure_noise,
)
from autolambda.analysis.records import (
    TrialRecord,
    complete_curve_data,
    records_from_trials,
    rung_records,
)
from autolambda.analysis.recommend import recommend
from autolambda.analysis.sizes import SizeSummary, divergence_boundary, summarize_sizes
from autolambda.analysis.verdict import (
    DEPTH_NOTE_P,
    NO_JOINT_FIT,
    depth_note,
    hypotheses_table,
    noise_source,
    not_identified_note,
    shared_seed_note,
    size_notes,
    too_few_for_fit_note,
    verdict,
)
from autolambda.core.trials import (
    LADDER_KEY, count_states, is_transfer_study, is_transfer_trial, rung_history, trial_param, trial_state,
)
from autolambda.errors import AutolambdaError
from autolambda.analysis.settings import DEFAULTS, AnalysisConfig


@dataclass
class Analysis:
    """The result of ``analyze_records``; ``to_dict`` is the ``--json`` output."""

    n_records: int  # records analysed: one per search trial, one per rung of a transfer pair
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
    dip_evidence_level: float | None  # the evidence needed to call the dip seen (a Monte Carlo test on dip-free simulated studies)
    dip_depth: float | None  # how far the optimum lies below the floor
    fit: dict[str, float]  # the joint fit's curve parameters (x = ln(N / fit_n_ref), l = ln lambda_eff)
    alpha_profile: list[tuple[float, float]]  # (alpha, delta RSS / noise**2)
    wall_profile: list[tuple[float, float]]  # (beta, delta deviance)
    hypotheses: list[dict[str, Any]]
    divergence: list[dict[str, Any]]
    notes: list[str]
    tolerance: float
    verdict: str
    extrapolation: dict[str, Any] | None = None
    # Share of the complete trials inside the band where the fitted loss depends on lambda
    # (autolambda.analysis.estimators.band_edges): the rest, on the flat floor or collapsed, inform little.
    informative_share: float | None = None
    mode: str = "search"
    # Transfer mode: the pairs, the best one's loss at each rung against its size's floor
    # (``transfer_summary``); None in search mode.
    transfer: dict[str, Any] | None = None
    # What to use at given parameter counts (``autolambda.analysis.recommend``): the study's
    # sizes unless others were asked for; empty unless the optimum's alpha is identified.
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    # The parameter count from which the joint fit measures x (its curve is drawn with it).
    fit_n_ref: float | None = None
    # Does one dip depth fit every size (``autolambda.analysis.estimators.depth_test``)?
    # {"f", "dof", "p", "depth_by_size"}; None without a dip or with fewer than 3 sizes.
    depth_test: dict[str, Any] | None = None
    # Pruned trials stopped as settled far beyond the wall (AnswerAwarePruner): hurt in the wall's fit, out of the optimum's.
    n_settled: int = 0

    def answer(self) -> dict[str, Any]:
        """The one answer to quote: the optimum's alpha when identified, else the wall's when
        identified, else none. ``tune --precision`` stops on it."""
        if self.identified:
            return {"which": "optimum", "alpha": self.alpha_hat, "ci": self.alpha_ci}
        if self.wall_identified:
            return {"which": "wall", "alpha": self.wall_alpha_hat, "ci": self.wall_alpha_ci}
        return {"which": "none", "alpha": None, "ci": None}

    @property
    def n_trials(self) -> int:
        """``n_records``, by its name in earlier versions."""
        return self.n_records

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["n_trials"] = self.n_records  # the key's name in earlier versions
        out["answer"] = self.answer()
        out["per_size"] = [s.to_dict() for s in self.per_size]
        return out


@dataclass
class _JointFit:
    """What the joint fit of a study gives ``analyze_records``."""

    curve: JointCurve
    full: CurveFit  # the fit with a dip and a wall
    alpha: ExponentEstimate
    wall: ExponentEstimate
    wall_info: dict[str, Any]  # estimate_wall's details; "c" places the wall
    c_opt: float | None  # the optimum's position at the reported alpha (when identified)
    noise_sd: float  # the measured noise, which scales alpha's interval
    noise_dof: int
    residual_sd: float  # the residual SD of the full fit
    source: str  # where noise_sd comes from, in words
    share: float | None  # informative_share of every complete trial
    depth_test: dict[str, Any] | None = None  # estimators.depth_test of the full fit


def analyze_records(
    records: Sequence[TrialRecord],
    *,
    tolerance: float = DEFAULTS.tolerance,
    min_trials: int = DEFAULTS.min_trials,
    wall_cost: float = DEFAULTS.wall_cost,
    detection_threshold: float | None = None,
    half_threshold: float | None = None,
    intervals: bool = True,
    n_params: Sequence[int] = (),
    recommend_tolerance: float = 0.01,
    recommendations: bool = True,
) -> Analysis:
    """The whole analysis of one study's trials (see the module docstring).

    Args:
        records: The study's trials.
        tolerance, min_trials, wall_cost, n_params: see ``AnalysisConfig`` (whose
            ``fit_options()`` gives them).
        detection_threshold: Evidence the dip needs to count as seen; default: calibrated
            per study on studies simulated without a dip
            (``autolambda.analysis.estimators.null_evidence_level``; 0 in calibration runs,
            which apply it afterwards).
        half_threshold: Evidence it needs in each half of the sizes; default
            ``autolambda.analysis.estimators.HALF_THRESHOLD``.
        intervals: Profile the exponents (seconds); False gives the fits and the per-size
            table only, every exponent "not identified" (the quick plots at the end of tune).
        recommend_tolerance: The near-optimal range of a recommendation costs at most this
            share of the optimum's loss.
        recommendations: Recommend lambdas at all (a profile per size: seconds).
    """
    states = _count_states(records)
    data, rows = complete_curve_data(records)
    replicates = measure_noise(rows)
    joint, notes = None, []
    if data.n_groups >= 2 and len(rows) >= data.n_units + 16:  # n_floors + 8 parameters; 8+ left for the noise
        joint = _fit_joint(records, data, rows, replicates, wall_cost=wall_cost, intervals=intervals,
                           thresholds=(detection_threshold, half_threshold))
    else:
        notes.append(too_few_for_fit_note(data.n_groups, len(rows), data.n_units))
    per_size = summarize_sizes(records, tolerance=tolerance, min_trials=min_trials, noise_sd=joint.noise_sd if joint else 0.0)
    _place_fit(per_size, rows, data, joint)
    notes += [note for s in per_size for note in size_notes(s, tolerance)]
    identified, alpha_hat, alpha_ci, alpha_reason, alpha_profile = _answer(joint.alpha if joint else None)
    wall_identified, wall_hat, wall_ci, wall_reason, wall_profile = _answer(joint.wall if joint else None)
    depths = joint.depth_test if joint else None
    if depths is not None and depths["p"] < DEPTH_NOTE_P and identified:  # it qualifies alpha's interval
        notes.append(depth_note(depths, sorted({r.width for r in rows})))
    if not identified and intervals:
        notes.append(not_identified_note(alpha_reason, blocked=any(r.block is not None for r in rows)))
    extrapolation = extrapolate(records, per_size, curve=joint.curve) if identified and data.n_groups >= 3 and intervals else None
    epoch = [r.noise for r in rows if r.noise > 0]
    advice = []
    if identified and intervals and recommendations:
        sizes = list(n_params) or sorted({int(r.n_params) for r in rows})
        wall = (joint.wall_info["c"], joint.wall.estimate) if joint.wall.identified else None
        advice = [r.to_dict() for r in recommend(
            joint.curve, joint.full, sizes, alpha=alpha_hat, c_opt=joint.c_opt, noise=(joint.noise_sd, joint.noise_dof),
            tolerance=recommend_tolerance, wall=wall, cutoff=joint.alpha.cutoff)]
    return Analysis(
        n_records=len(records), states=states, per_size=per_size,
        alpha_hat=alpha_hat, alpha_ci=alpha_ci, identified=identified, alpha_reason=alpha_reason,
        wall_alpha_hat=wall_hat, wall_alpha_ci=wall_ci, wall_identified=wall_identified, wall_reason=wall_reason,
        wall_cost=wall_cost, **_fit_fields(joint), replicate_noise_sd=replicates[0] if replicates[1] else None,
        n_replicate_dof=replicates[1], epoch_noise_sd=float(np.median(epoch)) if epoch else None,
        alpha_profile=alpha_profile, wall_profile=wall_profile, hypotheses=hypotheses_table(alpha_ci, wall_ci),
        divergence=divergence_boundary(records), notes=notes, tolerance=tolerance,
        verdict=verdict(alpha_hat, alpha_ci, wall_hat, wall_ci, alpha_reason=alpha_reason, wall_reason=wall_reason, wall_cost=wall_cost),
        extrapolation=extrapolation, recommendations=advice, fit_n_ref=data.n_ref if joint else None,
        depth_test=depths, n_settled=sum(1 for r in records if r.settled),
    )


def _count_states(records: Sequence[TrialRecord]) -> dict[str, int]:
    """How many records of each state (``core.trials.count_states``: every state, zeros
    included, as the run summary counts them); an error when there is nothing to analyze."""
    states = count_states(r.state for r in records)
    if not records:
        raise AutolambdaError("the study has no trials yet: run `autolambda tune` first.")
    if not any(r.state == "complete" for r in records):
        counts = ", ".join(f"{v} {k}" for k, v in sorted(states.items()) if v)
        raise AutolambdaError(f"the study has no complete trials ({counts}): nothing to analyze yet.")
    return states


def _fit_joint(records: Sequence[TrialRecord], data: CurveData, rows: Sequence[TrialRecord], replicates: tuple[float, int],
               *, wall_cost: float, intervals: bool, thresholds: tuple[float | None, float | None]) -> _JointFit:
    """The joint fit of the complete trials ``data`` (``rows``: their records, in order), the
    noise, both exponents and the informative share (``analyze_records``'s arguments)."""
    grid = EXPONENT_GRID if intervals else np.array([])
    detection, half = thresholds
    curve = weighted_curve(data)  # each size's own noise weighs its trials; spikes are down-weighted
    noise, test, residual_sd, source = _choose_noise(curve, *replicates)
    full, alpha, noise_sd = estimate_optimum(
        data, noise, test, grid=grid, curve=curve, threshold=detection,
        half_threshold=HALF_THRESHOLD if half is None else half)
    c_opt = None
    if alpha.identified:  # the optimum's position at the reported alpha (a grid point of the profile)
        c_opt = curve.fit(fixed={"alpha": alpha.estimate}, starts=[full.params], coarse=False).params["c"]
    every, _ = complete_curve_data(records, drop_collapsed=False)  # collapsed nets are hurt too
    # ... and so are the trials pruned as settled beyond the wall (AnswerAwarePruner).
    hurt_data, every_rows = complete_curve_data(records, drop_collapsed=False, settled=True)
    # The floors' covariance with each size's own noise (narrow nets are noisier),
    # pooled to the measured noise: how uncertain "hurt" is.
    floor_cov = curve.floor_cov(full.params, curve.group_sd(full.params, noise_sd)) if noise_sd else None
    if floor_cov is not None:  # "hurt" is measured against a block's floor: about B times as uncertain as the mean of B
        floor_cov = floor_cov * (data.n_units / data.n_groups)
    spikes = _spikes(curve, full, rows)
    wall, wall_info = estimate_wall(hurt_data, full.floors, cost=wall_cost, grid=grid, floor_cov=floor_cov,
                                    offsets=_block_offsets(data, full, rows, every_rows),
                                    ignore=np.array([(r.number, r.width) in spikes for r in every_rows], dtype=bool))
    # ``every`` has its own N_ref; the fit's x is relative to ``data``'s.
    shifted = CurveData(every.group, every.x + math.log(every.n_ref / data.n_ref), every.l, every.y, every.n_groups, data.n_ref)
    share = informative_share(dict(full.params), shifted)
    return _JointFit(curve, full, alpha, wall, wall_info, c_opt, noise_sd, noise[1], residual_sd, source, share,
                     depth_test(curve, full))


def _spikes(curve: JointCurve, full: CurveFit, rows: Sequence[TrialRecord]) -> set[tuple[int, Any]]:
    """Late spikes, as (trial number, width) (a transfer trial has a record per width):
    trials below the fitted wall that lie far above the curve (the fit's Huber step
    down-weighted them, ``noise_weights``). On digits about one
    training in eight at width 64 ends 0.05-0.15 above its block's curve, more than 25 % of
    that net's floor: counted as "hurt", it would pull the wide nets' wall down to any
    lambda. They are left out of the wall's hurt-or-not fit (not out of the curve's)."""
    d = curve.data
    shape = curve_shape(full.params)
    residual, coef = curve.solve(shape)
    below = below_wall(d, shape, coef)
    top = np.zeros(d.n_groups)
    np.maximum.at(top, d.group, curve.weights)
    down = curve.weights < 0.999 * top[d.group]  # the Huber step's share (each size's own weight is constant)
    return {(r.number, r.width) for r, flag in zip(rows, down & below & (residual > 0)) if flag}


def _units_of(rows: Sequence[TrialRecord], data: CurveData) -> dict[tuple[Any, Any], int]:
    """The floor (unit) of ``data`` that each (width, seed block) of its trials ``rows`` has."""
    return {(r.width, r.block): int(u) for r, u in zip(rows, data.unit)}


def _block_offsets(data: CurveData, full: CurveFit, rows: Sequence[TrialRecord],
                   every_rows: Sequence[TrialRecord]) -> np.ndarray:
    """For each of ``every_rows``, its seed block's fitted floor minus its size's (``rows``
    are ``data``'s trials, in order; 0 for a block the fit did not see, e.g. one whose every
    trial collapsed): "hurt" is then measured against the trial's own seed's floor."""
    unit_of = _units_of(rows, data)
    floors = full.unit_floors or []
    out = np.zeros(len(every_rows))
    for i, r in enumerate(every_rows):
        u = unit_of.get((r.width, r.block))
        if u is not None and floors:
            out[i] = floors[u] - full.floors[int(data.unit_group[u])]
    return out


def _choose_noise(curve: JointCurve, rep_sd: float, rep_dof: int) -> tuple[tuple[float, int], tuple[float, int], float, str]:
    """The noise of alpha's interval and of the dip's evidence, as (SD, degrees of freedom),
    the full fit's residual SD, and where the noise comes from.

    Two residual SDs: of the full curve (the interval's noise) and of the curve without a
    dip (the evidence's: the right variance when there is no dip; a dip free to sit
    anywhere also fits some noise). Replicates win when they show more.
    """
    first, no_dip = curve.fit(), curve.fit(dip=False)
    residual_sd = first.residual_sd
    noise = (residual_sd, first.residual_dof)
    test = (no_dip.residual_sd, no_dip.residual_dof)
    use_replicates = rep_dof >= 3 and rep_sd > residual_sd
    source = noise_source(first.residual_dof, residual_sd, rep_sd, rep_dof, replicates_used=use_replicates)
    if use_replicates:
        noise = (rep_sd, rep_dof)
        test = max(test, noise)
    return noise, test, residual_sd, source


def _fit_fields(joint: _JointFit | None) -> dict[str, Any]:
    """The fields of ``Analysis`` that the joint fit gives, and what they are without it."""
    if joint is None:
        return {"noise_sd": None, "noise_source": "not measured", "residual_noise_sd": None, "dip_evidence": 0.0,
                "dip_evidence_level": None,
                "dip_evidence_by_half": (0.0, 0.0), "dip_depth": None, "fit": {}, "informative_share": None}
    fit = dict(joint.full.params)
    return {"noise_sd": joint.noise_sd, "noise_source": joint.source, "residual_noise_sd": joint.residual_sd,
            "dip_evidence": joint.alpha.evidence, "dip_evidence_by_half": joint.alpha.evidence_by_half,
            "dip_evidence_level": joint.alpha.evidence_level if math.isfinite(joint.alpha.evidence_level) else None,
            "dip_depth": fit.get("depth"), "fit": fit, "informative_share": joint.share}


def _place_fit(per_size: Sequence[SizeSummary], rows: Sequence[TrialRecord], data: CurveData, joint: _JointFit | None) -> None:
    """Write the joint fit's floor (and each seed block's), optimum and wall at each fitted
    size into its row (``rows``: the records of ``data``'s trials, in order)."""
    if joint is None:
        return
    widths = sorted({r.width for r in rows})
    blocks: dict[Any, dict[int, float]] = {}
    if joint.full.unit_floors is not None:
        for (width, block), unit in _units_of(rows, data).items():
            if block is not None:
                blocks.setdefault(width, {})[int(block)] = joint.full.unit_floors[unit]
    for s in per_size:
        if s.width not in widths:
            continue
        s.floor = joint.full.floors[widths.index(s.width)]
        s.block_floors = dict(sorted(blocks.get(s.width, {}).items()))
        x = math.log(s.n_params / data.n_ref)
        if joint.alpha.identified:
            s.lambda_opt = math.exp(joint.c_opt - joint.alpha.estimate * x)
        if joint.wall.identified:
            s.lambda_wall = math.exp(joint.wall_info["c"] - joint.wall.estimate * x)


def _answer(estimate: ExponentEstimate | None) -> tuple[bool, float | None, tuple[float, float] | None, str, list]:
    """What the analysis reports of an exponent (``None``: the joint fit was not made):
    whether it is identified, its estimate and interval (``None`` unless identified), why
    not, and its profile."""
    if estimate is None:
        return False, None, None, NO_JOINT_FIT, []
    if estimate.identified:
        return True, estimate.estimate, estimate.ci, "", estimate.profile
    return False, None, None, estimate.reason, estimate.profile


def extrapolate(records: Sequence[TrialRecord], per_size: Sequence[SizeSummary], *, curve: Any = None) -> dict[str, Any] | None:
    """Fit the joint curve on all sizes but the largest, predict the largest's optimal
    lambda, and compare the loss there with the loss at its own optimum (the regret).

    Both losses are read off the joint fit over *all* sizes (the largest size's trials
    are noisy single seeds; the fit pools them); ``curve``, the ``JointCurve`` of all
    sizes, reuses that fit when the caller already made it.
    """
    sized = [s for s in per_size if s.n_complete > 0]
    if len(sized) < 3:
        return None
    small, largest = sized[:-1], sized[-1]
    smaller = weighted_curve(complete_curve_data(records, [s.width for s in small])[0])
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


def analyze_trials(trials: Sequence[Any], settings: AnalysisConfig = DEFAULTS,
                   **kwargs: Any) -> tuple[list[TrialRecord], Analysis]:
    """The records of a study's Optuna trials and their analysis: ``analyze_transfer``
    for a transfer study (``core.trials.is_transfer_study``), else ``analyze_records``.
    ``settings`` fixes the score window and the fit's options; ``kwargs`` go to
    ``analyze_records`` (e.g. ``intervals=False``)."""
    records = records_from_trials(trials, score_window=settings.score_window)
    options = settings.fit_options() | kwargs
    if is_transfer_study(trials):
        return records, analyze_transfer(trials, records=records, **options)
    return records, analyze_records(records, **options)


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
    old = sum(1 for t in trials if rung_history(t.user_attrs).get("rung_val_ce") and "rung_seconds" not in rung_history(t.user_attrs))
    if old:
        analysis.notes.append(shared_seed_note(old))
    analysis.mode = "transfer"
    analysis.transfer = transfer_summary(trials, analysis, top=top)
    return analysis


def transfer_summary(trials: Sequence[Any], analysis: Analysis, *, top: int = 5) -> dict[str, Any]:
    """The pairs of a transfer study: how many, and the ``top`` best complete pairs with
    each rung's loss and its cost over the size's fitted floor (None before the fit)."""
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
    ladder = list(pairs[0].user_attrs.get(LADDER_KEY, [])) if pairs else []
    return {"n_pairs": len(pairs), "pair_states": states, "ladder": ladder, "best_pairs": best}
