"""Spend trials where they carry information: the design sampler and replicate trials.

On a flat floor (lambda far below the optimum) or beyond the wall (a collapsed net) a
trial's loss does not depend on lambda: it says nothing about how the optimum moves with
N. ``DesignSampler`` lets its wrapped sampler (width-balanced TPE) start the study; once
the study holds enough complete trials for the joint fit (``autolambda.analysis.curve``), it
refits the curve every few trials and draws each new trial's ``lambda_eff`` for its
width where it locates that width's optimum: around the fitted dip, on both sides
(``DIP_SHARE``), with a share on the wall's rise (``WALL_SHARE``: the wall is the second
answer), on the floor just below the dip (``FLOOR_SHARE``: the floors anchor the dip's
depth) and around both (the rest: a fit that is wrong can still be corrected). Before the
fit has a dip, the whole informative band (dip and wall, ``band_edges``) takes the dip's
share. The wall is the loudest feature of the curve, not the one the question is about:
a design that spread its trials over the band put most of them on the wall on digits.
Once the fit exists the design also picks each new trial's width: the one whose optimum
is least determined for alpha (its noise over its trials in the dip, more for the sizes
at the ends, which fix a slope), within half an equal share of the least-tried width's
count, so no size is starved. ``alpha`` is drawn uniformly among the values that keep ``lambda0 = lambda_eff * (N /
N_ref) ** alpha`` in its range: for a trial of one width, only ``lambda_eff`` matters to
what it measures.

``Replicator`` (an Optuna callback) re-queues an earlier complete trial's settings now
and then (``enqueue_trial``); the new trial number gives it another seed, so the study
measures its own trial-to-trial noise (``autolambda.analysis.estimators.measure_noise``).
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from autolambda.search.strata import stratum_of
from autolambda.core.trials import FINISHED, LAMBDA_EFF_KEY, N_PARAMS_KEY, N_REF_KEY, REPLICATE_OF_KEY
from autolambda.analysis.estimators import band_edges
from autolambda.analysis.records import complete_curve_data, records_from_trials
from autolambda.analysis.curve import below_wall, curve_shape, weighted_curve
from autolambda.search.samplers import _COUNTED

#: Shares of the trials drawn by the design: around the dip (DIP_SD_REACH of its widths
#: either side of its centre, but from DIP_NATS to DIP_MAX_NATS: the slope of a dip, where
#: its position shows, is steepest one width out), on the wall's rise (1 % to 90 % of the
#: way to collapse), on the floor below the dip (up to FLOOR_NATS under it), and the rest
#: around all of it (EXPLORE_NATS below to EXPLORE_NATS / 2 above), where a wrong fit shows.
#: How far a width's trial count may run ahead of the least-tried width's, as a share of
#: an equal split (``DesignSampler._next_width``).
WIDTH_SLACK = 0.5
DIP_SHARE = 0.65
WALL_SHARE = 0.15
FLOOR_SHARE = 0.10
DIP_NATS = 1.5
DIP_SD_REACH = 1.5
DIP_MAX_NATS = 2.5
FLOOR_NATS = 3.0
EXPLORE_NATS = 4.0


class DesignSampler(optuna.samplers.BaseSampler):
    """Draw ``lambda0`` and ``alpha`` so that ``lambda_eff`` lands where the loss depends on it.

    Args:
        sampler: The sampler for the start of the study and for every other parameter
            (by default width-balanced TPE, see ``autolambda.search.samplers``).
        seed: Seed of the design's draws.
        refit_every: Refit the joint curve after this many new complete trials.

    Both ``lambda0`` and ``alpha`` must be searched (``lambda0`` suggested first, as
    ``autolambda.core.space.suggest_params`` does); otherwise the wrapped sampler does all.
    """

    def __init__(self, sampler: optuna.samplers.BaseSampler, *, seed: int | None = None, refit_every: int = 8) -> None:
        self.sampler = sampler
        self._seed = seed
        self.refit_every = refit_every
        self._fit: tuple[int, dict[str, float], float] | None = None  # (n complete, params, fit's n_ref)
        self._sizes: dict[Any, tuple[float, float]] = {}  # width -> (x = ln(N / fit's n_ref), its residual SD)
        self._pending: dict[int, float] = {}  # trial number -> alpha chosen with its lambda0

    # -- Optuna's sampler interface: everything but lambda0/alpha goes to the wrapped one.
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        if param_name == "width" and isinstance(param_distribution, CategoricalDistribution):
            width = self._next_width(study, trial, param_distribution.choices)
            if width is not None:
                return width
        if param_name == "alpha" and trial.number in self._pending:
            alpha = self._pending.pop(trial.number)
            if isinstance(param_distribution, FloatDistribution) and param_distribution.low <= alpha <= param_distribution.high:
                return alpha
        if param_name == "lambda0" and isinstance(param_distribution, FloatDistribution):
            drawn = self._design(study, trial, param_distribution)
            if drawn is not None:
                lambda0, alpha = drawn
                self._pending[trial.number] = alpha
                return lambda0
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._pending.pop(trial.number, None)
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()

    # -- The design.
    def _design(self, study: optuna.Study, trial: FrozenTrial, lam_dist: FloatDistribution) -> tuple[float, float] | None:
        width = stratum_of(trial, "width")
        n_ref = study.user_attrs.get(N_REF_KEY)
        if width is None or not n_ref:
            return None
        done = study._storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.COMPLETE,))
        alpha_dist = next((t.distributions["alpha"] for t in done if "alpha" in t.distributions), None)
        shape = {k: trial.params.get(k) for k in ("depth", "kernel_size")}  # when searched, N depends on them too
        n_params = next((t.user_attrs.get(N_PARAMS_KEY) for t in done if stratum_of(t, "width") == width
                         and all(t.params.get(k) == v for k, v in shape.items())), None)
        if not isinstance(alpha_dist, FloatDistribution) or not n_params:
            return None
        fit = self._current_fit(done)
        if fit is None:
            return None
        params, fit_n_ref = fit
        x_fit = math.log(n_params / fit_n_ref)
        band = band_edges(params, x_fit)
        if band is None:
            return None
        regions = design_regions(params, x_fit, band)
        rng = random.Random(f"{self._seed}-{study.study_name}-{trial.number}-design")
        lam_lo, lam_hi = math.log(lam_dist.low), math.log(lam_dist.high)
        # The lambda_eff a lambda0 in range can give at this width, over alpha's range.
        x_study = math.log(n_params / float(n_ref))
        reach = [-a * x_study for a in (alpha_dist.low, alpha_dist.high)]
        l_min, l_max = lam_lo + min(reach), lam_hi + max(reach)
        pick, (lo, hi) = rng.random(), regions[-1][1]
        for share, region in regions:
            if pick < share:
                lo, hi = region
                break
            pick -= share
        lo, hi = max(lo, l_min), min(hi, l_max)
        if lo >= hi:
            return None
        target = rng.uniform(lo, hi)
        # ln lambda0 = target + alpha * x_study must lie in lambda0's range.
        a_lo, a_hi = alpha_dist.low, alpha_dist.high
        if abs(x_study) > 1e-12:
            b1, b2 = (lam_lo - target) / x_study, (lam_hi - target) / x_study
            a_lo, a_hi = max(a_lo, min(b1, b2)), min(a_hi, max(b1, b2))
        if a_lo > a_hi:
            return None
        alpha = rng.uniform(a_lo, a_hi)
        lambda0 = math.exp(min(max(target + alpha * x_study, lam_lo), lam_hi))
        return lambda0, alpha

    def _current_fit(self, done: list[FrozenTrial]) -> tuple[dict[str, float], float] | None:
        """The joint fit of the complete trials, refitted every ``refit_every`` new ones."""
        n = len(done)
        if self._fit is not None and n < self._fit[0] + self.refit_every:
            return (self._fit[1], self._fit[2]) if self._fit[1] else None
        data, rows = complete_curve_data(records_from_trials(done))
        # The sizes + 16 trials (as measured on digits and the surrogate): with seed blocks the
        # first fits have few trials per block's floor, but only steer the draws, and the
        # design refits every few trials.
        if data.n_groups < 2 or len(rows) < data.n_groups + 16:
            return None
        try:
            curve = weighted_curve(data)
            params = curve.fit().params
        except Exception:  # a failed fit must not stop the study: sample as the wrapped sampler would
            self._fit = (n, {}, data.n_ref)  # and try again only after refit_every more trials
            return None
        self._fit = (n, params, data.n_ref)
        widths = sorted({r.width for r in rows})
        residual, coef = curve.solve(curve_shape(params))
        residual = residual / curve.weights
        below = below_wall(data, curve_shape(params), coef)
        pooled = float(np.sqrt(np.mean(residual[below] ** 2))) if below.any() else 0.0
        for k, width in enumerate(widths):
            mine = residual[(data.group == k) & below]
            sd = float(np.sqrt(np.mean(mine**2))) if len(mine) >= 3 else pooled
            self._sizes[width] = (float(np.mean(data.x[data.group == k])), sd)
        return params, data.n_ref

    def _next_width(self, study: optuna.Study, trial: FrozenTrial, choices: tuple[Any, ...]) -> Any:
        """Once the joint fit exists, the width whose optimum is least determined, for alpha:
        the largest ``leverage * sd**2 / (trials in its dip + 1)``, where ``leverage`` grows
        with the size's distance from the middle of the sizes (alpha is a slope in log N)
        and ``sd`` is its residual SD. Within ``WIDTH_SLACK`` of an equal share: no width
        is starved, none takes over. ``None`` (the wrapped sampler's balanced choice)
        before the fit."""
        done = study._storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.COMPLETE,))
        fit = self._current_fit(done)
        if fit is None or any(c not in self._sizes for c in choices):
            return None
        params, _ = fit
        counted = study._storage.get_all_trials(study._study_id, deepcopy=False, states=_COUNTED)
        counts = {c: 0 for c in choices}
        in_dip = {c: 0 for c in choices}
        for t in counted:
            width = stratum_of(t, "width")
            if t.number == trial.number or width not in counts:
                continue
            counts[width] += 1
            lam = t.user_attrs.get(LAMBDA_EFF_KEY)
            if lam and "alpha" in params and params.get("depth", 0.0) > 0:
                x = self._sizes[width][0]
                reach = min(max(DIP_NATS, DIP_SD_REACH * params["s"]), DIP_MAX_NATS)
                in_dip[width] += abs(math.log(lam) - (params["c"] - params["alpha"] * x)) <= reach
        xs = np.array([self._sizes[c][0] for c in choices])
        spread = float(np.mean((xs - xs.mean()) ** 2)) or 1.0
        slack = max(2, round(WIDTH_SLACK * sum(counts.values()) / len(choices)))
        allowed = [c for c in choices if counts[c] <= min(counts.values()) + slack]

        def need(c: Any) -> float:
            x, sd = self._sizes[c]
            return (1.0 + (x - xs.mean()) ** 2 / spread) * sd * sd / (in_dip[c] + 1)

        rng = random.Random(f"{self._seed}-{study.study_name}-{trial.number}-width")
        return max(allowed, key=lambda c: (need(c), rng.random()))


def design_regions(params: dict[str, float], x: float, band: tuple[float, float]
                   ) -> list[tuple[float, tuple[float, float]]]:
    """The design's regions of ln(lambda_eff) for a size at ``x = ln(N/N_ref)`` under the
    joint fit ``params`` (whose informative band there is ``band``), with their shares."""
    wall = params["c_wall"] - params["beta"] * x
    rise = (wall + math.log(0.01 / 0.99) / params["g"], wall + math.log(0.9 / 0.1) / params["g"])
    if "alpha" in params and params.get("depth", 0.0) > 0:
        centre = params["c"] - params["alpha"] * x
        reach = min(max(DIP_NATS, DIP_SD_REACH * params["s"]), DIP_MAX_NATS)
        dip = (centre - reach, min(centre + reach, rise[1]))
    else:
        dip = band
    explore = (band[0] - EXPLORE_NATS, band[1] + EXPLORE_NATS / 2)
    return [(DIP_SHARE, dip), (WALL_SHARE, rise), (FLOOR_SHARE, (dip[0] - FLOOR_NATS, dip[0])),
            (1.0 - DIP_SHARE - WALL_SHARE - FLOOR_SHARE, explore)]


class Replicator:
    """Optuna callback: every ``every`` finished trials, queue a repeat of an earlier one.

    The repeat has the same width, ``lambda0`` and ``alpha`` (so the same ``lambda_eff``)
    and, being another trial, another seed (in a blocked study, another seed block). It repeats the best complete trial of the
    width with the fewest repeats so far that has not been repeated: near the optimum,
    where the noise matters most and the repeat also informs the fit.
    """

    def __init__(self, every: int = 10, *, start_after: int = 20, total: int | None = None,
                 stop: Any = None) -> None:
        self.every = every
        self.start_after = start_after
        self.total = total
        self.stop = stop  # a callable: True once the study is about to stop (--precision met)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.every <= 0 or (self.stop is not None and self.stop()):
            return
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state in FINISHED]
        if len(finished) < self.start_after or len(finished) % self.every:
            return
        running = sum(1 for t in trials if t.state == TrialState.RUNNING)
        if self.total is not None and len(finished) + running >= self.total:
            return  # the study is full: a queued trial would wait for the next run
        if any(t.state == TrialState.WAITING for t in trials):
            return  # one queued already (another worker's)
        repeated = {t.user_attrs.get(REPLICATE_OF_KEY) for t in trials if REPLICATE_OF_KEY in t.user_attrs}
        by_width: dict[Any, list[FrozenTrial]] = {}
        for t in trials:
            if t.state == TrialState.COMPLETE and t.value is not None and "lambda0" in t.params and "alpha" in t.params:
                by_width.setdefault(stratum_of(t, "width"), []).append(t)
        if not by_width:
            return
        counts = {w: sum(1 for t in ts if t.user_attrs.get(REPLICATE_OF_KEY) is not None) for w, ts in by_width.items()}
        for width in sorted(by_width, key=lambda w: (counts[w], str(w))):
            fresh = [t for t in by_width[width] if t.number not in repeated and REPLICATE_OF_KEY not in t.user_attrs]
            if fresh:
                source = min(fresh, key=lambda t: t.value)
                study.enqueue_trial(dict(source.params), user_attrs={"replicate_of": source.number}, skip_if_exists=False)
                return
