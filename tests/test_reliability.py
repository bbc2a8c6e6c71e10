"""Faults lose nothing: bad input, Ctrl-C, divergence, failing trials, stores out of reach."""

import signal
import socket
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from autolambda.cli.app import app
from autolambda.training.surrogate import SurrogateTrainer
from tests.test_cli import mlflow_runs

runner = CliRunner()
FAST = ["--trainer", "surrogate", "--epochs", "6", "--no-progress"]


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def flat(text):
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def check_consistent():
    result = invoke("check")
    assert result.exit_code == 0 and "Consistent" in result.output, result.output


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- bad input: one line, the right exit code, nothing written ----------------------


def _files(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in {"inputs"})


BAD = [
    # (files to write, args, exit code, message)
    ({}, ["--trials", "-3"], 2, "trials must be an integer >= 1 but got -3"),
    ({}, ["--batch-size", "0"], 2, "batch_size must be an integer >= 1"),
    ({}, ["--n-train", "1"], 2, "n_train must be an integer >= 2"),
    ({}, ["--max-failures", "0"], 2, "max_failures must be an integer >= 1"),
    ({}, ["--mode", "sideways"], 2, "mode must be one of search, transfer"),
    ({}, ["--learning-rate", "-0.1"], 2, "space.learning_rate is on a log scale and must be positive"),
    ({}, ["--storage", "postgresql:///optuna"], 2, "names no host"),
    ({}, ["--storage", "journal:"], 2, "needs a file path"),
    ({}, ["--tracking-uri", "ftp://x"], 2, "tracking URI 'ftp://x' is not supported"),
    ({}, ["--dataset", "inputs/missing.npz"], 1, "unknown dataset"),
    ({"inputs/bad.npz": "npz-missing-key"}, ["--dataset", "inputs/bad.npz"], 1, "missing key(s) y_train"),
    ({"inputs/one.npz": "npz-one-class"}, ["--dataset", "inputs/one.npz"], 1, "single class"),
    ({"inputs/s.toml": "[space]\nwidths = []\n"}, ["--study", "inputs/s.toml"], 2, "space.widths must list at least one width"),
    ({"inputs/s.toml": "[space]\nlambda0 = [0.0, 1e-2]\n"}, ["--study", "inputs/s.toml"], 2, "space.lambda0 is on a log scale"),
    ({"inputs/s.toml": "[space]\nalpha = [2.0, -1.0]\n"}, ["--study", "inputs/s.toml"], 2, "space.alpha lower bound 2.0 is above its upper bound -1.0"),
    ({"inputs/s.toml": "[space]\nwidths = [4, -8]\n"}, ["--study", "inputs/s.toml"], 2, "space.widths must be integers >= 1"),
    ({"inputs/s.toml": "space = 3\n"}, ["--study", "inputs/s.toml"], 2, "must be a table"),
    ({"inputs/s.toml": "balance_widths = 'yes'\n"}, ["--study", "inputs/s.toml"], 2, "balance_widths must be true or false"),
    ({}, ["--trainer", "surrogate", "--surrogate-dip", "-0.1"], 2, "surrogate_dip must be a number in [0, 5] but got -0.1"),
    ({"inputs/s.toml": "surrogate_seed_noise = 'lots'\n"}, ["--study", "inputs/s.toml"], 2, "surrogate_seed_noise must be a number in [0, 5]"),
    # Data checked when loaded: the file, the array, how many bad values.
    ({"inputs/nan.npz": "npz-nan-images"}, ["--dataset", "inputs/nan.npz", "--n-train", "10"], 1,
     "nan.npz: x_train has 3200 non-finite value(s) (NaN or inf) in 50 of 50 images"),
    ({"inputs/inf.npz": "npz-inf-pixel"}, ["--dataset", "inputs/inf.npz"], 1, "inf.npz: x_train has 1 non-finite value(s) (NaN or inf) in 1 of 50"),
    ({"inputs/lab.npz": "npz-nan-label"}, ["--dataset", "inputs/lab.npz"], 1, "lab.npz: y_train has 1 non-finite label(s) (NaN or inf) of 50"),
    ({"inputs/gap.npz": "npz-label-gap"}, ["--dataset", "inputs/gap.npz"], 1, "gap.npz: class(es) 1 of 0..2 have no image in y_train"),
    ({"inputs/rare.npz": "npz-rare-class"}, ["--dataset", "inputs/rare.npz", "--n-train", "4"], 1,
     "rare.npz: class(es) 2 of 0..2 have no image in the training set after the split; every class needs training images: raise n_train (now 4)"),
    ({"inputs/imgs": "folder-corrupt-image"}, ["--dataset", "inputs/imgs"], 1, "b/broken.png: not a readable image"),
    # Stores checked before any is created.
    ({}, ["--storage", "sqlite:///inputs/nowhere/x.db"], 2, "the folder"),
    ({}, ["--tracking-uri", "sqlite:///inputs/nowhere/m.db"], 2, "inputs/nowhere/m.db': the folder"),
    ({"inputs/dir.db/keep": "x"}, ["--storage", "sqlite:///inputs/dir.db"], 2, "is a folder; name a file in it"),
    ({}, ["--storage", "postgresql://u@127.0.0.1:54x2/db"], 2, "has an invalid port"),
]


