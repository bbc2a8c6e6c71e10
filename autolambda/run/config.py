"""``StudyConfig``: a study file (TOML) and CLI options, validated once.

Top-level keys of a study file are ``StudyConfig`` fields; a ``[space]`` table holds the
``SearchSpace`` fields. CLI options override the file. Unknown keys are an error that
names the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from autolambda.training.data import BUILTIN
from autolambda.errors import ConfigError
from autolambda.search.objective import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_EVAL_EVERY,
    DEFAULT_N_TRAIN,
    DEFAULT_SCORE_WINDOW,
    SCORES,
)
from autolambda.core.space import SearchSpace
from autolambda.training.trainers import LR_SCHEDULES, TRAINERS

MODES = ("search", "transfer")
PRUNERS = ("median", "hyperband", "successive-halving", "none")
SAMPLERS = ("design", "tpe", "random", "qmc", "gp")
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "mysql", "mysql+pymysql")


@dataclass(frozen=True)
class StudyConfig:
    """Everything ``autolambda tune`` needs; the defaults are the embedded digits study."""

    # Name of the Optuna study; by default derived from dataset and penalty, so runs with
    # other settings do not land in the same study by accident.
    study_name: str | None = None
    # Optuna storage: a SQLite file in the current folder, or postgresql://... to share.
    storage: str = "sqlite:///autolambda.db"  # made absolute by load_config
    # MLflow tracking store; MLflow 3.13+ refuses a plain ./mlruns, SQLite is its default.
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "autolambda"
    # Total finished (complete + pruned) trials the study holds when tune ends.
    trials: int = 100
    # Seconds after which tune stops starting new trials (None: no limit).
    timeout: float | None = None
    dataset: str = "digits"
    # Small training set: a net that can overfit is one where the penalty matters.
    n_train: int | None = DEFAULT_N_TRAIN
    n_val: int | None = None
    # The training images n_train leaves out join the validation set (when the data have
    # no validation split of their own): a less noisy score at no training cost.
    pool_val: bool = True
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    # Seed of the sampler and of each trial's initialisation and batch order.
    seed: int = 0
    # Seed of the data split and subsets: which 300 images train, which score. Fixed, so
    # that --seed repeats the study on the same data (another data_seed asks whether the
    # answer holds on other images: on digits, a further source of spread).
    data_seed: int = 0
    # final: mean of the last epochs (default); best: best epoch (early stopping hides lambda).
    score: str = "final"
    score_window: int = DEFAULT_SCORE_WINDOW
    # The validation pass runs every this many epochs, and at each scored epoch.
    eval_every: int = DEFAULT_EVAL_EVERY
    # constant (the default), or cosine: the step size decays to ~0 over the epochs, so
    # the scored last epochs are calm (halves the seed noise of width 64 on digits, but
    # also shrinks the narrow nets' dip: README, "The default regime").
    lr_schedule: str = "constant"
    # none: measured on digits (scripts/pruning_replay.py), median pruning saved 29 % of
    # the epochs and widened the wall's alpha interval from 0.46 to 1.32 (it cuts the
    # trials on the wall, which carry the answer): worse precision per CPU-second.
    pruner: str = "none"
    # design: width-balanced TPE to start, then lambda_eff drawn where the joint fit says
    # the loss depends on lambda (autolambda.search.design); tpe, random, qmc, gp: Optuna's.
    sampler: str = "design"
    # Every this many finished trials, one earlier trial's settings are trained again with
    # another seed, so the study measures its own noise (0: no replicates).
    replicate_every: int = 10
    # Stop adding trials once alpha's 95 % interval (the optimum's, else the wall's) has
    # at most this half-width; None: run to `trials`. Checked every few trials.
    precision: float | None = None
    # Prune a trial only against trials of its own width (wide nets are not "better
    # early" than narrow ones for lambda's sake); off: Optuna's pruner over all trials.
    stratify_pruner: bool = True
    # Widths take turns and the sampler works per width, so every size gets trials;
    # off: the sampler also picks the width (and drifts to the best one).
    balance_widths: bool = True
    trainer: str = "keras"
    # Worker processes on this machine sharing the study (journal file by default).
    workers: int = 1
    # PostgreSQL/MySQL storage: running trials send a heartbeat this often (seconds); a
    # trial whose worker died is failed after two missed beats and retried.
    heartbeat_seconds: int = 60
    # A failing trial is recorded and the study goes on; this many failures in a row
    # stop it (something is wrong with the set-up, not with one trial).
    max_failures: int = 5
    # Only with trainer = "surrogate": the exponent the stand-in trainer plants.
    planted_alpha: float = 0.0
    # Only with trainer = "surrogate": seconds each epoch takes, to stand in for training
    # time in tests and benchmarks (interruption, workers).
    surrogate_epoch_seconds: float = 0.0
    # Only with trainer = "surrogate": its seed-to-seed noise SD and the depth of its dip
    # (None: the defaults measured on digits; 0 and 0.15 give a clean surrogate, signal-to-noise ~30).
    surrogate_seed_noise: float | None = None
    surrogate_dip: float | None = None
    # Reference parameter count; None: geometric mean of the space's smallest and largest N.
    n_ref: float | None = None
    # search: each trial one width (the default); transfer: each trial one (lambda0,
    # alpha) on every width of the ladder, scored by the mean loss (does it transfer?).
    mode: str = "search"
    # Widths of a transfer trial, in training order; None: every width of the space.
    ladder: tuple[int, ...] | None = None
    space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self) -> None:
        _int_at_least("trials", self.trials, 1)
        _int_at_least("epochs", self.epochs, 1)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("score_window", self.score_window, 1)
        _int_at_least("eval_every", self.eval_every, 1)
        _int_at_least("replicate_every", self.replicate_every, 0)
        if self.precision is not None and not (_is_number(self.precision) and 0 < self.precision <= 5):
            raise ConfigError(f"precision must be a half-width in (0, 5] but got {self.precision!r}.")
        _int_at_least("seed", self.seed, 0)
        _int_at_least("data_seed", self.data_seed, 0)
        _int_at_least("max_failures", self.max_failures, 1)
        _int_at_least("workers", self.workers, 1)
        _int_at_least("heartbeat_seconds", self.heartbeat_seconds, 1)
        if self.workers > 1 and self.storage.startswith("sqlite"):
            raise ConfigError(
                f"storage {redact(self.storage)!r} is SQLite, which does not take several writers well; "
                "with --workers use journal:FILE (the default) or postgresql://..."
            )
        for name in ("n_train", "n_val"):
            if getattr(self, name) is not None:
                _int_at_least(name, getattr(self, name), 2)
        if self.timeout is not None and not (_is_number(self.timeout) and self.timeout > 0):
            raise ConfigError(f"timeout must be a positive number of seconds but got {self.timeout!r}.")
        if self.n_ref is not None and not (_is_number(self.n_ref) and self.n_ref > 0):
            raise ConfigError(f"n_ref must be a positive number but got {self.n_ref!r}.")
        if not (_is_number(self.surrogate_epoch_seconds) and self.surrogate_epoch_seconds >= 0):
            raise ConfigError(f"surrogate_epoch_seconds must be a number >= 0 but got {self.surrogate_epoch_seconds!r}.")
        for name in ("surrogate_seed_noise", "surrogate_dip"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0 <= value <= 5):
                raise ConfigError(f"{name} must be a number in [0, 5] but got {value!r}.")
        if not _is_number(self.planted_alpha):
            raise ConfigError(f"planted_alpha must be a number but got {self.planted_alpha!r}.")
        _one_of("score", self.score, SCORES)
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _one_of("pruner", self.pruner, PRUNERS)
        _one_of("sampler", self.sampler, SAMPLERS)
        _one_of("trainer", self.trainer, TRAINERS)
        _one_of("mode", self.mode, MODES)
        if self.ladder is not None:
            ladder = tuple(self.ladder) if isinstance(self.ladder, (list, tuple)) else (self.ladder,)
            if len(ladder) < 2 or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in ladder):
                raise ConfigError(f"ladder must list at least two positive integer widths but got {self.ladder!r}.")
            object.__setattr__(self, "ladder", ladder)
        for name in ("stratify_pruner", "balance_widths", "pool_val"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false but got {getattr(self, name)!r}.")
        if self.study_name is not None and (not isinstance(self.study_name, str) or not self.study_name.strip()):
            raise ConfigError(f"study_name must be a non-empty string but got {self.study_name!r}.")
        if not isinstance(self.experiment, str) or not self.experiment.strip():
            raise ConfigError(f"experiment must be a non-empty string but got {self.experiment!r}.")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a name ({', '.join(BUILTIN)}) or a path but got {self.dataset!r}.")
        check_storage_url(self.storage)
        check_tracking_uri(self.tracking_uri)

    @property
    def name(self) -> str:
        """The study name in effect."""
        if self.study_name:
            return self.study_name
        penalty = self.space.penalty if isinstance(self.space.penalty, str) else "mixed"
        stem = Path(self.dataset).stem if self.dataset not in BUILTIN else self.dataset
        suffix = ("-surrogate" if self.trainer == "surrogate" else "") + ("-transfer" if self.mode == "transfer" else "")
        return f"{stem}-{penalty}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (the space as a nested dict)."""
        out = asdict(self)
        out["space"] = self.space.to_dict()
        out["study_name"] = self.name
        return out

    def fingerprint(self) -> dict[str, Any]:
        """The settings that define what a study's trials mean.

        A study resumed with another fingerprint would mix incomparable trials; budget,
        time limit and where things are stored are not part of it.
        """
        out = self.to_dict()
        for key in ("trials", "timeout", "storage", "tracking_uri", "experiment", "study_name", "pruner", "stratify_pruner", "max_failures", "surrogate_epoch_seconds", "workers", "heartbeat_seconds", "precision", "eval_every", "replicate_every"):
            out.pop(key)
        if self.mode == "transfer":
            # Each rung trains with its own seed (autolambda.search.transfer); studies made before
            # shared one seed per pair (study.LEGACY_TRANSFER_SETTINGS), so their rungs are not independent.
            out["rung_seeds"] = "independent"
        return out

    def objective(self):
        """The ``LambdaScalingObjective`` this configuration describes."""
        from autolambda.search.objective import LambdaScalingObjective
        from autolambda.search.transfer import TransferObjective

        extra = {"ladder": self.ladder} if self.mode == "transfer" else {}
        return (TransferObjective if self.mode == "transfer" else LambdaScalingObjective)(
            self.dataset,
            self.space,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            data_seed=self.data_seed,
            n_train=self.n_train,
            n_val=self.n_val,
            pool_val=self.pool_val,
            score=self.score,
            score_window=self.score_window,
            eval_every=self.eval_every,
            lr_schedule=self.lr_schedule,
            trainer=self.trainer,
            planted_alpha=self.planted_alpha,
            surrogate_epoch_seconds=self.surrogate_epoch_seconds,
            surrogate_seed_noise=self.surrogate_seed_noise,
            surrogate_dip=self.surrogate_dip,
            n_ref=self.n_ref,
            **extra,
        )


