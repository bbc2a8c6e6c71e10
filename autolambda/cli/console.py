"""Console output of ``tune``: the progress bar and the closing table."""

from __future__ import annotations

import math
from typing import Any, Sequence

import optuna
from optuna.trial import FrozenTrial
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from autolambda.core.trials import FINISHED_STATES, count_states, rung_history, trial_state
from autolambda.base.stores import redact
from autolambda.base.stores import absolute_sqlite

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


def print_tune_summary(result: Any, *, table: bool = True, counts: bool = True) -> None:
    """The end of ``tune``: one line of trial counts (``counts``), then (``table``) the best
    lambda_eff per width and the best trial. ``tune`` leaves the table to the analysis when
    it runs one."""
    summary = result.summary()
    config = result.config
    states = summary["states"]
    if counts:
        console.print(
            f"\nStudy [bold]{summary['study_name']}[/bold]: {summary['trials_in_study']} trials "
            f"({result.new_trials} new): complete {states['complete']}, pruned {states['pruned']}"
            + (f" ({summary['settled']} beyond the wall)" if summary.get("settled") else "")
            + f", diverged {states['diverged']}, failed {states['failed']}; {summary.get('epochs', 0):,} epochs trained"
        )
    if counts and result.unlogged_trials:
        console.print(f"[yellow]Warning:[/yellow] trials {result.unlogged_trials} were not logged to MLflow.")
    if not table:
        return
    transfer = config.mode == "transfer"
    if transfer:
        _print_transfer(result)
    out = _table("Best lambda_eff per width (score: penalty-free val_ce" + ("; counts are rungs)" if transfer else ")"),
                 ("width", "N", "done", "pruned", "div.", "fail", "val_ce", "lambda_eff"))
    for row in summary["per_width"]:
        out.add_row(
            str(row["width"]),
            f"{row['n_params']:,}" if row["n_params"] else "-",
            str(row["complete"]),
            str(row["pruned"]),
            str(row["diverged"]),
            str(row["failed"]),
            _fmt(row["best_value"], ".4f"),
            _fmt(row["best_lambda_eff"], LAMBDA),
        )
    if summary["per_width"]:
        console.print(out)
    best = summary.get("best")
    if best and transfer:
        console.print(f"Best pair #{best['number']}: mean val_ce over the ladder {best['value']:.4f} "
                      f"(lambda0 {best['params'].get('lambda0', float('nan')):{LAMBDA}}, alpha {best['params'].get('alpha', float('nan')):+.2f})")
    elif best:
        console.print(
            f"Best trial #{best['number']}: val_ce {best['value']:.4f}, width {best['params'].get('width', '-')}, "
            + (f"N {best['n_params']:,}, lambda_eff {best['lambda_eff']:{LAMBDA}} " if best["n_params"] else "")
            + f"(lambda0 {best['params'].get('lambda0', float('nan')):{LAMBDA}}, alpha {best['params'].get('alpha', float('nan')):+.2f})"
        )


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
    rungs = rung_history(best.user_attrs)
    table = _table(f"Best transfer pair: lambda0 {best.params.get('lambda0', float('nan')):{LAMBDA}}, "
                   f"alpha {best.params.get('alpha', float('nan')):+.2f} (mean val_ce {best.value:.4f})",
                   ("width", "N", "lambda_eff", "val_ce"))
    for w, n, lam, v in zip(rungs.get("rung_width", []), rungs.get("rung_n_params", []), rungs.get("rung_lambda_eff", []), rungs.get("rung_val_ce", [])):
        table.add_row(str(int(w)), f"{int(n):,}", f"{lam:{LAMBDA}}", f"{v:.4f}")
    console.print(table)


def _print_transfer_pairs(a: Any) -> None:
    t = a.transfer
    states = ", ".join(f"{v} {k}" for k, v in sorted(t["pair_states"].items()))
    console.print(f"Transfer mode: {t['n_pairs']} pairs ({states}) on the ladder {','.join(map(str, t['ladder']))}; "
                  "the table above and the answer below are the joint fit of every finished rung.")
    pairs = t["best_pairs"]
    if not pairs:
        return
    table = _table("Best pairs by mean val_ce (a check, not the estimate): each rung's val_ce over its size's fitted floor",
                   ("trial", "lambda0", "alpha", "mean", *(f"w{r['width']}" for r in pairs[0]["rungs"])))
    for p in pairs:
        cells = [_fmt(r["over_floor"], "+.3f") for r in p["rungs"]]
        table.add_row(str(p["number"]), f"{p['lambda0']:{LAMBDA}}", f"{p['alpha']:+.2f}", f"{p['value']:.4f}", *cells)
    console.print(table)


