"""Console output of ``tune``: the progress bar and the closing table."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from autolambda.core.states import FINISHED_STATES, count_states, trial_state
from autolambda.run.stores import redact
from autolambda.run.stores import absolute_sqlite

console = Console(stderr=False)


class ProgressCallback:
    """Optuna callback drawing a bar: finished trials of the target, pruned, best so far."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._task = None
        self._counts = {"pruned": 0, "diverged": 0, "failed": 0}
        self._best: float | None = None
        self._answer = ""

    def set_answer(self, text: str) -> None:
        """Show the current answer (alpha's interval, from ``--precision``) on the bar."""
        self._answer = text
        if self._task is not None:
            self._progress.update(self._task, description=self._text())

    def __enter__(self) -> "ProgressCallback":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def start(self, study: optuna.Study, done: int) -> None:
        """Called once the study is open, with the finished trials it already holds."""
        self._recount(study.get_trials(deepcopy=False))
        self._task = self._progress.add_task(self._text(), total=self.total, completed=min(done, self.total))

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        state = trial_state(trial)
        if state in self._counts:
            self._counts[state] += 1
        if state == "complete" and trial.value is not None:
            self._best = trial.value if self._best is None else min(self._best, trial.value)
        if self._task is not None:
            advance = 1 if state in FINISHED_STATES else 0
            self._progress.update(self._task, advance=advance, description=self._text())

    def poll(self, study: optuna.Study) -> None:
        """Redraw from the study itself (trials finished by other processes)."""
        trials = study.get_trials(deepcopy=False)
        states = self._recount(trials)
        if self._task is not None:
            done = sum(1 for s in states if s in FINISHED_STATES)
            self._progress.update(self._task, completed=min(done, self.total), description=self._text())

    def _recount(self, trials: list[FrozenTrial]) -> list[str]:
        """Counts and best value from every trial of the study; returns their states."""
        states = [trial_state(t) for t in trials]
        counts = count_states(states)
        for key in self._counts:
            self._counts[key] = counts[key]
        values = [t.value for t, s in zip(trials, states) if s == "complete" and t.value is not None]
        self._best = min(values) if values else None
        return states

    def _text(self) -> str:
        best = f"{self._best:.4f}" if self._best is not None else "-"
        extra = f" diverged {self._counts['diverged']}" if self._counts["diverged"] else ""
        extra += f" failed {self._counts['failed']}" if self._counts["failed"] else ""
        answer = f"  {self._answer}" if self._answer else ""
        return f"pruned {self._counts['pruned']}{extra}  best val_ce {best}{answer}"


def print_tune_summary(result: Any, *, analyzed: bool = False) -> None:
    """The closing table of ``tune``: best trial, best lambda_eff per width, where next."""
    summary = result.summary()
    config = result.config
    states = summary["states"]
    console.print(
        f"\nStudy [bold]{summary['study_name']}[/bold]: {summary['n_trials']} trials "
        f"({result.new_trials} new) — complete {states['complete']}, pruned {states['pruned']}, "
        f"diverged {states['diverged']}, failed {states['failed']}"
    )
    transfer = config.mode == "transfer"
    if transfer:
        _print_transfer(result)
    table = Table(title="Best lambda_eff per width (score: penalty-free val_ce" + ("; counts are rungs)" if transfer else ")"))
    for col in ("width", "N", "done", "pruned", "div.", "fail", "val_ce", "lambda_eff"):
        table.add_column(col, justify="right")
    for row in summary["per_width"]:
        table.add_row(
            str(row["width"]),
            f"{row['n_params']:,}" if row["n_params"] else "-",
            str(row["complete"]),
            str(row["pruned"]),
            str(row["diverged"]),
            str(row["failed"]),
            _fmt(row["best_value"], ".4f"),
            _fmt(row["best_lambda_eff"], ".3g"),
        )
    if summary["per_width"]:
        console.print(table)
    best = summary.get("best")
    if best and transfer:
        console.print(f"Best pair #{best['number']}: mean val_ce over the ladder {best['value']:.4f} "
                      f"(lambda0 {best['params'].get('lambda0', float('nan')):.3g}, alpha {best['params'].get('alpha', float('nan')):.3g})")
    elif best:
        console.print(
            f"Best trial #{best['number']}: val_ce {best['value']:.4f}, width {best['params'].get('width', '-')}, "
            + (f"N {best['n_params']:,}, lambda_eff {best['lambda_eff']:.3g} " if best["n_params"] else "")
            + 
            f"(lambda0 {best['params'].get('lambda0', float('nan')):.3g}, alpha {best['params'].get('alpha', float('nan')):.3g})"
        )
    if result.unlogged_trials:
        console.print(f"[yellow]Warning:[/yellow] trials {result.unlogged_trials} were not logged to MLflow.")
    if not analyzed:
        print_next(config, bool(result.parent_run_id), analyzed=False)


