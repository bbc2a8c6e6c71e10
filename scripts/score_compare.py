"""Which score and fit calm Adam's late spikes without changing what is measured?

Re-analyzes stored default digits studies (the same trainings, so the same CPU) four ways:
the mean or the median of each trial's last ``score_window`` epochs, with or without the
fit's Huber down-weighting of trials far off their seed block's curve. Reports the
optimum's evidence, alpha's interval and the residual noise of each.

    python scripts/score_compare.py STUDY_DB [STUDY_DB ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics
import time

import optuna


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storages", nargs="+", help="sqlite:///... of default digits studies")
    parser.add_argument("--study-name", default="digits-l2")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    import autolambda.analysis.curve as curve
    from autolambda.analysis.records import records_from_trials
    from autolambda.analysis.settings import AnalysisConfig
    from autolambda.core.trials import CONFIG_KEY, epoch_history
    from autolambda.analysis.summary import analyze_records

    huber_on = curve.noise_weights
    print("| study | score | Huber | evidence (level) | alpha | 95 % interval | half-width | noise SD | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for storage in args.storages:
        study = optuna.load_study(study_name=args.study_name, storage=storage)
        window = AnalysisConfig.for_study(study.user_attrs.get(CONFIG_KEY)).score_window
        records = records_from_trials(study.trials)
        by_number = {t.number: t for t in study.trials}
        for score in ("mean", "median"):
            rows = records
            if score == "median":
                rows = []
                for r in records:
                    history = epoch_history(by_number[r.number].user_attrs).get("val_ce") or []
                    tail = [v for v in history[-window:] if v is not None]
                    rows.append(dataclasses.replace(r, value=statistics.median(tail)) if r.value is not None and tail else r)
            for huber in (True, False):
                curve.noise_weights = huber_on if huber else functools.partial(huber_on, huber=None)
                started = time.perf_counter()
                a = analyze_records(rows, recommendations=False)
                ci = a.alpha_ci
                print(f"| {storage.rsplit('/', 2)[-2]} | {score} | {'on' if huber else 'off'} | {a.dip_evidence:.1f} "
                      f"({a.dip_evidence_level or float('nan'):.1f}) | {a.alpha_hat if a.alpha_hat is None else round(a.alpha_hat, 2)} | "
                      f"{'—' if ci is None else f'[{ci[0]:.2f}, {ci[1]:.2f}]'} | {'—' if ci is None else f'{(ci[1] - ci[0]) / 2:.2f}'} | "
                      f"{'—' if a.noise_sd is None else format(a.noise_sd, '.4f')} | {time.perf_counter() - started:.0f} |", flush=True)
    curve.noise_weights = huber_on


if __name__ == "__main__":
    main()
