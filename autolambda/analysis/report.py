"""The analysis report: ``analysis.json``, the plots (``autolambda.analysis.plots``) and
``report.md``, the Markdown page a person reads top to bottom.

>>> _ci((0.1234, 0.5)), _ci(None), _mark(True), _mark(None)
('[0.12, 0.50]', '—', 'yes', '—')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from autolambda.analysis.estimators import HALF_THRESHOLD
from autolambda.analysis.plots import report_plots
from autolambda.analysis.recommend import keras_line, span
from autolambda.analysis.records import TrialRecord
from autolambda.analysis.summary import Analysis


def write_report(
    analysis: Analysis,
    records: Sequence[TrialRecord],
    out: str | Path,
    *,
    study: Any = None,
    title: str = "autolambda analysis",
    context: dict[str, Any] | None = None,
) -> list[Path]:
    """Write plots, ``analysis.json`` and ``report.md`` into ``out``; return the files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = report_plots(analysis, records, out, study=study)
    data = analysis.to_dict() | {"context": context or {}}
    (out / "analysis.json").write_text(json.dumps(data, indent=2, default=str))
    names = {key: path.name for key, path in plots.items()}
    (out / "report.md").write_text(render_markdown(analysis, names, title=title, context=context or {}))
    return [*plots.values(), out / "analysis.json", out / "report.md"]


def render_markdown(analysis: Analysis, plots: dict[str, str], *, title: str, context: dict[str, Any]) -> str:
    """The report a person reads top to bottom; ``plots``: the plots' file names by name."""
    lines = [f"# {title}", ""]
    if context:
        lines += [" · ".join(f"{k}: {v}" for k, v in context.items()), ""]
    lines += _answer_section(analysis)
    lines += _recommendations_section(analysis, context.get("penalty"))
    if analysis.transfer is not None:
        lines += _transfer_section(analysis)
    for section in (_hypotheses_section(analysis), _per_size_section(analysis), _divergence_section(analysis),
                    _extrapolation_section(analysis), _plots_section(analysis, plots), _method_section(analysis)):
        lines += section
    return "\n".join(lines)


def _answer_section(a: Analysis) -> list[str]:
    """The verdict, both exponents, the noise and how much the trials say."""
    lines = ["## Answer", "", a.verdict, "",
             "| exponent | identified | estimate | 95% interval | why not, if not |", "|---|---|---|---|---|",
             f"| alpha of the optimum (best lambda ∝ N^-alpha) | {'yes' if a.identified else 'no'} | "
             f"{_fmt3(a.alpha_hat)} | {_ci(a.alpha_ci)} | {a.alpha_reason} |",
             f"| alpha of the wall (lambda costing {a.wall_cost:.0%} of the loss ∝ N^-alpha) | "
             f"{'yes' if a.wall_identified else 'no'} | {_fmt3(a.wall_alpha_hat)} | {_ci(a.wall_alpha_ci)} | {a.wall_reason} |",
             ""]
    noise = f"{a.noise_sd:.4f}" if a.noise_sd is not None else "not measured"
    lines += [f"Trial-to-trial noise of the score: **{noise}** (from {a.noise_source})."]
    if a.epoch_noise_sd is not None:
        lines[-1] += (f" For comparison, the standard error of a trial's last epochs is {a.epoch_noise_sd:.4f}: it misses "
                      "seed-to-seed variation and is not used.")
    if a.dip_depth is not None:
        level = "" if a.dip_evidence_level is None else (
            f"; the dip counts as seen above {a.dip_evidence_level:.1f}, what it reaches one time in 20 in studies simulated at "
            "these trials without a dip")
        lines += ["", f"The fitted dip is {a.dip_depth:.4f} below the floor (evidence {a.dip_evidence:.1f}{level})."]
    if a.informative_share is not None:
        lines += ["", f"{a.informative_share:.0%} of the complete trials lie in the informative band, where the fitted loss "
                  "depends on lambda (from a tenth of the dip's depth below the optimum up to 90 % of the way to a collapsed "
                  "net); trials on the flat floor or collapsed inform alpha little."]
    return lines


def _recommendations_section(a: Analysis, penalty: str | None = None) -> list[str]:
    """The lambda to use at each size asked for, from the joint fit (nothing unless identified)."""
    if not a.recommendations:
        return []
    tol = a.recommendations[0]["tolerance"]
    ref = a.recommendations[0]
    lines = ["", "## The lambda to use", "",
             f"From the joint fit: the best `lambda_eff` at each parameter count N, its 95 % interval, the range that costs at "
             f"most {tol:.0%} of the loss over the best, the wall there (where the loss exceeds the floor by {a.wall_cost:.0%}), "
             f"and the regret of keeping N_ref = {ref['reference_n']:,.0f}'s best lambda ({ref['reference_lambda']:.3g}) "
             "unchanged at N (fitted loss at that lambda minus the loss at N's own best).", "",
             f"| N | lambda_eff | 95% interval | within {tol:.0%} of the best | wall | regret of N_ref's lambda |",
             "|---|---|---|---|---|---|"]
    for r in a.recommendations:
        ci, near = r["ci"], r["near_range"]
        lines.append(f"| {r['n_params']:,}{' (extrapolated)' if r['extrapolated'] else ''} | {r['lambda_opt']:.3g} | "
                     f"{'unbounded' if ci is None else f'{ci[0]:.3g} - {ci[1]:.3g}'} | "
                     f"{'—' if near is None else span(near)} | {_g(r['lambda_wall'])} | {r['regret']:+.4f} |")
    first = a.recommendations[0]
    line = keras_line(penalty, first["lambda_opt"])
    if line:
        lines += ["", f"In Keras, for a net of {first['n_params']:,} trainable parameters (N counts the whole net's, as the "
                  f"study does) trained with this study's recipe: `{line}`.", ""]
    return lines