def _write_inputs(tmp_path, files):
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "npz-missing-key":
            np.savez(path, x_train=np.zeros((4, 8, 8)))
        elif content == "npz-one-class":
            np.savez(path, x_train=np.zeros((6, 8, 8)), y_train=np.zeros(6, int))
        elif content.startswith("npz-"):
            x, y = np.zeros((50, 8, 8), np.float32), np.arange(50) % 10
            if content == "npz-nan-images":
                x[:] = np.nan
            elif content == "npz-inf-pixel":
                x[7, 3, 3] = np.inf
            elif content == "npz-nan-label":
                y = np.where(np.arange(50) == 3, np.nan, y)
            elif content == "npz-label-gap":
                y = (np.arange(50) % 2) * 2
            elif content == "npz-rare-class":
                y = np.r_[np.arange(48) % 2, 2, 2]
            np.savez(path, x_train=x, y_train=y)
        elif content == "folder-corrupt-image":
            from PIL import Image

            for label in ("a", "b"):
                (path / label).mkdir(parents=True)
                for i in range(3):
                    Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(path / label / f"{i}.png")
            (path / "b" / "broken.png").write_bytes(b"not an image")
        else:
            path.write_text(content)


@pytest.mark.parametrize("files, args, code, message", BAD, ids=[" ".join(b[1]) for b in BAD])
def test_bad_input_table(tmp_path, files, args, code, message):
    _write_inputs(tmp_path, files)
    result = runner.invoke(app, ["tune", "--trainer", "surrogate", *args])
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert _files(tmp_path) == [], "nothing may be written"


# The issue "Bad data and bad store paths" as a user meets it: the real command in a new
# process, so that what it imports can be seen.
FAST_FAIL = [
    ("nan.npz", ["--dataset", "nan.npz", "--n-train", "10", "--trials", "3", "--epochs", "2"], 1, "x_train has 3200 non-finite"),
    (None, ["--storage", "sqlite:////nonexistent/dir/x.db"], 2, "the folder /nonexistent/dir does not exist"),
    (None, ["--storage", "journal:/nonexistent/j.log"], 2, "the folder /nonexistent does not exist"),
    ("read-only", ["--trials", "3", "--epochs", "2"], 2, "cannot write in"),
]
PROBE = ("import atexit, sys; atexit.register(lambda: sys.stderr.write('IMPORTED TENSORFLOW\\n' "
         "if 'tensorflow' in sys.modules else '')); from autolambda.cli.app import app; app(prog_name='autolambda')")


def _read_only(folder):
    """Make ``folder`` refuse new files, also to root (whose permission checks ignore a
    folder's mode): the immutable attribute where this user can set it."""
    import os
    import shutil

    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    pytest.skip("running as root without chattr +i: no way to make a folder read-only here")


