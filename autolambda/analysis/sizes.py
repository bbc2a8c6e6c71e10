"""The per-size view of a study: each width's trials, its best one, the near-best band
and the flags. A view of the data, not an input to alpha: on a flat curve each size's best
trial is just the luckiest seed (the joint fit, ``autolambda.analysis.curve``, pools them).

>>> divergence_boundary([])
[]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from autolambda.analysis.records import TrialRecord
from autolambda.core.trials import FINISHED_STATES
from autolambda.analysis.settings import DEFAULTS


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
    block_floors: dict[int, float] = field(default_factory=dict)  # the fitted floor of each seed block (blocked studies)

    @property
    def usable(self) -> bool:
        """Whether this size's own best trial locates an optimum (no flag): a view of the
        data; every size's trials enter the joint fit either way."""
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["n_trials"] = self.n_complete  # the key's name in earlier versions: complete trials of the size
        out["usable"] = self.usable
        return out


def summarize_sizes(
    records: Sequence[TrialRecord], *, tolerance: float = DEFAULTS.tolerance, min_trials: int = DEFAULTS.min_trials, noise_sd: float = 0.0
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
        if r.lambda_eff and r.state in FINISHED_STATES:
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