def load_config(study_file: str | Path | None = None, **overrides: Any) -> StudyConfig:
    """Read a study file (if any) and apply ``overrides`` (``None`` values are ignored).

    ``overrides`` may hold StudyConfig fields and, for convenience, ``penalty`` and
    ``learning_rate``, which go into the space.
    """
    data: dict[str, Any] = {}
    if study_file is not None:
        path = Path(study_file)
        if not path.is_file():
            raise ConfigError(f"study file {str(study_file)!r} does not exist.")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"study file {str(study_file)!r} is not valid TOML: {exc}.") from None
    space_data = data.pop("space", {})
    if not isinstance(space_data, dict):
        raise ConfigError("study file key 'space' must be a table ([space]).")
    known = {f.name for f in fields(StudyConfig)} - {"space"}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown key {key!r} in study file; allowed: {', '.join(sorted(known | {'space'}))}.")
    space_known = {f.name for f in fields(SearchSpace)}
    for key in space_data:
        if key not in space_known:
            raise ConfigError(f"unknown key 'space.{key}' in study file; allowed: {', '.join(sorted(space_known))}.")
    for key in ("penalty", "learning_rate"):
        if overrides.get(key) is not None:
            space_data[key] = overrides.pop(key)
        else:
            overrides.pop(key, None)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(data.get("workers"), int) and data["workers"] > 1 and "storage" not in data:
        # Several writers: Optuna's journal file, not SQLite (see Optuna's FAQ).
        data["storage"] = "journal:autolambda.journal"
    try:
        space = SearchSpace(**space_data)
        config = StudyConfig(**data, space=space)
    except TypeError as exc:  # a wrongly typed value the dataclass could not take
        raise ConfigError(str(exc)) from None
    return replace(config, storage=absolute_storage(config.storage), tracking_uri=absolute_sqlite(config.tracking_uri))


