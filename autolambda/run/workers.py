"""Several worker processes on one machine, sharing one study.

Processes, not threads: Keras in several threads of one process is unstable and the GIL
serialises it. The study lives in Optuna's journal file (or the given RDB storage); MLflow
is set up once, before the workers start, behind a local ``mlflow server`` on loopback
when the tracking store is a SQLite file (several SQLite writers get "database is
locked" and migration races). Each worker sizes TensorFlow's thread pools to its share of
the cores, so K workers do not oversubscribe them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from autolambda.errors import AutolambdaError
from autolambda.run.config import StudyConfig
from autolambda.run.runner import StudyRun
from autolambda.run.runner import run_study


def worker_threads(workers: int) -> int:
    """TensorFlow intra-op threads per worker: the cores shared out, at least one."""
    from autolambda.training.trainers import usable_cores

    return max(1, usable_cores() // workers)


def run_workers(
    config: StudyConfig,
    *,
    track: bool = True,
    on_start: Callable[[Any, int], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> Any:
    """Run ``config.workers`` worker processes on the study until it holds ``config.trials``.

    The set-up (study, N_ref, MLflow parent run) and the teardown are ``StudyRun``'s, as
    for one process, done once here around the workers. Returns a ``TuneResult``; raises
    ``AutolambdaError`` if a worker fails.
    """
    with StudyRun(config, track=track, serve_tracking=True) as run:
        if on_start is not None:
            on_start(run.study, run.finished())
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "config.json"
            path.write_text(json.dumps(config.to_dict() | {"tracking_uri": run.tracking_uri, "workers": 1}))
            procs = _spawn(path, config.workers, track, Path(folder))
            try:
                _wait(procs, lambda: on_progress(run.study) if on_progress is not None else None)
            finally:
                if on_progress is not None:
                    on_progress(run.study)
            _raise_worker_error(procs)
    return run.result


def _wait(procs: list[tuple[subprocess.Popen, Path]], poll: Callable[[], None]) -> None:
    """Wait for every worker. On Ctrl-C (or a stop signal turned into one) stop them with
    SIGTERM, which they handle like Ctrl-C: a background job's workers inherit SIGINT
    ignored, and a terminal's Ctrl-C has reached them already (a second stop signal is
    ignored during their clean-up)."""
    try:
        while any(p.poll() is None for p, _ in procs):
            time.sleep(0.5)
            poll()
    except KeyboardInterrupt:
        for p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        raise


def _raise_worker_error(procs: list[tuple[subprocess.Popen, Path]]) -> None:
    errors = [(i, p.returncode, log) for i, (p, log) in enumerate(procs) if p.returncode != 0]
    if errors:
        i, code, log = errors[0]
        tail = " | ".join(line.strip() for line in log.read_text().splitlines()[-3:] if line.strip())
        raise AutolambdaError(f"worker {i} exited with code {code}: {tail[-500:]}")


def _spawn(config_path: Path, workers: int, track: bool, folder: Path) -> list[tuple[subprocess.Popen, Path]]:
    threads = worker_threads(workers)
    env = os.environ | {
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": str(threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    procs = []
    for index in range(workers):
        log = folder / f"worker-{index}.log"
        cmd = [sys.executable, "-m", "autolambda", "worker", "--config", str(config_path), "--index", str(index)]
        if not track:
            cmd.append("--no-mlflow")
        with open(log, "w") as out:
            procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env), log))
    return procs


def run_worker(config: StudyConfig, index: int, *, track: bool = True) -> Any:
    """One worker: the same study, its own sampler seed and thread budget."""
    if config.trainer == "keras":
        from autolambda.training.trainers import import_tensorflow_quietly, set_threads

        import_tensorflow_quietly()
        threads = os.environ.get("TF_NUM_INTRAOP_THREADS")
        if threads:
            set_threads(int(threads))
    return run_study(config, track=track, sampler_seed=config.seed + 1000 * (index + 1), close_parent=False)
