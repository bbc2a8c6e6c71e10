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
from typing import Any

from autolambda.core import choices as C
from autolambda.core.space import SearchSpace
from autolambda.errors import ConfigError
from autolambda.base.stores import absolute_sqlite, absolute_storage, check_storage_url, check_tracking_uri, redact


#: The integer settings and the least value each takes, checked in this order.
INTEGER_MINIMA = {"trials": 1, "epochs": 1, "batch_size": 1, "score_window": 1, "eval_every": 1, "replicate_every": 0,
                  "seed": 0, "data_seed": 0, "seed_blocks": 0, "max_failures": 1, "workers": 1, "heartbeat_seconds": 1}


@dataclass(frozen=True)
class StudyConfig:
    """Everything ``autolambda tune`` needs; the defaults are the embedded digits study."""

    # Name of the Optuna study; by default derived from dataset and penalty, so runs with
    # other settings do not land in the same study by accident.
    study_name: str | None = None
    # Optuna storage: a SQLite file in the current folder, or postgresql://... to share.
    storage: str = C.DEFAULT_STORAGE  # made absolute by load_config
    tracking_uri: str = C.DEFAULT_TRACKING_URI
    experiment: str = C.DEFAULT_EXPERIMENT
    # Total finished (complete + pruned) trials the study holds when tune ends.
    trials: int = C.DEFAULT_TRIALS
    # Seconds after which tune stops starting new trials (None: no limit).
    timeout: float | None = None
    dataset: str = C.DEFAULT_DATASET
    # Small training set: a net that can overfit is one where the penalty matters.
    n_train: int | None = C.DEFAULT_N_TRAIN
    n_val: int | None = None
    # The training images n_train leaves out join the validation set (when the data have
    # no validation split of their own): a less noisy score at no training cost.
    pool_val: bool = True
    epochs: int = C.DEFAULT_EPOCHS
    batch_size: int = C.DEFAULT_BATCH_SIZE
    # Seed of the sampler and of each trial's initialisation and batch order.
    seed: int = C.DEFAULT_SEED
    # Seeds per width (common random numbers): a width's trials share these few seeds, so
    # the analysis removes each seed's offset (on digits most of the seed-to-seed noise).
    # 0: every trial its own seed. Search mode only.
    seed_blocks: int = C.DEFAULT_SEED_BLOCKS
    # Reference parameter count; None: geometric mean of the space's smallest and largest N.
    n_ref: float | None = None
    # Seed of the data split and subsets: which 300 images train, which score. Fixed, so
    # that --seed repeats the study on the same data (another data_seed asks whether the
    # answer holds on other images: on digits, a further source of spread).
    data_seed: int = 0
    # final: mean of the last epochs (default); best: best epoch (early stopping hides lambda).
    score: str = C.DEFAULT_SCORE
    score_window: int = C.DEFAULT_SCORE_WINDOW
    # The validation pass runs every this many epochs, and at each scored epoch.
    eval_every: int = C.DEFAULT_EVAL_EVERY
    # constant (the default), or cosine: the step size decays to ~0 over the epochs, so
    # the scored last epochs are calm (halves the seed noise of width 64 on digits, but
    # also shrinks the narrow nets' dip: docs/method.md, "How a trial is scored, and why").
    lr_schedule: str = C.DEFAULT_LR_SCHEDULE
    pruner: str = C.DEFAULT_PRUNER  # the measurements behind each default: core/choices.py
    sampler: str = C.DEFAULT_SAMPLER
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
    trainer: str = C.DEFAULT_TRAINER
    # Worker processes on this machine sharing the study (journal file by default).
    workers: int = C.DEFAULT_WORKERS
    # PostgreSQL/MySQL storage: running trials send a heartbeat this often (seconds); a
    # trial whose worker died is failed after two missed beats and retried.
    heartbeat_seconds: int = 60
    # A failing trial is recorded and the study goes on; this many failures in a row
    # stop it (something is wrong with the set-up, not with one trial).
    max_failures: int = C.DEFAULT_MAX_FAILURES
    # Only with trainer = "surrogate": the exponent the stand-in trainer plants.
    planted_alpha: float = 0.0
    # Only with trainer = "surrogate": the exponent of its wall (None: planted_alpha).
    planted_wall_alpha: float | None = None
    # Only with trainer = "surrogate": seconds each epoch takes, to stand in for training
    # time in tests and benchmarks (interruption, workers).
    surrogate_epoch_seconds: float = 0.0
    # Only with trainer = "surrogate": its seed-to-seed noise SD and the depth of its dip
    # (None: the defaults measured on digits; 0 and 0.15 give a clean surrogate, signal-to-noise ~30).
    surrogate_seed_noise: float | None = None
    surrogate_dip: float | None = None
    # search: each trial one width (the default); transfer: each trial one (lambda0,
    # alpha) on every width of the ladder, scored by the mean loss (does it transfer?).
    mode: str = C.DEFAULT_MODE
    # Widths of a transfer trial, in training order; None: every width of the space.
    ladder: tuple[int, ...] | None = None
    space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self) -> None:
        for name, minimum in INTEGER_MINIMA.items():
            _int_at_least(name, getattr(self, name), minimum)
        if self.precision is not None and not (_is_number(self.precision) and 0 < self.precision <= 5):
            raise ConfigError(f"precision must be a half-width in (0, 5] but got {self.precision!r}.")
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
        if self.planted_wall_alpha is not None and not _is_number(self.planted_wall_alpha):
            raise ConfigError(f"planted_wall_alpha must be a number but got {self.planted_wall_alpha!r}.")
        _one_of("score", self.score, C.SCORES)
        _one_of("lr_schedule", self.lr_schedule, C.LR_SCHEDULES)
        _one_of("pruner", self.pruner, C.PRUNERS)
        _one_of("sampler", self.sampler, C.SAMPLERS)
        _one_of("trainer", self.trainer, C.TRAINERS)
        _one_of("mode", self.mode, C.MODES)
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
            raise ConfigError(f"dataset must be a name ({', '.join(C.DATASETS)}) or a path but got {self.dataset!r}.")
        check_storage_url(self.storage)
        check_tracking_uri(self.tracking_uri)

    @property
    def name(self) -> str:
        """The study name in effect."""
        if self.study_name:
            return self.study_name
        penalty = self.space.penalty if isinstance(self.space.penalty, str) else "mixed"
        stem = Path(self.dataset).stem if self.dataset not in C.DATASETS else self.dataset
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
            out.pop("seed_blocks")  # a pair's rungs have seeds of their own
            # Each rung trains with its own seed (autolambda.search.transfer); studies made before
            # shared one seed per pair (study.LEGACY_TRANSFER_SETTINGS), so their rungs are not independent.
            out["rung_seeds"] = "independent"
        return out

    def objective(self):
        """The ``LambdaScalingObjective`` (``TransferObjective`` in transfer mode) this
        configuration describes: every setting the objective takes, by name."""
        from dataclasses import fields as dataclass_fields

        from autolambda.search.objective import LambdaScalingObjective
        from autolambda.search.transfer import TransferObjective

        cls = TransferObjective if self.mode == "transfer" else LambdaScalingObjective
        mine = {f.name for f in dataclass_fields(self)}
        settings = {f.name: getattr(self, f.name) for f in dataclass_fields(cls) if f.init and f.name in mine}
        if self.mode == "transfer":
            settings.pop("seed_blocks")  # a pair's rungs have seeds of their own
            settings["ladder"] = self.ladder
        return cls(**settings)


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
        data["storage"] = C.DEFAULT_WORKERS_STORAGE
    try:
        space = SearchSpace(**space_data)
        config = StudyConfig(**data, space=space)
    except TypeError as exc:  # a wrongly typed value the dataclass could not take
        raise ConfigError(str(exc)) from None
    return replace(config, storage=absolute_storage(config.storage), tracking_uri=absolute_sqlite(config.tracking_uri))


def config_from_dict(data: dict[str, Any]) -> StudyConfig:
    """Inverse of ``StudyConfig.to_dict`` (used to hand a configuration to workers)."""
    data = dict(data)
    space = SearchSpace(**data.pop("space"))
    if data.get("ladder") is not None:
        data["ladder"] = tuple(data["ladder"])
    return StudyConfig(**data, space=space)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_at_least(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum} but got {value!r}.")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} but got {value!r}.")
