"""``autolambda analyze``: load a study, analyze it, write the report, log it to MLflow."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from autolambda.analysis.records import records_from_trials
from autolambda.analysis.summary import Analysis, analyze_records, analyze_transfer
from autolambda.run.stores import absolute_sqlite, check_storage_url, check_tracking_uri, redact, short_error
from autolambda.errors import AutolambdaError
from autolambda.run.study import make_storage
from autolambda.tracking.tracker import PARENT_KEY, quiet_mlflow

log = logging.getLogger("autolambda")


@dataclass
class AnalysisResult:
    """An analysis with where its files went."""

    study_name: str
    analysis: Analysis
    out: Path
    files: list[Path]
    logged_run_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)  # the study and the recipe the answer holds for

    @property
    def penalty(self) -> str | None:
        """The study's penalty kind: which Keras line uses its lambda."""
        return self.context.get("penalty")

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object."""
        data = self.analysis.to_dict()
        data["study_name"] = self.study_name
        data["report"] = str(self.out / "report.md")
        data["mlflow_run_id"] = self.logged_run_id
        return data


def load_study(study_name: str | None, storage: str) -> optuna.Study:
    """Load ``study_name`` (or the storage's only study) with a clear error when missing."""
    check_storage_url(storage)
    storage = absolute_sqlite(storage)
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).exists():
        raise AutolambdaError(f"no Optuna storage at {storage[len('sqlite:///'):]}: run `autolambda tune` first or pass --storage.")
    if storage.startswith("journal:") and not Path(storage[len("journal:"):]).exists():
        raise AutolambdaError(f"no Optuna journal at {storage[len('journal:'):]}: run `autolambda tune` first or pass --storage.")
    backend = make_storage(storage)
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(backend)]
    except Exception as exc:
        raise AutolambdaError(f"Optuna storage {redact(storage)} is not reachable: {short_error(exc)}") from None
    if study_name is None:
        if len(names) == 1:
            study_name = names[0]
        elif "digits-l2" in names:
            study_name = "digits-l2"
        else:
            raise AutolambdaError(f"{redact(storage)} holds {len(names)} studies ({', '.join(names) or 'none'}); name one with --study-name.")
    if study_name not in names:
        raise AutolambdaError(f"no study {study_name!r} in {redact(storage)} (studies there: {', '.join(names) or 'none'}).")
    return optuna.load_study(study_name=study_name, storage=backend)


def run_analysis(
    *,
    study_name: str | None = None,
    storage: str = "sqlite:///autolambda.db",
    tracking_uri: str | None = "sqlite:///mlflow.db",
    out: str | Path | None = None,
    tolerance: float = 0.02,
    min_trials: int = 4,
    wall_cost: float = 0.25,
    n_params: tuple[int, ...] = (),
) -> AnalysisResult:
    """Analyze a study and write its report; log the files to the study's MLflow parent run.
    ``n_params``: parameter counts to recommend lambda_eff for (default: the study's sizes)."""
    from autolambda.analysis.report import write_report

    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)
    study = load_study(study_name, storage)
    config = study.user_attrs.get("autolambda_config", {})
    trials = study.get_trials(deepcopy=False)
    records = records_from_trials(trials, score_window=config.get("score_window", 5))
    out = Path(out) if out is not None else Path("autolambda-report") / study.study_name
    options = {"tolerance": tolerance, "min_trials": min_trials, "wall_cost": wall_cost, "n_params": n_params}
    if config.get("mode") == "transfer":
        analysis = analyze_transfer(trials, records=records, **options)
    else:
        analysis = analyze_records(records, **options)
    n_ref = study.user_attrs.get("n_ref")
    context = {"study": study.study_name, "trials": len(trials), "n_ref": round(n_ref) if n_ref else None}
    if analysis.transfer is not None:
        context |= {"mode": "transfer", "ladder": ",".join(map(str, analysis.transfer["ladder"])), "rungs": len(records)}
    for key in ("dataset", "n_train", "epochs", "batch_size", "score", "lr_schedule", "seed_blocks", "trainer"):
        if key in config:
            context[key] = config[key]
    if config.get("space"):  # the recipe the answer holds for
        for key in ("penalty", "optimizer", "learning_rate"):
            context[key] = config["space"].get(key)
    files = write_report(analysis, records, out, study=study, title=f"Lambda scaling: {study.study_name}", context=context)
    result = AnalysisResult(study.study_name, analysis, out, files, context=context)
    if tracking_uri is not None:
        result.logged_run_id = _log_to_mlflow(study, absolute_sqlite(tracking_uri), out, analysis, result.warnings)
    return result


def _log_to_mlflow(study: optuna.Study, tracking_uri: str, out: Path, analysis: Analysis, warnings: list[str]) -> str | None:
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
        import time

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
