"""MLflow: one parent run per study, one nested child run per trial.

Child runs are written from Optuna's record of the finished trial (its params, user
attributes and per-epoch history), in one batch per trial. So the Optuna study is the
single source of truth: logging is off the training hot path, a worker that dies
mid-trial leaves no half-written run, and MLflow can be back-filled from the study.

Secrets never reach MLflow: URLs are passed through ``redact`` before they are logged.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolambda.base.mappings import flatten
from autolambda.base.stores import redact, short_error
from autolambda.core.trials import (
    BLOCK_KEY, DIVERGED_KEY, ENDED, ERROR_KEY, EVAL_EPOCH, LAMBDA_EFF_KEY, N_PARAMS_KEY, N_REF_KEY,
    PARENT_KEY, SEED_KEY, SETTLED_KEY, TRAINER_KEY, TRIAL_PARAMS_KEY, WIDTH_KEY, count_states, epoch_history,
    run_status, rung_history, trial_state,
)
from autolambda.errors import AutolambdaError
from autolambda.tracking.provenance import git_commit, package_versions, tensorflow_threads
from autolambda.base.signals import stop_signals_deferred

def quiet_mlflow() -> None:
    """Silence MLflow's and Alembic's INFO chatter on store creation and migrations."""
    for name in ("mlflow", "alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # No usage telemetry: this tool runs on machines with no network but package registries.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    # The closing table says where to look; MLflow's own "View run at" lines would repeat it per run.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # A tracking server that is down should fail in seconds, not after minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


#: MLflow 3's UI opens an experiment by its kind: untagged, it guesses GenAI and lands on
#: an empty traces overview; tagged as model training it lands on the runs table (read
#: from the UI's source, mlflow/server/js: the "mlflow.experimentKind" tag).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def runs_page_url(base: str, experiment_id: str) -> str:
    """The MLflow UI's page of an experiment's runs table, with the UI in its model
    training mode (its side bar otherwise stays on GenAI's traces and judges)."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


class MLflowTracker:
    """Log a study to MLflow: a parent run per study and a child run per trial.

    Use as an Optuna callback (``study.optimize(..., callbacks=[tracker])``) after
    ``tracker.start(study, config)``; ``tracker.finish(study)`` closes the parent run.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///mlflow.db``, ``http://...``).
        experiment: Experiment name; created if missing.
    """

    def __init__(self, tracking_uri: str, experiment: str = "autolambda") -> None:
        quiet_mlflow()
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.parent_run_id: str | None = None
        self.experiment_id: str | None = None
        self.failed_trials: list[int] = []
        self.logged: set[int] = set()

    # -- set-up ------------------------------------------------------------------------
    def check_reachable(self) -> None:
        """Raise ``AutolambdaError`` if the tracking store cannot be reached (before training)."""
        try:
            self.experiment_id = self._experiment_id()
        except Exception as exc:
            raise AutolambdaError(
                f"MLflow tracking store {redact(self.tracking_uri)} is not reachable: {short_error(exc)}"
            ) from None

    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                self.client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return exp.experiment_id
        try:
            return self.client.create_experiment(self.experiment, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception:  # another worker created it a moment ago
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return exp.experiment_id

    def start(self, study: optuna.Study, config: dict[str, Any], *, shared: bool = False) -> str:
        """Find the study's parent run (by the id stored on the study) or create it.

        ``shared``: other machines may start on this study at the same moment (an RDB
        storage), so a newly created parent is checked against theirs.
        """
        if self.experiment_id is None:
            self.check_reachable()
        run_id = study.user_attrs.get(PARENT_KEY)
        if run_id is not None:
            try:
                run = self.client.get_run(run_id)
                if run.info.lifecycle_stage != "deleted":
                    self.parent_run_id = run_id
                    if run.info.status != "RUNNING":
                        self.client.update_run(run_id, status="RUNNING")
                    return run_id
            except Exception:
                pass  # stored id unknown to this tracking store: make a new parent
        from mlflow.entities import Param, RunTag

        run = self.client.create_run(
            self.experiment_id,
            run_name=study.study_name,
            tags={"autolambda.study": study.study_name, "autolambda.role": "study"},
        )
        run_id = run.info.run_id
        params = [Param(k, _param_value(v)) for k, v in flatten(config).items()]
        tags = [RunTag(f"version.{pkg}", ver) for pkg, ver in package_versions().items()]
        tags += [RunTag(f"tensorflow.threads.{pool}", n) for pool, n in tensorflow_threads().items()]
        commit = git_commit()
        if commit:
            tags.append(RunTag("git_commit", commit))
        self.client.log_batch(run_id, params=params, tags=tags)
        self.client.log_text(run_id, json.dumps(config, indent=2, default=str), "study_config.json")
        study.set_user_attr(PARENT_KEY, run_id)
        if shared:
            # Workers on several machines may start together and each create a parent:
            # after a pause every one re-reads the study and adopts the id written last.
            time.sleep(1.0)
            stored = optuna.load_study(study_name=study.study_name, storage=study._storage).user_attrs.get(PARENT_KEY)
            if stored and stored != run_id:
                self.client.delete_run(run_id)
                run_id = stored
        self.parent_run_id = run_id
        return run_id

    # -- per trial --------------------------------------------------------------------
    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna callback: log a finished trial as a child run. Never raises: a tracking
        outage must not cost the study its finished work (the trial is in Optuna and
        ``autolambda sync`` can back-fill it)."""
        try:
            with stop_signals_deferred():  # a stop signal mid-write left a RUNNING run without params
                self.log_trial(study, trial)
                self.logged.add(trial.number)  # with the write: else a second run for it after a stop
        except Exception as exc:
            self.failed_trials.append(trial.number)
            logging.getLogger("autolambda").warning(
                "trial %d not logged to MLflow (%s); run `autolambda sync` later.", trial.number, short_error(exc)
            )

    def log_trial(self, study: optuna.Study, trial: FrozenTrial) -> str:
        """Write ``trial`` as a child run of the study's parent run; return its id."""
        from mlflow.entities import Param, RunTag

        if self.parent_run_id is None:
            raise AutolambdaError("MLflowTracker.start() was not called.")
        state = trial_state(trial)
        start_ms = _ms(trial.datetime_start) or int(time.time() * 1000)
        end_ms = _ms(trial.datetime_complete) or int(time.time() * 1000)
        run = self.client.create_run(
            self.experiment_id,
            start_time=start_ms,
            run_name=f"trial-{trial.number:04d}",
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                "autolambda.study": study.study_name,
                "autolambda.trial_number": str(trial.number),
                "autolambda.state": state,
            },
        )
        run_id = run.info.run_id
        attrs = trial.user_attrs
        params = dict(attrs.get(TRIAL_PARAMS_KEY, {}))
        params.update(trial.params)  # what the sampler chose, as Optuna stored it
        for key in (N_PARAMS_KEY, LAMBDA_EFF_KEY, N_REF_KEY, TRAINER_KEY, SEED_KEY, BLOCK_KEY):  # seed, block: the trial's seed block
            if key in attrs and attrs[key] is not None:
                params[key] = attrs[key]
        metrics = _trial_metrics(trial, start_ms, end_ms)
        tags = [RunTag("autolambda.width", str(attrs.get(WIDTH_KEY, params.get("width", ""))))]
        if DIVERGED_KEY in attrs:
            tags.append(RunTag("autolambda.diverged_at_epoch", str(attrs[DIVERGED_KEY])))
        settled = attrs.get(SETTLED_KEY)
        if trial.state == TrialState.PRUNED and isinstance(settled, dict):  # AnswerAwarePruner's evidence
            tags.append(RunTag("autolambda.settled", f"{settled.get('as')} at epoch {settled.get('step')}: "
                                                     f"{settled.get('ratio', 0):.2f}x its block (stops above {settled.get('threshold', 0):.2f}x)"))
        if ERROR_KEY in attrs:
            tags.append(RunTag("autolambda.error", redact(str(attrs[ERROR_KEY]))[:4000]))
        self.client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, _param_value(v)) for k, v in params.items()],
            tags=tags,
        )
        self.client.set_terminated(run_id, status=run_status(state, attrs), end_time=end_ms)
        return run_id

    def logged_trials(self, study: optuna.Study) -> dict[int, list[Any]]:
        """Child runs of the study's parent run, by trial number (a list: duplicates show)."""
        if self.parent_run_id is None:
            raise AutolambdaError("MLflowTracker.start() was not called.")
        out: dict[int, list[Any]] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                number = run.data.tags.get("autolambda.trial_number")
                if number is not None:
                    out.setdefault(int(number), []).append(run)
            token = page.token
            if not token:
                return out

    def sync(self, study: optuna.Study) -> list[int]:
        """Log every finished trial that has no child run yet; return their numbers."""
        logged = self.logged_trials(study)
        done = []
        for trial in study.get_trials(deepcopy=False, states=ENDED):
            if trial.number not in logged:
                self.log_trial(study, trial)
                done.append(trial.number)
        return done

    # -- the end -----------------------------------------------------------------------
    def finish(self, study: optuna.Study, summary: dict[str, Any] | None = None, *, status: str = "FINISHED") -> None:
        """Log the best trial and ``summary`` on the parent run and close it."""
        if self.parent_run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        try:
            best = study.best_trial
        except ValueError:
            best = None
        if best is not None:
            metrics.append(Metric("best_value", float(best.value), now, len(study.trials)))
            metrics.append(Metric("best_trial_number", float(best.number), now, len(study.trials)))
            for key in ("lambda_eff", "n_params"):
                if key in best.user_attrs:
                    metrics.append(Metric(f"best_{key}", float(best.user_attrs[key]), now, len(study.trials)))
        counts = count_states(trial_state(t) for t in study.get_trials(deepcopy=False))
        for key, value in counts.items():
            if value:  # the states the study has
                metrics.append(Metric(f"n_{key}", float(value), now, len(study.trials)))
        self.client.log_batch(self.parent_run_id, metrics=metrics)
        if summary is not None:
            self.client.log_text(self.parent_run_id, json.dumps(summary, indent=2, default=str), "summary.json")
        self.client.set_terminated(self.parent_run_id, status=status)

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        """Upload every file of ``folder`` to the parent run."""
        if self.parent_run_id is not None:
            self.client.log_artifacts(self.parent_run_id, str(folder), artifact_path)


