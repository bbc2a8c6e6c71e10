"""Run a study to its trial budget: one lifecycle, whoever trains.

``StudyRun`` is the set-up and teardown every run shares: the data and the stored
settings checked before anything is written, the study opened (or resumed), N_ref
fixed, the MLflow parent run found or created, and at the end the summary plots and the
parent run closed, with a failure in either logged, never hiding the run's own error.
``run_study`` trains in this process inside it; ``autolambda.run.workers.run_workers``
starts K worker processes inside it.

``--trials N`` means the study holds N finished (complete or pruned) trials at the end:
running the same command again tops an interrupted study up, and never duplicates work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolambda.analysis.records import records_from_trials
from autolambda.analysis.settings import AnalysisConfig
from autolambda.analysis.summary import analyze_trials
from autolambda.core.trials import (
    CONFIG_KEY, EPOCHS_RUN_KEY, FINISHED, LAMBDA_EFF_KEY, N_PARAMS_KEY, STATES, WORKER_KEY, count_states,
    is_settled, trial_state,
)
from autolambda.errors import AutolambdaError
from autolambda.run.config import StudyConfig
from autolambda.run.stops import FailureStreak, PrecisionStop, TrialBudget
from autolambda.base.stores import redact, short_error
from autolambda.run.study import check_study, fail_orphaned_trials, open_study
from autolambda.search.design import Replicator
from autolambda.search.objective import worker_id
from autolambda.tracking.server import LocalTrackingServer
from autolambda.tracking.tracker import MLflowTracker

log = logging.getLogger("autolambda")


@dataclass
class TuneResult:
    """What ``run_study`` did: the study, and what to print at the end."""

    study: optuna.Study
    config: StudyConfig
    new_trials: int
    parent_run_id: str | None = None
    unlogged_trials: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Best trial, trials per state, best lambda_eff per width (JSON-ready)."""
        trials = self.study.get_trials(deepcopy=False)
        out: dict[str, Any] = {"study_name": self.study.study_name, "trials_in_study": len(trials)}
        out["n_trials"] = out["trials_in_study"]  # the key's name in earlier versions (summary.json)
        out["states"] = count_states(trial_state(t) for t in trials)
        # Pruned trials stopped as settled beyond the wall (AnswerAwarePruner): the analysis counts them as hurt.
        out["settled"] = sum(1 for t in trials if t.state == TrialState.PRUNED and is_settled(t.user_attrs))
        out["epochs"] = sum(int(t.user_attrs.get(EPOCHS_RUN_KEY) or 0) for t in trials)  # trained, every trial's
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        if done:
            best = min(done, key=lambda t: t.value)
            out["best"] = {
                "number": best.number,
                "value": best.value,
                "params": best.params,
                "n_params": best.user_attrs.get(N_PARAMS_KEY),
                "lambda_eff": best.user_attrs.get(LAMBDA_EFF_KEY),
            }
        per_width: dict[int, dict[str, Any]] = {}
        for r in records_from_trials(trials):  # a transfer trial: one record per rung
            if r.width is None:
                continue
            row = per_width.setdefault(r.width, {"width": r.width, "n_params": r.n_params}
                                       | {s: 0 for s in STATES if s != "running"} | {"best_value": None, "best_lambda_eff": None})
            row["n_params"] = row["n_params"] or r.n_params
            if r.state in row:
                row[r.state] += 1
            if r.state == "complete" and r.value is not None and (row["best_value"] is None or r.value < row["best_value"]):
                row["best_value"] = r.value
                row["best_lambda_eff"] = r.lambda_eff
        out["per_width"] = [per_width[w] for w in sorted(per_width)]
        return out


