"""The analysis report: plots (PNG with matplotlib, HTML with plotly) and a Markdown page.

Optuna's own plots (contour of lambda0 against alpha, parameter importances,
intermediate values) come from ``optuna.visualization``; autolambda draws only what
Optuna does not: loss against lambda_eff by size, and best lambda_eff against N.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autolambda.analysis.summary import HYPOTHESES, Analysis, TrialRecord
from autolambda.analysis.curve import DETECTION_THRESHOLD, HALF_THRESHOLD

log = logging.getLogger("autolambda")


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
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    plots: dict[str, str] = {}
    files.append(_plot_loss_vs_lambda(records, analysis, out / "loss_vs_lambda.png"))
    plots["loss_vs_lambda"] = files[-1].name
    files.append(_plot_best_lambda_vs_n(analysis, out / "best_lambda_vs_n.png"))
    plots["best_lambda_vs_n"] = files[-1].name
    if analysis.transfer is not None:
        files.append(_plot_transfer_pairs(analysis, out / "transfer_pairs.png"))
        plots["transfer_pairs"] = files[-1].name
    html = _html_loss_vs_lambda(records, out / "loss_vs_lambda.html")
    if html:
        files.append(html)
        plots["loss_vs_lambda_html"] = html.name
    if study is not None:
        for name, path in _optuna_plots(study, out).items():
            files.append(path)
            plots[name] = path.name
    data = analysis.to_dict() | {"context": context or {}}
    (out / "analysis.json").write_text(json.dumps(data, indent=2, default=str))
    files.append(out / "analysis.json")
    (out / "report.md").write_text(render_markdown(analysis, plots, title=title, context=context or {}))
    files.append(out / "report.md")
    return files


def summary_plots(analysis: Analysis, records: Sequence[TrialRecord], out: str | Path) -> list[Path]:
    """Just the two autolambda plots (for the end of ``tune``)."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    files = [
        _plot_loss_vs_lambda(records, analysis, out / "loss_vs_lambda.png"),
        _plot_best_lambda_vs_n(analysis, out / "best_lambda_vs_n.png"),
    ]
    if analysis.transfer is not None:
        files.append(_plot_transfer_pairs(analysis, out / "transfer_pairs.png"))
    return files


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "—"


def _mark(inside: Any) -> str:
    return "—" if inside is None else ("yes" if inside else "no")