def compare_stores(study: optuna.Study, logged: dict[int, list[Any]]) -> list[str]:
    """Differences between the Optuna study and its MLflow child runs (empty: consistent).

    Every finished trial (complete, pruned, failed) must have exactly one child run with
    the same params and state, and no child run may name a trial the study lacks.
    """
    problems = []
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number, trial in sorted(trials.items()):
        if trial.state not in ENDED:
            continue
        runs = logged.get(number, [])
        if not runs:
            problems.append(f"trial {number} ({trial_state(trial)}) has no MLflow run")
            continue
        if len(runs) > 1:
            problems.append(f"trial {number} has {len(runs)} MLflow runs")
        run = runs[0]
        state = trial_state(trial)
        if run.data.tags.get("autolambda.state") != state:
            problems.append(f"trial {number}: Optuna says {state}, MLflow says {run.data.tags.get('autolambda.state')}")
        expected = run_status(state, trial.user_attrs)
        if run.info.status != expected:
            problems.append(f"trial {number}: MLflow run status {run.info.status}, expected {expected}")
        for key, value in trial.params.items():
            if run.data.params.get(key) != _param_value(value):
                problems.append(f"trial {number}: param {key} is {value!r} in Optuna, {run.data.params.get(key)!r} in MLflow")
    for number in sorted(set(logged) - set(trials)):
        problems.append(f"MLflow run for trial {number}, which the study does not have")
    return problems


