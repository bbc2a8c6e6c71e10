"""Opening an Optuna storage from its URL, with heartbeats for the RDB storages."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial


def make_storage(url: str, *, heartbeat_seconds: int | None = None, on_stale: Any = None) -> Any:
    """An Optuna storage for ``url`` (``journal:FILE`` is a journal file storage).

    For an RDB URL (PostgreSQL, MySQL) with ``heartbeat_seconds``, running trials send a
    heartbeat; one whose worker died is marked FAIL after two missed intervals, retried
    (``RetryHeartbeatStaleTrialCallback``), and passed to ``on_stale`` (MLflow logging).
    SQLite gets no heartbeat: it is for one process.
    """
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
    if heartbeat_seconds and not url.startswith("sqlite"):
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_seconds,
            grace_period=2 * heartbeat_seconds,
            heartbeat_stale_trial_callback=StaleTrialHandler(on_stale),
        )
    return url


class StaleTrialHandler:
    """Retry a trial whose worker died (Optuna's callback), then log it (``on_stale``)."""

    def __init__(self, on_stale: Any = None) -> None:
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
        self.on_stale = on_stale

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.retry(study, trial)
        if self.on_stale is not None:
            self.on_stale(study, trial)
