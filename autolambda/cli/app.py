"""The ``autolambda`` command line: thin commands that gather options and call one function.

Heavy imports (TensorFlow, MLflow, Optuna) happen inside the commands, so that
``autolambda --help`` answers at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Optional

import typer

from autolambda.analysis.settings import DEFAULTS as ANALYSIS, AnalysisConfig
from autolambda.core import choices as C

app = typer.Typer(
    name="autolambda",
    help="Find out, with data, how L1/L2 regularization should scale with Keras network size.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Option help texts, shared by commands that take the same option.
H_STUDY_NAME = "Optuna study name. Default: DATASET-PENALTY (e.g. digits-l2)."
H_STORAGE = f"Optuna storage URL: sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB or journal:FILE. Default: {C.DEFAULT_STORAGE}."
H_TRACKING = f"MLflow tracking URI: sqlite:///FILE or http://HOST:PORT. Default: {C.DEFAULT_TRACKING_URI}."


# Options shared by the commands that read an existing study.
StudyNameOpt = Annotated[Optional[str], typer.Option("--study-name", help="The study. Default: the only study in the storage, else digits-l2.")]
StorageOpt = Annotated[str, typer.Option("--storage", help=H_STORAGE)]
TrackingOpt = Annotated[str, typer.Option("--tracking-uri", help=H_TRACKING)]
ExperimentOpt = Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")]


@contextmanager
def user_errors(interrupted: str | None = None) -> Iterator[None]:
    """The one error handler of every command.

    An ``AutolambdaError`` becomes one line on stderr and exit 2 for bad input
    (``ConfigError``), 1 otherwise. A stop (Ctrl-C, SIGTERM, SIGHUP) prints
    ``interrupted`` (if given) and exits with the signal's code (130, 143, 129).
    """
    from autolambda.errors import AutolambdaError, ConfigError
    from autolambda.base.signals import exit_code

    try:
        yield
    except AutolambdaError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2 if isinstance(exc, ConfigError) else 1) from None
    except KeyboardInterrupt as exc:
        if interrupted is not None:
            typer.echo(f"\n{getattr(exc, 'name', 'Interrupted')}{interrupted}", err=True)
        raise typer.Exit(code=exit_code(exc)) from None


def _quiet_frameworks() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    import warnings

    import optuna

    # Failed trials are counted in the progress bar and the closing table, with their
    # error on the trial and its MLflow run: Optuna's per-trial tracebacks would drown that.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", module="keras")


@app.command()
def tune(
    trials: Annotated[Optional[int], typer.Option("--trials", "-n", help=f"Finished trials the study holds at the end (tops up a resumed study). Default: {C.DEFAULT_TRIALS}; with --precision, {C.DEFAULT_PRECISION_TRIALS} at most.")] = None,
    precision: Annotated[Optional[float], typer.Option(help="Stop once alpha's 95% interval (the optimum's, else the wall's) has this half-width, e.g. 0.25; --trials and --timeout still cap the study.")] = None,
    study: Annotated[Optional[Path], typer.Option("--study", help="TOML study file (see studies/); CLI options override it.")] = None,
    study_name: Annotated[Optional[str], typer.Option(help=H_STUDY_NAME)] = None,
    storage: Annotated[Optional[str], typer.Option(help=H_STORAGE)] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help=H_TRACKING)] = None,
    experiment: Annotated[Optional[str], typer.Option(help=f"MLflow experiment name. Default: {C.DEFAULT_EXPERIMENT}.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help=f"{', '.join(C.DATASETS)} (digits, the default, is bundled; the others download), a .npz file or a folder of class sub-folders.")] = None,
    n_train: Annotated[Optional[int], typer.Option(help=f"Training images kept (seeded, stratified subset). Default: {C.DEFAULT_N_TRAIN}.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help=f"Epochs per trial (the training budget). Default: {C.DEFAULT_EPOCHS}.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Mini-batch size. Default: {C.DEFAULT_BATCH_SIZE}.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help=f"Fixed learning rate. Default: {C.DEFAULT_LEARNING_RATE:g}.")] = None,
    penalty: Annotated[Optional[str], typer.Option(help=C.describe(C.PENALTIES, C.DEFAULT_PENALTY) + ".")] = None,
    pruner: Annotated[Optional[str], typer.Option(help=C.describe(C.PRUNERS, C.DEFAULT_PRUNER) + ". answer-aware: stops only trials settled far beyond the wall (the analysis counts them as hurt); the others rank trials by their loss and cut those that carry the answer.")] = None,
    sampler: Annotated[Optional[str], typer.Option(help=C.describe(C.SAMPLERS, C.DEFAULT_SAMPLER) + ". design: TPE per width to start, then lambda_eff drawn where the loss depends on it.")] = None,
    stratify_pruner: Annotated[Optional[bool], typer.Option("--stratify-pruner/--no-stratify-pruner", help="Prune a trial only against trials of its own width. Default: on.")] = None,
    balance_widths: Annotated[Optional[bool], typer.Option("--balance-widths/--no-balance-widths", help="Give every width an equal share of trials, sampling the rest per width. Default: on; off for only the single best model.")] = None,
    score: Annotated[Optional[str], typer.Option(help=C.describe(C.SCORES, C.DEFAULT_SCORE) + ". final: mean of the last epochs; median: their median; best: best epoch (early stopping hides lambda).")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"Seed of the sampler and of each trial's initialisation and batch order (the data split is fixed: data_seed in a study file). Default: {C.DEFAULT_SEED}.")] = None,
    seed_blocks: Annotated[Optional[int], typer.Option(help=f"Seeds per width: a width's trials share these seeds, and the analysis removes each seed's offset (0: every trial its own seed). Search mode only. Default: {C.DEFAULT_SEED_BLOCKS}.")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Stop starting new trials after this many seconds.")] = None,
    trainer: Annotated[Optional[str], typer.Option(help=C.describe(C.TRAINERS, C.DEFAULT_TRAINER) + ". surrogate: a stand-in with a planted alpha; no TensorFlow.")] = None,
    planted_alpha: Annotated[Optional[float], typer.Option(help="The surrogate trainer's planted alpha.")] = None,
    planted_wall_alpha: Annotated[Optional[float], typer.Option(help="The surrogate's wall exponent (default: --planted-alpha).")] = None,
    surrogate_seed_noise: Annotated[Optional[float], typer.Option(help=f"The surrogate's seed-to-seed SD of the loss (default {C.DEFAULT_SURROGATE_SEED_NOISE:g}, as on digits; 0: a clean surrogate).")] = None,
    surrogate_dip: Annotated[Optional[float], typer.Option(help=f"How far the surrogate's optimum lies below its flat floor (default {C.DEFAULT_SURROGATE_DIP:g}, as on digits; 0: flat, no optimum).")] = None,
    mode: Annotated[Optional[str], typer.Option(help=C.describe(C.MODES, C.DEFAULT_MODE) + ". search: each trial one width; transfer: each trial one lambda0/alpha on every width of --ladder, scored by the mean loss; every rung enters the same analysis.")] = None,
    ladder: Annotated[Optional[str], typer.Option(help="Transfer mode: widths of each trial, comma-separated (e.g. 4,16,64). Default: every width of the space.")] = None,
    max_failures: Annotated[Optional[int], typer.Option(help=f"Stop when this many trials fail in a row. Default: {C.DEFAULT_MAX_FAILURES}.")] = None,
    workers: Annotated[Optional[int], typer.Option(help=f"Worker processes on this machine sharing the study ({C.DEFAULT_WORKERS_STORAGE} unless --storage). Default: {C.DEFAULT_WORKERS}.")] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
    analyze_after: Annotated[bool, typer.Option("--analyze/--no-analyze", help="After the last trial, run `autolambda analyze`: print the answer, write the report, log it to MLflow. Default: on.")] = True,
    progress: Annotated[bool, typer.Option(" /--no-progress", help="Hide the progress bar.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print the noise, the hypotheses and the notes on each size before the answer (as `analyze --verbose`).")] = False,
) -> None:
    """Run (or resume) a lambda-scaling study, log it to MLflow, and say which alpha the data support."""
    # Every option but these four is a StudyConfig setting of the same name.
    overrides = {k: v for k, v in locals().items() if k not in ("study", "no_mlflow", "analyze_after", "progress", "verbose")}
    with user_errors():
        config = _tune_config(study, overrides, track=not no_mlflow, analyze_after=analyze_after)
    _quiet_frameworks()
    stopped = ": finished trials are saved; run the same command again to continue."
    with user_errors(interrupted=stopped):
        result = _run_tune(config, track=not no_mlflow, progress=progress)
    from autolambda.cli.console import print_next, print_tune_summary

    print_tune_summary(result, table=not analyze_after)
    analyzed = False
    if analyze_after:
        from autolambda.base.signals import stop_signals_as_interrupt

        with user_errors(interrupted=" during the analysis: the study is complete; `autolambda analyze` gives the answer."):
            with stop_signals_as_interrupt():
                analyzed = _analyze_after_tune(config, track=not no_mlflow, verbose=verbose)
        if not analyzed:  # nothing to analyse yet: the trials' own table instead
            print_tune_summary(result, table=True, counts=False)
    print_next(config, bool(result.parent_run_id), analyzed=analyzed)


def _tune_config(study_file: Path | None, overrides: dict[str, Any], *, track: bool, analyze_after: bool) -> Any:
    """The validated configuration of ``tune``, with every store and the data checked
    before anything is created (and before TensorFlow loads): one line, nothing left behind."""
    from dataclasses import replace

    from autolambda.run.config import load_config
    from autolambda.base.stores import check_stores_usable

    overrides["ladder"] = _parse_ladder(overrides["ladder"])
    config = load_config(study_file, **overrides)
    if config.precision is not None and overrides["trials"] is None and not _file_sets(study_file, "trials"):
        config = replace(config, trials=C.DEFAULT_PRECISION_TRIALS)  # a cap for a run that stops on the answer
    check_stores_usable(config.storage, config.tracking_uri if track else None,
                        folders=[Path("autolambda-report")] if analyze_after else [])
    config.objective().load_data()  # a bad data set fails before anything starts
    return config


def _run_tune(config: Any, *, track: bool, progress: bool) -> Any:
    """Train the study in this process or in ``config.workers`` processes, behind a progress bar."""
    from autolambda.cli.console import ProgressCallback, console
    from autolambda.base.signals import stop_signals_as_interrupt

    if config.trainer == "keras" and config.workers == 1:
        from autolambda.training.trainers import import_tensorflow_quietly

        devices = import_tensorflow_quietly()
        where = f"TensorFlow devices: {', '.join(sorted(set(devices)))}"
        if "GPU" not in devices:
            threads = _small_net_threads(config)
            where += f" (no GPU seen; CPU, 1 thread per op, {threads[1]} ops at once)" if threads else " (no GPU seen; training on the CPU)"
        console.print(where)
    bar = ProgressCallback(config.trials, enabled=progress)
    with stop_signals_as_interrupt(), bar:
        if config.workers > 1:
            from autolambda.run.workers import run_workers

            return run_workers(config, track=track, on_start=bar.start, on_progress=bar.poll)
        from autolambda.run.runner import run_study

        return run_study(config, callbacks=[bar], track=track, on_start=bar.start, on_answer=bar.set_answer)


def _small_net_threads(config: Any) -> tuple[int, int] | None:
    """Size TensorFlow's CPU thread pools for the study's nets (``cpu_threads``); the sizes set, or None."""
    from dataclasses import replace

    from autolambda.training.trainers import cpu_threads, set_threads

    objective = config.objective()
    data = objective.load_data()
    # A transfer trial trains its ladder's widths, which need not be the space's.
    space = replace(objective.space, widths=tuple(getattr(objective, "ladder", objective.space.widths)))
    threads = cpu_threads(space.max_macs(data.input_shape, data.n_classes) * objective.batch_size)
    return threads if threads and set_threads(*threads) else None


def _file_sets(study_file: Path | None, key: str) -> bool:
    """Whether the study file sets ``key`` at its top level."""
    if study_file is None:
        return False
    import tomllib

    try:
        return key in tomllib.loads(Path(study_file).read_text())
    except (OSError, ValueError):
        return False


def _analyze_after_tune(config: Any, *, track: bool, verbose: bool = False) -> bool:
    """The end of ``tune``: the analysis, its answer on the console, the report on disk and
    in MLflow. False when there was nothing to analyse yet."""
    from autolambda.run.analyze import run_analysis
    from autolambda.cli.console import console, print_analysis
    from autolambda.errors import AutolambdaError

    console.print("\nAnalysing the study (autolambda analyze) ...")
    try:
        result = run_analysis(study_name=config.name, storage=config.storage,
                              tracking_uri=config.tracking_uri if track else None)
    except AutolambdaError as exc:  # too few trials, say: the tuning itself went fine
        console.print(f"No analysis: {exc}")
        return False
    print_analysis(result, verbose=verbose, counts=False)
    return True


@app.command()
def analyze(
    study_name: StudyNameOpt = None,
    storage: StorageOpt = C.DEFAULT_STORAGE,
    tracking_uri: Annotated[str, typer.Option(help=H_TRACKING + " The report is logged to the study's parent run there.")] = C.DEFAULT_TRACKING_URI,
    out: Annotated[Optional[Path], typer.Option(help="Folder for plots and report. Default: autolambda-report/STUDY.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (and nothing else).")] = False,
    tolerance: Annotated[float, typer.Option(help="Relative tolerance of the near-best lambda band (0.02 = within 2% of the best).")] = ANALYSIS.tolerance,
    min_trials: Annotated[int, typer.Option(help="Complete trials a size needs before its own best counts as located (table only).")] = ANALYSIS.min_trials,
    wall_cost: Annotated[float, typer.Option(help="The wall is where a trial's loss exceeds its size's floor by this share (0.25 = 25%).")] = ANALYSIS.wall_cost,
    n_params: Annotated[Optional[list[int]], typer.Option("--n-params", help="A parameter count N to recommend lambda_eff for (repeatable; default: the study's sizes), e.g. --n-params 1220.")] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log the report to MLflow.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print the noise, the hypotheses, the extrapolation check and the notes on each size.")] = False,
) -> None:
    """Say which alpha the study supports, with a 95% interval, plots and a Markdown report."""
    with user_errors():
        settings = AnalysisConfig(tolerance=tolerance, min_trials=min_trials, wall_cost=wall_cost, n_params=tuple(n_params or ()))
        _quiet_frameworks()
        from autolambda.run.analyze import run_analysis

        result = run_analysis(study_name=study_name, storage=storage, tracking_uri=None if no_mlflow else tracking_uri,
                              out=out, settings=settings)
    if json_out:
        import json

        typer.echo(json.dumps(result.to_json(), default=str))
    else:
        from autolambda.cli.console import print_analysis

        print_analysis(result, verbose=verbose)


@app.command(hidden=True)
def worker(
    config_path: Annotated[Path, typer.Option("--config", help="JSON configuration written by `tune --workers`.")],
    index: Annotated[int, typer.Option(help="Worker number (seeds its sampler).")] = 0,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
) -> None:
    """One worker process of `tune --workers K` (started by it; not for direct use)."""
    import json

    from autolambda.run.config import config_from_dict
    from autolambda.base.signals import stop_signals_as_interrupt

    _quiet_frameworks()
    with user_errors():  # a stop: the signal's exit code, no message (the coordinator speaks)
        from autolambda.run.workers import run_worker

        with stop_signals_as_interrupt():
            run_worker(config_from_dict(json.loads(config_path.read_text())), index, track=not no_mlflow)


#: The options that name a study and its stores, as (name, Typer annotation, default).
STUDY_OPTIONS = (("study_name", StudyNameOpt, None), ("storage", StorageOpt, C.DEFAULT_STORAGE),
                 ("tracking_uri", TrackingOpt, C.DEFAULT_TRACKING_URI), ("experiment", ExperimentOpt, C.DEFAULT_EXPERIMENT))


def _study_command(fn: Any) -> Any:
    """Register ``fn(study, tracker, parent_run_id)`` as a command taking ``STUDY_OPTIONS``
    (one definition for every command that reads a study with its MLflow runs); it runs
    with the study loaded and the tracking server checked."""
    import functools
    import inspect

    @functools.wraps(fn)
    def command(**options: Any) -> None:
        with user_errors():
            opened = _study_and_tracker(**options)
        fn(*opened)

    del command.__wrapped__  # Typer reads the options from the signature below, not fn's
    command.__annotations__ = {}
    command.__signature__ = inspect.Signature([inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                                                 annotation=annotation)
                                               for name, annotation, default in STUDY_OPTIONS])
    return app.command()(command)


def _study_and_tracker(study_name: str | None, storage: str, tracking_uri: str, experiment: str):
    from autolambda.run.study import load_study
    from autolambda.base.stores import absolute_sqlite, check_tracking_uri
    from autolambda.core.trials import PARENT_KEY
    from autolambda.tracking.tracker import MLflowTracker

    _quiet_frameworks()
    check_tracking_uri(tracking_uri)
    study = load_study(study_name, storage)
    tracker = MLflowTracker(absolute_sqlite(tracking_uri), experiment)
    tracker.check_reachable()
    return study, tracker, study.user_attrs.get(PARENT_KEY)


@_study_command
def sync(study: Any, tracker: Any, parent: str | None) -> None:
    """Back-fill MLflow from the Optuna study: log every finished trial that has no run."""
    with user_errors():
        from autolambda.core.trials import CONFIG_KEY, RUN_CONFIG_KEY
        from autolambda.run.study import fail_orphaned_trials

        tracker.start(study, study.user_attrs.get(RUN_CONFIG_KEY) or study.user_attrs.get(CONFIG_KEY) or {})
        orphans = fail_orphaned_trials(study, tracker)  # FAIL (and retried), runs KILLED
        if orphans:
            typer.echo(f"Marked FAIL {len(orphans)} trial(s) left RUNNING by a process that is gone: {orphans}")
        added = tracker.sync(study)
        tracker.client.set_terminated(tracker.parent_run_id, status="FINISHED")
    typer.echo(f"Logged {len(added)} trial(s) to MLflow" + (f": {added}" if added else "; MLflow already had every finished trial."))


@_study_command
def check(study: Any, tracker: Any, parent: str | None) -> None:
    """Compare the Optuna study with its MLflow runs; exit 1 if they disagree."""
    from autolambda.errors import AutolambdaError

    with user_errors():
        from autolambda.core.trials import WORKER_KEY
        from autolambda.run.study import orphaned_trials
        from autolambda.tracking.tracker import compare_stores

        if parent is None:
            raise AutolambdaError(f"study {study.study_name!r} has no MLflow parent run: run `autolambda sync`.")
        tracker.parent_run_id = parent
        problems = compare_stores(study, tracker.logged_trials(study))
        for trial in orphaned_trials(study):
            problems.append(f"trial {trial.number}: RUNNING in Optuna, but its process ({trial.user_attrs[WORKER_KEY]}) is gone; "
                            "`autolambda sync` marks it FAIL, logs its run and queues it again")
    if problems:
        for line in problems:
            typer.echo(line)
        typer.echo(f"Inconsistent: {len(problems)} difference(s); `autolambda sync` logs missing trials.", err=True)
        raise typer.Exit(code=1)
    n = len(study.get_trials(deepcopy=False))
    typer.echo(f"Consistent: {n} trials in Optuna, each finished one with exactly one matching MLflow run.")


@app.command()
def ui(
    tracking_uri: Annotated[str, typer.Option(help=H_TRACKING)] = C.DEFAULT_TRACKING_URI,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the UI.")] = 5000,
    experiment: ExperimentOpt = C.DEFAULT_EXPERIMENT,
) -> None:
    """Start the MLflow UI on the project's tracking store and print the page of the
    experiment's runs (Ctrl-C stops it)."""
    from autolambda.errors import AutolambdaError
    from autolambda.base.stores import check_tracking_uri, redact
    from autolambda.tracking.server import check_port_free, run_ui, runs_page

    with user_errors():
        check_tracking_uri(tracking_uri)
        if tracking_uri.startswith(("http://", "https://")):
            raise AutolambdaError(f"{redact(tracking_uri)} is already a tracking server: open it in a browser.")
        check_port_free(host, port)
    base = f"http://{host}:{port}"
    typer.echo(f"MLflow UI for {redact(tracking_uri)} at {base} (Ctrl-C to stop)")
    page = runs_page(tracking_uri, experiment, base)
    if page:
        typer.echo(f"The runs of experiment {experiment!r}: {page}")
    raise typer.Exit(code=run_ui(tracking_uri, host, port))


def _parse_ladder(text: str | None) -> tuple[int, ...] | None:
    from autolambda.errors import ConfigError

    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"ladder must be comma-separated integer widths (e.g. 4,16,64) but got {text!r}.") from None


def main() -> Any:
    """Entry point of the ``autolambda`` script."""
    return app()


if __name__ == "__main__":
    main()