#: How the console writes a lambda: two significant digits, always in the same width
#: (``4.1e-03``), so that a column of them lines up and never needs cutting at 80 columns.
LAMBDA = ".1e"


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


class _Table(Table):
    """A rich ``Table`` whose number columns are as wide as their widest cell: rich shrinks
    only the word columns to fit the console, and a number is never cut or wrapped."""

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        for column, cell in zip(self.columns, cells):
            if column.no_wrap:
                column.min_width = max(column.min_width or 0, len(str(cell)))
        super().add_row(*cells, **kwargs)


def _table(title: str | None, columns: Sequence[str], *, wrap: Sequence[str] = ()) -> Table:
    """A compact table that fits 80 columns: no vertical rules, right-aligned number cells
    that are never cut (a number cut to its first digits is worse than none) or wrapped;
    only the ``wrap`` columns (words) fold onto more lines."""
    table = _Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                   title_justify="left")
    for col in columns:
        if col in wrap:
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    return table


def _recommendation_table(a: Any) -> Table:
    """The lambda to use at each recommended size (``Analysis.recommendations``)."""
    tol = a.recommendations[0]["tolerance"]
    table = _table(None, ("N", "lambda_eff", "95% interval", f"within {tol:.0%}", "wall", "regret"))
    for r in a.recommendations:
        ci, near = r["ci"], r["near_range"]
        table.add_row(f"{r['n_params']:,}" + ("*" if r["extrapolated"] else ""), f"{r['lambda_opt']:{LAMBDA}}",
                      f"{ci[0]:{LAMBDA}}..{ci[1]:{LAMBDA}}" if ci else "unbounded",
                      _near(near), _fmt(r["lambda_wall"], LAMBDA),
                      f"{r['regret']:+.4f}")
    return table


def _near(near: Any) -> str:
    """A near-best range in a cell: ``lo..hi``, or ``<hi`` / ``>lo`` where it runs past the fit."""
    if not near:
        return "-"
    lo, hi = near
    if lo is None and hi is None:
        return "any"
    if lo is None:
        return f"<{hi:{LAMBDA}}"
    if hi is None:
        return f">{lo:{LAMBDA}}"
    return f"{lo:{LAMBDA}}..{hi:{LAMBDA}}"


def _size_table(a: Any) -> Table:
    """One row per model size: trials, the joint fit's floor, optimum and wall there, the
    best trial's lambda and the flags."""
    table = _table("Per model size (penalty-free val_ce; lambdas are lambda_eff"
                   + ("; counts are rungs)" if a.transfer is not None else ")"),
                   ("width", "N", "done", "pruned", "floor", "optimum", "wall", "best trial", "flags"), wrap=("flags",))
    for s in a.per_size:
        table.add_row(str(s.width), f"{s.n_params:,}", str(s.n_complete), str(s.n_pruned), _fmt(s.floor, ".3f"),
                      _fmt(s.lambda_opt, LAMBDA), _fmt(s.lambda_wall, LAMBDA), _fmt(s.best_lambda_eff, LAMBDA),
                      ", ".join(s.flags) or "-")
    return table


def _recipe(context: dict[str, Any]) -> str:
    """The training recipe an answer holds for, in a few words (empty when unknown)."""
    parts = []
    if context.get("dataset"):
        parts.append(str(context["dataset"]) + (f" ({context['n_train']} images)" if context.get("n_train") else ""))
    if context.get("optimizer"):
        lr = context.get("learning_rate")
        schedule = context.get("lr_schedule")
        parts.append(f"{context['optimizer']}" + (f" at {lr:g}" if isinstance(lr, (int, float)) else "")
                     + (f", {schedule} schedule" if schedule and schedule != "constant" else ""))
    if context.get("epochs"):
        parts.append(f"{context['epochs']} epochs" + (f", batch {context['batch_size']}" if context.get("batch_size") else ""))
    if context.get("trainer") == "surrogate":
        parts.append("surrogate trainer")
    return "; ".join(parts)


