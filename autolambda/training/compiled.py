"""One compiled TensorFlow call per epoch, and compiled models reused across trials.

Two costs dominated a trial of a small net on a 2-core CPU under ``model.fit``:

- **Per-epoch Python.** ``fit`` runs every batch as its own call from Python, then resets
  metrics, builds an evaluation iterator and converts logs, about 12 ms an epoch on top
  of 12 ms of arithmetic for width 4. Here one ``tf.function`` runs the whole epoch
  (every batch, then the validation pass) and returns the seven epoch metrics as one
  tensor: one call and one host transfer per epoch.
- **Per-trial tracing.** A new model costs 0.5–0.8 s of building and tracing before its
  first step. Two trials of one shape differ only in their initial weights, optimizer
  state and penalty strength, so the strength lives in a variable the traced graph
  reads, and a trial that finds a program of its shape in the cache re-draws the
  weights from the layers' own initializers (seeded by the trial), zeroes the
  optimizer's slots and step counter, and sets strength and learning rate.

The data sit in memory as tensors, converted once per data set. The metrics mean what
``fit`` reports: training loss, cross-entropy and accuracy averaged over the epoch's
batches (weighted by batch size), validation values after the epoch, ``reg_term`` the
penalty at the end of the epoch.

Importing this module imports TensorFlow and Keras; ``import autolambda`` does not.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable, Hashable

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from autolambda.training.model import Penalty
from autolambda.training.variable_penalty import VariablePenalty

# Validation images per forward pass: all of digits' 540 at once, bounded memory for more.
VAL_BATCH = 1024
METRICS = ("train_loss", "train_ce", "train_accuracy", "val_loss", "val_ce", "val_accuracy", "reg_term")
# An epoch without the validation pass.
TRAIN_METRICS = ("train_loss", "train_ce", "train_accuracy", "reg_term")


@functools.lru_cache(maxsize=4)
def data_tensors(data: Any) -> tuple[Any, Any, Any, Any]:
    """``data``'s arrays as tensors on the default device, made once per data set."""
    return (
        tf.constant(data.x_train, tf.float32),
        tf.constant(data.y_train, tf.int32),
        tf.constant(data.x_val, tf.float32),
        tf.constant(data.y_val, tf.int32),
    )


def _variable_penalty(model: Any) -> VariablePenalty:
    """The ``VariablePenalty`` that ``model``'s layers share."""
    for layer in model.layers:
        regularizer = getattr(layer, "kernel_regularizer", None)
        if isinstance(regularizer, VariablePenalty):
            return regularizer
    raise ValueError("the model has no VariablePenalty: build it from a variable Penalty.")