def _trial_metrics(trial: FrozenTrial, start_ms: int, end_ms: int) -> list[Any]:
    """A trial's scalar attributes and objective at step 0, and its per-epoch history (a
    transfer trial: its per-rung series), each step stamped inside the trial's time span."""
    from mlflow.entities import Metric

    attrs = trial.user_attrs
    metrics = []
    for key in ("n_params", "lambda_eff", "epochs_run", "train_seconds"):
        if isinstance(attrs.get(key), (int, float)):
            metrics.append(Metric(key, float(attrs[key]), end_ms, 0))
    if trial.value is not None:
        metrics.append(Metric("objective", float(trial.value), end_ms, 0))
    elif trial.values:
        for i, v in enumerate(trial.values):
            metrics.append(Metric(f"objective_{i}", float(v), end_ms, 0))
    history = epoch_history(attrs) or rung_history(attrs)
    eval_epochs = history.pop(EVAL_EPOCH, None)
    n_epochs = max((len(v) for v in history.values()), default=0)
    span = max(end_ms - start_ms, n_epochs)
    for key, values in history.items():
        # Validation metrics may be measured every few epochs only: their own steps.
        sparse = key.startswith("val_") and eval_epochs is not None and len(eval_epochs) == len(values)
        for step, value in zip(eval_epochs if sparse else range(len(values)), values):
            stamp = start_ms + (span * (step + 1)) // max(n_epochs, 1)
            metrics.append(Metric(key, float(value), stamp, int(step)))
    return metrics


