"""The alpha analysis on synthetic records (exact answers) and on surrogate studies."""

import json
import math

import numpy as np
import pytest

from autolambda.analysis import (
    TrialRecord,
    analyze_records,
    divergence_boundary,
    fit_slope,
    noise_of,
    size_optimum,
    summarize_sizes,
)
from autolambda.errors import AutolambdaError


def synthetic(alpha, widths=(4, 8, 16, 32, 64), per_width=15, noise=0.0, seed=0):
    """Trials on a known bowl: optimum lambda*(N) = 1e-3 * (N / 1e4) ** -alpha."""
    rng = np.random.default_rng(seed)
    records, number = [], 0
    for w in widths:
        n = 100 * w * w
        star = math.log(1e-3 * (n / 1e4) ** -alpha)
        for ll in np.linspace(star - 3, star + 3, per_width) + rng.normal(0, 0.05, per_width):
            value = 0.2 + 0.02 * (ll - star) ** 2 + rng.normal(0, noise)
            records.append(TrialRecord(number, "complete", w, n, math.exp(ll), value, noise=noise))
            number += 1
    return records


def test_fit_slope_and_size_optimum_are_exact_on_clean_data():
    log_n = np.log([1e3, 1e4, 1e5])
    assert fit_slope(log_n, -0.7 * log_n + 2.0) == pytest.approx(0.7)
    ll = np.linspace(-10, -4, 13)
    assert size_optimum(ll, (ll + 6.3) ** 2) == pytest.approx(-6.3)
    assert size_optimum(np.array([-5.0, -4.0]), np.array([1.0, 2.0])) == -5.0  # too few: the best


@pytest.mark.parametrize("alpha", [-0.5, 0.0, 0.7, 1.0])
def test_recovers_alpha_from_clean_bowls(alpha):
    result = analyze_records(synthetic(alpha), n_boot=300)
    assert result.alpha_hat == pytest.approx(alpha, abs=0.03)
    assert result.alpha_ci[0] <= alpha <= result.alpha_ci[1]
    assert result.alpha_surface == pytest.approx(alpha, abs=0.05)
    inside = {h["alpha"]: h["inside_ci"] for h in result.hypotheses}
    assert inside[1.0] == (alpha == 1.0) and inside[-0.5] == (alpha == -0.5)


def test_noise_widens_the_interval():
    clean = analyze_records(synthetic(0.5, noise=0.0), n_boot=300)
    noisy = analyze_records(synthetic(0.5, noise=0.02), n_boot=300)
    assert (noisy.alpha_ci[1] - noisy.alpha_ci[0]) > 2 * (clean.alpha_ci[1] - clean.alpha_ci[0])


def test_noise_of_a_history():
    assert noise_of([1.0, 0.5, 0.5, 0.5], window=3) == 0.0
    assert noise_of([0.4, 0.6], window=5) == pytest.approx(np.std([0.4, 0.6], ddof=1) / math.sqrt(2))
    assert noise_of(None) == 0.0


def test_flags_flat_bound_and_too_few():
    recs = []
    for i, ll in enumerate(np.linspace(-16, -6, 8)):  # flat: no lambda helps
        recs.append(TrialRecord(i, "complete", 4, 1000, math.exp(ll), 0.3 + 0.0001 * abs(i - 4)))
    for i, ll in enumerate(np.linspace(-12, -4, 8)):  # best at the largest lambda tried
        recs.append(TrialRecord(100 + i, "complete", 8, 4000, math.exp(ll), 0.5 - 0.01 * i))
    recs.append(TrialRecord(200, "complete", 16, 9000, 1e-3, 0.2))
    recs.append(TrialRecord(201, "pruned", 16, 9000, 1e-2, 0.4))
    sizes = {s.width: s for s in summarize_sizes(recs)}
    assert sizes[4].flags == ["flat"] and sizes[8].flags == ["at_bound"] and sizes[16].flags == ["too_few"]
    assert sizes[16].n_pruned == 1
    result = analyze_records(recs, n_boot=100)
    assert result.alpha_hat is None and result.alpha_ci is None
    assert "No verdict" in result.verdict
    assert any("no measurable difference" in n for n in result.notes) and any("at least two sizes" in n for n in result.notes)


def test_pruned_trials_beyond_the_best_count_as_tried():
    recs = [TrialRecord(i, "complete", 4, 1000, math.exp(ll), 0.3 + 0.01 * (ll + 7) ** 2) for i, ll in enumerate(np.linspace(-11, -7, 6))]
    assert "at_bound" in summarize_sizes(recs)[0].flags
    recs.append(TrialRecord(50, "pruned", 4, 1000, math.exp(-3.0), 0.9))
    assert summarize_sizes(recs)[0].flags == []


def test_divergence_boundary():
    recs = [
        TrialRecord(0, "complete", 4, 1000, 1e-3, 0.3),
        TrialRecord(1, "diverged", 4, 1000, 5.0, None, diverged_at_epoch=2),
        TrialRecord(2, "diverged", 4, 1000, 20.0, None, diverged_at_epoch=1),
        TrialRecord(3, "pruned", 4, 1000, 0.5, 0.8),
    ]
    (row,) = divergence_boundary(recs)
    assert row["min_diverged_lambda_eff"] == 5.0 and row["max_stable_lambda_eff"] == 0.5
    assert row["diverged_at_epochs"] == [1, 2]


def test_no_trials_or_no_complete_trials_is_a_clear_error():
    with pytest.raises(AutolambdaError, match="no trials"):
        analyze_records([])
    with pytest.raises(AutolambdaError, match="no complete trials \\(2 pruned\\)"):
        analyze_records([TrialRecord(0, "pruned", 4, 10, 1e-3, 0.5), TrialRecord(1, "pruned", 4, 10, 1e-3, 0.5)])


def test_json_ready():
    result = analyze_records(synthetic(0.3), n_boot=100)
    data = json.loads(json.dumps(result.to_dict()))
    assert {"alpha_hat", "alpha_ci", "n_trials", "per_size", "hypotheses"} <= set(data)
    assert {"width", "n_params", "best_lambda_eff", "n_trials"} <= set(data["per_size"][0])
