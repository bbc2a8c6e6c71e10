"""Create or resume a study from a ``StudyConfig`` and run it to its trial budget.

``--trials N`` means the study holds N finished (complete or pruned) trials at the end:
running the same command again tops an interrupted study up, and never duplicates work.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolambda.run.config import StudyConfig, redact, short_error
from autolambda.errors import AutolambdaError, ConfigError

CONFIG_KEY = "autolambda_config"
RUN_CONFIG_KEY = "autolambda_run_config"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Fingerprint keys that studies made by earlier versions lack, with the behaviour they had.
LEGACY_SETTINGS = {"pool_val": False, "lr_schedule": "constant"}
#: The same for a transfer study made before each rung had its own seed.
LEGACY_TRANSFER_SETTINGS = {"rung_seeds": "shared"}

log = logging.getLogger("autolambda")


def make_pruner(name: str, epochs: int, *, stratify: bool = True) -> optuna.pruners.BasePruner:
    """The pruner called ``name``, scaled to ``epochs`` reported steps.

    With ``stratify`` (the default) it is wrapped in ``WidthStratifiedPruner``, so a trial
    is compared only with trials of its own width.
    """
    base = _base_pruner(name, epochs)
    if stratify and name != "none":
        from autolambda.search.pruners import WidthStratifiedPruner

        return WidthStratifiedPruner(base)
    return base


def _base_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        # Per width (stratified): 5 complete trials first — one more than the analysis needs
        # to locate a width's optimum — then a trial worse than the median at a step from a
        # quarter of the budget on stops. Replayed on a 100-trial unpruned digits study
        # (scripts/pruning_replay.py): 33 % of epochs saved (a third of the budget: 27 %;
        # 3 start-up trials: 41 %, but a width can end with 3 complete trials, too few).
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 4))
    if name == "successive-halving":
        # One rung at a third of the budget: earlier rungs cut good-lambda trials that
        # only pull ahead once the unregularised ones overfit.
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 3))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 9), max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}.")


def make_sampler(name: str, seed: int, *, balance: bool = True) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``, seeded.

    With ``balance`` (the default) it is wrapped in ``WidthBalancedSampler``: widths take
    turns, and the sampler picks the other parameters from the trials of the same width.
    ``design`` is TPE so wrapped, then ``DesignSampler`` on top (see ``autolambda.search.design``).
    """
    base = _base_sampler("tpe" if name == "design" else name, seed, per_width=balance)
    if balance:
        from autolambda.search.samplers import WidthBalancedSampler

        base = WidthBalancedSampler(base, seed=seed)
    if name == "design":
        from autolambda.search.design import DesignSampler

        return DesignSampler(base, seed=seed)
    return base


def _base_sampler(name: str, seed: int, *, per_width: bool) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # Per width (balanced), 5 random start-up trials each; over all widths, 10.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5 if per_width else 10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}.")


def make_storage(url: str, *, heartbeat_seconds: int | None = None, on_stale: Any = None) -> Any:
    """An Optuna storage for ``url`` (``journal:FILE`` is a journal file storage).

    For an RDB URL (PostgreSQL, MySQL) with ``heartbeat_seconds``, running trials send a
    heartbeat; one whose worker died is marked FAIL after two missed intervals, retried
    (``RetryHeartbeatStaleTrialCallback``), and passed to ``on_stale`` (MLflow logging).
    SQLite gets no heartbeat: it is for one process.
    """
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
    if heartbeat_seconds and not url.startswith("sqlite"):
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_seconds,
            grace_period=2 * heartbeat_seconds,
            heartbeat_stale_trial_callback=StaleTrialHandler(on_stale),
        )
    return url


class StaleTrialHandler:
    """Retry a trial whose worker died (Optuna's callback), then log it (``on_stale``)."""

    def __init__(self, on_stale: Any = None) -> None:
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
        self.on_stale = on_stale

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.retry(study, trial)
        if self.on_stale is not None:
            self.on_stale(study, trial)


