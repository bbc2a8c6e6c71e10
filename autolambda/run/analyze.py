"""``autolambda analyze``: load a study, analyze it (``autolambda.analysis``), write the
report, log it to the study's MLflow parent run (``autolambda.tracking``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


from autolambda.analysis.settings import AnalysisConfig
from autolambda.analysis.summary import Analysis, analyze_trials
from autolambda.base.stores import absolute_sqlite, check_tracking_uri
from autolambda.core.trials import CONFIG_KEY, N_REF_KEY
from autolambda.run.study import load_study
from autolambda.tracking.tracker import log_analysis

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


def run_analysis(
    *,
    study_name: str | None = None,
    storage: str = "sqlite:///autolambda.db",
    tracking_uri: str | None = "sqlite:///mlflow.db",
    out: str | Path | None = None,
    settings: AnalysisConfig | None = None,
) -> AnalysisResult:
    """Analyze a study and write its report; log the files to the study's MLflow parent run.
    ``settings``: the analysis' settings (default ``AnalysisConfig()``); the score window is
    always the study's own."""
    from autolambda.analysis.report import write_report

    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)
    study = load_study(study_name, storage)
    config = study.user_attrs.get(CONFIG_KEY, {})
    settings = replace(settings or AnalysisConfig(), score_window=AnalysisConfig.for_study(config).score_window)
    trials = study.get_trials(deepcopy=False)
    out = Path(out) if out is not None else Path("autolambda-report") / study.study_name
    records, analysis = analyze_trials(trials, settings)
    n_ref = study.user_attrs.get(N_REF_KEY)
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
        result.logged_run_id = log_analysis(study, absolute_sqlite(tracking_uri), out, analysis, result.warnings)
    return result
