"""One run lifecycle (StudyRun) for one process and K workers: what it leaves behind when
its set-up or teardown is cut short."""

import logging

import pytest
from mlflow.tracking import MlflowClient

import autolambda.run.runner as runner
from autolambda.run.config import load_config
from autolambda.run.runner import StudyRun, run_study
from autolambda.tracking.tracker import MLflowTracker


def _config(**kw):
    return load_config(trainer="surrogate", epochs=3, trials=3, storage="journal:study.journal", **kw)


class FakeServer:
    """Stands in for the local ``mlflow server``: its URI is the SQLite file itself, and it
    records whether it was stopped."""

    instances: list["FakeServer"] = []

    def __init__(self, backend_uri, *, artifacts=None, interrupt_start=False):
        self.uri = backend_uri
        self.interrupt_start = interrupt_start
        self.stopped = False
        FakeServer.instances.append(self)

    def __enter__(self):
        if self.interrupt_start:
            raise KeyboardInterrupt  # Ctrl-C while the server comes up
        return self

    def __exit__(self, *exc):
        self.stopped = True


@pytest.fixture
def fake_server(monkeypatch):
    FakeServer.instances = []

    def install(**kw):
        monkeypatch.setattr(runner, "LocalTrackingServer", lambda uri, artifacts=None: FakeServer(uri, **kw))
        return FakeServer.instances

    return install


def test_a_stop_while_the_server_starts_stops_the_server(fake_server):
    servers = fake_server(interrupt_start=True)
    with pytest.raises(KeyboardInterrupt):
        with StudyRun(_config(), serve_tracking=True):
            pass
    assert len(servers) == 1 and servers[0].stopped


def test_a_stop_while_the_parent_run_closes_still_stops_the_server(fake_server, monkeypatch):
    servers = fake_server()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_log_summary_plots", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with StudyRun(_config(), serve_tracking=True) as run:
            assert run.tracking_uri == _config().tracking_uri  # the (fake) server's URI
    assert servers[0].stopped


def test_a_failing_teardown_is_a_warning_and_the_run_keeps_its_result(monkeypatch, caplog):
    def down(self, *args, **kwargs):
        raise RuntimeError("tracking store went away (simulated)")

    monkeypatch.setattr(MLflowTracker, "finish", down)
    with caplog.at_level(logging.WARNING, logger="autolambda"):
        result = run_study(_config())
    assert result.new_trials == 3 and result.parent_run_id
    assert "could not close the MLflow parent run: tracking store went away" in caplog.text
    # The parent run stays RUNNING (resumable), the children are all there.
    client = MlflowClient(_config().tracking_uri)
    assert client.get_run(result.parent_run_id).info.status == "RUNNING"


def test_a_worker_leaves_the_parent_run_open_for_its_coordinator():
    config = _config()
    with StudyRun(config) as coordinator:
        pass
    parent = coordinator.result.parent_run_id
    client = MlflowClient(config.tracking_uri)
    assert client.get_run(parent).info.status == "FINISHED"
    result = run_study(config.__class__(**{**config.__dict__, "trials": 5}), sampler_seed=1001, close_parent=False)
    assert result.parent_run_id == parent and result.new_trials == 5
    assert client.get_run(parent).info.status == "RUNNING"  # the worker reopened it and left it to the coordinator


def test_the_parent_run_names_tensorflows_thread_pools_when_it_trained_with_them(monkeypatch):
    import sys
    import types

    threading = types.SimpleNamespace(get_intra_op_parallelism_threads=lambda: 1, get_inter_op_parallelism_threads=lambda: 2)
    monkeypatch.setitem(sys.modules, "tensorflow", types.SimpleNamespace(config=types.SimpleNamespace(threading=threading)))
    config = _config(tracking_uri="sqlite:///mlflow.db")
    with StudyRun(config) as run:
        pass
    tags = MlflowClient(config.tracking_uri).get_run(run.result.parent_run_id).data.tags
    assert tags["tensorflow.threads.intra_op"] == "1" and tags["tensorflow.threads.inter_op"] == "2"
    monkeypatch.delitem(sys.modules, "tensorflow")  # a surrogate study in a process without TensorFlow: no such tags
    config = _config(tracking_uri="sqlite:///mlflow2.db")
    with StudyRun(config) as run:
        pass
    assert not any(k.startswith("tensorflow.") for k in MlflowClient(config.tracking_uri).get_run(run.result.parent_run_id).data.tags)
