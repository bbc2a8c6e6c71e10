"""Optuna's side: the objectives (search and transfer), the per-epoch monitor, and the
width-fair pruner and samplers that keep small widths from being starved."""
