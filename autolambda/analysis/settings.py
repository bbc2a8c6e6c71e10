"""The analysis' settings, with their defaults written once.

``autolambda analyze``, ``tune``'s summary plots and the precision stop read a study
through ``AnalysisConfig``; the score window comes from the settings stored with the
study (``AnalysisConfig.for_study``). The design sampler's fit uses no per-trial noise,
so it reads the records with the default window.

>>> AnalysisConfig().wall_cost, AnalysisConfig.for_study({"score_window": 3}).score_window
(0.25, 3)
>>> AnalysisConfig(tolerance=1.5)
Traceback (most recent call last):
...
autolambda.errors.ConfigError: tolerance must lie in [0, 1) but got 1.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from autolambda.core.choices import DEFAULT_SCORE_WINDOW
from autolambda.errors import ConfigError


@dataclass(frozen=True)
class AnalysisConfig:
    """How a study's trials are read and summarised.

    Attributes:
        tolerance: Relative width of the per-size near-best band (0.02: within 2 % of the best).
        min_trials: Complete trials a size needs for its own row to count as located.
        wall_cost: The wall is where a trial's loss exceeds its size's floor by this share.
        score_window: Epochs the ``final`` score averaged (the study's own setting): a
            trial's noise is measured over them.
        n_params: Parameter counts to recommend a lambda for (empty: the study's sizes).
    """

    tolerance: float = 0.02
    min_trials: int = 4
    wall_cost: float = 0.25
    score_window: int = DEFAULT_SCORE_WINDOW
    n_params: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance < 1:
            raise ConfigError(f"tolerance must lie in [0, 1) but got {self.tolerance!r}.")
        if isinstance(self.min_trials, bool) or not isinstance(self.min_trials, int) or self.min_trials < 1:
            raise ConfigError(f"min_trials must be an integer >= 1 but got {self.min_trials!r}.")
        if not 0 < self.wall_cost <= 10:
            raise ConfigError(f"wall_cost must lie in (0, 10] but got {self.wall_cost!r}.")
        if isinstance(self.score_window, bool) or not isinstance(self.score_window, int) or self.score_window < 1:
            raise ConfigError(f"score_window must be an integer >= 1 but got {self.score_window!r}.")
        for n in self.n_params:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"--n-params must be a positive parameter count but got {n!r}.")
        object.__setattr__(self, "n_params", tuple(self.n_params))

    @classmethod
    def for_study(cls, stored: Mapping[str, Any] | None, **settings: Any) -> "AnalysisConfig":
        """The settings for a study whose stored configuration (``autolambda_config``) is
        ``stored``: its score window, the rest from ``settings`` or the defaults."""
        window = (stored or {}).get("score_window", DEFAULT_SCORE_WINDOW)
        return cls(**({"score_window": int(window)} | settings))

    def fit_options(self) -> dict[str, Any]:
        """The keyword arguments of ``analyze_records`` these settings fix."""
        out = asdict(self)
        out.pop("score_window")
        return out


#: The defaults, for signatures that take the settings one by one.
DEFAULTS = AnalysisConfig()