@pytest.mark.parametrize("setup, args, code, message", FAST_FAIL, ids=[" ".join(f[1][:2]) for f in FAST_FAIL])
def test_bad_data_and_store_paths_fail_before_tensorflow_and_write_nothing(tmp_path, setup, args, code, message):
    if setup == "nan.npz":
        np.savez(tmp_path / "nan.npz", x_train=np.full((50, 8, 8), np.nan, np.float32), y_train=np.arange(50) % 10)
    before = sorted(p.name for p in tmp_path.iterdir())
    undo = _read_only(tmp_path) if setup == "read-only" else None
    try:
        proc = subprocess.run([sys.executable, "-c", PROBE, "tune", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
    finally:
        if undo:
            undo()
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == code, lines
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing may be written"


def test_existing_name_with_other_direction_or_space_writes_nothing(tmp_path):
    optuna.create_study(study_name="mine", storage=f"sqlite:///{tmp_path}/autolambda.db", direction="maximize")
    result = invoke("tune", *FAST, "--study-name", "mine", "--trials", "2")
    assert result.exit_code == 2 and "direction" in result.output
    assert len(optuna.load_study(study_name="mine", storage=f"sqlite:///{tmp_path}/autolambda.db").trials) == 0
    assert not (tmp_path / "mlflow.db").exists()
    assert invoke("tune", *FAST, "--trials", "2").exit_code == 0
    (tmp_path / "narrow.toml").write_text("[space]\nwidths = [4, 8]\n")
    result = invoke("tune", *FAST, "--trials", "3", "--study", "narrow.toml")
    assert result.exit_code == 2 and "space.widths" in result.output
    _, parents, children = mlflow_runs()
    assert len(parents) == 1 and len(children) == 2


# ---- Ctrl-C ------------------------------------------------------------------------------


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_mid_trial_loses_nothing_and_resumes(tmp_path, signum, code):
    """Ctrl-C, and SIGTERM (what kill, timeout, docker stop and schedulers send), stop
    within seconds: the trial FAIL (interrupted), its run and the parent KILLED."""
    (tmp_path / "slow.toml").write_text('trainer = "surrogate"\nsurrogate_epoch_seconds = 0.2\nepochs = 10\n')
    cmd = [sys.executable, "-m", "autolambda", "tune", "--study", "slow.toml", "--trials", "3", "--no-progress"]
    # A shell that starts jobs in the background sets SIGINT to "ignore", and children
    # inherit that; restore the default so Python turns Ctrl-C into KeyboardInterrupt.
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    storage = f"sqlite:///{tmp_path}/autolambda.db"
    deadline = time.time() + 120
    while True:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "no second trial started"
        try:
            trials = optuna.load_study(study_name="digits-l2-surrogate", storage=storage).trials
        except Exception:
            trials = []
        if len(trials) >= 2 and trials[-1].state == TrialState.RUNNING and len(trials[-1].intermediate_values) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=30)  # stops within seconds, not at the end of the trial
    assert proc.returncode == code, out
    assert "run the same command again" in out and "Traceback" not in out
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=storage)
    interrupted = study.trials[-1]
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["interrupted"] is True
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    _, parents, children = mlflow_runs()
    runs = {int(r.data.tags["autolambda.trial_number"]): r for r in children}
    assert runs[interrupted.number].info.status == "KILLED"
    assert parents[0].info.status == "KILLED"
    check_consistent()
    # The same command continues to the requested total.
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 3
    _, parents, _ = mlflow_runs()
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    check_consistent()
    # The resumed study keeps its seed blocks: every trial's seed is its width's block's.
    from autolambda.search.objective import block_seed

    blocks = study.user_attrs["autolambda_config"]["seed_blocks"]
    assert blocks == 3
    for t in study.trials:
        assert 0 <= t.user_attrs["block"] < blocks
        assert t.user_attrs["seed"] == block_seed(0, t.user_attrs["width"], t.user_attrs["block"])


def test_check_reports_a_trial_whose_process_is_gone_and_sync_repairs_it(tmp_path):
    import socket

    assert invoke("tune", *FAST, "--trials", "2", "--no-analyze").exit_code == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=f"sqlite:///{tmp_path}/autolambda.db")
    orphan = study.ask()  # RUNNING, as a killed run leaves it
    orphan.set_user_attr("worker", f"{socket.gethostname()}:{gone.pid}")
    result = invoke("check")
    assert result.exit_code == 1
    assert f"trial {orphan.number}: RUNNING in Optuna, but its process" in result.output and "autolambda sync" in result.output
    assert invoke("sync").exit_code == 0
    check_consistent()
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=f"sqlite:///{tmp_path}/autolambda.db")
    assert study.trials[orphan.number].state == TrialState.FAIL


# ---- divergence and failing trials ---------------------------------------------------


def test_diverging_trials_are_counted_and_the_study_goes_on(tmp_path):
    (tmp_path / "hot.toml").write_text("[space]\nlambda0 = [1e-4, 1e3]\nalpha = 0.0\n")
    result = invoke("tune", *FAST, "--study", "hot.toml", "--trials", "12")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=f"sqlite:///{tmp_path}/autolambda.db")
    diverged = [t for t in study.trials if "diverged_at_epoch" in t.user_attrs]
    assert diverged and all(t.state == TrialState.PRUNED for t in diverged)
    assert f"diverged {len(diverged)}" in flat(result.output)
    _, _, children = mlflow_runs()
    tags = {int(r.data.tags["autolambda.trial_number"]): r.data.tags for r in children}
    assert all(tags[t.number]["autolambda.state"] == "diverged" for t in diverged)
    check_consistent()


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    real = SurrogateTrainer.train

    def flaky(self, request):
        if request.params.width == 8:
            raise RuntimeError("out of memory (simulated)")
        return real(self, request)

    monkeypatch.setattr(SurrogateTrainer, "train", flaky)
    result = invoke("tune", *FAST, "--trials", "12")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=f"sqlite:///{tmp_path}/autolambda.db")
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["error"] == "RuntimeError: out of memory (simulated)" for t in failed)
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 12
    _, _, children = mlflow_runs()
    tags = {int(r.data.tags["autolambda.trial_number"]): r for r in children}
    for t in failed:
        assert tags[t.number].data.tags["autolambda.error"] == "RuntimeError: out of memory (simulated)"
        assert tags[t.number].info.status == "FAILED"
    check_consistent()


