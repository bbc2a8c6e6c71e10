"""Every sentence the analysis writes for a person: the verdict on the two intervals, why an
exponent is not identified, where the noise figure comes from, and the notes on a study.

The estimators (``autolambda.analysis.estimators``) and the summary
(``autolambda.analysis.summary``) decide; this module only words what they decided.

>>> verdict(None, None, alpha_reason="too few trials").split(". ")[0]
"The optimum's alpha is not identified: too few trials"
>>> verdict(None, None, alpha_reason="too few trials", wall_reason="too few trials").split(". ")[0]
"The optimum's alpha is not identified, nor is the wall's: too few trials"
>>> verdict(0.1, (-0.2, 0.4), 0.5, (0.3, 0.7)).split(";")[0]
'One lambda for all sizes is consistent with the data (alpha = 0 is inside the interval)'
"""

from __future__ import annotations

from typing import Any, Sequence

from autolambda.analysis.settings import DEFAULTS

#: The hypotheses the report names, with a plain-language reading of each.
HYPOTHESES: tuple[tuple[float, str], ...] = (
    (1.0, "lambda inversely proportional to N (the intuition: keep the total penalty fixed)"),
    (0.5, "lambda shrinks as 1/sqrt(N) ('Power Lines'-style, at fixed data)"),
    (0.0, "one lambda for all sizes (per-weight prior; decoupled decay at fixed lr)"),
    (-0.25, "lambda grows as N^0.25 (~ sqrt(width); Fan et al. 2025)"),
    (-0.5, "lambda grows as sqrt(N) (muP-style decay, prior following init scale)"),
)

#: Why an exponent has no estimate when the study is too small for the joint fit.
NO_JOINT_FIT = "too few complete trials for the joint fit"
#: Why an exponent has no interval in a quick look (``analyze_records(intervals=False)``).
NO_INTERVALS = "its interval was not computed (a quick look, intervals=False)"
#: Why an exponent has no interval when no grid point lies within the level.
NO_MINIMUM = "the profile has no minimum on the grid"


def verdict(
    alpha_hat: float | None,
    ci: tuple[float, float] | None,
    wall_hat: float | None = None,
    wall_ci: tuple[float, float] | None = None,
    *,
    alpha_reason: str = "",
    wall_reason: str = "",
    wall_cost: float = DEFAULTS.wall_cost,
) -> str:
    """Plain-language sentences on what the two intervals say (and do not say).

    The optimum's alpha (how the *best* lambda moves with N) leads. The wall's exponent is
    another quantity (how the *largest harmless* lambda moves) and is always named as such:
    a sentence about "lambda as N grows" never rests on the wall alone.
    """
    # Both not identified for one reason: it is said once.
    same = (alpha_hat is None or ci is None) and (wall_hat is None or wall_ci is None) and alpha_reason == wall_reason
    if alpha_hat is None or ci is None:
        text = ("The optimum's alpha is not identified" + (", nor is the wall's" if same else "") + ": "
                + (alpha_reason or "too few trials") + ". No hypothesis about the best lambda is ruled out.")
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
        if not same:
            text += " The wall's scaling is not identified: " + (wall_reason or "too few trials") + "."
    else:
        text += (f" The wall, a different quantity (the largest lambda that costs less than {wall_cost:.0%} over its "
                 f"floor at a negligible penalty), scales with alpha = {wall_hat:.2f}, 95% interval [{wall_ci[0]:.2f}, {wall_ci[1]:.2f}]: "
                 "the largest harmless lambda " + ("shrinks" if wall_ci[0] > 0 else "grows" if wall_ci[1] < 0 else
                                                   "neither clearly shrinks nor grows") + " as N grows")
        if ci is not None and (wall_ci[0] > ci[1] or wall_ci[1] < ci[0]):
            text += "; the optimum and the wall scale differently, so the wall says nothing about the best lambda here"
        elif ci is None:
            text += " (this is not the best lambda's scaling, which is not identified)"
        text += "."
    return text


def unbounded_reason(edge: float) -> str:
    """An interval that reaches ``edge``, the end of the grid."""
    return f"its 95 % interval runs to the edge of the range examined ({edge:+.1f}): the data do not bound it"


def no_dip_reason(evidence: float, threshold: float, test_sd: float, depth: float, *, calibrated: bool = True) -> str:
    """A dip too weak (``evidence`` under ``threshold``) or absent (``depth <= 0``)."""
    if depth <= 0 or threshold == float("inf"):
        return f"the fit has no dip below the flat floor (residual SD without a dip {test_sd:.3g})"
    if not calibrated:
        return (f"the dip below the flat floor is not distinguishable from noise (evidence {evidence:.1f}, "
                f"{threshold:g} needed; depth {max(depth, 0):.3g})")
    return (f"the dip below the flat floor is not distinguishable from noise (evidence {evidence:.1f}; studies "
            f"simulated without a dip reach {threshold:.1f} one time in 20; depth {max(depth, 0):.3g})")


