"""Turning one trial's parameters into a per-epoch history: data, the Conv2D model, the
Keras trainer with its compiled epoch programs, and the surrogate that trains nothing."""
