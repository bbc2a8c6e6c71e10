"""Nested settings dicts as MLflow params and as config diffs read them."""

from __future__ import annotations

from typing import Any


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested settings dict as one level, keys joined by dots.

    >>> flatten({"epochs": 80, "space": {"widths": [4, 16]}})
    {'epochs': 80, 'space.widths': [4, 16]}
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
