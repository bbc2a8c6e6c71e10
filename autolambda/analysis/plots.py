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
    fig, ax = plt.subplots(figsize=(9.5, 4.8))
    for p in t.get("best_pairs", []):
        n = [r["n_params"] for r in p["rungs"]]
        ax.plot(n, [r["value"] for r in p["rungs"]], marker="o", alpha=0.8,
                label=f"#{p['number']}: lambda0 {p['lambda0']:.2g}, alpha {p['alpha']:+.2f}")
    sized = [s for s in analysis.per_size if s.floor is not None]
    if sized:
        ax.plot([s.n_params for s in sized], [s.floor for s in sized], "k--", lw=1.2, label="fitted floor (negligible penalty)")
    ax.set_xscale("log")
    return _finish_size_axes(fig, ax, path, "penalty-free val_ce at the rung", "The best transfer pairs at each size of the ladder")


def _plot_loss_vs_lambda(records: Sequence[TrialRecord], analysis: Analysis, path: Path) -> Path:
    """Loss against lambda_eff as small multiples, one panel per width (a shared lambda
    axis, so the dip's move with N shows): each seed block's trials in its own colour with
    its fitted curve, the fitted optimum and wall as vertical lines. The y-range is the
    informative band around the floor and the dip; trials above it (up the wall, or
    collapsed) are marked at the top edge instead of stretching the axis."""
    import matplotlib.pyplot as plt

    rows = complete_records(records)
    widths = sorted({r.width for r in rows if r.width is not None})
    sizes = {s.width: s for s in analysis.per_size}
    n_cols = min(3, max(len(widths), 1))
    n_rows = max(1, math.ceil(len(widths) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols + 0.6, 2.9 * n_rows + 0.9), sharex=True, squeeze=False)
    lams = [r.lambda_eff for r in rows]
    grid = np.exp(np.linspace(math.log(min(lams)), math.log(max(lams)), 200)) if rows else np.array([])
    for ax in axes.flat[len(widths):]:
        ax.set_visible(False)
    for ax, width in zip(axes.flat, widths):
        mine = [r for r in rows if r.width == width]
        size = sizes.get(width)
        blocks = sorted({r.block for r in mine}, key=lambda b: -1 if b is None else b)
        curves = {}
        for block in blocks:
            floor = size.block_floors.get(block) if size and block is not None else None
            floor = size.floor if floor is None and size else floor
            if floor is not None and analysis.fit_n_ref and len(grid):
                curves[block] = _fitted(analysis, size.n_params, grid, floor)
        lowest = min([r.value for r in mine] + [float(c.min()) for c in curves.values()])
        low, high = _informative_range(lowest, [r.value for r in mine], size.floor if size else None)
        for block in blocks:
            colour = f"C{(block or 0) % 10}"  # the same colour for a block number in every panel
            pts = [r for r in mine if r.block == block]
            inside = [r for r in pts if r.value <= high]
            above = [r for r in pts if r.value > high]
            ax.scatter([r.lambda_eff for r in inside], [r.value for r in inside], s=16, color=colour, alpha=0.85,
                       label=None if block is None else f"seed block {block}")
            ax.scatter([r.lambda_eff for r in above], [high] * len(above), s=22, marker="^", facecolors="none",
                       edgecolors=colour, clip_on=False)
            stopped = [r.lambda_eff for r in records if r.settled and r.width == width and r.block == block and r.lambda_eff]
            ax.scatter(stopped, [high] * len(stopped), s=22, marker="x", color=colour, clip_on=False)
            if block in curves:
                ax.plot(grid, curves[block], color=colour, lw=1.1)
        if size and size.lambda_opt:
            ax.axvline(size.lambda_opt, color="black", lw=1.0, label="fitted optimum")
        if size and size.lambda_wall:
            ax.axvline(size.lambda_wall, color="C3", ls="--", lw=1.0, label="wall")
        ax.set_ylim(low, high)
        ax.set_xscale("log")
        ax.set_title(f"width {width}" + (f", N = {size.n_params:,}" if size else ""), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("lambda_eff", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("val_ce (penalty-free)", fontsize=8)
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    title = ("Loss against lambda_eff by width: lines the joint fit (collapsed nets left out of it), "
             "open triangles trials above the panel (up the wall or collapsed)"
             + (",\ncrosses trials the pruner stopped there (settled beyond the wall)" if any(r.settled for r in records) else ""))
    fig.suptitle(title, fontsize=9)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if handles else 0, 1, 0.95 if "\n" in title else 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _informative_range(bottom: float, values: Sequence[float], floor: float | None) -> tuple[float, float]:
    """A panel's y-range: from just below ``bottom`` (its lowest trial or fitted curve) to
    well above its floor (the dip and the foot of the wall), not up to collapsed nets (ln 10
    on digits) that would squeeze the part where lambda matters into a sliver."""
    if not len(values):
        return 0.0, 1.0
    floor = float(np.median(values)) if floor is None else floor
    depth = max(floor - bottom, 0.05 * abs(floor), 1e-3)
    top = floor + 2.5 * depth
    return bottom - 0.15 * (top - bottom), top


def _fitted(analysis: Analysis, n_params: float, grid: np.ndarray, floor: float) -> np.ndarray:
    """The joint fit's loss at ``n_params`` over ``grid`` (lambda_eff), from ``floor``."""
    from autolambda.analysis.curve import curve_loss

    return curve_loss(analysis.fit, math.log(n_params / analysis.fit_n_ref), np.log(grid), floor)


def _plot_best_lambda_vs_n(analysis: Analysis, path: Path) -> Path:
    """Each size's best trial (with its near-best band), and the joint fit's optimum and
    wall lines with their 95% bands where identified, plus the hypotheses through the
    fitted optimum (or wall)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.0, 4.8))
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
    return _finish_size_axes(fig, ax, path, "lambda_eff", "Optimal lambda_eff and the wall against model size")


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


def _finish_size_axes(fig: Any, ax: Any, path: Path, ylabel: str, title: str) -> Path:
    """Label a plot against N, put its legend beside the axes (never over the data), save it."""
    import matplotlib.pyplot as plt

    ax.set_xlabel("N (trainable parameters)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
