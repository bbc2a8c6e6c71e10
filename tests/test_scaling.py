import math

import pytest

from autolambda import ConfigError, count_conv2d_params, count_convnet_params, lambda_eff


def test_lambda_eff_formula():
    assert lambda_eff(1e-3, 0.0, 5000, 1000) == pytest.approx(1e-3)  # alpha 0: one lambda
    assert lambda_eff(1e-3, 1.0, 2000, 1000) == pytest.approx(5e-4)  # inversely with N
    assert lambda_eff(1e-3, -0.5, 4000, 1000) == pytest.approx(2e-3)  # grows with N
    assert lambda_eff(2e-4, 0.7, 1000, 1000) == pytest.approx(2e-4)  # N = N_ref: lambda0
    assert lambda_eff(1e-3, 0.25, 16 * 1220, 1220) == pytest.approx(1e-3 * 16**-0.25)


@pytest.mark.parametrize(
    "args, name",
    [
        ((0.0, 0.0, 10, 10), "lambda0"),
        ((-1e-3, 0.0, 10, 10), "lambda0"),
        ((1e-3, 0.0, 0, 10), "n_params"),
        ((1e-3, 0.0, 10, -5), "n_ref"),
        ((1e-3, math.nan, 10, 10), "alpha"),
        ((math.inf, 0.0, 10, 10), "lambda0"),
    ],
)
def test_lambda_eff_rejects_bad_input(args, name):
    with pytest.raises(ConfigError, match=name):
        lambda_eff(*args)


def test_motivating_example_counts_1220_weights():
    assert count_conv2d_params(20, (2, 3), 10) == 1220


@pytest.mark.parametrize(
    "width, depth, kernel, shape, classes",
    [
        (4, 2, (3, 3), (8, 8, 1), 10),
        (128, 2, (3, 3), (8, 8, 1), 10),
        (20, 2, (2, 3), (8, 8, 10), 10),
        (8, 3, (3, 3), (28, 28, 1), 10),
        (6, 1, (5, 5), (32, 32, 3), 7),
    ],
)
def test_param_count_matches_keras(width, depth, kernel, shape, classes):
    pytest.importorskip("keras")
    from autolambda.training.model import Penalty, build_convnet

    model = build_convnet(width, shape, classes, depth=depth, kernel_size=kernel, penalty=Penalty("l2", 1e-3))
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == model.count_params()
    assert count_convnet_params(width, depth, kernel, shape, classes) == trainable


def test_keras_counts_the_1220_layer():
    keras = pytest.importorskip("keras")
    layer = keras.layers.Conv2D(20, (2, 3))
    layer.build((None, 8, 8, 10))
    assert layer.count_params() == 1220


def test_regularizers_match_keras_definitions():
    pytest.importorskip("keras")
    import numpy as np

    from autolambda import make_regularizer

    w = np.array([[1.0, -2.0], [3.0, 0.5]], dtype="float32")
    assert float(make_regularizer("l2", 0.1)(w)) == pytest.approx(0.1 * np.sum(w**2))  # no 1/2
    assert float(make_regularizer("l1", 0.1)(w)) == pytest.approx(0.1 * np.sum(np.abs(w)))
    l1l2 = float(make_regularizer("l1l2", 0.1, l1_ratio=0.25)(w))
    assert l1l2 == pytest.approx(0.025 * np.sum(np.abs(w)) + 0.075 * np.sum(w**2))
    assert make_regularizer("weight_decay", 0.1) is None
    with pytest.raises(ConfigError, match="penalty"):
        make_regularizer("l3", 0.1)


def test_forward_multiply_adds_of_the_convnet():
    from autolambda.core.scaling import count_convnet_macs

    # digits, width 8, depth 2: conv 8x8 (3x3x1 -> 8), pool to 4x4, conv 4x4 (3x3x8 -> 16), logits from 4*4*16
    assert count_convnet_macs(8, 2, (3, 3), (8, 8, 1), 10) == 64 * 9 * 8 + 16 * 9 * 8 * 16 + 256 * 10
    # 32x32x3, width 16, depth 2: both blocks pool (32 -> 16 -> 8), each conv runs at its block's input size
    assert count_convnet_macs(16, 2, (3, 3), (32, 32, 3), 10) == 1024 * 27 * 16 + 256 * 9 * 16 * 32 + 64 * 32 * 10
    from autolambda.core.space import SearchSpace

    space = SearchSpace(widths=(4, 64), depth=(1, 2))
    assert space.max_macs((8, 8, 1), 10) == count_convnet_macs(64, 2, (3, 3), (8, 8, 1), 10)
    kernels = SearchSpace(widths=(4, 64), kernel_size=((3, 3), (5, 5)))
    assert kernels.max_macs((8, 8, 1), 10) == count_convnet_macs(64, 2, (5, 5), (8, 8, 1), 10)


def test_small_nets_get_one_thread_per_op_and_the_cores_run_ops_side_by_side():
    from autolambda.training.trainers import SMALL_STEP_MACS, cpu_threads

    digits_step = 32 * 1_236_992  # the default study's widest net, one batch of 32
    from autolambda.core.scaling import count_convnet_macs

    assert cpu_threads(digits_step, cores=2, env={}) == (1, 2)
    assert cpu_threads(digits_step, cores=4, env={}) == (1, 4)
    assert cpu_threads(digits_step, cores=16, env={}) is None  # measured on 2 cores only
    assert cpu_threads(SMALL_STEP_MACS, cores=2, env={}) == (1, 2)
    assert cpu_threads(SMALL_STEP_MACS + 1, cores=2, env={}) is None  # large nets: TensorFlow's own pools
    # 32x32x3 images at width 16 (53 M a step) trained 1.15x slower on one thread per op.
    assert cpu_threads(32 * count_convnet_macs(16, 2, (3, 3), (32, 32, 3), 10), cores=2, env={}) is None
    # A user's own thread settings win.
    assert cpu_threads(digits_step, cores=2, env={"TF_NUM_INTRAOP_THREADS": "2"}) is None
    assert cpu_threads(digits_step, cores=2, env={"TF_NUM_INTEROP_THREADS": "4"}) is None


def test_tune_sizes_the_thread_pools_by_the_nets_it_will_train(monkeypatch):
    import autolambda.training.trainers as trainers
    from autolambda.cli.app import _small_net_threads
    from autolambda.core.space import SearchSpace
    from autolambda.run.config import StudyConfig

    calls = []
    monkeypatch.setattr(trainers, "set_threads", lambda *a: calls.append(a) or True)
    monkeypatch.setattr(trainers, "usable_cores", lambda: 2)
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert _small_net_threads(StudyConfig()) == (1, 2) and calls == [(1, 2)]  # digits' default nets are small
    calls.clear()
    wide = SearchSpace(widths=(4, 512))  # width 512 on digits: 2.4 G multiply-adds a step
    assert _small_net_threads(StudyConfig(space=wide)) is None and calls == []
    # Transfer mode trains its ladder, whatever the space's widths.
    assert _small_net_threads(StudyConfig(mode="transfer", ladder=(4, 512))) is None and calls == []
    assert _small_net_threads(StudyConfig(mode="transfer", ladder=(4, 16), space=wide)) == (1, 2)
    calls.clear()
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")  # the user's own setting wins
    assert _small_net_threads(StudyConfig()) is None and calls == []
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS")
    monkeypatch.setattr(trainers, "set_threads", lambda *a: False)  # TensorFlow already started: nothing claimed
    assert _small_net_threads(StudyConfig()) is None
