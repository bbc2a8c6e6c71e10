"""Optuna callbacks that end a study: the trial budget, the precision target, a failure streak."""

from __future__ import annotations

import logging
from typing import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolambda.core.trials import CONFIG_KEY, ERROR_KEY, FINISHED
from autolambda.errors import AutolambdaError
from autolambda.base.stores import short_error
from autolambda.analysis.settings import AnalysisConfig
from autolambda.analysis.summary import analyze_trials


log = logging.getLogger("autolambda")


class PrecisionStop:
    """Optuna callback: stop the study once alpha's 95 % interval has half-width <= ``precision``.

    The interval is ``Analysis.answer()``'s: the optimum's alpha when identified, else the
    wall's (``answer`` says which). The full analysis (profile intervals, a few seconds)
    runs after every ``every`` finished trials; the study stops once two checks in a row
    meet the target (one narrow interval can be luck: a study stopped at the first would
    quote the intervals that happened to come out narrow). The decision is
    stored on the study (user attribute ``precision_reached``), so every worker of a
    shared study stops, and a resumed run does not start again.
    """

    KEY = "precision_reached"

    def __init__(self, precision: float, *, every: int = 5, on_answer: Callable[[str], None] | None = None) -> None:
        self.precision = precision
        self.every = every
        self.on_answer = on_answer
        self.reached = False
        self.answer = ""
        self.half_width: float | None = None
        self._checked_at = -1
        self._streak = 0

    def check(self, study: optuna.Study) -> bool:
        """Analyse the study now; True (and ``reached``) once the target holds on two checks in a row."""
        stored = study.user_attrs.get(self.KEY)
        if stored is not None and float(stored) <= self.precision:
            self.reached = True  # this target (or a tighter one) was met before, here or by another worker
            return True
        trials = study.get_trials(deepcopy=False)
        self._checked_at = sum(1 for t in trials if t.state in FINISHED)
        try:
            _, analysis = analyze_trials(trials, AnalysisConfig.for_study(study.user_attrs.get(CONFIG_KEY)))
        except AutolambdaError:
            return False
        except Exception as exc:  # an analysis that fails must not stop the tuning
            log.warning("precision check failed: %s", short_error(exc))
            return False
        answer = analysis.answer()
        which, ci = {"optimum": "alpha", "wall": "wall alpha"}.get(answer["which"]), answer["ci"]
        if ci is None:
            self.answer, self.half_width, self._streak = "alpha not identified yet", None, 0
            if self.on_answer:
                self.on_answer(self.answer)
            return False
        self.half_width = (ci[1] - ci[0]) / 2
        self._streak = self._streak + 1 if self.half_width <= self.precision else 0
        self.answer = f"{which} [{ci[0]:+.2f}, {ci[1]:+.2f}] (half-width {self.half_width:.2f}, target {self.precision:g})"
        if self.on_answer:
            self.on_answer(self.answer)
        self.reached = self._streak >= 2
        if self.reached:
            study.set_user_attr(self.KEY, self.precision)
        return self.reached

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.reached or study.user_attrs.get(self.KEY) is not None and float(study.user_attrs[self.KEY]) <= self.precision:
            self.reached = True
            study.stop()
            return
        finished = sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED))
        if finished - self._checked_at >= self.every and self.check(study):
            study.stop()


class TrialBudget(optuna.study.MaxTrialsCallback):
    """Optuna callback: stop once finished trials plus those still running reach ``total``.

    Optuna's ``MaxTrialsCallback`` with RUNNING among the counted states: counting the
    trials still running (of every worker) is what makes several workers end with
    exactly ``total``; counting finished ones only, each worker would start one more
    while the others' last trials run. ``counts`` gives the run loop the same numbers.
    """

    def __init__(self, total: int) -> None:
        super().__init__(total, states=FINISHED + (TrialState.RUNNING,))

    def counts(self, study: optuna.Study) -> tuple[int, int]:
        """(finished, running) trials of the study."""
        trials = study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,))
        finished = sum(1 for t in trials if t.state in FINISHED)
        return finished, len(trials) - finished


class FailureStreak:
    """Optuna callback: stop the study when ``limit`` trials in a row have failed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.last_error: str | None = None
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.streak += 1
            self.last_error = trial.user_attrs.get(ERROR_KEY)
            if self.streak >= self.limit:
                self.tripped = True
                study.stop()
        else:
            self.streak = 0