def one_end_reason(halves: tuple[float, float], half_threshold: float) -> str:
    """A dip seen in one half of the sizes only (``halves``: the evidence in each)."""
    where = "smaller" if halves[0] < halves[1] else "larger"
    return (f"the dip is seen only at one end of the sizes (evidence {halves[0]:.1f} among the smaller half, "
            f"{halves[1]:.1f} among the larger; {half_threshold:g} needed in each): the {where} nets do not place it")


def too_few_hurt_reason(n_hurt: int, n_sizes: int, cost: float) -> str:
    """Too few trials over the wall to place it."""
    return (f"{n_hurt} trial(s) at {n_sizes} size(s) cost more than {cost:.0%} of the loss: "
            "too few to place the wall (3 at 2 sizes needed); try larger lambdas")


def floors_unbounded_reason(lo: float, hi: float) -> str:
    """A wall interval that, widened for the floors' and the trials' uncertainty, leaves the grid ``lo .. hi``."""
    return (f"with the floors' and the trials' uncertainty its 95 % interval runs past the range examined "
            f"({lo:+.1f} .. {hi:+.1f}): the data do not bound it")


def noise_source(residual_dof: int, residual_sd: float, rep_sd: float, rep_dof: int, *, replicates_used: bool) -> str:
    """Where the measured noise comes from: the joint fit's residuals, or replicate trials
    (``replicates_used``), naming replicates that were measured but not used."""
    if replicates_used:
        return f"replicates ({rep_dof} degrees of freedom; larger than the residual SD {residual_sd:.3g})"
    source = f"residuals of the joint fit below the wall ({residual_dof} degrees of freedom)"
    if rep_dof >= 3:
        source += f"; replicates give {rep_sd:.3g} ({rep_dof} degrees of freedom), the smaller is not used"
    return source


def too_few_for_fit_note(n_sizes: int, n_complete: int, n_floors: int | None = None) -> str:
    """The study is too small for the joint fit."""
    n_floors = n_sizes if n_floors is None else n_floors  # one per size, or per size and seed block
    return (f"the joint fit needs complete trials at two or more sizes and {n_floors + 16}+ in all; "
            f"this study has {n_complete} at {n_sizes}. Run more trials.")


def size_notes(size: Any, tolerance: float) -> list[str]:
    """A note per flag of one size's row (a ``SizeSummary``)."""
    notes = []
    if "too_few" in size.flags:
        notes.append(f"width {size.width}: only {size.n_complete} complete trial(s); its own best is not located (its trials still enter the joint fit).")
    if "at_bound" in size.flags:
        notes.append(f"width {size.width}: its best trial ({size.best_lambda_eff:.3g}) is the edge of what was tried there.")
    if "flat" in size.flags:
        notes.append(f"width {size.width}: its smallest lambda scores within {tolerance:.0%} or two noise SDs of its best: flat within noise.")
    return notes


#: How the note on what would help the optimum's alpha begins (the answer block prints it).
HELP_NOTE = "What would help the optimum's alpha"


def not_identified_note(reason: str, *, blocked: bool = False) -> str:
    """alpha of the optimum is not identified: what would help (the reason is in the
    verdict); ``blocked``: the study already has seed blocks."""
    del reason  # worded once, in the verdict
    return (HELP_NOTE + ": more trials (`autolambda tune --trials N` adds them), more epochs "
            "(the penalty matters more once nets overfit)" + ("." if blocked else ", or seed blocks (`--seed-blocks`)."))


#: A depth test below this p-value gets a note (``depth_note``).
DEPTH_NOTE_P = 0.05


def depth_note(test: dict, widths: Sequence[Any]) -> str:
    """The dip's depth differs between sizes (``depth_test``): say so, with each size's own
    depth, and what the answer assumes."""
    f, (d1, d2), p = test["f"], test["dof"], test["p"]
    per = ", ".join(f"{w}: " + ("n/a" if d is None else f"{d:.3f}") for w, d in zip(widths, test["depth_by_size"]))
    return (f"the dip's depth differs between sizes (F = {f:.1f} on {d1} and {d2} degrees of freedom, "
            f"p = {p:.2g}; each width's own depth {per}). The joint fit gives every size one depth: "
            "alpha's interval is calibrated on surrogates whose depth differs by size as measured on "
            "digits (docs/calibration.md), not on every pattern.")


def shared_seed_note(n_pairs: int) -> str:
    """Transfer pairs trained before each rung had its own seed."""
    return (f"{n_pairs} pair(s) were trained before autolambda gave each rung its own seed: their rungs "
            "share a seed, so their noise is not independent and the intervals may be too narrow. "
            "Re-run the study in a new one for an interval to trust.")


def hypotheses_table(alpha_ci: Sequence[float] | None, wall_ci: Sequence[float] | None) -> list[dict[str, Any]]:
    """Each hypothesis, and whether it lies inside each interval (``None``: not identified)."""
    return [
        {
            "alpha": a,
            "meaning": meaning,
            "inside_ci": (alpha_ci[0] <= a <= alpha_ci[1]) if alpha_ci else None,
            "inside_wall_ci": (wall_ci[0] <= a <= wall_ci[1]) if wall_ci else None,
        }
        for a, meaning in HYPOTHESES
    ]