def print_answer(result: Any) -> None:
    """The answer block: the verdict (each reason once), the lambda to use at each size and
    the Keras line. ``tune`` and ``analyze`` end with it."""
    from autolambda.analysis.recommend import keras_line
    from autolambda.analysis.verdict import HELP_NOTE

    a = result.analysis
    recipe = _recipe(result.context)
    console.rule("[bold]Answer[/bold]", align="left")
    if recipe:
        console.print(f"For the recipe trained: {recipe}.")
    console.print(a.verdict)
    if a.recommendations:
        first = a.recommendations[0]
        console.print(f"Recommended lambda_eff by N: its 95% interval, the range within {first['tolerance']:.0%} of the best "
                      f"loss, the wall, and the regret of keeping N_ref = {first['reference_n']:,.0f}'s lambda "
                      f"({first['reference_lambda']:{LAMBDA}}) unchanged"
                      + (" (* extrapolated)" if any(r["extrapolated"] for r in a.recommendations) else "") + ":")
        console.print(_recommendation_table(a))
        line = keras_line(result.penalty, first["lambda_opt"], ".2e")
        if line:
            console.print(f"In Keras, for a net of N = {first['n_params']:,} trainable parameters:")
            print_command(f"  {line}")
    elif not a.identified and a.mode == "search":
        console.print("No lambda to recommend without the optimum's alpha.")
    for note in a.notes:
        if note.startswith(HELP_NOTE):
            console.print(note)


def print_analysis(result: Any, *, verbose: bool = False, counts: bool = True) -> None:
    """What ``analyze`` prints: the study's counts (``counts``; ``tune`` has printed them),
    the per-size table, where the report went, then the answer block last. ``verbose``:
    also the noise, the hypotheses, the extrapolation check and the notes on each size."""
    a = result.analysis
    what = f"{a.n_records} rungs of {a.transfer['n_pairs']} transfer pairs" if a.transfer is not None else f"{a.n_records} trials"
    if counts:
        settled = f" ({a.n_settled} beyond the wall, counted as hurt)" if a.n_settled else ""
        console.print(f"\nStudy [bold]{result.study_name}[/bold]: {what}: "
                      + ", ".join(f"{k} {v}" + (settled if k == "pruned" else "") for k, v in sorted(a.states.items()) if v))
    console.print(_size_table(a))
    if a.transfer is not None:
        _print_transfer_pairs(a)
    if verbose:
        _print_details(a)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/yellow] {warning}")
    where = f"Report: {result.out / 'report.md'} (plots beside it)"
    if result.logged_run_id:
        where += f"; logged to MLflow run {result.logged_run_id}"
    console.print(where)
    if not verbose:
        console.print("Details (noise, hypotheses, notes): the same command with --verbose")
    print_answer(result)


def _print_details(a: Any) -> None:
    """The ``--verbose`` part of the analysis: numbers behind the answer, no reason repeated
    (the answer block words each one)."""
    from autolambda.analysis.verdict import HELP_NOTE

    console.print(f"noise_sd = {_fmt(a.noise_sd, '.4f')} ({a.noise_source})")
    if a.informative_share is not None:
        console.print(f"{a.informative_share:.0%} of the complete trials lie in the informative band "
                      "(where the fitted loss depends on lambda: the dip and the wall's rise)")
    if a.alpha_hat is not None:
        console.print(f"optimum: alpha_hat = {a.alpha_hat:.3f}, 95% interval [{a.alpha_ci[0]:.3f}, {a.alpha_ci[1]:.3f}]")
    if a.wall_alpha_hat is not None:
        console.print(f"wall: alpha_hat = {a.wall_alpha_hat:.3f}, 95% interval [{a.wall_alpha_ci[0]:.3f}, {a.wall_alpha_ci[1]:.3f}]")
    hyp = _table("Hypotheses (inside or outside each 95% interval; - : not identified)", ("alpha", "meaning", "optimum", "wall"),
                 wrap=("meaning",))
    mark = lambda v: "-" if v is None else ("inside" if v else "outside")  # noqa: E731
    for h in a.hypotheses:
        hyp.add_row(f"{h['alpha']:+g}", h["meaning"], mark(h["inside_ci"]), mark(h["inside_wall_ci"]))
    console.print(hyp)
    e = a.extrapolation
    if e:
        console.print(f"Extrapolation: alpha from widths {e['fitted_on_widths']} predicts lambda_eff {e['predicted_lambda_eff']:{LAMBDA}} "
                      f"for width {e['target_width']} (the fit over all sizes: {e['best_lambda_eff']:{LAMBDA}}); regret {e['regret']:+.4f} in val_ce.")
    for note in a.notes:
        if not note.startswith(HELP_NOTE):
            console.print(f"[yellow]Note:[/yellow] {note}")
