"""Width-fair search: the stratified pruner and the width-balanced sampler."""

from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from autolambda import LambdaScalingObjective, SearchSpace
from autolambda.analysis.estimators import HALF_THRESHOLD
from autolambda.analysis.records import records_from_trials
from autolambda.analysis.summary import analyze_records
from autolambda.pruners import WidthStratifiedPruner
from autolambda.samplers import WidthBalancedSampler
from autolambda.search.factories import make_pruner, make_sampler

EPOCHS = 20


# The widths these tests were measured on (the default before 2..64), pruned every epoch.
WIDTHS = (4, 8, 16, 32, 64, 128)


def run(sampler, pruner, *, n_trials=120, planted_alpha=0.0, space=None, seed=0, **surrogate):
    study = optuna.create_study(study_name="fair", sampler=sampler, pruner=pruner)
    space = space or SearchSpace(widths=WIDTHS, lambda0=(1e-7, 1e-1))
    objective = LambdaScalingObjective(trainer="surrogate", epochs=EPOCHS, planted_alpha=planted_alpha, space=space, seed=seed,
                                       eval_every=1, **surrogate)
    study.optimize(objective, n_trials=n_trials)
    return study


def complete_per_width(study):
    return Counter(t.params["width"] for t in study.trials if t.state == TrialState.COMPLETE)


def test_stratified_pruner_keeps_every_width_where_plain_median_empties_the_smallest():
    balanced = lambda: make_sampler("tpe", 0)  # noqa: E731 - same sampler for both arms
    plain = run(balanced(), make_pruner("median", EPOCHS, stratify=False))
    fair = run(balanced(), make_pruner("median", EPOCHS, stratify=True))
    plain_counts, fair_counts = complete_per_width(plain), complete_per_width(fair)
    share = len(fair.trials) / 6
    # Plain median: the narrowest nets lose to the wide ones at every step and are pruned.
    assert plain_counts[4] <= 2, plain_counts
    # Stratified: each width keeps at least a third of its share of trials complete.
    assert min(fair_counts[w] for w in (4, 8, 16, 32, 64, 128)) >= share / 3, fair_counts


@pytest.mark.parametrize(
    "make_base",
    [
        lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
        lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=2),
        lambda: optuna.pruners.HyperbandPruner(min_resource=2, max_resource=EPOCHS),
    ],
    ids=["median", "successive-halving", "hyperband"],
)
def test_stratified_is_the_wrapped_pruner_when_all_trials_share_a_width(make_base):
    space = SearchSpace(widths=(16,))
    a = run(optuna.samplers.TPESampler(seed=3), make_base(), n_trials=40, space=space)
    b = run(optuna.samplers.TPESampler(seed=3), WidthStratifiedPruner(make_base()), n_trials=40, space=space)
    assert [t.state for t in a.trials] == [t.state for t in b.trials]
    assert [t.intermediate_values for t in a.trials] == [t.intermediate_values for t in b.trials]
    assert TrialState.PRUNED in {t.state for t in a.trials}


def test_balanced_sampler_shares_trials_evenly():
    study = run(make_sampler("tpe", 1), make_pruner("median", EPOCHS), n_trials=100)
    counts = Counter(t.params["width"] for t in study.trials)
    assert sorted(counts) == [4, 8, 16, 32, 64, 128]
    # Pruned trials count toward a width's share, so one worker's 100 trials split 17/16.
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_balanced_sampler_keeps_small_widths_where_plain_tpe_drifts_to_the_widest():
    """Same seed, same objective, no pruning: TPE alone learns that width 128 gives the
    lowest loss and spends most trials there; wrapped in WidthBalancedSampler, the same
    TPE gives every width its share."""
    plain = run(optuna.samplers.TPESampler(seed=1, n_startup_trials=10), optuna.pruners.NopPruner(), n_trials=100)
    ours = run(make_sampler("tpe", 1), optuna.pruners.NopPruner(), n_trials=100)
    plain_counts = Counter(t.params["width"] for t in plain.trials)
    counts = Counter(t.params["width"] for t in ours.trials)
    # The contrast: plain TPE puts over half the trials on the widest net (72 of 100 seen).
    assert plain_counts[128] > 50, plain_counts
    # Ours: 16 or 17 trials at every width, the narrowest included.
    assert sorted(counts) == [4, 8, 16, 32, 64, 128]
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_balanced_sampler_conditions_on_width():
    """The wrapped sampler sees only same-width trials: it proposes from that width's history."""
    seen = []

    class Spy(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, dist):
            seen.append((trial.params.get("width"), {t.params.get("width") for t in study.get_trials(deepcopy=False)}))
            return super().sample_independent(study, trial, name, dist)

    run(WidthBalancedSampler(Spy(seed=0), seed=0), optuna.pruners.NopPruner(), n_trials=12)
    assert seen and all(widths <= {width} for width, widths in seen)


def test_default_study_gets_alpha_right_where_plain_median_starves_the_small_widths():
    """Issue 8's comparison, at planted alpha 0.7 on the clean surrogate (a clear dip, so
    alpha is identifiable at all): the stratified default identifies it with an interval
    that holds it; plain median prunes width 4 (nearly) empty, so the smaller nets never
    place the dip and alpha is not identified."""
    results, counts = {}, {}
    for stratify in (False, True):
        study = run(make_sampler("tpe", 0), make_pruner("median", EPOCHS, stratify=stratify), n_trials=150, planted_alpha=0.7,
                    surrogate_seed_noise=0.0, surrogate_dip=0.15)
        results[stratify] = analyze_records(records_from_trials(study.trials))
        counts[stratify] = complete_per_width(study)
    fair, plain = results[True], results[False]
    # Seen: stratified 18 complete trials at width 4, alpha 0.704 in (0.684, 0.725), the
    # dip seen in both halves of the sizes (evidence 34.1 and 44.1).
    assert counts[True][4] >= 10, counts[True]
    assert fair.identified and abs(fair.alpha_hat - 0.7) < 0.1 and fair.alpha_ci[0] <= 0.7 <= fair.alpha_ci[1], fair.alpha_ci
    assert min(fair.dip_evidence_by_half) >= HALF_THRESHOLD, fair.dip_evidence_by_half
    # Seen: plain median 1 complete trial at width 4 (and 1 at width 8), alpha not
    # identified because the dip shows among the larger half of the sizes only
    # (evidence 0.6 among the smaller half, 36.2 among the larger; 2 needed in each).
    assert counts[False][4] <= 2, counts[False]
    assert not plain.identified and plain.alpha_ci is None, plain.alpha_reason
    small, large = plain.dip_evidence_by_half
    assert small < HALF_THRESHOLD <= large, (plain.dip_evidence_by_half, plain.alpha_reason)
