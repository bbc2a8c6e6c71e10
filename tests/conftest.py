"""Shared fixtures: seeded, quiet, every test in its own folder."""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import optuna
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@pytest.fixture(autouse=True)
def _seed_and_chdir(tmp_path, monkeypatch):
    """Seed Python and NumPy, and run each test in an empty folder (tune writes to cwd)."""
    random.seed(0)
    np.random.seed(0)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def tiny_npz(tmp_path):
    """A small, learnable 2-class .npz data set (8x8 images)."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    x = rng.normal(0, 0.1, size=(60, 8, 8)).astype(np.float32)
    x[y == 1, 2:6, 2:6] += 1.0
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x, y_train=y)
    return path
