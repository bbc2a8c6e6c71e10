import math

import optuna
import pytest

from autolambda import ConfigError, SearchSpace, suggest_lambda_eff, suggest_params
from autolambda.core.scaling import count_convnet_params


def test_defaults_cover_the_hypotheses():
    space = SearchSpace()
    assert space.widths == (2, 4, 8, 16, 32, 64)  # N from 746 to 95k: two decades
    assert space.lambda0 == (1e-5, 1e-1)
    assert space.alpha[0] <= -1.0 and space.alpha[1] >= 1.5
    assert space.penalty == "l2" and space.optimizer == "adam" and space.depth == 2
    assert space.kernel_size == (3, 3)


def test_n_ref_is_geometric_mean_of_extreme_sizes():
    space = SearchSpace()
    low = count_convnet_params(2, 2, (3, 3), (8, 8, 1), 10)
    high = count_convnet_params(64, 2, (3, 3), (8, 8, 1), 10)
    assert space.default_n_ref((8, 8, 1), 10) == pytest.approx(math.sqrt(low * high))


def test_suggest_only_asks_for_searched_dimensions():
    space = SearchSpace(widths=(8,), alpha=0.5, kernel_size=[(2, 3), (3, 3)], learning_rate=(1e-4, 1e-2))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = suggest_params(trial, space)
    assert set(trial.params) == {"lambda0", "kernel_size", "learning_rate"}
    assert params.width == 8 and params.alpha == 0.5
    assert params.kernel_size in ((2, 3), (3, 3))
    # lambda0 is drawn, on a log scale, from exactly the space's range (the default, 1e-5 .. 1e-1).
    assert space.lambda0 == (1e-5, 1e-1)
    assert trial.distributions["lambda0"] == optuna.distributions.FloatDistribution(*space.lambda0, log=True)
    assert trial.distributions["learning_rate"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert space.lambda0[0] <= params.lambda0 <= space.lambda0[1]


def test_l1_ratio_searched_only_for_l1l2():
    space = SearchSpace(penalty=("l1", "l1l2"), l1_ratio=(0.1, 0.9))
    seen = set()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        params = suggest_params(trial, space)
        seen.add(params.penalty)
        assert ("l1_ratio" in trial.params) == (params.penalty == "l1l2")
        study.tell(trial, 0.0)
    assert seen == {"l1", "l1l2"}


def test_space_from_toml_style_lists():
    space = SearchSpace(widths=[16, 4, 8], lambda0=[1e-5, 1e-2], kernel_size=[2, 3], penalty=["l2"])
    assert space.widths == (4, 8, 16)
    assert space.kernel_size == (2, 3)
    assert space.penalty == "l2"
    assert SearchSpace(**space.to_dict()) == space


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"widths": []}, "widths"),
        ({"widths": [0, 4]}, "widths"),
        ({"lambda0": (1e-2, 1e-5)}, "lower bound"),
        ({"lambda0": (0.0, 1e-2)}, "log scale"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"alpha": (1.0, "x")}, "alpha"),
        ({"penalty": "l3"}, "penalty"),
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"kernel_size": "3by3"}, "kernel_size"),
        ({"l1_ratio": 1.5}, "l1_ratio"),
        ({"depth": 0}, "depth"),
    ],
)
def test_bad_space_names_the_value(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        SearchSpace(**kwargs)


def test_suggest_lambda_eff_for_a_foreign_model():
    trial = optuna.trial.FixedTrial({"lambda0": 1e-3, "alpha": 1.0})
    assert suggest_lambda_eff(trial, n_params=4000, n_ref=1000) == pytest.approx(2.5e-4)
    study = optuna.create_study()
    trial = study.ask()
    value = suggest_lambda_eff(trial, 1220, 1220, alpha=0.0)
    assert value == pytest.approx(trial.params["lambda0"])
    assert trial.user_attrs["n_params"] == 1220 and "alpha" not in trial.params


def test_suggest_scaled_penalty_returns_a_keras_regularizer():
    keras = pytest.importorskip("keras")
    from autolambda import suggest_scaled_penalty

    trial = optuna.trial.FixedTrial({"lambda0": 1e-2, "alpha": 0.5})
    reg = suggest_scaled_penalty(trial, n_params=400, n_ref=100)
    assert isinstance(reg, keras.regularizers.L2)
    assert reg.get_config()["l2"] == pytest.approx(5e-3)
    with pytest.raises(ConfigError, match="weight_decay"):
        suggest_scaled_penalty(trial, 400, 100, penalty="weight_decay")