def render_markdown(analysis: Analysis, plots: dict[str, str], *, title: str, context: dict[str, Any]) -> str:
    """The report a person reads top to bottom."""
    a = analysis
    lines = [f"# {title}", ""]
    if context:
        lines += [" · ".join(f"{k}: {v}" for k, v in context.items()), ""]
    lines += ["## Answer", "", a.verdict, "",
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
        lines += ["", f"The fitted dip is {a.dip_depth:.4f} below the floor (evidence {a.dip_evidence:.1f}; the dip counts as seen from "
                  f"{DETECTION_THRESHOLD:g}, calibrated on surrogate studies and checked on digits)."]
    if a.informative_share is not None:
        lines += ["", f"{a.informative_share:.0%} of the complete trials lie in the informative band, where the fitted loss "
                  "depends on lambda (from a tenth of the dip's depth below the optimum up to 90 % of the way to a collapsed "
                  "net); trials on the flat floor or collapsed inform alpha little."]
    if a.transfer is not None:
        lines += transfer_section(a)
    lines += ["", "## Hypotheses", "", "| alpha | meaning | inside the optimum's interval? | inside the wall's interval? |", "|---|---|---|---|"]
    for h in a.hypotheses:
        lines.append(f"| {h['alpha']:+g} | {h['meaning']} | {_mark(h['inside_ci'])} | {_mark(h['inside_wall_ci'])} |")
    lines += ["", "— : not identified, so not ruled out.", "", "## Per model size", "",
              "The joint fit's floor, optimum and wall at each size, then what the trials show on their own (a view of the data; "
              "on a flat curve a size's best trial is only its luckiest seed).", "",
              "| width | N | complete | pruned | diverged | failed | floor (fit) | optimum (fit) | wall (fit) | best val_ce | best trial's lambda_eff | near-best band | flags |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in a.per_size:
        band = f"{s.band[0]:.3g} – {s.band[1]:.3g}" if s.band else "—"
        best = f"{s.best_value:.4f}" if s.best_value is not None else "—"
        lam = f"{s.best_lambda_eff:.3g}" if s.best_lambda_eff is not None else "—"
        lines.append(f"| {s.width} | {s.n_params:,} | {s.n_complete} | {s.n_pruned} | {s.n_diverged} | {s.n_failed} | "
                     f"{_fmt4(s.floor)} | {_g(s.lambda_opt)} | {_g(s.lambda_wall)} | {best} | {lam} | {band} | {', '.join(s.flags) or '—'} |")
    if a.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in a.notes]
    if a.divergence:
        lines += ["", "## Divergence boundary", "", "| width | N | diverged trials | smallest lambda_eff that diverged | largest stable lambda_eff |", "|---|---|---|---|---|"]
        for d in a.divergence:
            stable = f"{d['max_stable_lambda_eff']:.3g}" if d["max_stable_lambda_eff"] is not None else "—"
            lines.append(f"| {d['width']} | {d['n_params']:,} | {d['n_diverged']} | {d['min_diverged_lambda_eff']:.3g} | {stable} |")
    e = a.extrapolation
    if e:
        lines += [
            "",
            "## Extrapolation to the largest size",
            "",
            f"The joint fit on widths {', '.join(map(str, e['fitted_on_widths']))} alone gives alpha = {e['alpha_small']:.3f} and predicts "
            f"lambda_eff = {e['predicted_lambda_eff']:.3g} for width {e['target_width']} (N = {e['target_n_params']:,}); the fit over all sizes "
            f"puts its optimum at {e['best_lambda_eff']:.3g}. The loss at the prediction is {e['loss_at_predicted']:.4f} ({e['loss_estimated_by']}) against "
            f"{e['best_loss']:.4f} at the best: a regret of {e['regret']:+.4f}.",
        ]
    lines += ["", "## Plots", ""]
    captions = {
        "best_lambda_vs_n": "Optimum and wall against N (log-log): the joint fit's lines with their 95% bands, each size's best trial, the hypotheses",
        "loss_vs_lambda": "Penalty-free validation loss against lambda_eff, coloured by N",
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
    lines += [
        "## Method",
        "",
        "- Each trial is scored by the penalty-free validation cross-entropy (a Keras metric, not "
        "`val_loss`, which includes the penalty), averaged over its last epochs unless the study chose best-epoch scoring.",
        "- All complete trials enter one joint fit: a floor per size plus one curve shared by every size, flat for small "
        "lambda, a dip (a Gaussian in log lambda) centred on lambda_opt(N) ∝ N^-alpha, and a wall (a logistic rise from the "
        "floor to a collapsed net's loss) centred on a position ∝ N^-beta. Floors, depth and the collapsed loss are solved "
        "exactly for each shape; the shape by bounded least squares.",
        "- The noise is measured: the residual SD of that fit, or the SD between trials repeated at identical settings "
        "when the study has them, whichever is larger.",
        "- alpha's 95% interval is a profile-likelihood interval: alpha is held on a grid from -2.5 to 3, the rest refitted, "
        "and the interval keeps the values whose residual sum of squares is within F(1, dof) noise variances of the best. "
        f"alpha is *not identified* when the dip does not improve the fit by at least {DETECTION_THRESHOLD:g} noise variances, and by {HALF_THRESHOLD:g} within "
        "each half of the sizes (alpha is a slope: the dip must be seen at both ends; both calibrated on surrogate "
        "studies), or when the interval runs to the edge of the grid; then no hypothesis is ruled out.",
        f"- The wall: a trial is hurt when its loss is more than {a.wall_cost:.0%} above its size's fitted floor; the chance of "
        "being hurt is logistic in log lambda + alpha_wall log N (2 % lapse rate, so one stray trial cannot move it), and its "
        "interval is the profile-likelihood one (chi-square, 1 degree of freedom).",
        "- The calibration of these intervals on realistic surrogate studies is in BENCHMARKS.md (scripts/calibration.py).",
        "",
    ]
    return "\n".join(lines)


def transfer_section(a: Analysis) -> list[str]:
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


def _plot_transfer_pairs(analysis: Analysis, path: Path) -> Path:
    import matplotlib.pyplot as plt

    t = analysis.transfer or {}
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for p in t.get("best_pairs", []):
        n = [r["n_params"] for r in p["rungs"]]
        ax.plot(n, [r["value"] for r in p["rungs"]], marker="o", alpha=0.8,
                label=f"#{p['number']}: lambda0 {p['lambda0']:.2g}, alpha {p['alpha']:+.2f}")
    sized = [s for s in analysis.per_size if s.floor is not None]
    if sized:
        ax.plot([s.n_params for s in sized], [s.floor for s in sized], "k--", lw=1.2, label="fitted floor (negligible penalty)")
    ax.set_xscale("log")
    ax.set_xlabel("N (trainable parameters)")
    ax.set_ylabel("penalty-free val_ce at the rung")
    ax.set_title("The best transfer pairs at each size of the ladder")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt3(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def _fmt4(v: Any) -> str:
    return "—" if v is None else f"{v:.4f}"


def _g(v: Any) -> str:
    return "—" if v is None else f"{v:.3g}"


def _records_complete(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [r for r in records if r.state == "complete" and r.value is not None and r.lambda_eff and r.n_params]


def _plot_loss_vs_lambda(records: Sequence[TrialRecord], analysis: Analysis, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    rows = _records_complete(records)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    if rows:
        norm = LogNorm(vmin=min(r.n_params for r in rows), vmax=max(max(r.n_params for r in rows), min(r.n_params for r in rows) * 1.01))
        sc = ax.scatter([r.lambda_eff for r in rows], [r.value for r in rows], c=[r.n_params for r in rows], cmap="viridis", norm=norm, s=22, alpha=0.85)
        fig.colorbar(sc, ax=ax, label="N (trainable parameters)")
        for s in analysis.per_size:
            if s.best_lambda_eff is not None:
                ax.scatter([s.best_lambda_eff], [s.best_value], marker="*", s=160, c=[s.n_params], cmap="viridis", norm=norm, edgecolors="black", linewidths=0.8)
        values = np.array([r.value for r in rows])
        top = np.percentile(values, 95)
        ax.set_ylim(values.min() - 0.05 * (top - values.min() + 1e-9), top + 0.1 * (top - values.min() + 1e-9))
    ax.set_xscale("log")
    ax.set_xlabel("lambda_eff")
    ax.set_ylabel("penalty-free validation cross-entropy")
    ax.set_title("Loss against lambda_eff (stars: each size's best)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_best_lambda_vs_n(analysis: Analysis, path: Path) -> Path:
    """Each size's best trial (with its near-best band), and the joint fit's optimum and
    wall lines with their 95% bands where identified, plus the hypotheses through the
    fitted optimum (or wall)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    sizes = [s for s in analysis.per_size if s.best_lambda_eff is not None]
    if sizes:
        n = np.array([s.n_params for s in sizes], dtype=float)
        lam = np.array([s.best_lambda_eff for s in sizes])
        low = np.clip(lam - np.array([s.band[0] for s in sizes]), 0, None)
        high = np.clip(np.array([s.band[1] for s in sizes]) - lam, 0, None)
        ax.errorbar(n, lam, yerr=[low, high], fmt="x", color="black", capsize=3, label="best trial, near-best band")
        grid = np.exp(np.linspace(np.log(n.min()) - 0.3, np.log(n.max()) + 0.3, 50))
        fits = (("optimum", "C0", analysis.alpha_hat, analysis.alpha_ci, [s.lambda_opt for s in sizes]),
                ("wall", "C3", analysis.wall_alpha_hat, analysis.wall_alpha_ci, [s.lambda_wall for s in sizes]))
        anchor = None
        for label, color, hat, ci, values in fits:
            if hat is None or any(v is None for v in values):
                continue
            x0, y0 = np.log(n).mean(), np.log(values).mean()
            line = lambda a, x0=x0, y0=y0: np.exp(y0 - a * (np.log(grid) - x0))  # noqa: E731 (bind this fit's anchor)
            ax.plot(grid, line(hat), color=color, label=f"{label} (joint fit): alpha = {hat:.2f}")
            ax.fill_between(grid, np.minimum(line(ci[0]), line(ci[1])), np.maximum(line(ci[0]), line(ci[1])), color=color,
                            alpha=0.15, label=f"{label} 95% interval [{ci[0]:.2f}, {ci[1]:.2f}]")
            anchor = anchor or line
        if anchor is not None:
            for i, (a, _) in enumerate(HYPOTHESES):
                ax.plot(grid, anchor(a), ls=":", lw=1, color=f"C{i + 4}", label=f"alpha = {a:+g}")
        if analysis.alpha_hat is None:
            ax.text(0.02, 0.02, "alpha of the optimum not identified", transform=ax.transAxes, fontsize=8, color="C0")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (trainable parameters)")
    ax.set_ylabel("lambda_eff")
    ax.set_title("Optimal lambda_eff and the wall against model size")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _html_loss_vs_lambda(records: Sequence[TrialRecord], path: Path) -> Path | None:
    try:
        import plotly.graph_objects as go
    except ImportError:
        return None
    rows = _records_complete(records)
    fig = go.Figure(
        go.Scatter(
            x=[r.lambda_eff for r in rows],
            y=[r.value for r in rows],
            mode="markers",
            marker=dict(color=[math.log10(r.n_params) for r in rows], colorscale="Viridis", colorbar=dict(title="log10 N"), size=8),
            text=[f"trial {r.number}<br>width {r.width}, N {r.n_params:,}<br>lambda0 {r.lambda0:.3g}, alpha {r.alpha:.3g}" if r.lambda0 is not None and r.alpha is not None else f"trial {r.number}" for r in rows],
            hovertemplate="%{text}<br>lambda_eff %{x:.3g}<br>val_ce %{y:.4f}<extra></extra>",
        )
    )
    fig.update_layout(title="Penalty-free validation loss against lambda_eff", xaxis=dict(type="log", title="lambda_eff"), yaxis=dict(title="val_ce"))
    fig.write_html(path, include_plotlyjs="directory")
    return path


def _optuna_plots(study: Any, out: Path) -> dict[str, Path]:
    """Optuna's own plots as PNG (matplotlib backend) and HTML (plotly), where they apply."""
    import matplotlib.pyplot as plt
    import optuna

    files: dict[str, Path] = {}
    params = {k for t in study.get_trials(deepcopy=False) for k in t.params}
    jobs = []
    if {"lambda0", "alpha"} <= params:
        jobs.append(("contour", "plot_contour", {"params": ["lambda0", "alpha"]}))
    if len(params) >= 2:
        jobs.append(("importances", "plot_param_importances", {}))
    jobs.append(("intermediate", "plot_intermediate_values", {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, func, kwargs in jobs:
            try:
                getattr(optuna.visualization.matplotlib, func)(study, **kwargs)
                fig = plt.gcf()
                fig.set_size_inches(7.5, 5)
                fig.tight_layout()
                files[key] = out / f"optuna_{key}.png"
                fig.savefig(files[key], dpi=100)
                plt.close("all")
            except Exception as exc:  # a plot that does not apply (too few trials, ...)
                log.info("optuna %s plot skipped: %s", key, exc)
                plt.close("all")
            try:
                fig = getattr(optuna.visualization, func)(study, **kwargs)
                files[f"{key}_html"] = out / f"optuna_{key}.html"
                fig.write_html(files[f"{key}_html"], include_plotlyjs="directory")
            except Exception as exc:
                log.info("optuna %s html skipped: %s", key, exc)
    return files
