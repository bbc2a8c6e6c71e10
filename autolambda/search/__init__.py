"""Optuna's side: the objectives (search and transfer), the per-epoch monitor and its Keras
callback, the width-fair and answer-aware pruners, and the samplers that keep small widths
from being starved (the design sampler reads the analysis' fit: search -> analysis)."""