def _hypotheses_section(a: Analysis) -> list[str]:
    """Each hypothesis, and whether each interval holds it."""
    lines = ["", "## Hypotheses", "", "| alpha | meaning | inside the optimum's interval? | inside the wall's interval? |", "|---|---|---|---|"]
    for h in a.hypotheses:
        lines.append(f"| {h['alpha']:+g} | {h['meaning']} | {_mark(h['inside_ci'])} | {_mark(h['inside_wall_ci'])} |")
    return lines + ["", "— : not identified, so not ruled out."]


def _per_size_section(a: Analysis) -> list[str]:
    """The joint fit and the trials at each size, then the notes."""
    lines = ["", "## Per model size", "",
             "The joint fit's floor, optimum and wall at each size, then what the trials show on their own (a view of the data; "
             "on a flat curve a size's best trial is only its luckiest seed).", "",
             "| width | N | complete | pruned | diverged | failed | floor (fit) | optimum (fit) | wall (fit) | best val_ce | best trial's lambda_eff | near-best band | flags |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in a.per_size:
        band = f"{s.band[0]:.3g} – {s.band[1]:.3g}" if s.band else "—"
        lines.append(f"| {s.width} | {s.n_params:,} | {s.n_complete} | {s.n_pruned} | {s.n_diverged} | {s.n_failed} | "
                     f"{_fmt4(s.floor)} | {_g(s.lambda_opt)} | {_g(s.lambda_wall)} | {_fmt4(s.best_value)} | "
                     f"{_g(s.best_lambda_eff)} | {band} | {', '.join(s.flags) or '—'} |")
    if a.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in a.notes]
    return lines


def _divergence_section(a: Analysis) -> list[str]:
    """Where trials diverged, per size (nothing when none did)."""
    if not a.divergence:
        return []
    lines = ["", "## Divergence boundary", "", "| width | N | diverged trials | smallest lambda_eff that diverged | largest stable lambda_eff |", "|---|---|---|---|---|"]
    for d in a.divergence:
        lines.append(f"| {d['width']} | {d['n_params']:,} | {d['n_diverged']} | {d['min_diverged_lambda_eff']:.3g} | "
                     f"{_g(d['max_stable_lambda_eff'])} |")
    return lines


def _extrapolation_section(a: Analysis) -> list[str]:
    """How well the smaller sizes predict the largest one's optimum (nothing without it)."""
    e = a.extrapolation
    if not e:
        return []
    return [
        "",
        "## Extrapolation to the largest size",
        "",
        f"The joint fit on widths {', '.join(map(str, e['fitted_on_widths']))} alone gives alpha = {e['alpha_small']:.3f} and predicts "
        f"lambda_eff = {e['predicted_lambda_eff']:.3g} for width {e['target_width']} (N = {e['target_n_params']:,}); the fit over all sizes "
        f"puts its optimum at {e['best_lambda_eff']:.3g}. The loss at the prediction is {e['loss_at_predicted']:.4f} ({e['loss_estimated_by']}) against "
        f"{e['best_loss']:.4f} at the best: a regret of {e['regret']:+.4f}.",
    ]


def _plots_section(a: Analysis, plots: dict[str, str]) -> list[str]:
    """Each plot there is, with its caption, then links to the interactive ones."""
    lines = ["", "## Plots", ""]
    captions = {
        "best_lambda_vs_n": "Optimum and wall against N (log-log): the joint fit's lines with their 95% bands, each size's best trial, the hypotheses",
        "loss_vs_lambda": "Loss against lambda_eff, one panel per width: seed blocks in colour with the joint fit, its optimum and wall",
        "contour": "Optuna: contour of the score over lambda0 and alpha",
        "importances": "Optuna: parameter importances",
        "intermediate": "Optuna: intermediate values (val_ce per epoch)",
        "transfer_pairs": "The best pairs: val_ce at each rung of the ladder, against each size's fitted floor",
    }
    if a.transfer is not None:
        captions["intermediate"] = "Optuna: intermediate values (the running mean val_ce, one step per rung)"
    for key, caption in captions.items():
        if key in plots:
            lines += [f"### {caption}", "", f"![{caption}]({plots[key]})", ""]
    html = [v for k, v in plots.items() if v.endswith(".html")]
    if html:
        lines += ["Interactive versions: " + ", ".join(f"[{h}]({h})" for h in html), ""]
    return lines