class StudyRun:
    """The lifecycle every run shares, as a ``with`` block around the training.

    On entry: the data load (a bad data set fails before a study exists), the study is
    checked against its stored settings (before MLflow is touched), the MLflow store is
    reached, the study opened or resumed, N_ref fixed and the parent run found or
    created. On exit: ``result`` is filled in and, with ``close_parent``, the summary
    plots are logged and the parent run closed (KILLED after Ctrl-C or a stop signal:
    the same command resumes it). A failure while closing is logged as a warning; it never
    replaces the error that ended the block.

    Args:
        config: The study.
        track: Log to MLflow.
        serve_tracking: Put a local ``mlflow server`` in front of a SQLite tracking file
            (several processes will log to it: SQLite takes one writer well), started once
            the study is checked and stopped at the end; ``tracking_uri`` is then its URL.
        sampler_seed: A worker's own sampler seed.
        close_parent: False in a worker: the coordinating process closes the parent run.
    """

    def __init__(self, config: StudyConfig, *, track: bool = True, serve_tracking: bool = False,
                 sampler_seed: int | None = None, close_parent: bool = True) -> None:
        self.config = config
        self.track = track
        self.serve_tracking = serve_tracking and track and config.tracking_uri.startswith("sqlite")
        self.tracking_uri = config.tracking_uri
        self.server: Any = None
        self.sampler_seed = sampler_seed
        self.close_parent = close_parent
        self.objective: Any = None
        self.tracker: Any = None
        self.study: optuna.Study | None = None
        self.before = 0
        self.started: set[int] = set()  # trials this process's objective was called for
        self.result: TuneResult | None = None

    def run_trial(self, trial: optuna.Trial) -> Any:
        """The objective, remembering that this process started ``trial``."""
        self.started.add(trial.number)
        return self.objective(trial)

    def __enter__(self) -> "StudyRun":
        config = self.config
        self.objective = config.objective()
        self.objective.load_data()
        check_study(config)
        try:  # the server stops whatever stops the set-up (Ctrl-C while it starts, too)
            if self.serve_tracking:
                self.server = LocalTrackingServer(config.tracking_uri, artifacts=Path("mlartifacts"))
                self.server.__enter__()
                self.tracking_uri = self.server.uri
            self._open()
        except BaseException:
            self._stop_server()
            raise
        return self

    def _open(self) -> None:
        config = self.config
        if self.track:
            self.tracker = MLflowTracker(self.tracking_uri, config.experiment)
            self.tracker.check_reachable()
        self.study = open_study(config, on_stale=self.tracker, sampler_seed=self.sampler_seed)
        n_ref = self.objective.resolve_n_ref(self.study)
        if self.tracker is not None:
            # Other machines may start on an RDB study at the same moment.
            shared = not config.storage.startswith(("sqlite", "journal:"))
            self.tracker.start(self.study, config.to_dict() | {"n_ref": n_ref, "storage": redact(config.storage)}, shared=shared)
        fail_orphaned_trials(self.study, self.tracker)  # left RUNNING by a process that is gone
        self.before = len(self.study.trials)

    def finished(self) -> int:
        """The study's finished (complete or pruned) trials, every worker's."""
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        status = "KILLED" if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) else "FINISHED"
        try:
            result = TuneResult(self.study, self.config, len(self.study.trials) - self.before)
            if self.tracker is not None:
                result.parent_run_id = self.tracker.parent_run_id
                result.unlogged_trials = list(self.tracker.failed_trials)
                if self.close_parent:
                    self._close(result, status)
            self.result = result
        finally:  # the local server stops even if closing the run fails or is interrupted
            self._stop_server()

    def _stop_server(self) -> None:
        if self.server is not None:
            self.server.__exit__()
            self.server = None

    def _close(self, result: TuneResult, status: str) -> None:
        try:
            _log_summary_plots(self.tracker, self.study)
        except Exception as exc:  # a plot must not keep the parent run open
            log.warning("summary plots not logged to MLflow: %s", short_error(exc))
        try:
            self.tracker.finish(self.study, result.summary(), status=status)
        except Exception as exc:
            log.warning("could not close the MLflow parent run: %s", short_error(exc))