class EpochProgram:
    """A built model, its optimizer and penalty, and the compiled epoch function.

    Args:
        model: A built Keras model producing logits, built with ``penalty``.
        optimizer: A Keras optimizer (built here for the model's trainable variables),
            made with ``penalty`` (its weight decay).
        batch_size: Mini-batch size (the last batch of an epoch may be smaller).
        penalty: The penalty the model and optimizer were made with. A variable one lets
            ``reset`` give each trial its own strength and L1 share; a fixed one is part
            of the model or optimizer, and the program trains only with it.
    """

    def __init__(self, model: Any, optimizer: Any, batch_size: int, penalty: Penalty) -> None:
        self.model = model
        self.optimizer = optimizer
        self.batch_size = int(batch_size)
        self.penalty = penalty
        self._keras_penalty = _variable_penalty(model) if penalty.variable else None
        optimizer.build(model.trainable_variables)
        self._cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._epoch = tf.function(self._run_epoch, reduce_retracing=True)

    def reset(self, *, seed: int, learning_rate: float, penalty: Penalty) -> None:
        """Make the program as fresh for trial ``seed``: initial weights drawn from each
        layer's initializer with a seed of its own, zeroed optimizer state (slots and step
        counter), the trial's learning rate and ``penalty`` (see ``set_penalty``)."""
        self.set_penalty(penalty)
        for index, layer in enumerate(self.model.layers):
            for attr, init_attr in (("kernel", "kernel_initializer"), ("bias", "bias_initializer")):
                variable = getattr(layer, attr, None)
                initializer = getattr(layer, init_attr, None)
                if variable is None or initializer is None:
                    continue
                config = initializer.get_config()
                if "seed" in config:  # one draw per variable, distinct across layers and trials
                    config["seed"] = (seed * 1_000_003 + 2 * index + (attr == "bias")) % (2**31 - 1)
                variable.assign(type(initializer).from_config(config)(variable.shape, variable.dtype))
        for variable in self.optimizer.variables:
            variable.assign(ops.zeros(variable.shape, variable.dtype))
        self.optimizer.learning_rate = learning_rate

    def set_penalty(self, penalty: Penalty) -> None:
        """Train the next steps with ``penalty``: any strength and L1 share when the
        program's penalty is variable (same kind and bias rule); only its own when fixed.

        Raises:
            ValueError: ``penalty`` needs another program.
        """
        built = self.penalty
        same_net = replace(penalty, strength=built.strength, l1_ratio=built.l1_ratio) == built
        if penalty != built and not (built.variable and same_net):
            raise ValueError(f"a program built for {built} cannot train with {penalty}.")
        if self._keras_penalty is not None:
            self._keras_penalty.set(penalty.strength, penalty.l1_ratio)
        self.penalty = penalty

    def fit(
        self, data: Any, *, epochs: int, seed: int, on_epoch: Callable[[int, dict[str, float]], None],
        evaluate: Callable[[int], bool] | None = None,
        learning_rate: Callable[[int], float] | None = None,
    ) -> None:
        """Train ``epochs`` epochs on ``data``, reshuffled each epoch (seeded), calling
        ``on_epoch(epoch, metrics)`` after each; ``on_epoch`` may raise to stop.
        ``learning_rate(epoch)``, when given, sets the step size of each epoch.

        ``evaluate(epoch)`` says whether to run the validation pass after that epoch (all
        epochs when ``None``); other epochs report the training metrics only. The
        validation pass over a large validation set costs more than the epoch's training.
        """
        x_train, y_train, x_val, y_val = data_tensors(data)
        n = int(x_train.shape[0])
        rng = np.random.default_rng(seed)
        for epoch in range(epochs):
            order = tf.constant(rng.permutation(n).astype(np.int32))
            if learning_rate is not None:
                self.optimizer.learning_rate = learning_rate(epoch)
            full = evaluate is None or bool(evaluate(epoch))
            values = self._epoch(x_train, y_train, x_val, y_val, order, full).numpy()
            names = METRICS if full else TRAIN_METRICS
            on_epoch(epoch, {name: float(v) for name, v in zip(names, values)})

    def _penalty(self) -> Any:
        losses = self.model.losses
        return tf.add_n(losses) if losses else tf.constant(0.0)

    def _run_epoch(self, x_train: Any, y_train: Any, x_val: Any, y_val: Any, order: Any, evaluate: bool = True) -> Any:
        model, batch = self.model, self.batch_size
        variables = model.trainable_variables
        n = tf.shape(order)[0]
        n_batches = (n + batch - 1) // batch
        sums = tf.zeros([3])  # loss, cross-entropy, correct: summed over samples
        for b in tf.range(n_batches):
            index = order[b * batch : (b + 1) * batch]
            x, y = tf.gather(x_train, index), tf.gather(y_train, index)
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                ce = self._cross_entropy(y, logits)
                loss = ce + self._penalty()
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            k = tf.cast(tf.shape(index)[0], tf.float32)
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
            sums += tf.stack([loss * k, ce * k, correct])
        sums /= tf.cast(n, tf.float32)
        if not evaluate:  # a Python bool: traced once each way
            return tf.stack([sums[0], sums[1], sums[2], tf.cast(self._penalty(), tf.float32)])
        n_val = tf.shape(y_val)[0]
        val_sums = tf.zeros([2])  # cross-entropy, correct
        for b in tf.range((n_val + VAL_BATCH - 1) // VAL_BATCH):
            x, y = x_val[b * VAL_BATCH : (b + 1) * VAL_BATCH], y_val[b * VAL_BATCH : (b + 1) * VAL_BATCH]
            logits = model(x, training=False)
            k = tf.cast(tf.shape(y)[0], tf.float32)
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
            val_sums += tf.stack([self._cross_entropy(y, logits) * k, correct])
        val_sums /= tf.cast(n_val, tf.float32)
        reg = tf.cast(self._penalty(), tf.float32)
        return tf.stack([sums[0], sums[1], sums[2], val_sums[0] + reg, val_sums[0], val_sums[1], reg])


class ProgramCache:
    """Least-recently-used epoch programs by key, at most ``size`` of them."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._programs: OrderedDict[Hashable, EpochProgram] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], EpochProgram]) -> EpochProgram:
        """The cached program for ``key``, made with ``make()`` when missing."""
        program = self._programs.get(key)
        if program is not None:
            self._programs.move_to_end(key)
            return program
        program = make()
        self._programs[key] = program
        while len(self._programs) > self.size:
            self._programs.popitem(last=False)
        return program

    def clear(self) -> None:
        """Drop every cached program."""
        self._programs.clear()

    def __len__(self) -> int:
        return len(self._programs)


PROGRAMS = ProgramCache()
