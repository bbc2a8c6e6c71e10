"""The Optuna study of a ``StudyConfig``: its storage, checked against the settings stored
with it, created or resumed, and its trials left RUNNING by a process that is gone.

A study remembers the settings that define what its trials mean (``CONFIG_KEY``), so a
resumed run with other settings is refused before anything is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolambda.errors import AutolambdaError, ConfigError
from autolambda.base.mappings import flatten
from autolambda.base.processes import is_alive
from autolambda.base.storage import StaleTrialHandler, make_storage
from autolambda.core.trials import CONFIG_KEY, ORPHANED_KEY, RUN_CONFIG_KEY, WORKER_KEY
from autolambda.run.config import StudyConfig
from autolambda.base.stores import absolute_sqlite, check_storage_url, redact, short_error
from autolambda.search.factories import make_pruner, make_sampler

# Fingerprint keys that studies made by earlier versions lack, with the behaviour they had.
LEGACY_SETTINGS = {"pool_val": False, "lr_schedule": "constant", "seed_blocks": 0, "planted_wall_alpha": None}
#: The same for a transfer study made before each rung had its own seed.
LEGACY_TRANSFER_SETTINGS = {"rung_seeds": "shared"}


def check_study(config: StudyConfig) -> bool:
    """Whether the study exists; raise if it exists with other settings. Writes nothing.

    Raises:
        ConfigError: the name exists with another configuration or direction.
        AutolambdaError: the storage cannot be reached.
    """
    url = config.storage
    # A storage file that does not exist holds no study; opening it would create it.
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix) and not Path(url[len(prefix):]).exists():
            return False
    summaries = _retry(lambda: optuna.get_all_study_summaries(make_storage(url)), url)
    existing = {s.study_name: s for s in summaries}
    if config.name not in existing:
        return False
    summary = existing[config.name]
    if summary.directions != [optuna.study.StudyDirection.MINIMIZE]:
        raise ConfigError(
            f"study {config.name!r} exists with direction(s) {[d.name for d in summary.directions]}; "
            "autolambda minimises the validation loss: pick another --study-name."
        )
    stored = summary.user_attrs.get(CONFIG_KEY)
    if stored is not None:
        # Settings added since a study was made: what the older version did.
        transfer = stored.get("mode") == "transfer"
        legacy = LEGACY_SETTINGS | (LEGACY_TRANSFER_SETTINGS if transfer else {})
        if transfer:  # a pair's rungs have seeds of their own: no seed blocks in its fingerprint
            legacy = {k: v for k, v in legacy.items() if k != "seed_blocks"}
        stored = legacy | {"data_seed": stored.get("seed")} | stored
        diff = _diff(stored, config.fingerprint())
        if diff:
            hint = (f" (a study made before seed blocks resumes with --seed-blocks {stored['seed_blocks']})"
                    if "seed_blocks" in diff and not transfer else "")
            raise ConfigError(
                f"study {config.name!r} exists with a different configuration ({diff}){hint}; "
                "use --study-name to start a new study."
            )
    return True


def open_study(config: StudyConfig, *, on_stale: Any = None, sampler_seed: int | None = None) -> optuna.Study:
    """Create the study, or load it. Call ``check_study`` first: it refuses a study that
    exists with other settings, before anything is written."""
    storage = _retry(lambda: make_storage(config.storage, heartbeat_seconds=config.heartbeat_seconds, on_stale=on_stale), config.storage)
    study = optuna.create_study(
        study_name=config.name,
        storage=storage,
        sampler=make_sampler(config.sampler, config.seed if sampler_seed is None else sampler_seed, balance=config.balance_widths),
        # A transfer trial reports once per rung of its ladder, a search trial once per epoch.
        pruner=make_pruner(config.pruner, _n_steps(config), stratify=config.stratify_pruner),
        direction="minimize",
        load_if_exists=True,
    )
    if CONFIG_KEY not in study.user_attrs:
        study.set_user_attr(CONFIG_KEY, config.fingerprint())
    # The full effective configuration of the latest run (budget, stores), secrets redacted.
    study.set_user_attr(RUN_CONFIG_KEY, config.to_dict() | {"storage": redact(config.storage), "tracking_uri": redact(config.tracking_uri)})
    return study


def _retry(fn: Callable[[], Any], url: str, attempts: int = 4) -> Any:
    """Call ``fn``; retry briefly. Workers starting together on a fresh database race to
    create Optuna's tables (a unique violation for all but one): a moment later it works."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts - 1:
                raise AutolambdaError(f"Optuna storage {redact(url)} is not reachable: {short_error(exc)}") from None
            time.sleep(0.5 * (attempt + 1))


def fail_orphaned_trials(study: optuna.Study, tracker: Any = None) -> list[int]:
    """Mark FAIL (and retry) the RUNNING trials of processes on this machine that are gone.

    A worker killed outright (SIGKILL, a crash) leaves its trial RUNNING; storages
    without heartbeats (SQLite, journal) never fail it. Each trial records
    ``host:pid`` of its process (user attribute ``worker``), so a later run on the same
    machine can tell. Trials of other machines are left to the RDB heartbeat.
    """
    failed = []
    for trial in orphaned_trials(study):
        try:
            study._storage.set_trial_user_attr(trial._trial_id, ORPHANED_KEY, True)
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except Exception:  # another process got there first
            continue
        failed.append(trial.number)
        # Retried and logged as a trial failed by the heartbeat would be.
        StaleTrialHandler(tracker)(study, study._storage.get_trial(trial._trial_id))
    return failed


def orphaned_trials(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials whose process (``host:pid`` in user attribute ``worker``) ran on
    this machine and is gone: nothing will ever finish them."""
    import socket

    host = socket.gethostname()
    out = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name, _, pid = str(trial.user_attrs.get(WORKER_KEY, "")).rpartition(":")
        if name == host and pid.isdigit() and not is_alive(int(pid)):
            out.append(trial)
    return out


def _n_steps(config: StudyConfig) -> int:
    if config.mode == "transfer":
        return len(config.ladder or config.space.widths)
    return config.epochs


def _diff(stored: dict[str, Any], current: dict[str, Any]) -> str:
    a = {k: json.loads(json.dumps(v)) for k, v in flatten(stored).items()}  # tuples as lists
    b = {k: json.loads(json.dumps(v)) for k, v in flatten(current).items()}
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in keys[:4])


def load_study(study_name: str | None, storage: str) -> optuna.Study:
    """Load ``study_name`` (or the storage's only study) with a clear error when missing."""
    check_storage_url(storage)
    storage = absolute_sqlite(storage)
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).exists():
        raise AutolambdaError(f"no Optuna storage at {storage[len('sqlite:///'):]}: run `autolambda tune` first or pass --storage.")
    if storage.startswith("journal:") and not Path(storage[len("journal:"):]).exists():
        raise AutolambdaError(f"no Optuna journal at {storage[len('journal:'):]}: run `autolambda tune` first or pass --storage.")
    backend = make_storage(storage)
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(backend)]
    except Exception as exc:
        raise AutolambdaError(f"Optuna storage {redact(storage)} is not reachable: {short_error(exc)}") from None
    if study_name is None:
        if len(names) == 1:
            study_name = names[0]
        elif "digits-l2" in names:
            study_name = "digits-l2"
        else:
            raise AutolambdaError(f"{redact(storage)} holds {len(names)} studies ({', '.join(names) or 'none'}); name one with --study-name.")
    if study_name not in names:
        raise AutolambdaError(f"no study {study_name!r} in {redact(storage)} (studies there: {', '.join(names) or 'none'}).")
    return optuna.load_study(study_name=study_name, storage=backend)