def absolute_storage(url: str) -> str:
    """An Optuna storage URL with a relative SQLite or journal path made absolute."""
    if url.startswith("journal:") and not Path(url[len("journal:"):]).is_absolute():
        return "journal:" + str(Path(url[len("journal:"):]).resolve())
    return absolute_sqlite(url)


def config_from_dict(data: dict[str, Any]) -> StudyConfig:
    """Inverse of ``StudyConfig.to_dict`` (used to hand a configuration to workers)."""
    data = dict(data)
    space = SearchSpace(**data.pop("space"))
    if data.get("ladder") is not None:
        data["ladder"] = tuple(data["ladder"])
    return StudyConfig(**data, space=space)


def absolute_sqlite(url: str) -> str:
    """``sqlite:///rel.db`` made absolute against the current folder.

    Relative SQLite URLs name a different file whenever the folder changes, and MLflow
    caches one store per URL string in a process; an absolute path avoids both.
    """
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix):]
        if rest and not rest.startswith(":memory:"):
            return prefix + str(Path(rest).resolve())
    return url


def check_storage_url(url: str) -> None:
    """Raise ``ConfigError`` unless ``url`` looks like an Optuna storage URL or journal file."""
    if not isinstance(url, str) or not url:
        raise ConfigError(f"storage must be a URL such as sqlite:///autolambda.db but got {url!r}.")
    if url.startswith("journal:"):
        if not url[len("journal:"):]:
            raise ConfigError("storage 'journal:' needs a file path, e.g. journal:./autolambda.journal.")
        return
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if "://" not in url or scheme not in STORAGE_SCHEMES:
        raise ConfigError(
            f"storage {redact(url)!r} is not a storage URL; use sqlite:///FILE, "
            "postgresql://USER:PASSWORD@HOST/DB or journal:FILE."
        )
    if scheme == "sqlite" and not url.startswith("sqlite:///"):
        raise ConfigError(f"storage {redact(url)!r}: a SQLite URL needs three slashes, e.g. sqlite:///autolambda.db.")
    if scheme.startswith("postgresql") and not parts.hostname and "host=" not in parts.query:
        raise ConfigError(f"storage {redact(url)!r} names no host; e.g. postgresql://user@127.0.0.1:5432/optuna.")