def print_next(config: Any, tracked: bool, *, analyzed: bool) -> None:
    """The commands to run next: the analysis (unless done) and the MLflow UI."""
    from shlex import quote

    lines = []
    if not analyzed:
        storage = "" if config.storage == absolute_sqlite("sqlite:///autolambda.db") else f" --storage {quote(redact(config.storage))}"
        lines.append(f"  autolambda analyze --study-name {quote(config.name)}{storage}   # which alpha the data support")
    if tracked:
        tracking = "" if config.tracking_uri == absolute_sqlite("sqlite:///mlflow.db") else f" --tracking-uri {quote(redact(config.tracking_uri))}"
        lines.append(f"  autolambda ui{tracking}   # browse lambda_eff against n_params in MLflow")
    if lines:
        console.print("\nNext:")
        for line in lines:
            print_command(line)


def print_command(line: str) -> None:
    """A command for the user to copy: never wrapped (a log file or CI would break it in
    the middle of a path at 80 columns), never read as markup."""
    console.print(line, soft_wrap=True, markup=False, highlight=False, crop=False, overflow="ignore")


def _print_transfer(result: Any) -> None:
    try:
        best = result.study.best_trial
    except ValueError:
        return
    rungs = best.user_attrs.get("history", {})
    table = Table(title=f"Best transfer pair: lambda0 {best.params.get('lambda0', float('nan')):.3g}, alpha {best.params.get('alpha', float('nan')):.3g} (mean val_ce {best.value:.4f})")
    for col in ("width", "N", "lambda_eff", "val_ce"):
        table.add_column(col, justify="right")
    for w, n, lam, v in zip(rungs.get("rung_width", []), rungs.get("rung_n_params", []), rungs.get("rung_lambda_eff", []), rungs.get("rung_val_ce", [])):
        table.add_row(str(int(w)), f"{int(n):,}", f"{lam:.3g}", f"{v:.4f}")
    console.print(table)


def _print_transfer_pairs(a: Any) -> None:
    t = a.transfer
    states = ", ".join(f"{v} {k}" for k, v in sorted(t["pair_states"].items()))
    console.print(f"Transfer mode: {t['n_pairs']} pairs ({states}) on the ladder {','.join(map(str, t['ladder']))}; "
                  "the table above and the answer below are the joint fit of every finished rung.")
    pairs = t["best_pairs"]
    if not pairs:
        return
    table = Table(title="Best pairs by mean val_ce (a check, not the estimate): val_ce at each rung (over the fitted floor)")
    for col in ("trial", "lambda0", "alpha", "mean"):
        table.add_column(col, justify="right")
    for r in pairs[0]["rungs"]:
        table.add_column(f"width {r['width']}", justify="right")
    for p in pairs:
        cells = [f"{r['value']:.4f} ({_fmt(r['over_floor'], '+.4f')})" for r in p["rungs"]]
        table.add_row(str(p["number"]), f"{p['lambda0']:.3g}", f"{p['alpha']:+.3f}", f"{p['value']:.4f}", *cells)
    console.print(table)


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_recommendations(a: Any, penalty: str | None = None) -> None:
    """The lambda to use at each recommended size (``Analysis.recommendations``)."""
    from autolambda.analysis.recommend import keras_line, span

    if not a.recommendations:
        if not a.identified and a.mode == "search":
            console.print("No lambda to recommend: the optimum's alpha is not identified.")
        return
    table = Table(title="Recommended lambda_eff (from the joint fit)")
    tol = a.recommendations[0]["tolerance"]
    for col in ("N", "lambda", "95% interval", f"within {tol:.0%} of best", "wall", "regret of N_ref's lambda"):
        table.add_column(col, justify="right")
    for r in a.recommendations:
        ci, near = r["ci"], r["near_range"]
        table.add_row(f"{r['n_params']:,}" + (" *" if r["extrapolated"] else ""), f"{r['lambda_opt']:.2e}",
                      f"{ci[0]:.2e} - {ci[1]:.2e}" if ci else "unbounded",
                      span(near, ".2e") if near else "-", _fmt(r["lambda_wall"], ".2e"),
                      f"{r['regret']:+.4f}")
    console.print(table)
    ref = a.recommendations[0]
    first = a.recommendations[0]
    line = keras_line(penalty, first["lambda_opt"], ".2e")
    console.print(f"regret: the fitted loss at N with N_ref = {ref['reference_n']:,.0f}'s best lambda "
                  f"({ref['reference_lambda']:.2e}) over the loss at N's own best"
                  + ("; * outside the sizes trained (extrapolated)" if any(r["extrapolated"] for r in a.recommendations) else "")
                  + (f". In Keras, for a net of N = {first['n_params']:,} trainable parameters: {line}." if line else "."))


