"""Replay pruners on a study trained without pruning: what each would have cut, and
what the analysis would then have said.

    autolambda tune --trials 100 --pruner none --study-name full --no-mlflow
    python scripts/pruning_replay.py --storage sqlite:///autolambda.db --study-name full

Each trial of the source study has its whole per-epoch history, so a pruner's decision
at every epoch can be replayed exactly: trials are fed in their original order (and in
``--orders`` shuffled orders, for a spread) to a fresh in-memory study with that pruner,
reporting ``val_ce`` epoch by epoch. The sampler's reaction to pruning is not replayed.
For each pruner: the share of epochs saved, how many per-width best trials survive,
the best score found, and alpha_hat with its interval from the surviving trials.

A transfer study (``--mode transfer``) is replayed rung by rung: the running mean over
the ladder is reported after each rung, a pruned pair keeps the rungs it finished, and
the cost is the measured seconds of the kept rungs (``rung_seconds``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autolambda.analysis.records import TrialRecord, noise_of, records_from_trials  # noqa: E402
from autolambda.analysis.settings import AnalysisConfig  # noqa: E402
from autolambda.core.trials import CONFIG_KEY, epoch_history, is_settled, rung_history  # noqa: E402
from autolambda.analysis.summary import analyze_records  # noqa: E402
from autolambda.search.factories import make_pruner  # noqa: E402
from autolambda.search.objective import score_history  # noqa: E402
from autolambda.pruners import AnswerAwarePruner, WidthStratifiedPruner  # noqa: E402


def candidates(epochs: int) -> dict[str, object]:
    P = optuna.pruners
    third = max(1, epochs // 3)
    half = epochs // 2
    return {
        "answer-aware (tune's default: 5 times the block's value, margin 0.2, to half the budget)":
            lambda: make_pruner("answer-aware", epochs),
        "answer-aware, from twice": lambda: AnswerAwarePruner(height=2.0, until_step=half),
        "answer-aware, from 1.25 times (the wall's cost)": lambda: AnswerAwarePruner(height=1.25, until_step=half),
        "answer-aware, from 1.5 times": lambda: AnswerAwarePruner(height=1.5, until_step=half),
        "answer-aware, from 3 times": lambda: AnswerAwarePruner(height=3.0, until_step=half),
        "answer-aware, margin 0.1": lambda: AnswerAwarePruner(margin=0.1, until_step=half),
        "answer-aware, every step": lambda: AnswerAwarePruner(),
        "median, 5 start-up, warm-up 1/3 (old default)": lambda: WidthStratifiedPruner(P.MedianPruner(5, third)),
        "median, 3 start-up, warm-up 1/3": lambda: WidthStratifiedPruner(P.MedianPruner(3, third)),
        "median, 5 start-up, warm-up 1/4": lambda: WidthStratifiedPruner(P.MedianPruner(5, max(1, epochs // 4))),
        "median, 4 start-up, warm-up 1/4": lambda: WidthStratifiedPruner(P.MedianPruner(4, max(1, epochs // 4))),
        "median, 3 start-up, warm-up 1/4": lambda: WidthStratifiedPruner(P.MedianPruner(3, max(1, epochs // 4))),
        "median, 3 start-up, warm-up 1/2": lambda: WidthStratifiedPruner(P.MedianPruner(3, epochs // 2)),
        "percentile 33, 3 start-up, warm-up 1/3": lambda: WidthStratifiedPruner(P.PercentilePruner(33.0, 3, third)),
        "successive halving, min 1/9": lambda: WidthStratifiedPruner(P.SuccessiveHalvingPruner(min_resource=max(1, epochs // 9))),
        "successive halving, min 1/3": lambda: WidthStratifiedPruner(P.SuccessiveHalvingPruner(min_resource=third)),
        "successive halving, min 1/3, 3 start-up": lambda: WidthStratifiedPruner(
            P.SuccessiveHalvingPruner(min_resource=third, min_early_stopping_rate=0, bootstrap_count=3)),
        "hyperband, min 1/9": lambda: WidthStratifiedPruner(P.HyperbandPruner(min_resource=max(1, epochs // 9), max_resource=epochs)),
        "median, not stratified (5, 1/3)": lambda: P.MedianPruner(5, third),
        "none": lambda: P.NopPruner(),
    }


def replay(trials: list, make_pruner, score_window: int) -> tuple[list[TrialRecord], int]:
    study = optuna.create_study(pruner=make_pruner())
    records, epochs = [], 0
    for source in trials:
        history = epoch_history(source.user_attrs)
        values = history["val_ce"]
        steps = history.get("eval_epoch") or list(range(len(values)))  # validation may skip epochs
        width, block = source.user_attrs["width"], source.user_attrs.get("block")
        trial = study.ask()
        trial.set_user_attr("width", width)
        trial.set_user_attr("block", block)
        pruned = False
        for step, value in zip(steps, values):
            trial.report(value, step)
            if trial.should_prune():
                pruned = True
                break
        epochs += step + 1 if pruned else len(history["train_ce"])
        score = score_history(values, "final", score_window)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED) if pruned else study.tell(trial, score)
        records.append(TrialRecord(
            number=source.number, state="pruned" if pruned else "complete", width=width,
            n_params=source.user_attrs["n_params"], lambda_eff=source.user_attrs["lambda_eff"],
            value=None if pruned else score, noise=noise_of(values, score_window),
            lambda0=source.params.get("lambda0"), alpha=source.params.get("alpha"), block=block,
            settled=pruned and is_settled(study.trials[-1].user_attrs)))
    return records, epochs


def transfer_candidates(rungs: int) -> dict[str, object]:
    """Pruners for a transfer study, whose steps are the rungs of the ladder."""
    from autolambda.search.factories import make_pruner

    P = optuna.pruners
    return {
        "none (tune's default)": lambda: P.NopPruner(),
        "median as tune builds it (5 start-up, warm-up to the 2nd rung)": lambda: make_pruner("median", rungs),
        "median, 5 start-up, from the 1st rung": lambda: P.MedianPruner(5, 0),
        "successive halving as tune builds it": lambda: make_pruner("successive-halving", rungs),
    }


def replay_transfer(trials: list, make_pruner) -> tuple[list[TrialRecord], float]:
    """Feed each pair's running mean rung by rung; a pruned pair keeps the rungs it
    finished (they are data). Returns the rung records and the seconds of the kept rungs."""
    from autolambda.analysis.records import rung_records

    study = optuna.create_study(pruner=make_pruner())
    records, seconds = [], 0.0
    for source in trials:
        rungs = rung_history(source.user_attrs)
        values, cost = rungs["rung_val_ce"], rungs.get("rung_seconds") or [1.0] * len(rungs["rung_val_ce"])
        trial = study.ask()
        kept = len(values)
        for step in range(len(values)):
            trial.report(sum(values[:step + 1]) / (step + 1), step)
            if step < len(values) - 1 and trial.should_prune():
                kept = step + 1
                break
        seconds += sum(cost[:kept])
        if kept < len(values):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, sum(values) / len(values))
        records += rung_records(source, "complete")[:kept]
    return records, seconds


def main_transfer(study: optuna.Study, orders: int, only: list[str] | None = None) -> None:
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(trials) < len(study.trials) or not trials:
        sys.exit("the source transfer study must be tuned with --pruner none and have only complete pairs.")
    ladder = trials[0].user_attrs["ladder"]
    total = sum(sum(rung_history(t.user_attrs).get("rung_seconds") or [1.0] * len(ladder)) for t in trials)
    full = analyze_records(records_from_trials(trials))
    print(f"source: {len(trials)} pairs on the ladder {ladder}, {total:.0f} s of training; unpruned: {_answer(full)}\n")
    print("| pruner | seconds saved | rungs kept per width | optimum identified | its 95 % CI width | wall's 95 % CI width | "
          "precision per second vs none: optimum, wall |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    order_list = [list(range(len(trials)))] + [list(rng.permutation(len(trials))) for _ in range(orders - 1)]
    base: dict[str, float] = {}
    chosen = {k: v for k, v in transfer_candidates(len(ladder)).items() if not only or k.startswith("none") or any(k.startswith(o) for o in only)}
    for name, make in chosen.items():  # "none" always: the baseline of the last column
        saved, per_width, opt, wall = [], [], [], []
        for order in order_list:
            records, used = replay_transfer([trials[i] for i in order], make)
            saved.append(1 - used / total)
            per_width.append([sum(r.width == w for r in records) for w in ladder])
            a = analyze_records(records)
            opt.append(a.alpha_ci[1] - a.alpha_ci[0] if a.identified else float("nan"))
            wall.append(a.wall_alpha_ci[1] - a.wall_alpha_ci[0] if a.wall_identified else float("nan"))
        cost = 1 - statistics.median(saved)
        merits = []
        for key, widths in (("optimum", opt), ("wall", wall)):
            known = [w for w in widths if w == w]
            # precision (1 / variance) per second; a study that does not identify it has none
            merit = (len(known) / len(widths)) / (statistics.median(known) ** 2 * cost) if known else 0.0
            base.setdefault(key, merit)
            merits.append(f"{merit / base[key]:.2f}" if base[key] else "—")

        def fmt(values: list[float]) -> str:
            known = [v for v in values if v == v]
            return f"{statistics.median(known):.2f} ({min(known):.2f}..{max(known):.2f})" if known else "—"

        print(f"| {name} | {statistics.median(saved):.0%} | {'/'.join(str(round(statistics.median(c))) for c in zip(*per_width))} | "
              f"{sum(v == v for v in opt)}/{len(opt)} | {fmt(opt)} | {fmt(wall)} | {', '.join(merits)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///autolambda.db")
    parser.add_argument("--study-name", default=None)
    parser.add_argument("--orders", type=int, default=5, help="trial orders: the original, then shuffled ones")
    parser.add_argument("--only", nargs="*", default=None, help="replay only the candidates whose name starts with one of these")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    config = study.user_attrs.get(CONFIG_KEY, {})
    if config.get("mode") == "transfer":
        return main_transfer(study, args.orders, args.only)
    window = AnalysisConfig.for_study(config).score_window
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and epoch_history(t.user_attrs)]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    epochs = max((len(epoch_history(t.user_attrs)["train_ce"]) for t in trials), default=0)
    if pruned or not trials or any(len(epoch_history(t.user_attrs)["train_ce"]) < epochs for t in trials):
        sys.exit(f"the source study must be tuned with --pruner none (every trial with its whole history); "
                 f"it has {len(trials)} complete and {pruned} pruned trials.")
    full = analyze_records(records_from_trials(trials, score_window=window))
    best_per_width = {}
    for t in trials:
        w = t.user_attrs["width"]
        if w not in best_per_width or t.value < best_per_width[w].value:
            best_per_width[w] = t
    total = sum(len(epoch_history(t.user_attrs)["train_ce"]) for t in trials)
    print(f"source: {len(trials)} trials x {epochs} epochs; unpruned: {_answer(full)}\n")
    print("| pruner | epochs saved | best kept per width (of 6) | best val_ce | alpha_hat | 95 % CI | wall alpha | its 95 % CI |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    orders = [list(range(len(trials)))] + [list(rng.permutation(len(trials))) for _ in range(args.orders - 1)]
    chosen = {k: v for k, v in candidates(epochs).items() if not args.only or any(k.startswith(o) for o in args.only)}
    for name, make in chosen.items():
        saved, kept, best, alphas, cis, walls, wall_cis = [], [], [], [], [], [], []
        for order in orders:
            records, used = replay([trials[i] for i in order], make, window)
            saved.append(1 - used / total)
            survivors = {r.number for r in records if r.state == "complete"}
            kept.append(sum(best_per_width[w].number in survivors for w in best_per_width))
            best.append(min(r.value for r in records if r.value is not None))
            analysis = analyze_records(records)
            alphas.append(analysis.alpha_hat if analysis.alpha_hat is not None else float("nan"))
            cis.append(analysis.alpha_ci)
            walls.append(analysis.wall_alpha_hat if analysis.wall_alpha_hat is not None else float("nan"))
            wall_cis.append(analysis.wall_alpha_ci)

        def fmt(values, spec):
            values = [v for v in values if v == v]  # not identified: NaN, left out (counted beside)
            if not values:
                return "—"
            return f"{statistics.median(values):{spec}} ({min(values):{spec}}..{max(values):{spec}})"

        widths = [c[1] - c[0] for c in cis if c is not None]
        wall_widths = [c[1] - c[0] for c in wall_cis if c is not None]
        ident = f"identified {len(widths)}/{len(cis)}"
        print(f"| {name} | {fmt(saved, '.0%')} | {fmt(kept, '.0f')} | {fmt(best, '.4f')} | {fmt(alphas, '+.2f')} | "
              f"{ident}, width {fmt(widths, '.2f') if widths else '—'} | {fmt(walls, '+.2f')} | "
              f"width {fmt(wall_widths, '.2f') if wall_widths else '—'} |")


def _answer(a) -> str:
    opt = f"alpha_hat {a.alpha_hat:+.2f} CI [{a.alpha_ci[0]:+.2f}, {a.alpha_ci[1]:+.2f}]" if a.identified else "alpha not identified"
    wall = (f"wall alpha {a.wall_alpha_hat:+.2f} CI [{a.wall_alpha_ci[0]:+.2f}, {a.wall_alpha_ci[1]:+.2f}]"
            if a.wall_identified else "wall not identified")
    return f"{opt}; {wall}"


if __name__ == "__main__":
    main()