def check_study(config: StudyConfig) -> bool:
    """Whether the study exists; raise if it exists with other settings. Writes nothing.

    Raises:
        ConfigError: the name exists with another configuration or direction.
        AutolambdaError: the storage cannot be reached.
    """
    url = config.storage
    # A storage file that does not exist holds no study; opening it would create it.
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix) and not Path(url[len(prefix):]).exists():
            return False
    summaries = _retry(lambda: optuna.get_all_study_summaries(make_storage(url)), url)
    existing = {s.study_name: s for s in summaries}
    if config.name not in existing:
        return False
    summary = existing[config.name]
    if summary.directions != [optuna.study.StudyDirection.MINIMIZE]:
        raise ConfigError(
            f"study {config.name!r} exists with direction(s) {[d.name for d in summary.directions]}; "
            "autolambda minimises the validation loss: pick another --study-name."
        )
    stored = summary.user_attrs.get(CONFIG_KEY)
    if stored is not None:
        # Settings added since a study was made: what the older version did.
        legacy = LEGACY_SETTINGS | (LEGACY_TRANSFER_SETTINGS if stored.get("mode") == "transfer" else {})
        stored = legacy | {"data_seed": stored.get("seed")} | stored
        diff = _diff(stored, config.fingerprint())
        if diff:
            raise ConfigError(
                f"study {config.name!r} exists with a different configuration ({diff}); "
                "use --study-name to start a new study."
            )
    return True


def open_study(config: StudyConfig, *, on_stale: Any = None, sampler_seed: int | None = None) -> optuna.Study:
    """Create the study, or load it. Call ``check_study`` first: it refuses a study that
    exists with other settings, before anything is written."""
    storage = _retry(lambda: make_storage(config.storage, heartbeat_seconds=config.heartbeat_seconds, on_stale=on_stale), config.storage)
    study = optuna.create_study(
        study_name=config.name,
        storage=storage,
        sampler=make_sampler(config.sampler, config.seed if sampler_seed is None else sampler_seed, balance=config.balance_widths),
        # A transfer trial reports once per rung of its ladder, a search trial once per epoch.
        pruner=make_pruner(config.pruner, _n_steps(config), stratify=config.stratify_pruner),
        direction="minimize",
        load_if_exists=True,
    )
    if CONFIG_KEY not in study.user_attrs:
        study.set_user_attr(CONFIG_KEY, config.fingerprint())
    # The full effective configuration of the latest run (budget, stores), secrets redacted.
    study.set_user_attr(RUN_CONFIG_KEY, config.to_dict() | {"storage": redact(config.storage), "tracking_uri": redact(config.tracking_uri)})
    return study


