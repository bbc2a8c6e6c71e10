"""Many workers on one study: on one machine (journal file) and on many (PostgreSQL).

The PostgreSQL server comes from Debian's packages and is started here on loopback;
these tests are skipped, with the reason, only where its binaries are absent outside CI.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from autolambda.cli.app import app
from tests.procs import alive, descendants
from autolambda.tracking.server import LocalTrackingServer

SLOW = 'trainer = "surrogate"\nepochs = 6\nsurrogate_epoch_seconds = 0.05\n'


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(tracking, experiment="autolambda"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return client, parents, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on 127.0.0.1 for this module; yields a function making databases."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries (Debian's postgresql) are missing on CI")
        pytest.skip("PostgreSQL server binaries (Debian's postgresql: initdb, pg_ctl) are not installed")
    bindir = Path(bins[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="autolambda-pg-", dir="/tmp"))
    as_postgres = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    folder.chmod(0o755)
    port = _free_port()
    subprocess.run(as_postgres + [str(bindir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "al"],
                   check=True, capture_output=True)
    subprocess.run(as_postgres + [str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w",
                                  "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    import psycopg

    def make_db(name):
        with psycopg.connect(f"host=127.0.0.1 port={port} user=al dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://al@127.0.0.1:{port}/{name}"

    try:
        yield make_db
    finally:
        subprocess.run(as_postgres + [str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _tune(folder, storage, tracking, trials, extra=()):
    cmd = [sys.executable, "-m", "autolambda", "tune", "--study", "slow.toml", "--storage", storage,
           "--tracking-uri", tracking, "--trials", str(trials), "--no-progress", *extra]
    return subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.postgres
def test_two_processes_on_postgres_share_one_study(tmp_path, postgres):
    (tmp_path / "slow.toml").write_text(SLOW)
    storage = postgres("optuna_two")
    with LocalTrackingServer(postgres("mlflow_two"), artifacts=tmp_path / "artifacts") as server:
        procs = [_tune(tmp_path, storage, server.uri, 10) for _ in range(2)]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert not any("database is locked" in o for o in outputs)
        study = optuna.load_study(study_name="digits-l2-surrogate", storage=storage)
        finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
        assert len(finished) == 10
        numbers = [t.number for t in study.trials]
        assert len(numbers) == len(set(numbers))
        _, parents, children = _children(server.uri)
        assert len(parents) == 1
        assert len(children) == len(study.trials) == 10
        assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}


def test_workers_on_one_machine_stop_on_sigterm_and_resume(tmp_path):
    """Two workers share one study; SIGTERM to the coordinator alone (as a scheduler sends
    it) stops the workers and the local MLflow server cleanly; the same command resumes
    to the total, with one parent run and one run per trial."""
    (tmp_path / "slow.toml").write_text('trainer = "surrogate"\nepochs = 6\nsurrogate_epoch_seconds = 0.3\n')
    cmd = [sys.executable, "-m", "autolambda", "tune", "--study", "slow.toml", "--workers", "2", "--trials", "6",
           "--no-progress", "--no-analyze"]
    journal = f"journal:{tmp_path / 'autolambda.journal'}"
    from autolambda.base.storage import make_storage

    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, below = time.time() + 180, set()
    while True:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "the workers did not get going"
        try:
            trials = optuna.load_study(study_name="digits-l2-surrogate", storage=make_storage(journal)).trials
        except Exception:
            trials = []
        below |= descendants(proc.pid)
        if sum(t.state == TrialState.COMPLETE for t in trials) >= 1 and sum(t.state == TrialState.RUNNING for t in trials) >= 1:
            break
        time.sleep(0.2)
    below |= descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 143, out
    assert "run the same command again" in out and "Traceback" not in out
    assert [pid for pid in below if alive(pid)] == [], "workers or the MLflow server outlived the coordinator"
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=make_storage(journal))
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    _, parents, _ = _children(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(parents) == 1 and parents[0].info.status == "KILLED"

    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=make_storage(journal))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 6
    assert len({t.number for t in study.trials}) == len(study.trials)
    _, parents, children = _children(f"sqlite:///{tmp_path / 'mlflow.db'}")
    import collections
    per_trial = collections.Counter(r.data.tags.get("autolambda.trial_number") for r in children)
    states = {t.number: (t.state.name, t.system_attrs.get("failed_trial"), t.user_attrs.get("worker")) for t in study.trials}
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(children) == len(study.trials), (per_trial, states)
    check = CliRunner().invoke(app, ["check", "--storage", journal])
    assert check.exit_code == 0, check.output


def test_workers_refuse_sqlite(tmp_path):
    result = CliRunner().invoke(app, ["tune", "--workers", "2", "--storage", "sqlite:///x.db"])
    assert result.exit_code == 2 and "does not take several writers well" in result.output
    assert not (tmp_path / "x.db").exists()


@pytest.mark.postgres
def test_killed_worker_trial_fails_and_is_retried(tmp_path, postgres):
    # The victim's epochs take 2 s, each reported (eval_every = 1): it is killed once its
    # trial has reported an epoch, with 7 epochs (14 s) still to go, so the kill cannot land
    # after the trial finished. The survivor, same study (epoch_seconds and eval_every are
    # not part of a study's fingerprint), trains fast.
    study_file = 'trainer = "surrogate"\nepochs = 8\nheartbeat_seconds = 1\neval_every = 1\nsurrogate_epoch_seconds = {}\n'
    (tmp_path / "slow.toml").write_text(study_file.format(2.0))
    storage = postgres("optuna_kill")
    with LocalTrackingServer(postgres("mlflow_kill"), artifacts=tmp_path / "artifacts") as server:
        victim = _tune(tmp_path, storage, server.uri, 5)
        deadline = time.time() + 120
        while True:
            assert victim.poll() is None, victim.stdout.read()
            assert time.time() < deadline
            try:
                trials = optuna.load_study(study_name="digits-l2-surrogate", storage=storage).trials
            except Exception:  # the study is not created yet
                trials = []
            if trials and trials[-1].state == TrialState.RUNNING and trials[-1].intermediate_values:
                killed = trials[-1].number
                break
            time.sleep(0.1)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        # Killed mid-training: still RUNNING in storage, with some but not all epochs reported.
        trial = optuna.load_study(study_name="digits-l2-surrogate", storage=storage).trials[killed]
        assert trial.state == TrialState.RUNNING and 1 <= len(trial.intermediate_values) < 8, (trial.state, trial.intermediate_values)
        (tmp_path / "slow.toml").write_text(study_file.format(0.05))
        survivor = _tune(tmp_path, storage, server.uri, 5)
        out = survivor.communicate(timeout=300)[0]
        assert survivor.returncode == 0, out
        study = optuna.load_study(study_name="digits-l2-surrogate", storage=storage)
        # Failed by the survivor: by the RDB heartbeat, or sooner by the same-machine
        # check (the victim's host:pid is gone); either way retried with its params.
        assert study.trials[killed].state == TrialState.FAIL
        retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
        assert len(retried) == 1 and retried[0].params == study.trials[killed].params
        assert retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 5
        _, _, children = _children(server.uri)
        runs = {int(r.data.tags["autolambda.trial_number"]): r for r in children}
        assert runs[killed].info.status in ("FAILED", "KILLED")  # not RUNNING forever
        check = CliRunner().invoke(app, ["check", "--storage", storage, "--tracking-uri", server.uri])
        assert check.exit_code == 0, check.output


@pytest.mark.postgres
def test_password_never_shown_or_logged(tmp_path, postgres):
    url = postgres("optuna_secret").replace("al@", "al:s3cretpw@")
    (tmp_path / "slow.toml").write_text(SLOW)
    # --no-analyze: the closing hint then prints the storage URL (redacted) for `analyze`.
    result = CliRunner().invoke(app, ["tune", "--study", "slow.toml", "--storage", url, "--trials", "3", "--no-progress",
                                      "--no-analyze"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "s3cretpw" not in result.output and "al:***@" in result.output
    _, parents, children = _children(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in parents + children:
        for value in list(run.data.params.values()) + list(run.data.tags.values()):
            assert "s3cretpw" not in value
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=url)
    assert "s3cretpw" not in str(study.user_attrs)
    bad = CliRunner().invoke(app, ["tune", "--study", "slow.toml", "--storage", url.rsplit(":", 1)[0] + ":1/x", "--no-mlflow"])
    assert bad.exit_code == 1 and "s3cretpw" not in bad.output


@pytest.mark.postgres
def test_heartbeat_fails_and_retries_a_silent_trial_of_another_machine(postgres):
    from autolambda.base.storage import make_storage

    logged = []
    url = postgres("optuna_heartbeat")
    storage = make_storage(url, heartbeat_seconds=1, on_stale=lambda study, trial: logged.append(trial.number))
    study = optuna.create_study(study_name="hb", storage=storage)
    trial = study.ask({"lambda0": optuna.distributions.FloatDistribution(1e-7, 1e-1, log=True)})
    study._storage.set_trial_user_attr(trial._trial_id, "worker", "elsewhere:1")
    study._storage.record_heartbeat(trial._trial_id)  # then silence: that machine died
    time.sleep(3.5)  # beyond the grace period of two intervals
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == TrialState.FAIL and logged == [0]
    retry = study.trials[1]
    assert retry.state == TrialState.WAITING and retry.system_attrs["failed_trial"] == 0
    assert retry.params == study.trials[0].params