def _param_value(value: Any) -> str:
    if isinstance(value, str):
        return redact(value) if "://" in value else value
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    return str(value)


def _ms(dt: Any) -> int | None:
    return int(dt.timestamp() * 1000) if dt is not None else None


def log_analysis(study: optuna.Study, tracking_uri: str, out: Path, analysis: Any, warnings: list[str]) -> str | None:
    """Log an analysis (``autolambda.analysis.summary.Analysis``) and its report folder
    ``out`` to the study's parent run; the run id, or None with a line in ``warnings``."""
    run_id = study.user_attrs.get(PARENT_KEY)
    if run_id is None:
        warnings.append("the study has no MLflow parent run (tuned with --no-mlflow?): report not logged.")
        return None
    quiet_mlflow()
    try:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        client.get_run(run_id)
        client.log_artifacts(run_id, str(out), "analysis")

        now = int(time.time() * 1000)
        metrics = [Metric("alpha_identified", float(analysis.identified), now, 0),
                   Metric("wall_alpha_identified", float(analysis.wall_identified), now, 0)]
        if analysis.noise_sd is not None:
            metrics.append(Metric("noise_sd", analysis.noise_sd, now, 0))
        if analysis.informative_share is not None:
            metrics.append(Metric("informative_share", analysis.informative_share, now, 0))
        if analysis.alpha_hat is not None:
            metrics += [Metric("alpha_hat", analysis.alpha_hat, now, 0), Metric("alpha_ci_low", analysis.alpha_ci[0], now, 0),
                        Metric("alpha_ci_high", analysis.alpha_ci[1], now, 0)]
        if analysis.wall_alpha_hat is not None:
            metrics += [Metric("wall_alpha_hat", analysis.wall_alpha_hat, now, 0),
                        Metric("wall_alpha_ci_low", analysis.wall_alpha_ci[0], now, 0),
                        Metric("wall_alpha_ci_high", analysis.wall_alpha_ci[1], now, 0)]
        for r in analysis.recommendations:
            metrics.append(Metric(f"recommended_lambda_eff_N{r['n_params']}", r["lambda_opt"], now, 0))
        client.log_batch(run_id, metrics=metrics)
        client.set_tag(run_id, "mlflow.note.content", analysis.verdict)
    except Exception as exc:
        warnings.append(f"report not logged to MLflow at {redact(tracking_uri)}: {short_error(exc)}")
        return None
    return run_id
