"""The analysis plots: autolambda's own (PNG with matplotlib, the loss against lambda also
as HTML with plotly) and Optuna's.

Optuna's own plots (contour of lambda0 against alpha, parameter importances,
intermediate values) come from ``optuna.visualization``; autolambda draws only what
Optuna does not: loss against lambda_eff by size, and best lambda_eff against N.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autolambda.analysis.records import TrialRecord, complete_records
from autolambda.analysis.summary import Analysis
from autolambda.analysis.verdict import HYPOTHESES

log = logging.getLogger("autolambda")


def report_plots(analysis: Analysis, records: Sequence[TrialRecord], out: Path, *, study: Any = None) -> dict[str, Path]:
    """Every plot of the report, by name: autolambda's PNGs, the loss against lambda as
    HTML, and Optuna's own plots of ``study`` (when given)."""
    plots = _autolambda_plots(analysis, records, out)
    plots["loss_vs_lambda_html"] = _html_loss_vs_lambda(records, out / "loss_vs_lambda.html")
    if study is not None:
        plots |= _optuna_plots(study, out)
    return plots


def summary_plots(analysis: Analysis, records: Sequence[TrialRecord], out: str | Path) -> list[Path]:
    """Just the autolambda plots (for the end of ``tune``)."""
    return list(_autolambda_plots(analysis, records, Path(out)).values())


def _autolambda_plots(analysis: Analysis, records: Sequence[TrialRecord], out: Path) -> dict[str, Path]:
    """The PNGs autolambda draws itself, by name: the transfer pairs' only in transfer mode."""
    import matplotlib

    matplotlib.use("Agg")
    plots = {"loss_vs_lambda": _plot_loss_vs_lambda(records, analysis, out / "loss_vs_lambda.png"),
             "best_lambda_vs_n": _plot_best_lambda_vs_n(analysis, out / "best_lambda_vs_n.png")}
    if analysis.transfer is not None:
        plots["transfer_pairs"] = _plot_transfer_pairs(analysis, out / "transfer_pairs.png")
    return plots


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


def _plot_loss_vs_lambda(records: Sequence[TrialRecord], analysis: Analysis, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    rows = complete_records(records)
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


def _html_loss_vs_lambda(records: Sequence[TrialRecord], path: Path) -> Path:
    import plotly.graph_objects as go

    rows = complete_records(records)
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
