"""`autolambda ui` serves the MLflow UI on loopback; its REST API lists the study's runs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from typer.testing import CliRunner

from autolambda.cli.app import app
from tests.procs import alive, descendants


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url, payload):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_ui_serves_the_runs_on_loopback_and_sigterm_ends_its_server(tmp_path):
    """The server's REST API lists the study's runs; SIGTERM to `autolambda ui` (what
    `kill`, `timeout` and service managers send) ends every process of the server and
    frees the port. Before, the server, uvicorn, its job runner and 7 huey consumers
    stayed, holding the port."""
    result = CliRunner().invoke(app, ["tune", "--trainer", "surrogate", "--epochs", "3", "--trials", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autolambda", "ui", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    server = set()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "MLflow UI did not start in 90 s"
            time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=autolambda", timeout=5) as r:
            exp = json.loads(r.read())["experiment"]
        exp_id = exp["experiment_id"]
        # Tagged as model training, so MLflow 3's UI opens it on the runs, not the GenAI overview.
        assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in exp["tags"]
        runs = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "max_results": 100})["runs"]
        names = sorted(r["info"]["run_name"] for r in runs)
        assert names == ["digits-l2-surrogate", "trial-0000", "trial-0001", "trial-0002"]
        server |= descendants(proc.pid)
        assert server, "the MLflow server runs below autolambda ui"
        proc.send_signal(signal.SIGTERM)  # to autolambda only, not to its group
        proc.wait(timeout=60)
        left = [pid for pid in server if alive(pid)]
        assert left == [], f"processes of the server left running: {left}"
        with socket.socket() as s:  # the port is free again for a server (which binds with SO_REUSEADDR)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
    finally:
        for pid in server | descendants(proc.pid) | ({proc.pid} if proc.poll() is None else set()):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait()
    first_line, second_line = proc.stdout.readline(), proc.stdout.readline()
    assert f"http://127.0.0.1:{port}" in first_line
    assert second_line.strip() == f"The runs of experiment 'autolambda': http://127.0.0.1:{port}/#/experiments/{exp_id}/runs?workflowType=machine_learning"


def test_ui_on_a_taken_port_says_so_before_mlflow_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["ui", "--port", str(port)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is taken" in lines[0] and "--port" in lines[0], result.output