def run_study(
    config: StudyConfig,
    *,
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
    track: bool = True,
    on_start: Callable[[optuna.Study, int], None] | None = None,
    sampler_seed: int | None = None,
    close_parent: bool = True,
    on_answer: Callable[[str], None] | None = None,
) -> TuneResult:
    """Run (or resume) the study of ``config`` until it holds ``config.trials`` finished trials.

    Checks both stores before training anything; bad input raises before anything is
    written. Extra ``callbacks`` (a progress bar, say) run after each trial. Several
    processes may run this on one study (shared storage): together they stop at the total.
    ``sampler_seed`` gives a worker its own sampler seed; ``close_parent=False`` leaves the
    MLflow parent run open for the process that coordinates the workers. With
    ``config.precision`` the study also stops once alpha's interval is that narrow
    (``PrecisionStop``); ``on_answer`` gets the current interval as text.
    """
    with StudyRun(config, track=track, sampler_seed=sampler_seed, close_parent=close_parent) as run:
        if on_start is not None:
            on_start(run.study, run.finished())
        failures = FailureStreak(config.max_failures)
        precise, extra = _stop_callbacks(config, run.study, on_answer)
        all_callbacks = ([run.tracker] if run.tracker else []) + extra + list(callbacks or []) + [failures]
        try:
            _optimize(run, all_callbacks, failures, precise)
        except KeyboardInterrupt:
            _log_interrupted_trials(run)
            raise
    if failures.tripped:
        raise AutolambdaError(
            f"stopped: {failures.streak} trials failed in a row (max_failures={config.max_failures}); "
            f"last error: {failures.last_error or 'unknown'}"
        )
    return run.result


def _stop_callbacks(config: StudyConfig, study: optuna.Study, on_answer: Callable[[str], None] | None) -> tuple[PrecisionStop | None, list[Any]]:
    """The precision stop (or None) and the callbacks that run before the user's."""
    extra: list[Any] = []
    precise = None
    if config.precision is not None:  # transfer mode too: its rungs enter the same joint fit
        precise = PrecisionStop(config.precision, on_answer=on_answer)
        precise.check(study)  # a resumed study may hold the answer already
        extra.append(precise)  # before the replicator: no repeat is queued once the answer holds
    if config.replicate_every and config.mode == "search":
        extra.append(Replicator(config.replicate_every, total=config.trials,
                                stop=(lambda: precise.reached) if precise is not None else None))
    return precise, extra


def _optimize(run: StudyRun, callbacks: list[Any], failures: FailureStreak, precise: PrecisionStop | None) -> None:
    """Optimize until the study (shared by all workers) holds ``config.trials`` finished
    trials, the time is up, failures trip or the precision target holds."""
    config, study = run.config, run.study
    budget = TrialBudget(config.trials)
    deadline = time.monotonic() + config.timeout if config.timeout else None
    while not failures.tripped and not (precise is not None and precise.reached):
        finished, running = budget.counts(study)
        left = None if deadline is None else deadline - time.monotonic()
        if finished >= config.trials or (left is not None and left <= 0):
            break
        if finished + running >= config.trials:
            # Other workers' trials may reach the total; if one fails, top up after.
            time.sleep(0.5)
            optuna.storages.fail_stale_trials(study)  # dead workers (RDB heartbeat)
            fail_orphaned_trials(study, run.tracker)  # dead processes on this machine
            continue
        study.optimize(run.run_trial, n_trials=None, timeout=left, callbacks=callbacks + [budget],
                       catch=(Exception,), gc_after_trial=False)


def _log_interrupted_trials(run: StudyRun) -> None:
    """After Ctrl-C Optuna has marked the running trial FAIL: give it its (KILLED) MLflow
    run. Only this process's own trial: the other workers of a shared study stop at the
    same moment, and each logs its own (else a trial gets two runs)."""
    if run.tracker is None:
        return
    me = worker_id()
    for trial in run.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))[-3:]:
        owner = trial.user_attrs.get(WORKER_KEY)
        # A stop before the objective wrote `worker` leaves it unset: the trial is ours
        # only if our objective started it (else both workers logged it: two runs).
        mine = owner == me or (owner is None and trial.number in run.started)
        if mine and trial.number >= run.before and trial.number not in run.tracker.logged:
            run.tracker(run.study, trial)


def _log_summary_plots(tracker: Any, study: optuna.Study) -> None:
    """Loss against lambda_eff and best lambda_eff against N, on the parent run (cheap:
    the full report with Optuna's plots is `autolambda analyze`)."""
    import tempfile

    from autolambda.analysis.plots import summary_plots

    trials = study.get_trials(deepcopy=False)
    try:  # the per-size view (and a transfer study's best pairs); intervals are `analyze`'s
        records, analysis = analyze_trials(trials, AnalysisConfig.for_study(study.user_attrs.get(CONFIG_KEY)), intervals=False)
    except AutolambdaError:
        return  # nothing complete yet: no plot to draw
    with tempfile.TemporaryDirectory() as folder:
        summary_plots(analysis, records, folder)
        tracker.log_artifacts(folder, "summary")