def check_stores_usable(storage: str, tracking_uri: str | None = None, *, folders: Sequence[Path] = ()) -> None:
    """Raise ``ConfigError`` (one line) unless every store can be used: a SQLite or journal
    file whose folder exists and takes new files, a server that answers on its port, and
    each of ``folders`` (reports) creatable. Leaves nothing behind (a probe file is
    created and removed) and imports neither Optuna, MLflow nor TensorFlow, so ``tune``
    runs it before it creates any store: a bad second store then leaves no first one.
    A server reached through a Unix socket or an HTTP proxy is left to its client."""
    for label, url in (("storage", storage), ("tracking URI", tracking_uri)):
        if not url:
            continue
        if url.startswith("journal:"):
            _check_file_store(label, url, Path(url[len("journal:"):]))
        elif url.startswith("sqlite:///"):
            rest = url[len("sqlite:///"):].split("?", 1)[0]
            if rest and not rest.startswith(":memory:"):
                _check_file_store(label, url, Path(rest))
        else:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            try:
                port = parts.port or next((p for s, p in DEFAULT_PORTS.items() if scheme.startswith(s)), None)
            except ValueError:
                raise ConfigError(f"{label} {redact(url)!r} has an invalid port; use HOST:PORT with a port in 1..65535.") from None
            via_socket = any(key in parts.query for key in ("host=", "unix_socket="))
            via_proxy = scheme.startswith("http") and _proxied(parts.hostname or "")
            if parts.hostname and port and not via_socket and not via_proxy:
                _check_reachable(label, url, parts.hostname, port)
    for folder in folders:
        existing = Path(folder).resolve()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not _takes_files(existing):
            raise ConfigError(f"cannot write the report folder {folder}: {existing} is not a writable folder.")


DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "https": 443, "http": 80}


def _proxied(host: str) -> bool:
    """Whether HTTP clients (MLflow's) would reach ``host`` through a proxy."""
    import urllib.request

    return bool(urllib.request.getproxies()) and not urllib.request.proxy_bypass(host)


def _takes_files(folder: Path) -> bool:
    """Whether a new file can be created in ``folder`` (tried, not guessed from mode
    bits: a read-only mount ignores them, and root ignores a folder's mode)."""
    import os
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".autolambda-check-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _check_file_store(label: str, url: str, path: Path) -> None:
    path = path.expanduser().resolve()
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{label} {redact(url)!r}: {path} is a folder; name a file in it.")
    if not folder.is_dir():
        raise ConfigError(f"{label} {redact(url)!r}: the folder {folder} does not exist; create it or choose another path.")
    # SQLite writes a journal beside its file, so the folder must take new files even
    # when the database already exists.
    if not _takes_files(folder) or (path.exists() and not _writable_file(path)):
        raise ConfigError(f"{label} {redact(url)!r}: cannot write in {folder} (read-only or no permission); "
                          "choose a writable folder.")


def _writable_file(path: Path) -> bool:
    try:
        with open(path, "r+b"):
            return True
    except OSError:
        return False


def _check_reachable(label: str, url: str, host: str, port: int, timeout: float = 3.0) -> None:
    """A server down is not bad input (exit 1, not 2), but it is found before anything starts."""
    import socket

    from autolambda.errors import AutolambdaError

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        store = "Optuna storage" if label == "storage" else "MLflow tracking store"
        raise AutolambdaError(f"{store} {redact(url)} is not reachable: nothing answers on {host}:{port} ({reason}); "
                              "is the server running?") from None


def check_tracking_uri(uri: str) -> None:
    """Raise ``ConfigError`` unless ``uri`` is an MLflow tracking URI this tool can use."""
    if not isinstance(uri, str) or not uri:
        raise ConfigError(f"tracking_uri must be a URI such as sqlite:///mlflow.db but got {uri!r}.")
    scheme = urlsplit(uri).scheme.lower()
    allowed = ("sqlite", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "mysql", "http", "https", "databricks")
    if scheme not in allowed or "://" not in uri and scheme != "databricks":
        raise ConfigError(
            f"tracking URI {redact(uri)!r} is not supported; use sqlite:///mlflow.db, http://HOST:PORT "
            "or postgresql://... (MLflow 3.13+ refuses a plain ./mlruns folder)."
        )
    if scheme == "sqlite" and not uri.startswith("sqlite:///"):
        raise ConfigError(f"tracking URI {redact(uri)!r}: a SQLite URI needs three slashes, e.g. sqlite:///mlflow.db.")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log and print).

    Example:
        >>> redact("postgresql://al:secret@127.0.0.1/optuna")
        'postgresql://al:***@127.0.0.1/optuna'
    """
    if not isinstance(url, str):
        return repr(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    out = url
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        out = parts._replace(netloc=netloc).geturl()
    import re

    # libpq-style password=... in query strings
    return re.sub(r"(password=)[^&;\s]+", r"\1***", out, flags=re.IGNORECASE)


def short_error(exc: BaseException) -> str:
    """The first line of an exception's message, secrets redacted, at most 300 characters."""
    lines = redact(str(exc)).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_at_least(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum} but got {value!r}.")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} but got {value!r}.")