def _retry(fn: Callable[[], Any], url: str, attempts: int = 4) -> Any:
    """Call ``fn``; retry briefly. Workers starting together on a fresh database race to
    create Optuna's tables (a unique violation for all but one): a moment later it works."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts - 1:
                raise AutolambdaError(f"Optuna storage {redact(url)} is not reachable: {short_error(exc)}") from None
            time.sleep(0.5 * (attempt + 1))


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials per autolambda state (complete, pruned, diverged, failed, running)."""
    from autolambda.tracking.tracker import trial_state

    out = {"complete": 0, "pruned": 0, "diverged": 0, "failed": 0, "running": 0}
    for t in trials:
        out[trial_state(t)] += 1
    return out


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
        out: dict[str, Any] = {"study_name": self.study.study_name, "n_trials": len(trials)}
        out["states"] = count_states(trials)
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        if done:
            best = min(done, key=lambda t: t.value)
            out["best"] = {
                "number": best.number,
                "value": best.value,
                "params": best.params,
                "n_params": best.user_attrs.get("n_params"),
                "lambda_eff": best.user_attrs.get("lambda_eff"),
            }
        per_width: dict[int, dict[str, Any]] = {}
        from autolambda.analysis.summary import records_from_trials

        for r in records_from_trials(trials):  # a transfer trial: one record per rung
            if r.width is None:
                continue
            row = per_width.setdefault(r.width, {"width": r.width, "n_params": r.n_params, "complete": 0, "pruned": 0,
                                                 "diverged": 0, "failed": 0, "best_value": None, "best_lambda_eff": None})
            row["n_params"] = row["n_params"] or r.n_params
            if r.state in row:
                row[r.state] += 1
            if r.state == "complete" and r.value is not None and (row["best_value"] is None or r.value < row["best_value"]):
                row["best_value"] = r.value
                row["best_lambda_eff"] = r.lambda_eff
        out["per_width"] = [per_width[w] for w in sorted(per_width)]
        return out


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
    objective = config.objective()
    objective.load_data()  # a bad data set fails here, before a study exists
    check_study(config)  # a clashing study too, before MLflow is touched
    tracker = None
    if track:
        from autolambda.tracking.tracker import MLflowTracker

        tracker = MLflowTracker(config.tracking_uri, config.experiment)
        tracker.check_reachable()
    study = open_study(config, on_stale=tracker, sampler_seed=sampler_seed)
    n_ref = objective.resolve_n_ref(study)
    if tracker is not None:
        shared = not config.storage.startswith(("sqlite", "journal:"))
        tracker.start(study, config.to_dict() | {"n_ref": n_ref, "storage": redact(config.storage)}, shared=shared)
    fail_orphaned_trials(study, tracker)
    done = _n_finished(study)
    if on_start is not None:
        on_start(study, done)
    # Trials stop when the study (shared by all workers) holds the requested total.
    budget = TrialBudget(config.trials)
    failures = FailureStreak(config.max_failures)
    from autolambda.search.design import Replicator

    extra: list[Any] = []
    precise = None
    if config.precision is not None:  # transfer mode too: its rungs enter the same joint fit
        precise = PrecisionStop(config.precision, on_answer=on_answer)
        precise.check(study)  # a resumed study may hold the answer already
        extra.append(precise)  # before the replicator: no repeat is queued once the answer holds
    if config.replicate_every and config.mode == "search":
        extra.append(Replicator(config.replicate_every, total=config.trials,
                                stop=(lambda: precise.reached) if precise is not None else None))
    all_callbacks = ([tracker] if tracker else []) + extra + list(callbacks or []) + [failures, budget]
    before = len(study.trials)
    status = "FINISHED"
    deadline = time.monotonic() + config.timeout if config.timeout else None
    try:
        while not failures.tripped and not (precise is not None and precise.reached):
            finished, running = budget.counts(study)
            left = None if deadline is None else deadline - time.monotonic()
            if finished >= config.trials or (left is not None and left <= 0):
                break
            if finished + running >= config.trials:
                # Other workers' trials may reach the total; if one fails, top up after.
                time.sleep(0.5)
                optuna.storages.fail_stale_trials(study)  # dead workers (RDB heartbeat)
                fail_orphaned_trials(study, tracker)  # dead processes on this machine
                continue
            study.optimize(
                objective,
                n_trials=None,
                timeout=left,
                callbacks=all_callbacks,
                catch=(Exception,),
                gc_after_trial=False,
            )
    except KeyboardInterrupt:
        # Optuna has marked the running trial FAIL; give it its (KILLED) MLflow run, and
        # leave the parent run resumable: the same command continues the study.
        status = "KILLED"
        if tracker is not None:
            from autolambda.search.objective import worker_id

            me = worker_id()
            for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))[-3:]:
                # Only this process's own trial: the other workers of a shared study stop
                # at the same moment, and each logs its own (else a trial gets two runs).
                mine = trial.user_attrs.get("worker") in (None, me)
                if mine and trial.number >= before and trial.number not in tracker.logged:
                    tracker(study, trial)
        raise
    finally:
        result = TuneResult(study, config, len(study.trials) - before)
        if tracker is not None:
            result.parent_run_id = tracker.parent_run_id
            result.unlogged_trials = list(tracker.failed_trials)
        if tracker is not None and close_parent:
            try:
                _log_summary_plots(tracker, study)
            except Exception as exc:  # a plot must not keep the parent run open
                log.warning("summary plots not logged to MLflow: %s", short_error(exc))
            try:
                tracker.finish(study, result.summary(), status=status)
            except Exception as exc:
                log.warning("could not close the MLflow parent run: %s", short_error(exc))
    if failures.tripped:
        raise AutolambdaError(
            f"stopped: {failures.streak} trials failed in a row (max_failures={config.max_failures}); "
            f"last error: {failures.last_error or 'unknown'}"
        )
    return result


class PrecisionStop:
    """Optuna callback: stop the study once alpha's 95 % interval has half-width <= ``precision``.

    The interval is ``Analysis.answer()``'s: the optimum's alpha when identified, else the
    wall's (``answer`` says which). The full analysis (profile intervals, a few seconds)
    runs after every ``every`` finished trials; the study stops once two checks in a row
    meet the target (one narrow interval can be luck: a study stopped at the first would
    quote the intervals that happened to come out narrow). The decision is
    stored on the study (user attribute ``precision_reached``), so every worker of a
    shared study stops, and a resumed run does not start again.
    """

    KEY = "precision_reached"

    def __init__(self, precision: float, *, every: int = 5, on_answer: Callable[[str], None] | None = None) -> None:
        self.precision = precision
        self.every = every
        self.on_answer = on_answer
        self.reached = False
        self.answer = ""
        self.half_width: float | None = None
        self._checked_at = -1
        self._streak = 0

    def check(self, study: optuna.Study) -> bool:
        """Analyse the study now; True (and ``reached``) once the target holds on two checks in a row."""
        from autolambda.analysis.summary import analyze_records, records_from_trials

        stored = study.user_attrs.get(self.KEY)
        if stored is not None and float(stored) <= self.precision:
            self.reached = True  # this target (or a tighter one) was met before, here or by another worker
            return True
        trials = study.get_trials(deepcopy=False)
        self._checked_at = sum(1 for t in trials if t.state in FINISHED)
        try:
            analysis = analyze_records(records_from_trials(trials))
        except AutolambdaError:
            return False
        except Exception as exc:  # an analysis that fails must not stop the tuning
            log.warning("precision check failed: %s", short_error(exc))
            return False
        answer = analysis.answer()
        which, ci = {"optimum": "alpha", "wall": "wall alpha"}.get(answer["which"]), answer["ci"]
        if ci is None:
            self.answer, self.half_width, self._streak = "alpha not identified yet", None, 0
            if self.on_answer:
                self.on_answer(self.answer)
            return False
        self.half_width = (ci[1] - ci[0]) / 2
        self._streak = self._streak + 1 if self.half_width <= self.precision else 0
        self.answer = f"{which} [{ci[0]:+.2f}, {ci[1]:+.2f}] (half-width {self.half_width:.2f}, target {self.precision:g})"
        if self.on_answer:
            self.on_answer(self.answer)
        self.reached = self._streak >= 2
        if self.reached:
            study.set_user_attr(self.KEY, self.precision)
        return self.reached

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.reached or study.user_attrs.get(self.KEY) is not None and float(study.user_attrs[self.KEY]) <= self.precision:
            self.reached = True
            study.stop()
            return
        finished = sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED))
        if finished - self._checked_at >= self.every and self.check(study):
            study.stop()