def print_analysis(result: Any) -> None:
    """Human-readable summary of ``autolambda analyze``."""
    a = result.analysis
    what = f"{a.n_trials} rungs of {a.transfer['n_pairs']} transfer pairs" if a.transfer is not None else f"{a.n_trials} trials"
    console.print(f"\nStudy [bold]{result.study_name}[/bold]: {what} " + ", ".join(f"{k} {v}" for k, v in sorted(a.states.items())))
    table = Table(title="Per model size")
    for col in ("width", "N", "done", "floor", "optimum", "wall", "best val_ce", "best trial's lambda", "flags"):
        table.add_column(col, justify="right")
    for s in a.per_size:
        table.add_row(str(s.width), f"{s.n_params:,}", str(s.n_complete), _fmt(s.floor, ".4f"), _fmt(s.lambda_opt, ".3g"),
                      _fmt(s.lambda_wall, ".3g"), _fmt(s.best_value, ".4f"), _fmt(s.best_lambda_eff, ".3g"), ",".join(s.flags) or "-")
    console.print(table)
    if a.transfer is not None:
        _print_transfer_pairs(a)
    console.print(f"noise_sd = {_fmt(a.noise_sd, '.4f')} ({a.noise_source})")
    if a.informative_share is not None:
        console.print(f"{a.informative_share:.0%} of the complete trials lie in the informative band "
                      "(where the fitted loss depends on lambda: the dip and the wall's rise)")
    if a.alpha_hat is not None:
        console.print(f"alpha_hat (optimum) = [bold]{a.alpha_hat:.3f}[/bold], 95% interval [{a.alpha_ci[0]:.3f}, {a.alpha_ci[1]:.3f}]")
    else:
        console.print(f"alpha of the optimum: [bold]not identified[/bold] ({a.alpha_reason})")
    if a.wall_alpha_hat is not None:
        console.print(f"wall_alpha_hat = [bold]{a.wall_alpha_hat:.3f}[/bold], 95% interval [{a.wall_alpha_ci[0]:.3f}, {a.wall_alpha_ci[1]:.3f}]")
    else:
        console.print(f"alpha of the wall: [bold]not identified[/bold] ({a.wall_reason})")
    hyp = Table(title="Hypotheses (- : not identified, so not ruled out)")
    for col in ("alpha", "meaning", "optimum's 95% CI", "wall's 95% CI"):
        hyp.add_column(col)
    mark = lambda v: "-" if v is None else ("inside" if v else "outside")  # noqa: E731
    for h in a.hypotheses:
        hyp.add_row(f"{h['alpha']:+g}", h["meaning"], mark(h["inside_ci"]), mark(h["inside_wall_ci"]))
    console.print(hyp)
    console.print(a.verdict)
    ans = a.answer()
    if ans["which"] == "optimum":
        console.print(f"[bold]Answer:[/bold] the best lambda scales as N^-alpha with alpha = {ans['alpha']:.2f}, "
                      f"95% interval [{ans['ci'][0]:.2f}, {ans['ci'][1]:.2f}]")
    elif ans["which"] == "wall":
        console.print(f"[bold]Answer:[/bold] the best lambda's scaling is not identified; the largest harmless lambda (the wall) "
                      f"scales with alpha = {ans['alpha']:.2f}, 95% interval [{ans['ci'][0]:.2f}, {ans['ci'][1]:.2f}]")
    print_recommendations(a, getattr(result, "penalty", None))
    e = a.extrapolation
    if e:
        console.print(f"Extrapolation: alpha from widths {e['fitted_on_widths']} predicts lambda_eff {e['predicted_lambda_eff']:.3g} "
                      f"for width {e['target_width']} (the fit over all sizes: {e['best_lambda_eff']:.3g}); regret {e['regret']:+.4f} in val_ce.")
    for note in a.notes:
        console.print(f"[yellow]Note:[/yellow] {note}")
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/yellow] {warning}")
    console.print(f"\nReport: {result.out / 'report.md'} (plots beside it)")
    if result.logged_run_id:
        console.print(f"Logged to MLflow run {result.logged_run_id} (artifacts/analysis)")
