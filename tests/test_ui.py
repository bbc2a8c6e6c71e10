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

from autolambda.cli import app


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url, payload):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_ui_serves_the_runs_on_loopback(tmp_path):
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
            exp_id = json.loads(r.read())["experiment"]["experiment_id"]
        runs = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "max_results": 100})["runs"]
        names = sorted(r["info"]["run_name"] for r in runs)
        assert names == ["digits-l2-surrogate", "trial-0000", "trial-0001", "trial-0002"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    first_line = proc.stdout.readline()
    assert f"http://127.0.0.1:{port}" in first_line
