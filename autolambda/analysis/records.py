"""From Optuna trials to what the analysis reads: one ``TrialRecord`` per observation of
the loss (a search trial, or one rung of a transfer trial), and the complete ones as the
joint fit's ``CurveData``.

>>> noise_of([0.30, 0.30, 0.30]), noise_of([0.5])
(0.0, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np
from optuna.trial import TrialState

from autolambda.analysis.curve import CurveData
from autolambda.core.trials import (
    BLOCK_KEY, DIVERGED_KEY, LADDER_KEY, LADDER_N_PARAMS_KEY, LAMBDA_EFF_KEY, N_PARAMS_KEY, RUNG_KEY,
    WIDTH_KEY, epoch_history, is_settled, is_transfer_trial, rung_history, trial_param, trial_state,
)
from autolambda.analysis.settings import DEFAULTS

#: A trial whose loss exceeds this many times the median complete trial's has collapsed
#: (digits: ln 10 = 2.30 against ~0.2): it says "beyond the wall", which the wall's
#: hurt-or-not fit uses, but its height would dominate the least-squares fit of the dip.
COLLAPSED = 5.0


@dataclass(frozen=True)
class TrialRecord:
    """What the analysis needs of one trial."""

    number: int
    state: str  # one of autolambda.core.trials.STATES
    width: int | None
    n_params: int | None
    lambda_eff: float | None
    value: float | None
    noise: float = 0.0  # standard error of the score, from the spread of its last epochs
    diverged_at_epoch: int | None = None
    lambda0: float | None = None
    alpha: float | None = None
    # The trial's seed block (``autolambda.search.objective``, ``seed_blocks``): trials of
    # one width and block share a seed, so the joint fit gives them one floor. None: own seed.
    block: int | None = None
    # A pruned trial that ``AnswerAwarePruner`` stopped as settled beyond the wall: its loss
    # is known only to lie there (censored). The wall's hurt-or-not fit counts it as hurt;
    # the optimum's fit, which needs a final loss, leaves it out.
    settled: bool = False


def noise_of(history: Sequence[float] | None, window: int = DEFAULTS.score_window) -> float:
    """Standard error of a final-window score from the spread of its last epochs."""
    if not history or len(history) < 2:
        return 0.0
    tail = np.asarray(history[-window:], dtype=float)
    tail = tail[np.isfinite(tail)]
    if len(tail) < 2:
        return 0.0
    return float(np.std(tail, ddof=1) / math.sqrt(len(tail)))


def records_from_trials(trials: Iterable[Any], *, score_window: int = DEFAULTS.score_window) -> list[TrialRecord]:
    """Turn Optuna ``FrozenTrial`` objects into ``TrialRecord`` s.

    A transfer trial (``autolambda.search.transfer``) gives one record per rung of its ladder
    (see ``rung_records``), so both modes enter the same analysis.
    """
    out = []
    for t in trials:
        attrs = t.user_attrs
        if is_transfer_trial(t):
            out.extend(rung_records(t, trial_state(t)))
            continue
        width = attrs.get(WIDTH_KEY, t.params.get("width"))
        history = epoch_history(attrs).get("val_ce")
        # Optuna stores a pruned trial's last intermediate value as its value: unfinished, not a score.
        value = t.value if t.values is not None and len(t.values) == 1 and t.state == TrialState.COMPLETE else None
        out.append(
            TrialRecord(
                number=t.number,
                state=trial_state(t),
                width=int(width) if width is not None else None,
                n_params=attrs.get(N_PARAMS_KEY),
                lambda_eff=attrs.get(LAMBDA_EFF_KEY),
                value=float(value) if value is not None and math.isfinite(value) else None,
                noise=noise_of(history, score_window),
                diverged_at_epoch=attrs.get(DIVERGED_KEY),
                lambda0=trial_param(t, "lambda0"),
                alpha=trial_param(t, "alpha"),
                block=attrs.get(BLOCK_KEY),
                settled=trial_state(t) == "pruned" and is_settled(attrs),
            )
        )
    return out


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
    rungs = rung_history(attrs)
    lambda0, alpha = trial_param(trial, "lambda0"), trial_param(trial, "alpha")
    out = []
    finished = list(zip(rungs.get("rung_width", []), rungs.get("rung_n_params", []),
                        rungs.get("rung_lambda_eff", []), rungs.get("rung_val_ce", [])))
    for width, n_params, lam, value in finished:
        ok = value is not None and math.isfinite(value)
        out.append(TrialRecord(number=trial.number, state="complete" if ok else "diverged", width=int(width),
                               n_params=int(n_params), lambda_eff=float(lam), value=float(value) if ok else None,
                               lambda0=lambda0, alpha=alpha))
    stopped = attrs.get(RUNG_KEY)
    ladder = list(attrs.get(LADDER_KEY, []))
    # "step" tells the rung being trained from one finished before the stop (older trials lack it).
    at_stopped = stopped and stopped.get("step", len(finished)) == len(finished) < len(ladder)
    if state in ("diverged", "failed", "running") and at_stopped:
        out.append(TrialRecord(number=trial.number, state=state, width=int(stopped["width"]),
                               n_params=int(stopped["n_params"]), lambda_eff=float(stopped["lambda_eff"]), value=None,
                               diverged_at_epoch=attrs.get(DIVERGED_KEY), lambda0=lambda0, alpha=alpha))
    elif state == "pruned":
        sizes = list(attrs.get(LADDER_N_PARAMS_KEY) or [None] * len(ladder))
        out += [TrialRecord(number=trial.number, state="pruned", width=int(w), n_params=n, lambda_eff=None, value=None,
                            lambda0=lambda0, alpha=alpha) for w, n in zip(ladder[len(finished):], sizes[len(finished):])]
    return out


def complete_records(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The complete trials with a value, a lambda_eff and a size: the ones the fits and plots use."""
    return [r for r in records if r.state == "complete" and r.value is not None and r.lambda_eff and r.n_params]