def test_failures_in_a_row_stop_the_study_with_a_clear_message(tmp_path, monkeypatch):
    def broken(self, request):
        raise ValueError("data went missing (simulated)")

    monkeypatch.setattr(SurrogateTrainer, "train", broken)
    result = invoke("tune", *FAST, "--trials", "10", "--max-failures", "3")
    assert result.exit_code == 1
    assert "stopped: 3 trials failed in a row (max_failures=3); last error: ValueError: data went missing" in flat(result.output)
    study = optuna.load_study(study_name="digits-l2-surrogate", storage=f"sqlite:///{tmp_path}/autolambda.db")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3
    check_consistent()


# ---- stores out of reach -----------------------------------------------------------------


def test_tracking_server_down_at_start_fails_before_training(tmp_path):
    port = _free_port()
    result = invoke("tune", *FAST, "--trials", "2", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"MLflow tracking store http://127.0.0.1:{port} is not reachable" in lines[0]
    assert _files(tmp_path) == []


def test_storage_down_at_start_fails_before_training(tmp_path):
    port = _free_port()
    result = invoke("tune", *FAST, "--trials", "2", "--storage", f"postgresql://al:secret@127.0.0.1:{port}/optuna", "--no-mlflow")
    assert result.exit_code == 1
    assert "is not reachable" in result.output and "secret" not in result.output
    assert _files(tmp_path) == []


def test_tracking_lost_mid_study_keeps_trials_and_sync_repairs(tmp_path, monkeypatch):
    from autolambda.tracking.tracker import MLflowTracker

    real = MLflowTracker.log_trial

    def outage(self, study, trial):
        if 3 <= trial.number <= 6:
            raise ConnectionError("tracking server went away (simulated)")
        return real(self, study, trial)

    monkeypatch.setattr(MLflowTracker, "log_trial", outage)
    result = invoke("tune", *FAST, "--trials", "10")
    assert result.exit_code == 0, result.output
    assert "trials [3, 4, 5, 6] were not logged to MLflow" in flat(result.output)
    assert len(optuna.load_study(study_name="digits-l2-surrogate", storage=f"sqlite:///{tmp_path}/autolambda.db").trials) == 10
    monkeypatch.setattr(MLflowTracker, "log_trial", real)
    check = invoke("check")
    assert check.exit_code == 1 and "trial 3 (" in check.output and "has no MLflow run" in check.output
    synced = invoke("sync")
    assert synced.exit_code == 0 and "Logged 4 trial(s)" in synced.output
    check_consistent()


def test_a_trial_stopped_before_it_named_its_worker_is_logged_by_its_own_process_only():
    """Workers of one study stop together on a signal, and each logs its own interrupted
    trial. A trial stopped before the objective wrote its ``worker`` attribute belongs to the
    process whose objective started it, and to no other (else it got two MLflow runs)."""
    from types import SimpleNamespace

    from autolambda.run.runner import StudyRun, _log_interrupted_trials
    from autolambda.search.objective import worker_id

    study = optuna.create_study()
    numbers = {}
    for name, worker in (("unnamed", None), ("mine", worker_id()), ("other", "elsewhere:1")):
        trial = study.ask()
        if worker is not None:
            trial.set_user_attr("worker", worker)
        study.tell(trial, state=TrialState.FAIL)
        numbers[name] = trial.number

    class Tracker:
        def __init__(self):
            self.logged = set()

        def __call__(self, study, trial):
            self.logged.add(trial.number)

    def process(started):
        run = SimpleNamespace(study=study, before=0, started=started, tracker=Tracker())
        _log_interrupted_trials(run)
        return sorted(run.tracker.logged)

    run = SimpleNamespace(started=set(), objective=lambda trial: 0.5)
    assert StudyRun.run_trial(run, study.ask()) == 0.5 and run.started == {len(numbers)}  # how `started` is kept
    assert process(started=set()) == [numbers["mine"]]
    assert process(started={numbers["unnamed"]}) == sorted([numbers["unnamed"], numbers["mine"]])
