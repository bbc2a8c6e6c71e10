"""Pruners side by side on the surrogate, from ``scripts/calibration.py --json`` files.

    python scripts/calibration.py --studies 20 --pruner none --json none.json
    python scripts/calibration.py --studies 20 --pruner answer-aware --json aa.json
    python scripts/calibration.py --studies 20 --pruner answer-aware --epoch-budget 16000 --json aa-cpu.json
    python scripts/pruner_table.py "none, 200 trials=none.json" "answer-aware, 200 trials=aa.json" ...

One row per file (``label=path``): trials and epochs per study (median), the share of
trials pruned, and over the planted alphas the optimum's and the wall's coverage (a study
that does not identify it counts as covering: it rules nothing out) and median interval
width (identified studies), with the range over the planted alphas in brackets. The
studies of two runs with the same ``--studies`` and alphas share their seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration import true_wall_alpha  # noqa: E402


def row(label: str, rows: list[dict], cost: float = 0.25) -> str:
    planted = [r for r in rows if r["dip"] != 0]
    alphas = sorted({r["planted"] for r in planted})
    truth = {(a, w): true_wall_alpha(a, cost, None, None, w) for a, w in {(r["planted"], r["wall_planted"]) for r in planted}}
    cover, width, wcover, wwidth = [], [], [], []
    for a in alphas:
        rs = [r for r in planted if r["planted"] == a]
        cover.append(np.mean([not r["identified"] or r["alpha_ci"][0] <= a <= r["alpha_ci"][1] for r in rs]))
        width.append(np.median([r["alpha_ci"][1] - r["alpha_ci"][0] for r in rs if r["identified"]] or [np.nan]))
        w_ok = [not r["wall_identified"] or r["wall_alpha_ci"][0] <= truth[a, r["wall_planted"]] <= r["wall_alpha_ci"][1] for r in rs]
        wcover.append(np.mean(w_ok))
        wwidth.append(np.median([r["wall_alpha_ci"][1] - r["wall_alpha_ci"][0] for r in rs if r["wall_identified"]] or [np.nan]))
    trials = np.median([r.get("trials", 0) for r in planted])
    epochs = np.median([r["epochs"] for r in planted])
    pruned = np.sum([r.get("pruned", 0) for r in planted]) / max(np.sum([r.get("trials", 0) for r in planted]), 1)
    identified = np.mean([r["identified"] for r in planted])

    def span(values: list[float], spec: str) -> str:
        return f"{np.nanmedian(values):{spec}} ({np.nanmin(values):{spec}}–{np.nanmax(values):{spec}})"

    return (f"| {label} | {trials:.0f} | {epochs:,.0f} | {pruned:.0%} | {identified:.0%} | {span(cover, '.2f')} | "
            f"{span(width, '.2f')} | {span(wcover, '.2f')} | {span(wwidth, '.2f')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="label=path of a calibration --json file")
    args = parser.parse_args()
    print("| pruner | trials | epochs | pruned | optimum identified | optimum's coverage | its median width | "
          "wall's coverage | its median width |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in args.runs:
        label, _, path = spec.rpartition("=")
        print(row(label, json.loads(Path(path).read_text())["studies"]))


if __name__ == "__main__":
    main()
