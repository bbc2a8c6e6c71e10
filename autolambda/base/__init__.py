"""Plumbing every layer may use: stop signals, process liveness, store URLs, opening an
Optuna storage, flattening a settings dict. It imports nothing of autolambda but
``autolambda.errors``."""
