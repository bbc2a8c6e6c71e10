"""The ``autolambda`` command line: thin commands that gather options and call one function.

Heavy imports (TensorFlow, MLflow, Optuna) happen inside the commands, so that
``autolambda --help`` answers at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

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
H_STORAGE = "Optuna storage URL: sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB or journal:FILE. Default: sqlite:///autolambda.db."
H_TRACKING = "MLflow tracking URI: sqlite:///FILE or http://HOST:PORT. Default: sqlite:///mlflow.db."


# Options shared by the commands that read an existing study.
StudyNameOpt = Annotated[Optional[str], typer.Option("--study-name", help="The study. Default: the only study in the storage, else digits-l2.")]
StorageOpt = Annotated[str, typer.Option("--storage", help=H_STORAGE)]
TrackingOpt = Annotated[str, typer.Option("--tracking-uri", help=H_TRACKING)]
ExperimentOpt = Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")]


def _fail(exc: Exception) -> None:
    """Print one line for a user-facing error and exit: 2 for bad input, 1 otherwise."""
    from autolambda.errors import ConfigError

    typer.echo(f"Error: {exc}", err=True)
    raise typer.Exit(code=2 if isinstance(exc, (ConfigError,)) else 1)


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
    trials: Annotated[Optional[int], typer.Option("--trials", "-n", help="Finished trials the study holds at the end (tops up a resumed study). Default: 100; with --precision, 300 at most.")] = None,
    precision: Annotated[Optional[float], typer.Option(help="Stop once alpha's 95% interval (the optimum's, else the wall's) has this half-width, e.g. 0.25; --trials and --timeout still cap the study.")] = None,
    study: Annotated[Optional[Path], typer.Option("--study", help="TOML study file (see studies/); CLI options override it.")] = None,
    study_name: Annotated[Optional[str], typer.Option(help=H_STUDY_NAME)] = None,
    storage: Annotated[Optional[str], typer.Option(help=H_STORAGE)] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help=H_TRACKING)] = None,
    experiment: Annotated[Optional[str], typer.Option(help="MLflow experiment name. Default: autolambda.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="digits (default, bundled), mnist, fashion_mnist, cifar10, a .npz file or a folder of class sub-folders.")] = None,
    n_train: Annotated[Optional[int], typer.Option(help="Training images kept (seeded, stratified subset). Default: 300.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs per trial (the training budget). Default: 80.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Mini-batch size. Default: 32.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Fixed learning rate. Default: 3e-3.")] = None,
    penalty: Annotated[Optional[str], typer.Option(help="l2 (default), l1, l1l2 or weight_decay.")] = None,
    pruner: Annotated[Optional[str], typer.Option(help="none (default: on digits pruning cut the trials that carry the answer), median, hyperband or successive-halving.")] = None,
    sampler: Annotated[Optional[str], typer.Option(help="design (default: TPE per width to start, then lambda_eff drawn where the loss depends on it), tpe, random, qmc or gp.")] = None,
    stratify_pruner: Annotated[Optional[bool], typer.Option("--stratify-pruner/--no-stratify-pruner", help="Prune a trial only against trials of its own width. Default: on.")] = None,
    balance_widths: Annotated[Optional[bool], typer.Option("--balance-widths/--no-balance-widths", help="Give every width an equal share of trials, sampling the rest per width. Default: on; off for only the single best model.")] = None,
    score: Annotated[Optional[str], typer.Option(help="final (mean of the last epochs, default) or best (best epoch; early stopping hides lambda).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the sampler and of each trial's initialisation and batch order (the data split is fixed: data_seed in a study file). Default: 0.")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Stop starting new trials after this many seconds.")] = None,
    trainer: Annotated[Optional[str], typer.Option(help="keras (default) or surrogate (a stand-in with a planted alpha; no TensorFlow).")] = None,
    planted_alpha: Annotated[Optional[float], typer.Option(help="The surrogate trainer's planted alpha.")] = None,
    surrogate_seed_noise: Annotated[Optional[float], typer.Option(help="The surrogate's seed-to-seed SD of the loss (default 0.02, as on digits; 0: a clean surrogate).")] = None,
    surrogate_dip: Annotated[Optional[float], typer.Option(help="How far the surrogate's optimum lies below its flat floor (default 0.03, as on digits; 0: flat, no optimum).")] = None,
    mode: Annotated[Optional[str], typer.Option(help="search (each trial one width, default) or transfer (each trial one lambda0/alpha on every width of --ladder, scored by the mean loss; every rung enters the same analysis).")] = None,
    ladder: Annotated[Optional[str], typer.Option(help="Transfer mode: widths of each trial, comma-separated (e.g. 4,16,64). Default: every width of the space.")] = None,
    max_failures: Annotated[Optional[int], typer.Option(help="Stop when this many trials fail in a row. Default: 5.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes on this machine sharing the study (journal:autolambda.journal unless --storage). Default: 1.")] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
    analyze_after: Annotated[bool, typer.Option("--analyze/--no-analyze", help="After the last trial, run `autolambda analyze`: print the answer, write the report, log it to MLflow. Default: on.")] = True,
    progress: Annotated[bool, typer.Option(" /--no-progress", help="Hide the progress bar.")] = True,
) -> None:
    """Run (or resume) a lambda-scaling study, log it to MLflow, and say which alpha the data support."""
    from autolambda.run.config import load_config
    from autolambda.errors import AutolambdaError

    try:
        ladder_widths = _parse_ladder(ladder)
        config = load_config(
            study,
            mode=mode,
            ladder=ladder_widths,
            trials=trials,
            study_name=study_name,
            storage=storage,
            tracking_uri=tracking_uri,
            experiment=experiment,
            dataset=dataset,
            n_train=n_train,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            penalty=penalty,
            pruner=pruner,
            sampler=sampler,
            stratify_pruner=stratify_pruner,
            balance_widths=balance_widths,
            score=score,
            seed=seed,
            timeout=timeout,
            trainer=trainer,
            planted_alpha=planted_alpha,
            surrogate_seed_noise=surrogate_seed_noise,
            surrogate_dip=surrogate_dip,
            max_failures=max_failures,
            workers=workers,
            precision=precision,
        )
        if config.precision is not None and trials is None and not _file_sets(study, "trials"):
            from dataclasses import replace

            config = replace(config, trials=300)  # a cap for a run that stops on the answer
        from autolambda.run.config import check_stores_usable

        # Every store before any is created (and before the data and TensorFlow are
        # loaded): one line, nothing left behind.
        check_stores_usable(config.storage, None if no_mlflow else config.tracking_uri,
                            folders=[Path("autolambda-report")] if analyze_after else [])
        config.objective().load_data()  # a bad data set fails before anything starts
    except AutolambdaError as exc:
        _fail(exc)
    _quiet_frameworks()
    from autolambda.cli.console import console, print_tune_summary, progress_callback
    from autolambda.run.study import run_study

    if config.trainer == "keras" and config.workers == 1:
        from autolambda.training.trainers import import_tensorflow_quietly

        devices = import_tensorflow_quietly()
        console.print(f"TensorFlow devices: {', '.join(sorted(set(devices)))}" + ("" if "GPU" in devices else " (no GPU seen; training on the CPU)"))

    from autolambda.run.signals import exit_code, stop_signals_as_interrupt

    bar = progress_callback(config.trials, enabled=progress)
    try:
        with stop_signals_as_interrupt(), bar:
            if config.workers > 1:
                from autolambda.run.workers import run_workers

                result = run_workers(config, track=not no_mlflow, on_start=bar.start, on_progress=bar.poll)
            else:
                result = run_study(config, callbacks=[bar], track=not no_mlflow, on_start=bar.start, on_answer=bar.set_answer)
    except AutolambdaError as exc:
        _fail(exc)
    except KeyboardInterrupt as exc:
        what = getattr(exc, "name", "Interrupted")
        typer.echo(f"\n{what}: finished trials are saved; run the same command again to continue.", err=True)
        raise typer.Exit(code=exit_code(exc)) from None
    print_tune_summary(result, analyzed=analyze_after)
    if analyze_after:
        try:
            with stop_signals_as_interrupt():
                analyzed = _analyze_after_tune(config, track=not no_mlflow)
        except KeyboardInterrupt as exc:
            what = getattr(exc, "name", "Interrupted")
            typer.echo(f"\n{what} during the analysis: the study is complete; `autolambda analyze` gives the answer.", err=True)
            raise typer.Exit(code=exit_code(exc)) from None
        from autolambda.cli.console import print_next

        print_next(config, bool(result.parent_run_id), analyzed=analyzed)


def _file_sets(study_file: Path | None, key: str) -> bool:
    """Whether the study file sets ``key`` at its top level."""
    if study_file is None:
        return False
    import tomllib

    try:
        return key in tomllib.loads(Path(study_file).read_text())
    except (OSError, ValueError):
        return False


def _analyze_after_tune(config: Any, *, track: bool) -> bool:
    """The end of ``tune``: the analysis, its answer on the console, the report on disk and
    in MLflow. False when there was nothing to analyse yet."""
    from autolambda.analysis.command import run_analysis
    from autolambda.cli.console import console, print_analysis
    from autolambda.errors import AutolambdaError

    console.print("\nAnalysing the study (autolambda analyze) ...")
    try:
        result = run_analysis(study_name=config.name, storage=config.storage,
                              tracking_uri=config.tracking_uri if track else None)
    except AutolambdaError as exc:  # too few trials, say: the tuning itself went fine
        console.print(f"No analysis: {exc}")
        return False
    print_analysis(result)
    return True


@app.command()
def analyze(
    study_name: StudyNameOpt = None,
    storage: StorageOpt = "sqlite:///autolambda.db",
    tracking_uri: Annotated[str, typer.Option(help=H_TRACKING + " The report is logged to the study's parent run there.")] = "sqlite:///mlflow.db",
    out: Annotated[Optional[Path], typer.Option(help="Folder for plots and report. Default: autolambda-report/STUDY.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (and nothing else).")] = False,
    tolerance: Annotated[float, typer.Option(help="Relative tolerance of the near-best lambda band (0.02 = within 2% of the best).")] = 0.02,
    min_trials: Annotated[int, typer.Option(help="Complete trials a size needs before its own best counts as located (table only).")] = 4,
    wall_cost: Annotated[float, typer.Option(help="The wall is where a trial's loss exceeds its size's floor by this share (0.25 = 25%).")] = 0.25,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log the report to MLflow.")] = False,
) -> None:
    """Say which alpha the study supports, with a 95% interval, plots and a Markdown report."""
    from autolambda.errors import AutolambdaError, ConfigError

    try:
        if not 0 <= tolerance < 1:
            raise ConfigError(f"tolerance must lie in [0, 1) but got {tolerance!r}.")
        if min_trials < 1:
            raise ConfigError(f"min_trials must be an integer >= 1 but got {min_trials!r}.")
        if not 0 < wall_cost <= 10:
            raise ConfigError(f"wall_cost must lie in (0, 10] but got {wall_cost!r}.")
        _quiet_frameworks()
        from autolambda.analysis.command import run_analysis

        result = run_analysis(
            study_name=study_name,
            storage=storage,
            tracking_uri=None if no_mlflow else tracking_uri,
            out=out,
            tolerance=tolerance,
            min_trials=min_trials,
            wall_cost=wall_cost,
        )
    except AutolambdaError as exc:
        _fail(exc)
    if json_out:
        import json

        typer.echo(json.dumps(result.to_json(), default=str))
    else:
        from autolambda.cli.console import print_analysis

        print_analysis(result)


@app.command(hidden=True)
def worker(
    config_path: Annotated[Path, typer.Option("--config", help="JSON configuration written by `tune --workers`.")],
    index: Annotated[int, typer.Option(help="Worker number (seeds its sampler).")] = 0,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
) -> None:
    """One worker process of `tune --workers K` (started by it; not for direct use)."""
    import json

    from autolambda.run.config import config_from_dict
    from autolambda.errors import AutolambdaError

    from autolambda.run.signals import exit_code, stop_signals_as_interrupt

    _quiet_frameworks()
    try:
        from autolambda.run.workers import run_worker

        with stop_signals_as_interrupt():
            run_worker(config_from_dict(json.loads(config_path.read_text())), index, track=not no_mlflow)
    except AutolambdaError as exc:
        _fail(exc)
    except KeyboardInterrupt as exc:
        raise typer.Exit(code=exit_code(exc)) from None


def _study_and_tracker(study_name: str | None, storage: str, tracking_uri: str, experiment: str):
    from autolambda.analysis.command import load_study
    from autolambda.run.config import absolute_sqlite, check_tracking_uri
    from autolambda.tracking.tracker import PARENT_KEY, MLflowTracker

    check_tracking_uri(tracking_uri)
    study = load_study(study_name, storage)
    tracker = MLflowTracker(absolute_sqlite(tracking_uri), experiment)
    tracker.check_reachable()
    return study, tracker, study.user_attrs.get(PARENT_KEY)


@app.command()
def sync(
    study_name: StudyNameOpt = None,
    storage: StorageOpt = "sqlite:///autolambda.db",
    tracking_uri: TrackingOpt = "sqlite:///mlflow.db",
    experiment: ExperimentOpt = "autolambda",
) -> None:
    """Back-fill MLflow from the Optuna study: log every finished trial that has no run."""
    from autolambda.errors import AutolambdaError

    try:
        _quiet_frameworks()
        study, tracker, _ = _study_and_tracker(study_name, storage, tracking_uri, experiment)
        config = study.user_attrs.get("autolambda_run_config") or study.user_attrs.get("autolambda_config") or {}
        tracker.start(study, config)
        from autolambda.run.study import fail_orphaned_trials

        orphans = fail_orphaned_trials(study, tracker)  # FAIL (and retried), runs KILLED
        if orphans:
            typer.echo(f"Marked FAIL {len(orphans)} trial(s) left RUNNING by a process that is gone: {orphans}")
        added = tracker.sync(study)
        tracker.client.set_terminated(tracker.parent_run_id, status="FINISHED")
    except AutolambdaError as exc:
        _fail(exc)
    typer.echo(f"Logged {len(added)} trial(s) to MLflow" + (f": {added}" if added else "; MLflow already had every finished trial."))


@app.command()
def check(
    study_name: StudyNameOpt = None,
    storage: StorageOpt = "sqlite:///autolambda.db",
    tracking_uri: TrackingOpt = "sqlite:///mlflow.db",
    experiment: ExperimentOpt = "autolambda",
) -> None:
    """Compare the Optuna study with its MLflow runs; exit 1 if they disagree."""
    from autolambda.errors import AutolambdaError
    from autolambda.tracking.tracker import compare_stores

    try:
        _quiet_frameworks()
        study, tracker, parent = _study_and_tracker(study_name, storage, tracking_uri, experiment)
        if parent is None:
            raise AutolambdaError(f"study {study.study_name!r} has no MLflow parent run: run `autolambda sync`.")
        tracker.parent_run_id = parent
        problems = compare_stores(study, tracker.logged_trials(study))
        from autolambda.run.study import orphaned_trials

        for trial in orphaned_trials(study):
            problems.append(f"trial {trial.number}: RUNNING in Optuna, but its process ({trial.user_attrs['worker']}) is gone; "
                            "`autolambda sync` marks it FAIL, logs its run and queues it again")
    except AutolambdaError as exc:
        _fail(exc)
    if problems:
        for line in problems:
            typer.echo(line)
        typer.echo(f"Inconsistent: {len(problems)} difference(s); `autolambda sync` logs missing trials.", err=True)
        raise typer.Exit(code=1)
    n = len(study.get_trials(deepcopy=False))
    typer.echo(f"Consistent: {n} trials in Optuna, each finished one with exactly one matching MLflow run.")


@app.command()
def ui(
    tracking_uri: Annotated[str, typer.Option(help=H_TRACKING)] = "sqlite:///mlflow.db",
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the UI.")] = 5000,
    experiment: ExperimentOpt = "autolambda",
) -> None:
    """Start the MLflow UI on the project's tracking store and print the page of the
    experiment's runs (Ctrl-C stops it)."""
    import subprocess

    from autolambda.run.config import check_tracking_uri, redact
    from autolambda.errors import AutolambdaError

    try:
        check_tracking_uri(tracking_uri)
        if tracking_uri.startswith(("http://", "https://")):
            raise AutolambdaError(f"{redact(tracking_uri)} is already a tracking server: open it in a browser.")
        _check_port_free(host, port)
    except AutolambdaError as exc:
        _fail(exc)
    from autolambda.run.signals import Terminated, exit_code, stop_process_group, stop_signals_as_interrupt

    base = f"http://{host}:{port}"
    typer.echo(f"MLflow UI for {redact(tracking_uri)} at {base} (Ctrl-C to stop)")
    runs_page = _runs_page(tracking_uri, experiment, base)
    if runs_page:
        typer.echo(f"The runs of experiment {experiment!r}: {runs_page}")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    # Its own process group, so that the server's children (uvicorn, the job runner, huey
    # consumers) end with it, whatever ends this command.
    # The clean-up runs inside the block: a second stop signal cannot cut it short.
    with stop_signals_as_interrupt():
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            code = proc.wait()
            code = 0 if code in (0, -15, 143) else code
        except KeyboardInterrupt as exc:  # Ctrl-C is how a UI is meant to stop: 0; SIGTERM/SIGHUP: 128+N
            code = exit_code(exc) if isinstance(exc, Terminated) else 0
        finally:
            stop_process_group(proc)
    raise typer.Exit(code=code)


def _runs_page(tracking_uri: str, experiment: str, base: str) -> str | None:
    """The URL of the experiment's runs table, marking the experiment as model training
    (studies logged before autolambda set the tag open on MLflow's GenAI overview);
    ``None`` when the store has no such experiment yet."""
    from autolambda.run.config import absolute_sqlite
    from autolambda.tracking.tracker import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, runs_page_url

    if tracking_uri.startswith("sqlite:///") and not Path(absolute_sqlite(tracking_uri)[len("sqlite:///"):]).exists():
        return None
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(absolute_sqlite(tracking_uri))
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return None
        if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return runs_page_url(base, exp.experiment_id)
    except Exception:  # the UI itself will say what is wrong with the store
        return None


def _check_port_free(host: str, port: int) -> None:
    """Refuse a taken port before MLflow starts (its own error is a log line and exit 0)."""
    import socket

    from autolambda.errors import AutolambdaError

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a listener still refuses it
        try:
            s.bind((host, port))
        except OSError as exc:
            raise AutolambdaError(f"port {port} on {host} is taken ({exc.strerror or exc}); choose another with --port, "
                                  f"e.g. --port {port + 1}.") from None


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
