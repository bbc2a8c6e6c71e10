"""Seeds as blocks: trials of a width share a few seeds, the surrogate's offsets hold
across lambda within a seed, and the joint fit removes each block's offset."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from autolambda import LambdaScalingObjective, SearchSpace
from autolambda.analysis.curve import CurveData, JointCurve, noise_weights, weighted_curve
from autolambda.analysis.records import complete_curve_data, records_from_trials
from autolambda.search.objective import block_seed
from autolambda.training.surrogate import SurrogateTrainer

optuna.logging.set_verbosity(optuna.logging.WARNING)
WIDTHS = (4, 16)


def _objective(seed: int = 3, blocks: int = 3) -> LambdaScalingObjective:
    return LambdaScalingObjective(space=SearchSpace(widths=WIDTHS), epochs=3, trainer="surrogate", seed=seed,
                                  seed_blocks=blocks, n_train=50)


def _block_seeds(seed: int, blocks: int) -> dict[int, set[int]]:
    return {w: {block_seed(seed, w, b) for b in range(blocks)} for w in WIDTHS}


def test_trials_share_their_widths_block_seeds_in_turn():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective(), n_trials=18)
    allowed = _block_seeds(3, 3)
    per_block: dict[tuple[int, int], int] = {}
    for t in study.trials:
        width, block, seed = t.user_attrs["width"], t.user_attrs["block"], t.user_attrs["seed"]
        assert seed == block_seed(3, width, block) and seed in allowed[width]
        per_block[width, block] = per_block.get((width, block), 0) + 1
    for width in WIDTHS:  # the least-used block goes next: counts differ by at most one
        counts = [per_block.get((width, b), 0) for b in range(3)]
        assert max(counts) - min(counts) <= 1, counts


def test_without_blocks_every_trial_has_its_own_seed():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective(blocks=0), n_trials=4)
    assert [t.user_attrs["seed"] for t in study.trials] == [3, 4, 5, 6]
    assert all(t.user_attrs["block"] is None for t in study.trials)


def test_a_repeat_trains_in_another_block_than_its_source():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective(), n_trials=6)
    source = study.trials[0]
    study.enqueue_trial(dict(source.params), user_attrs={"replicate_of": source.number})
    study.optimize(_objective(), n_trials=1)
    repeat = study.trials[-1]
    assert repeat.params == source.params
    assert repeat.user_attrs["block"] != source.user_attrs["block"]


def test_a_resumed_study_keeps_its_blocks(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = optuna.create_study(study_name="b", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    first.optimize(_objective(), n_trials=7)
    again = optuna.load_study(study_name="b", storage=storage, sampler=optuna.samplers.RandomSampler(seed=1))
    again.optimize(_objective(), n_trials=7)
    allowed = _block_seeds(3, 3)
    assert all(t.user_attrs["seed"] in allowed[t.user_attrs["width"]] for t in again.trials)
    records = records_from_trials(again.trials)
    data, rows = complete_curve_data(records)
    # One floor per (width, block) that trained: the fit's offsets are the blocks'.
    assert data.n_units == len({(r.width, r.block) for r in rows})


def test_surrogate_offset_holds_across_lambda_within_a_seed():
    sur = SurrogateTrainer(planted_alpha=0.0)
    n = 1626  # width 4: seed offset SD 0.071, residual 0.016 (as measured on digits)

    def final(seed: int, lam: float) -> float:
        out = []
        from autolambda.training.data import load_dataset
        from autolambda.training.request import TrainRequest

        data = load_dataset("digits", n_train=50, seed=0)
        sur.train(TrainRequest(None, n, lam, data, epochs=30, batch_size=32, seed=seed,
                               on_epoch=lambda e, logs: out.append(logs.get("val_ce"))))
        return out[-1] - sur.final_loss(n, lam)

    lams = (1e-4, 1e-3)
    within = [final(s, lams[0]) - final(s, lams[1]) for s in range(30)]
    between = [final(s, lams[0]) - final(s + 100, lams[0]) for s in range(30)]
    assert np.std(within) < 0.4 * np.std(between)
    assert np.std(between) == pytest.approx(math.sqrt(2) * sur.seed_sd(n), rel=0.35)


def _blocked_data(offset_sd: float, alpha: float = 0.5, seed: int = 0) -> CurveData:
    """Synthetic trials: three blocks per size with large offsets, a dip placed by alpha."""
    rng = np.random.default_rng(seed)
    widths, sizes, lams, ys, blocks = [], [], [], [], []
    for k, n in enumerate((1_000, 4_000, 16_000, 64_000)):
        for b in range(3):
            offset = rng.normal(0, offset_sd)
            for l in np.linspace(-10, -3, 8):  # noqa: E741
                centre = math.log(2e-3) - alpha * math.log(n / 8_000)
                y = 0.3 + offset - 0.05 * math.exp(-0.5 * ((l - centre) / 1.0) ** 2) + rng.normal(0, 0.004)
                widths.append(k), sizes.append(n), lams.append(math.exp(l)), ys.append(y), blocks.append(b)
    return CurveData.from_rows(widths, sizes, lams, ys, 8_000, blocks=blocks)


def test_a_floor_per_block_removes_the_seed_offsets():
    data = _blocked_data(offset_sd=0.05)
    blocked = JointCurve(data).fit(wall=False)
    pooled_data = CurveData(data.group, data.x, data.l, data.y, data.n_groups, data.n_ref)  # one floor per size
    pooled = JointCurve(pooled_data).fit(wall=False)
    assert blocked.residual_sd < 0.008 < pooled.residual_sd
    assert blocked.params["alpha"] == pytest.approx(0.5, abs=0.1)
    assert len(blocked.unit_floors) == 12 and len(blocked.floors) == 4


def test_noise_weights_trust_the_quiet_sizes_more():
    rng = np.random.default_rng(1)
    sizes = np.repeat([1_000, 30_000], 40)
    lams = np.exp(rng.uniform(-10, -3, 80))
    sd = np.where(sizes == 1_000, 0.04, 0.005)
    y = 0.3 + rng.normal(0, sd)
    data = CurveData.from_rows(list(sizes), list(sizes), list(lams), list(y), 5_000)
    curve = JointCurve(data)
    w = noise_weights(curve, curve.fit(dip=False, wall=False).params, huber=None)
    assert np.median(w[sizes == 30_000]) > 3 * np.median(w[sizes == 1_000])


def test_a_spike_is_down_weighted():
    data = _blocked_data(offset_sd=0.01, seed=2)
    data.y[5] += 0.15  # one late Adam spike
    curve = JointCurve(data)
    w = noise_weights(curve, curve.fit(wall=False).params)
    assert w[5] < 0.5 * np.median(w)
    assert weighted_curve(data).fit(wall=False).params["alpha"] == pytest.approx(0.5, abs=0.15)


def test_the_surrogates_wall_can_scale_apart_from_its_optimum():
    sizes = [746, 3818, 29066, 94986]
    coupled = SurrogateTrainer(planted_alpha=0.5)
    apart = SurrogateTrainer(planted_alpha=0.5, planted_wall_alpha=-0.1)
    assert apart.lambda_star(746) == coupled.lambda_star(746)  # the optimum is where it was
    # The wall's exponent follows its own plant (up to the floors' share in "hurt").
    assert abs(apart.wall_alpha(sizes, 0.25) - coupled.wall_alpha(sizes, 0.25) + 0.6) < 0.1
    assert all(apart.lambda_wall(n) > 2 * apart.lambda_star(n) for n in sizes)  # still above the optimum