def complete_curve_data(records: Sequence[TrialRecord], widths: Sequence[int] | None = None, *,
                        drop_collapsed: bool = True, settled: bool = False) -> tuple[CurveData, list[TrialRecord]]:
    """The complete trials (of ``widths``, default all) as ``CurveData``, with the records;
    collapsed trials (see ``COLLAPSED``) left out unless ``drop_collapsed`` is false. With
    ``settled`` (for the wall's hurt-or-not fit, which only compares a loss with the wall),
    the trials pruned as settled beyond the wall follow, with an infinite loss: known to
    lie beyond any threshold, never a number a least-squares fit could use."""
    rows = [r for r in complete_records(records) if r.width is not None and (widths is None or r.width in widths)]
    if settled:
        if drop_collapsed:
            raise ValueError("settled trials have no loss to compare with the collapse limit: pass drop_collapsed=False.")
        known = {r.width for r in rows}
        rows += [replace(r, value=math.inf) for r in records
                 if r.settled and r.lambda_eff and r.n_params and r.width in known and (widths is None or r.width in widths)]
    if drop_collapsed and rows:
        limit = COLLAPSED * float(np.median([r.value for r in rows]))
        kept = [r for r in rows if r.value <= limit]
        widths_kept = {r.width for r in kept}
        rows = [r for r in rows if r.value <= limit or r.width not in widths_kept]  # never drop a size
    sizes = [r.n_params for r in rows]
    n_ref = math.sqrt(min(sizes) * max(sizes)) if rows else 1.0  # alpha does not depend on it
    data = CurveData.from_rows([r.width for r in rows], sizes, [r.lambda_eff for r in rows], [r.value for r in rows], n_ref,
                               blocks=[r.block for r in rows])
    return data, rows
