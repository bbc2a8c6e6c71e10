"""``mlflow server`` started by autolambda: the UI (``autolambda ui``) and the local
tracking server behind ``tune --workers`` (several SQLite writers get "database is
locked" and migration races; one server in front of the file does not)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from autolambda.errors import AutolambdaError
from autolambda.base.signals import Terminated, exit_code, stop_process_group, stop_signals_as_interrupt
from autolambda.base.stores import absolute_sqlite, redact

log_tail_lines = 8


def mlflow_server_command(backend_uri: str, host: str, port: int, *extra: str) -> list[str]:
    """The ``mlflow server`` command line over ``backend_uri``, one worker, ``extra`` options."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
            *extra, "--host", host, "--port", str(port), "--workers", "1"]


def run_ui(tracking_uri: str, host: str, port: int) -> int:
    """Serve the MLflow UI until it stops; the command's exit code. Ctrl-C is how a UI is
    meant to stop: 0; SIGTERM/SIGHUP: 128+N."""
    # Its own process group, so that the server's children (uvicorn, the job runner, huey
    # consumers) end with it, whatever ends this command. The clean-up runs inside the
    # block: a second stop signal cannot cut it short.
    with stop_signals_as_interrupt():
        proc = subprocess.Popen(mlflow_server_command(tracking_uri, host, port), start_new_session=True)
        try:
            code = proc.wait()
            return 0 if code in (0, -15, 143) else code
        except KeyboardInterrupt as exc:
            return exit_code(exc) if isinstance(exc, Terminated) else 0
        finally:
            stop_process_group(proc)


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
        cmd = mlflow_server_command(self.backend_uri, "127.0.0.1", self.port,
                                    "--default-artifact-root", self.artifacts.as_uri(), "--no-serve-artifacts")
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
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None
        self._log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs_page(tracking_uri: str, experiment: str, base: str) -> str | None:
    """The URL of the experiment's runs table, marking the experiment as model training
    (studies logged before autolambda set the tag open on MLflow's GenAI overview);
    ``None`` when the store has no such experiment yet."""
    from autolambda.tracking.tracker import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, runs_page_url  # Optuna: only here

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


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken port before MLflow starts (its own error is a log line and exit 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a listener still refuses it
        try:
            s.bind((host, port))
        except OSError as exc:
            raise AutolambdaError(f"port {port} on {host} is taken ({exc.strerror or exc}); choose another with --port, "
                                  f"e.g. --port {port + 1}.") from None
