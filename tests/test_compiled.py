"""The compiled epoch and reused programs train what Keras would, trial after trial."""

import numpy as np
import optuna
import pytest

from autolambda.training.data import load_dataset
from autolambda.core.scaling import count_convnet_params
from autolambda.core.space import SearchSpace, suggest_params
from autolambda.training.request import TrainRequest

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.e2e


def _params(**fixed):
    values = {"width": 4, "lambda0": 1e-3, "alpha": 0.0} | fixed
    return suggest_params(optuna.trial.FixedTrial(values), SearchSpace())


def _train(trainer, params, data, *, seed=0, epochs=3, strength=1e-3):
    history = {}

    def on_epoch(epoch, logs):
        for key, value in logs.items():
            history.setdefault(key, []).append(value)

    n = count_convnet_params(params.width, params.depth, params.kernel_size, data.input_shape, data.n_classes)
    trainer.train(TrainRequest(params, n, strength, data, epochs=epochs, batch_size=32, seed=seed, on_epoch=on_epoch))
    return history


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=120, n_val=90, seed=0)


@pytest.mark.parametrize("kind,reference", [
    ("l2", lambda s, r: keras.regularizers.L2(s)),
    ("l1", lambda s, r: keras.regularizers.L1(s)),
    ("l1l2", lambda s, r: keras.regularizers.L1L2(l1=r * s, l2=(1 - r) * s)),
])
def test_variable_penalty_equals_keras_regularizer(kind, reference):
    from autolambda.training.variable_penalty import VariablePenalty

    x = np.random.default_rng(0).normal(size=(3, 3, 2, 5)).astype("float32")
    penalty = VariablePenalty(kind)
    for strength, ratio in ((1e-3, 0.5), (0.2, 0.1)):
        penalty.set(strength, ratio)  # changed after creation: the new values count
        assert float(penalty(x)) == pytest.approx(float(reference(strength, ratio)(x)), rel=1e-5)


def test_reused_program_trains_like_a_fresh_model_whatever_ran_before(digits, monkeypatch):
    import autolambda.training.trainers as trainers
    from autolambda.training.compiled import PROGRAMS
    from autolambda.training.trainers import KerasTrainer

    built = []
    build_program = trainers.build_program
    monkeypatch.setattr(trainers, "build_program", lambda *args: built.append(args[0].width) or build_program(*args))
    PROGRAMS.clear()
    fresh = _train(KerasTrainer(reuse_models=False), _params(), digits, seed=7)
    reused = KerasTrainer()
    first = _train(reused, _params(), digits, seed=7)
    _train(reused, _params(), digits, seed=8, strength=0.05)  # another trial of the same shape
    _train(reused, _params(width=8), digits, seed=7)
    again = _train(reused, _params(), digits, seed=7)
    assert built == [4, 4, 8] and len(PROGRAMS) == 2  # the fresh one, then one per shape
    for key in ("train_loss", "val_ce", "val_accuracy", "reg_term"):
        np.testing.assert_allclose(first[key], fresh[key], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(again[key], first[key], rtol=1e-4, atol=1e-6)
    other_seed = _train(reused, _params(), digits, seed=9)
    assert other_seed["val_ce"] != first["val_ce"]  # the seed draws new initial weights


def test_epoch_metrics_are_what_keras_measures(digits):
    from autolambda.training.compiled import PROGRAMS

    PROGRAMS.clear()
    from autolambda.training.trainers import KerasTrainer

    history = _train(KerasTrainer(), _params(), digits, epochs=2, strength=0.01)
    program = next(iter(PROGRAMS._programs.values()))
    model = program.model
    logits = model.predict(digits.x_val, verbose=0)
    ce = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(digits.y_val, logits))
    accuracy = float(np.mean(np.argmax(logits, -1) == digits.y_val))
    penalty = float(sum(float(v) for v in model.losses))
    assert history["val_ce"][-1] == pytest.approx(ce, rel=1e-4)
    assert history["val_accuracy"][-1] == pytest.approx(accuracy)
    assert history["reg_term"][-1] == pytest.approx(penalty, rel=1e-4)
    assert history["val_loss"][-1] == pytest.approx(ce + penalty, rel=1e-4)
    assert 0.0 < history["train_ce"][-1] < history["train_loss"][-1]


def test_validation_in_chunks_gives_the_same_mean(digits, monkeypatch):
    import autolambda.training.compiled as compiled
    from autolambda.training.trainers import KerasTrainer

    compiled.PROGRAMS.clear()
    whole = _train(KerasTrainer(), _params(), digits, epochs=1)
    compiled.PROGRAMS.clear()
    monkeypatch.setattr(compiled, "VAL_BATCH", 25)  # 90 images: batches of 25, 25, 25, 15
    chunked = _train(KerasTrainer(), _params(), digits, epochs=1)
    compiled.PROGRAMS.clear()
    assert chunked["val_ce"][0] == pytest.approx(whole["val_ce"][0], rel=1e-5)
    assert chunked["val_accuracy"][0] == pytest.approx(whole["val_accuracy"][0])


def test_one_penalty_makes_the_nets_regularizer():
    from autolambda.errors import ConfigError
    from autolambda.training.variable_penalty import VariablePenalty
    from autolambda.training.model import Penalty, build_convnet

    def regularizers(penalty):
        """The (kernel, bias) regularizers of each Conv2D and Dense layer."""
        model = build_convnet(8, (8, 8, 1), 10, penalty=penalty)
        assert model.count_params() == 3818
        return [(layer.kernel_regularizer, layer.bias_regularizer) for layer in model.layers if hasattr(layer, "kernel")]

    regs = regularizers(Penalty("l2", 1e-3))
    assert isinstance(regs[0][0], keras.regularizers.L2) and regs[0][0].l2 == pytest.approx(1e-3)
    assert all(k is regs[0][0] and b is None for k, b in regs)  # one object on every kernel, none on biases
    regs = regularizers(Penalty("l1l2", 0.2, l1_ratio=0.25, penalize_bias=True, variable=True))
    assert isinstance(regs[0][0], VariablePenalty) and all(k is b is regs[0][0] for k, b in regs)
    for penalty in (None, Penalty("weight_decay", 1e-3), Penalty("l2", 0.0)):  # nothing in the loss
        assert regularizers(penalty) == [(None, None)] * 3
    with pytest.raises(ConfigError, match="variable"):
        Penalty("weight_decay", 1e-3, variable=True)


def test_a_program_trains_only_the_penalties_it_was_built_for(digits):
    from autolambda.training.model import Penalty
    from autolambda.training.trainers import build_program

    params = _params()
    n = count_convnet_params(params.width, params.depth, params.kernel_size, digits.input_shape, digits.n_classes)
    variable = build_program(params, digits, n, 32, Penalty.of(params, 1e-3, variable=True))
    variable.reset(seed=0, learning_rate=1e-3, penalty=Penalty.of(params, 0.05, variable=True))
    assert float(variable.penalty.strength) == 0.05 and float(variable._keras_penalty.strength.numpy()) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="cannot train"):
        variable.set_penalty(Penalty("l1", 0.05, variable=True))  # another kind: another net
    fixed = build_program(params, digits, n, 32, Penalty.of(params, 1e-3))
    fixed.set_penalty(Penalty.of(params, 1e-3))
    with pytest.raises(ValueError, match="cannot train"):
        fixed.set_penalty(Penalty.of(params, 0.05))  # a fixed strength is part of the net