def _method_section(a: Analysis) -> list[str]:
    """How the answer was reached, in five points."""
    return [
        "## Method",
        "",
        "- Each trial is scored by the penalty-free validation cross-entropy (a Keras metric, not "
        "`val_loss`, which includes the penalty), averaged over its last epochs unless the study chose best-epoch scoring.",
        "- All complete trials enter one joint fit: a floor per size (per size and seed block when the trials of a width share "
        "a few seeds: each seed's offset is removed) plus one curve shared by every size, flat for small "
        "lambda, a dip (a Gaussian in log lambda) centred on lambda_opt(N) ∝ N^-alpha, and a wall (a logistic rise from the "
        "floor to a collapsed net's loss) centred on a position ∝ N^-beta. Floors, depth and the collapsed loss are solved "
        "exactly for each shape; the shape by bounded least squares, each size's trials weighted by its own noise (the "
        "residual SD of its trials, shrunk towards the pooled one) and a trial far off its block's curve down-weighted "
        "(Huber, at 2.5 SDs: Adam's late spikes).",
        "- The noise is measured: the residual SD of that fit, or the SD between trials repeated at identical settings "
        "when the study has them, whichever is larger.",
        "- alpha's 95% interval is a profile-likelihood interval: alpha is held on a grid from -2.5 to 3, the rest refitted, "
        "and the interval keeps the values whose residual sum of squares is within F(1, dof) noise variances of the best. "
        "The cutoff is the larger of that and what a bootstrap gives (studies simulated from the fit with the study's own "
        "residuals, refitted: how far the true alpha's profile sits above the minimum one time in 20), from the best fit "
        "and again at each edge of the interval from the fit with alpha held there. "
        f"alpha is *not identified* when the dip does not improve the fit more than it does one time in 20 in studies "
        f"simulated at the same trials without a dip, or by {HALF_THRESHOLD:g} noise variances within "
        "each half of the sizes (the curve has one depth for all sizes: a dip seen at one end only would be extrapolated "
        "to the other), or when the interval runs to the "
        "edge of the grid; then no hypothesis is ruled out.",
        f"- The wall: a trial is hurt when its loss is more than {a.wall_cost:.0%} above its seed block's fitted floor; the chance of "
        "being hurt is logistic in log lambda + alpha_wall log N (2 % lapse rate, so one stray trial cannot move it), and its "
        "interval is the profile-likelihood one (chi-square, 1 degree of freedom), each side widened in quadrature by 1.96 "
        "SDs of the estimate over refits on the trials resampled within each size, with the floors redrawn."
        + (f" {a.n_settled} of its hurt trials were stopped early as settled far beyond the wall (the answer-aware "
           "pruner); they count as hurt here, and the optimum's fit, which needs final losses, leaves them out."
           if a.n_settled else ""),
        "- The calibration of these intervals on realistic surrogate studies is in BENCHMARKS.md (scripts/calibration.py).",
        "",
    ]


def _transfer_section(a: Analysis) -> list[str]:
    """What a transfer study adds: its pairs and how the best ones fare at each rung."""
    t = a.transfer or {}
    states = ", ".join(f"{v} {k}" for k, v in sorted(t.get("pair_states", {}).items()))
    lines = ["", "## Transfer pairs", "",
             f"Each of the {t.get('n_pairs', 0)} trials ({states}) trained one (lambda0, alpha) pair on every width of the "
             f"ladder {', '.join(map(str, t.get('ladder', [])))} and was scored by the mean val_ce over it. Every finished "
             "rung (pruned pairs' too) is one observation of the loss at its size and lambda_eff, and the answer above is "
             "the joint fit of those rungs, as in search mode: the optimum's alpha is the alpha of the pair whose "
             "lambda0 is best at every size. The best pair by mean loss is shown as a check, not as an estimate: on a "
             "curve flat within noise it is the luckiest pair.", ""]
    pairs = t.get("best_pairs", [])
    if not pairs:
        return lines + ["No pair has finished every rung yet.", ""]
    lines += ["| pair (trial) | lambda0 | alpha | mean val_ce | " + " | ".join(f"width {r['width']}: val_ce (over floor)" for r in pairs[0]["rungs"]) + " |",
              "|---|---|---|---|" + "---|" * len(pairs[0]["rungs"])]
    for p in pairs:
        cells = [f"{r['value']:.4f} ({'—' if r['over_floor'] is None else format(r['over_floor'], '+.4f')})" for r in p["rungs"]]
        lines.append(f"| {p['number']} | {p['lambda0']:.3g} | {p['alpha']:+.3f} | {p['value']:.4f} | " + " | ".join(cells) + " |")
    noise = f" (the noise SD is {a.noise_sd:.4f})" if a.noise_sd else ""
    return lines + ["", f"A pair transfers when it is near the floor or below it at every size{noise}.", ""]


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "—"


def _mark(inside: Any) -> str:
    return "—" if inside is None else ("yes" if inside else "no")


def _fmt3(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def _fmt4(v: Any) -> str:
    return "—" if v is None else f"{v:.4f}"


def _g(v: Any) -> str:
    return "—" if v is None else f"{v:.3g}"
