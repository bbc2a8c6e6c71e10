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
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from autolambda.run.config import StudyConfig, redact
from autolambda.errors import AutolambdaError

log_tail_lines = 8


class LocalTrackingServer:
    """``mlflow server`` on 127.0.0.1 over a SQLite tracking file, for the life of a block."""

    def __init__(self, backend_uri: str, *, artifacts: str | Path = "mlartifacts") -> None:
        self.backend_uri = backend_uri
        self.artifacts = Path(artifacts).resolve()
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(mode="w+")

    def __enter__(self) -> "LocalTrackingServer":
        env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        # Artifacts as plain files the clients write themselves (every worker is on this
        # machine), not proxied through the server: the report that `analyze` logs after
        # the server is gone, and later, then lands beside them instead of failing.
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend_uri,
               "--default-artifact-root", self.artifacts.as_uri(), "--no-serve-artifacts",
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self._log.seek(0)
                tail = "".join(self._log.readlines()[-log_tail_lines:])
                self.__exit__()
                raise AutolambdaError(f"could not start a local MLflow server for {redact(self.backend_uri)}: {tail.strip()[-400:]}")
            time.sleep(0.3)

    def __exit__(self, *exc: Any) -> None:
        from autolambda.run.signals import stop_process_group

        if self.proc is not None:
            stop_process_group(self.proc)
        self._log.close()


def worker_threads(workers: int) -> int:
    """TensorFlow intra-op threads per worker: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // workers)


def run_workers(
    config: StudyConfig,
    *,
    track: bool = True,
    on_start: Callable[[Any, int], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> Any:
    """Run ``config.workers`` worker processes on the study until it holds ``config.trials``.

    Set-up (study, N_ref, MLflow parent run) happens once here, before any worker starts.
    Returns a ``TuneResult``; raises ``AutolambdaError`` if a worker fails.
    """
    from autolambda.run.study import TuneResult, _n_finished, check_study, open_study
    from autolambda.tracking.tracker import MLflowTracker

    objective = config.objective()
    objective.load_data()
    check_study(config)
    server = None
    tracking_uri = config.tracking_uri
    if track and tracking_uri.startswith("sqlite"):
        server = LocalTrackingServer(tracking_uri, artifacts=Path("mlartifacts"))
    try:
        if server is not None:
            server.__enter__()
            tracking_uri = server.uri
        tracker = None
        if track:
            tracker = MLflowTracker(tracking_uri, config.experiment)
            tracker.check_reachable()
        study = open_study(config)
        n_ref = objective.resolve_n_ref(study)
        if tracker is not None:
            tracker.start(study, config.to_dict() | {"n_ref": n_ref, "storage": redact(config.storage)})
        before = len(study.trials)
        if on_start is not None:
            on_start(study, _n_finished(study))
        worker_config = config.to_dict() | {"tracking_uri": tracking_uri, "workers": 1}
        status = "FINISHED"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "config.json"
            path.write_text(json.dumps(worker_config))
            procs = _spawn(path, config.workers, track, Path(folder))
            try:
                while any(p.poll() is None for p, _ in procs):
                    time.sleep(0.5)
                    if on_progress is not None:
                        on_progress(study)
            except KeyboardInterrupt:
                status = "KILLED"
                # SIGTERM, which the workers handle like Ctrl-C: a background job's
                # workers inherit SIGINT ignored, and a terminal's Ctrl-C has reached
                # them already (a second stop signal is ignored during their clean-up).
                for p, _ in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                for p, _ in procs:
                    try:
                        p.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        p.kill()
                raise
            finally:
                if on_progress is not None:
                    on_progress(study)
                result = TuneResult(study, config, len(study.trials) - before)
                if tracker is not None:
                    from autolambda.run.study import _log_summary_plots

                    result.parent_run_id = tracker.parent_run_id
                    try:
                        _log_summary_plots(tracker, study)
                        tracker.finish(study, result.summary(), status=status)
                    except Exception:
                        pass
            errors = [(i, p.returncode, log) for i, (p, log) in enumerate(procs) if p.returncode != 0]
            if errors:
                i, code, log = errors[0]
                tail = " | ".join(line.strip() for line in log.read_text().splitlines()[-3:] if line.strip())
                raise AutolambdaError(f"worker {i} exited with code {code}: {tail[-500:]}")
        return result
    finally:
        if server is not None:
            server.__exit__()


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
    from autolambda.run.study import run_study

    if config.trainer == "keras":
        from autolambda.training.trainers import import_tensorflow_quietly, set_threads

        import_tensorflow_quietly()
        threads = os.environ.get("TF_NUM_INTRAOP_THREADS")
        if threads:
            set_threads(int(threads))
    return run_study(config, track=track, sampler_seed=config.seed + 1000 * (index + 1), close_parent=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
