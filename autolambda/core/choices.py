"""The allowed values and the defaults of every setting a user picks by name: one source.

``StudyConfig`` validates against these tuples and takes its defaults from here, the CLI
writes its help texts from them, and the modules that act on a choice (the trainers, the
objective, the pruner and sampler factories) accept exactly these. Pure constants, no
imports: the CLI reads them before anything heavy loads.

>>> describe(PRUNERS, DEFAULT_PRUNER)
'answer-aware (default), median, hyperband, successive-halving or none'
"""

from __future__ import annotations

MODES = ("search", "transfer")
PRUNERS = ("answer-aware", "median", "hyperband", "successive-halving", "none")
SAMPLERS = ("design", "tpe", "random", "qmc", "gp")
SCORES = ("final", "median", "best")
TRAINERS = ("keras", "surrogate")
LR_SCHEDULES = ("cosine", "constant")
#: Penalty kinds. ``l2``/``l1``/``l1l2`` go in the loss as Keras kernel regularizers
#: (Keras ``L2(l)`` is ``l * sum(w**2)``, no 1/2); ``weight_decay`` is decoupled and
#: applied by the optimizer, the comparison arm the literature talks about.
PENALTIES = ("l2", "l1", "l1l2", "weight_decay")
#: The penalty kinds that add a term to the loss (``weight_decay`` is decoupled, in Keras' optimizer update).
IN_LOSS_PENALTIES = ("l2", "l1", "l1l2")
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")  # built in; else a .npz file or a folder

DEFAULT_MODE = "search"
# answer-aware (autolambda.search.pruners.AnswerAwarePruner): it stops only trials settled
# far beyond the wall (collapsed nets, which the optimum's fit leaves out anyway); the
# wall's fit counts them as hurt. On digits (200 trials, seeds 0-2) it stopped 7-9 trials,
# 2.6-3.4 % of the epochs, with the optimum's intervals overlapping the unpruned runs'
# (BENCHMARKS.md, "The answer-aware pruner"). Stopping lower on the wall saved more (twice
# the block's value: 4-6 %; 1.25 times: 8-10 %) but widened the optimum's interval up to
# 1.1- and 1.7-fold. Median pruning saved 29 % and widened the wall's alpha interval from
# 0.46 to 1.32: it cuts the trials that carry the answer.
DEFAULT_PRUNER = "answer-aware"
# design: width-balanced TPE to start, then lambda_eff drawn where the joint fit says the
# loss depends on lambda (autolambda.search.design).
DEFAULT_SAMPLER = "design"
DEFAULT_SCORE = "final"
DEFAULT_TRAINER = "keras"
DEFAULT_LR_SCHEDULE = "constant"
DEFAULT_PENALTY = "l2"
DEFAULT_DATASET = "digits"
DEFAULT_STORAGE = "sqlite:///autolambda.db"
DEFAULT_WORKERS_STORAGE = "journal:autolambda.journal"
# MLflow 3.13+ refuses a plain ./mlruns; SQLite is its default.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "autolambda"
#: Trials of a study run without --trials: what the optimum's alpha needs on digits for a
#: 95 % interval of +-0.25 in well under five minutes on 2 cores. With TensorFlow's own
#: thread pools the three default studies (seeds 0, 1, 2) had half-widths 0.29 / 0.17 / 0.13
#: at 150 trials (233-248 s) and 0.253 / 0.14 / 0.11 at 175 (267-286 s): seed 0 missed.
#: Small nets on one thread per op (training.trainers.cpu_threads) trained 175 trials in
#: 209 s, so 200 fit with room (BENCHMARKS.md, "The answer on digits").
#: `--trials 100` is the quicker look.
DEFAULT_TRIALS = 200
#: The trial cap of a run that stops on --precision when no --trials is given.
DEFAULT_PRECISION_TRIALS = 300
# The regime in which lambda matters on digits (docs/method.md, "How a trial is scored, and why",
# measured with scripts/regime_probe.py): enough epochs that every width overfits 300
# images, so the penalty has something to fix. Even so, at 80 epochs only width 64's dip
# reaches twice the seed-to-seed noise (120 epochs would break the 5-minute budget).
DEFAULT_EPOCHS = 80
DEFAULT_BATCH_SIZE = 32
DEFAULT_N_TRAIN = 300
DEFAULT_LEARNING_RATE = 3e-3
DEFAULT_SCORE_WINDOW = 5
# The validation pass runs every this many epochs (and at each scored epoch): over the
# pooled validation set it costs more than an epoch of training on 300 images.
DEFAULT_EVAL_EVERY = 10
DEFAULT_SEED = 0
# Seeds per width (common random numbers): on digits the seed SD at one lambda was
# 0.075 / 0.071 / 0.024 / 0.005 / 0.010 / 0.025 (widths 2-64), 0.026 / 0.025 / 0.007 /
# 0.004 / 0.008 / 0.030 once each seed's offset is removed. Three blocks keep ~5 trials
# per (width, seed) in a 100-trial study, enough to place each seed's curve.
DEFAULT_SEED_BLOCKS = 3
DEFAULT_MAX_FAILURES = 5
DEFAULT_WORKERS = 1
# The surrogate trainer's noise and dip, as measured on digits.
DEFAULT_SURROGATE_SEED_NOISE = 0.02
DEFAULT_SURROGATE_DIP = 0.03


def describe(values: tuple[str, ...], default: str) -> str:
    """``values`` as a help text's list, the default first and marked."""
    ordered = [default] + [v for v in values if v != default]
    words = [f"{v} (default)" if v == default else v for v in ordered]
    return ", ".join(words[:-1]) + " or " + words[-1]