class TrialBudget:
    """Optuna callback: stop once finished trials plus those still running reach ``total``.

    Counting running trials (of every worker) is what makes several workers end with
    exactly ``total``: Optuna's MaxTrialsCallback counts finished ones only, so each
    worker would start one more while the others' last trials run.
    """

    def __init__(self, total: int) -> None:
        self.total = total

    def counts(self, study: optuna.Study) -> tuple[int, int]:
        trials = study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,))
        finished = sum(1 for t in trials if t.state in FINISHED)
        return finished, len(trials) - finished

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        finished, running = self.counts(study)
        if finished + running >= self.total:
            study.stop()


def fail_orphaned_trials(study: optuna.Study, tracker: Any = None) -> list[int]:
    """Mark FAIL (and retry) the RUNNING trials of processes on this machine that are gone.

    A worker killed outright (SIGKILL, a crash) leaves its trial RUNNING; storages
    without heartbeats (SQLite, journal) never fail it. Each trial records
    ``host:pid`` of its process (user attribute ``worker``), so a later run on the same
    machine can tell. Trials of other machines are left to the RDB heartbeat.
    """
    failed = []
    for trial in orphaned_trials(study):
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "orphaned", True)
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except Exception:  # another process got there first
            continue
        failed.append(trial.number)
        # Retried and logged as a trial failed by the heartbeat would be.
        StaleTrialHandler(tracker)(study, study._storage.get_trial(trial._trial_id))
    return failed


def orphaned_trials(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials whose process (``host:pid`` in user attribute ``worker``) ran on
    this machine and is gone: nothing will ever finish them."""
    import socket

    host = socket.gethostname()
    out = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            out.append(trial)
    return out


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FailureStreak:
    """Optuna callback: stop the study when ``limit`` trials in a row have failed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.last_error: str | None = None
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.streak += 1
            self.last_error = trial.user_attrs.get("error")
            if self.streak >= self.limit:
                self.tripped = True
                study.stop()
        else:
            self.streak = 0


def _log_summary_plots(tracker: Any, study: optuna.Study) -> None:
    """Loss against lambda_eff and best lambda_eff against N, on the parent run (cheap:
    the full report with Optuna's plots is `autolambda analyze`)."""
    import tempfile

    from autolambda.analysis.summary import analyze_records, analyze_transfer, is_transfer_trial, records_from_trials
    from autolambda.analysis.report import summary_plots

    trials = study.get_trials(deepcopy=False)
    records = records_from_trials(trials)
    try:
        if any(is_transfer_trial(t) for t in trials):  # adds the best pairs' rungs
            analysis = analyze_transfer(trials, records=records, intervals=False)
        else:
            analysis = analyze_records(records, intervals=False)  # the per-size view; intervals are `analyze`'s
    except AutolambdaError:
        return  # nothing complete yet: no plot to draw
    with tempfile.TemporaryDirectory() as folder:
        summary_plots(analysis, records, folder)
        tracker.log_artifacts(folder, "summary")


def _n_steps(config: StudyConfig) -> int:
    if config.mode == "transfer":
        return len(config.ladder or config.space.widths)
    return config.epochs


def _n_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _diff(stored: dict[str, Any], current: dict[str, Any]) -> str:
    a = _flat(stored)
    b = _flat(current)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in keys[:4])


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.loads(json.dumps(v))
    return out
