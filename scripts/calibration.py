"""Are the analysis' 95 % intervals honest? Coverage on many surrogate studies.

For each planted alpha, runs ``--studies`` surrogate studies of ``--trials`` trials with
the default sampler, pruner and budget (in memory, no TensorFlow) at the surrogate's
default, realistic noise (seed-to-seed SD 0.02, ~2.5x that at the narrowest width, dip
0.03, a soft wall cut short by a collapse: as measured on digits), then
``analyze_records`` on each, and reports:

- how often alpha of the optimum is identified, the coverage of its 95 % interval
  (among identified studies, and counting a "not identified" study as covering, since it
  rules nothing out), the median interval width, and how often the true hypothesis was
  called ruled out;
- the same for the wall's alpha, against the surrogate's true wall (where its noise-free
  loss first exceeds the floor by ``wall_cost``);
- on a flat surrogate (``--surrogate-dip 0``, no optimum), how often an alpha is claimed.

Goals (issue 25): the optimum identified in >= 80 % of studies, coverage >= 0.90 for
every planted alpha (and the wall's), identified in <= 5 % of flat studies. Each study has
its own seed stream; a third of each planted alpha's studies have a wall scaling 0.5 below
the optimum, a third 0.5 above (``--wall-shifts``).

Example:
    python scripts/calibration.py --studies 30 --markdown BENCH_calibration.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autolambda.analysis.estimators import HALF_THRESHOLD  # noqa: E402
from autolambda.search.objective import DEFAULT_EPOCHS  # noqa: E402
from autolambda.training.surrogate import MEASURED_DIP_SHAPE  # noqa: E402

PLANTED = (-0.5, 0.0, 0.5, 1.0)
GOALS = {"coverage": 0.90, "ruled_out": 0.10, "flat_identified": 0.05, "identified": 0.80}


def true_wall_alpha(planted: float, cost: float, dip: float | None = None, widths: tuple[int, ...] | None = None,
                    wall_alpha: float | None = None) -> float:
    """The surrogate's wall exponent over ``widths`` (default: the space's) (``SurrogateTrainer.wall_alpha``)."""
    from autolambda.training.data import load_dataset
    from autolambda.core.scaling import count_convnet_params
    from autolambda.core.space import SearchSpace
    from autolambda.training.surrogate import SurrogateTrainer

    data = load_dataset("digits", n_train=50, seed=0)
    space = SearchSpace()
    sizes = [count_convnet_params(w, space.depth, space.kernel_size, data.input_shape, data.n_classes) for w in widths or space.widths]
    extra = {"dip": dip} if dip is not None else {}
    return SurrogateTrainer(planted_alpha=planted, planted_wall_alpha=wall_alpha, **extra).wall_alpha(sizes, cost, data.n_classes)


def study_seed(planted: float, index: int, wall_alpha: float | None) -> int:
    """An independent seed for each study: trial seeds are derived from it by hashing (seed
    blocks) or by adding the trial number, so seeds that differ by a trial count would
    let neighbouring studies share trainings."""
    import hashlib

    digest = hashlib.sha256(f"calibration-{planted}-{wall_alpha}-{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % 1_000_000_007


def one_study(job: tuple) -> dict:
    """Run one surrogate study and analyze it (a worker process).

    ``job``: (planted, seed, trials, dip, seed_noise, wall_cost[, pruner[, sampler[, ladder[, widths[, wall_alpha]]]]]);
    a ladder (a tuple of widths) makes it a transfer study (``autolambda.search.transfer``)."""
    import optuna

    from autolambda import LambdaScalingObjective
    from autolambda.analysis.records import records_from_trials
    from autolambda.analysis.summary import analyze_records
    from autolambda.run.config import StudyConfig
    from autolambda.search.design import Replicator
    from autolambda.search.factories import make_pruner, make_sampler
    from autolambda.search.transfer import TransferObjective

    planted, seed, trials, dip, seed_noise, cost, *rest = job
    defaults = StudyConfig()
    pruner = rest[0] if rest else defaults.pruner
    sampler = rest[1] if len(rest) > 1 else defaults.sampler
    ladder = rest[2] if len(rest) > 2 else None
    widths = rest[3] if len(rest) > 3 else None  # search mode on these widths (default: the space's)
    wall_alpha = rest[4] if len(rest) > 4 else None  # the surrogate's wall exponent (default: planted)
    budget = rest[5] if len(rest) > 5 else None  # epochs: trials run until the study has trained this many
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    steps = len(ladder) if ladder else DEFAULT_EPOCHS  # what a pruner's resources count
    study = optuna.create_study(study_name=f"calibration-{planted}-{seed}", sampler=make_sampler(sampler, seed % 2**31),
                                pruner=make_pruner(pruner, steps))
    callbacks = [Replicator(defaults.replicate_every, total=None if budget else trials)] if defaults.replicate_every and not ladder else []
    if budget:  # equal CPU time: the surrogate's epochs all cost the same
        def spent(study: optuna.Study, trial: object) -> None:
            if sum(t.user_attrs.get("epochs_run", 0) for t in study.get_trials(deepcopy=False)) >= budget:
                study.stop()

        callbacks.append(spent)
    kind, extra = (TransferObjective, {"ladder": ladder}) if ladder else (LambdaScalingObjective, {})
    if widths:
        from autolambda.core.space import SearchSpace

        extra["space"] = SearchSpace(widths=widths)
    if not ladder:
        extra["seed_blocks"] = defaults.seed_blocks
    objective = kind(trainer="surrogate", planted_alpha=planted, planted_wall_alpha=wall_alpha, epochs=DEFAULT_EPOCHS,
                     seed=seed, surrogate_dip=dip, surrogate_seed_noise=seed_noise, **extra)
    started = time.perf_counter()
    study.optimize(objective, n_trials=3 * trials if budget else trials, callbacks=callbacks)
    # Threshold 0: every study gets its interval; summarize() applies the threshold after.
    records = records_from_trials(study.trials)
    a = analyze_records(records, wall_cost=cost, detection_threshold=0.0, half_threshold=0.0, recommendations=False)
    # The calibrated detection level the default analysis would use (summarize() applies it),
    # with its early stops: the decision is the analysis' own.
    from autolambda.analysis.curve import weighted_curve
    from autolambda.analysis.estimators import null_evidence_level
    from autolambda.analysis.records import complete_curve_data

    curve = weighted_curve(complete_curve_data(records)[0])
    level = null_evidence_level(curve, curve.fit(dip=False), observed=a.dip_evidence)
    return {"planted": planted, "wall_planted": planted if wall_alpha is None else wall_alpha,
            "seed": seed, "dip": dip, "seconds": time.perf_counter() - started,
            "epochs": sum(t.user_attrs.get("epochs_run", 0) for t in study.trials), "trials": len(study.trials),
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
            "rungs": sum(r.state == "complete" for r in records),
            "rungs_by_width": {str(w): sum(r.state == "complete" and r.width == w for r in records) for w in (ladder or ())},
            "identified": a.identified, "alpha_hat": a.alpha_hat, "alpha_ci": a.alpha_ci,
            "wall_identified": a.wall_identified, "wall_alpha_hat": a.wall_alpha_hat, "wall_alpha_ci": a.wall_alpha_ci,
            "noise_sd": a.noise_sd, "reason": a.alpha_reason, "evidence": a.dip_evidence, "evidence_level": level,
            "evidence_by_half": a.dip_evidence_by_half,
            "depth_p": a.depth_test["p"] if a.depth_test else None}


def agreement(rows: list[dict], threshold: float | None, half: float = HALF_THRESHOLD) -> float | None:
    """Share of all triples of studies (same planted alpha) whose answers agree as the issue "The default study answers" asks of three seeds on digits: each
    answers, and each estimate lies inside the other two intervals. The answer is the
    optimum's alpha where identified at ``threshold``, else the wall's; the two estimate
    different exponents, so a triple that mixes them counts as disagreeing."""
    def answer(r: dict) -> tuple[str, float, tuple[float, float]] | None:
        if identified(r, threshold, half):
            return "optimum", r["alpha_hat"], r["alpha_ci"]
        if r["wall_identified"]:
            return "wall", r["wall_alpha_hat"], r["wall_alpha_ci"]
        return None

    from itertools import combinations

    triples = list(combinations(rows, 3))
    if not triples:
        return None
    held = 0
    for triple in triples:
        answers = [answer(r) for r in triple]
        if any(a is None for a in answers) or len({a[0] for a in answers}) > 1:
            continue
        held += all(o[2][0] <= a[1] <= o[2][1] for a in answers for o in answers if o is not a)
    return held / len(triples)


def identified(row: dict, threshold: float | None = None, half: float = HALF_THRESHOLD) -> bool:
    """Whether the analysis would call alpha identified at ``threshold`` (``None``: the
    study's calibrated level, as the default analysis does) and ``half``."""
    level = row.get("evidence_level", 0.0) if threshold is None else threshold
    return bool(row["identified"] and row["evidence"] >= level and min(row["evidence_by_half"]) >= half)


def summarize(rows: list[dict], wall_truth: dict, threshold: float | None = None, half: float = HALF_THRESHOLD) -> list[dict]:
    """One line per planted alpha (and one for the flat surrogate)."""
    out = []
    for planted in sorted({r["planted"] for r in rows if r["dip"] != 0}):
        rs = [r for r in rows if r["planted"] == planted and r["dip"] != 0]
        ident = [r for r in rs if identified(r, threshold, half)]
        covers = [r["alpha_ci"][0] <= planted <= r["alpha_ci"][1] for r in ident]
        wall = [r for r in rs if r["wall_identified"]]
        truth = wall_truth[planted]
        wall_covers = [r["wall_alpha_ci"][0] <= wall_truth[(planted, r.get("wall_planted", planted))] <= r["wall_alpha_ci"][1]
                       for r in wall]
        out.append({
            "planted": planted, "studies": len(rs), "identified": len(ident) / len(rs),
            "coverage_identified": float(np.mean(covers)) if covers else None,
            "coverage_all": (sum(covers) + len(rs) - len(ident)) / len(rs),
            "median_width": float(np.median([r["alpha_ci"][1] - r["alpha_ci"][0] for r in ident])) if ident else None,
            "ruled_out": (len(covers) - sum(covers)) / len(rs),
            "wall_truth": truth, "wall_identified": len(wall) / len(rs),
            "wall_coverage": float(np.mean(wall_covers)) if wall_covers else None,
            "wall_median_width": float(np.median([r["wall_alpha_ci"][1] - r["wall_alpha_ci"][0] for r in wall])) if wall else None,
            "three_agree": agreement(rs, threshold, half),
            "median_noise_sd": float(np.median([r["noise_sd"] for r in rs if r["noise_sd"] is not None])),
            "seconds_per_study": float(np.median([r["seconds"] for r in rs])),
        })
    flat = [r for r in rows if r["dip"] == 0]
    if flat:
        out.append({"planted": "flat (dip 0)", "studies": len(flat), "identified": float(np.mean([identified(r, threshold, half) for r in flat])),
                    "wall_identified": float(np.mean([r["wall_identified"] for r in flat]))})
    return out


def threshold_table(rows: list[dict], wall_truth: dict[float, float]) -> str:
    """How the goals fare at other detection thresholds (to check the calibrated ones)."""
    lines = ["| threshold | per half | flat identified | worst coverage (all) | worst ruled out | identified (all planted) | "
             "coverage among identified |", "|---|---|---|---|---|---|---|"]
    for t in (None, 0, 8, 16, 24, 32):
        for half in (0.0, 2.0, 4.0, 8.0):
            s = summarize(rows, wall_truth, t, half)
            planted = [x for x in s if "coverage_all" in x]
            flat = [x for x in s if "coverage_all" not in x]
            flat_text = f"{flat[0]['identified']:.0%}" if flat else "—"
            ident = [r for r in rows if r["dip"] != 0 and identified(r, t, half)]
            held = sum(r["alpha_ci"][0] <= r["planted"] <= r["alpha_ci"][1] for r in ident)
            lines.append(f"| {'calibrated' if t is None else t} | {half:g} | {flat_text} | {min(x['coverage_all'] for x in planted):.2f} | "
                         f"{max(x['ruled_out'] for x in planted):.0%} | {len(ident)} | {held} of {len(ident)} |")
    return "\n".join(lines) + "\n"


def markdown(summary: list[dict], args: argparse.Namespace, seconds: float, rows: list[dict]) -> str:
    f = lambda v, spec=".2f": "—" if v is None else format(v, spec)  # noqa: E731
    noise = "default" if args.seed_noise is None else str(args.seed_noise)
    dip = "default" if args.dip is None else str(args.dip)
    lines = [
        f"Surrogate with the noise measured on digits (a seed offset and a residual per width, late spikes at the widest; "
        f"scale {noise}, default 0.02 = as measured) and dip {dip} (default 0.03, the mean over the sizes: each size's depth "
        f"relative to it as measured on digits, {' / '.join(f'{v:.2f}' for v in MEASURED_DIP_SHAPE)} at widths 2-64); walls shifted by {args.wall_shifts} "
        f"from the optimum's exponent in turn (the wall's truth is each study's own); {args.trials} trials a study"
        + (f" in transfer mode on the ladder {args.ladder} (each trial one pair on every width; median "
           f"{np.median([r.get('rungs', np.nan) for r in rows]):.0f} finished rungs, {np.median([r.get('epochs', np.nan) for r in rows]):.0f} epochs a study)"
           if args.ladder else f" on the widths {args.widths}" if args.widths else "") + ", "
        f"{'the default sampler' if args.sampler is None else 'sampler ' + args.sampler}"
        f"{' (in transfer mode width-balanced TPE: the design has no single width to design for)' if args.ladder and args.sampler in (None, 'design') else ''}, "
        f"{'the default pruner' if args.pruner is None else 'pruner ' + args.pruner} and {DEFAULT_EPOCHS} epochs; "
        f"{args.studies} studies per planted alpha, "
        f"{args.flat_studies} flat ones; {seconds / 60:.1f} min on {args.jobs} processes.",
        "",
        "| planted alpha | studies | identified | coverage (identified) | coverage (all) | median width | true hypothesis ruled out | "
        "wall alpha (true, unshifted) | wall identified | wall coverage | wall median width | three seeds agree |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        if "coverage_all" not in s:
            continue
        lines.append(f"| {s['planted']:+.1f} | {s['studies']} | {s['identified']:.0%} | {f(s['coverage_identified'])} | "
                     f"{s['coverage_all']:.2f} | {f(s['median_width'])} | {s['ruled_out']:.0%} | {s['wall_truth']:+.2f} | "
                     f"{s['wall_identified']:.0%} | {f(s['wall_coverage'])} | {f(s['wall_median_width'])} | "
                     f"{'—' if s['three_agree'] is None else format(s['three_agree'], '.0%')} |")
    lines += ["", "\"Three seeds agree\": the share of all triples of studies (the same planted alpha) where each answers "
              "(the optimum's alpha, else the wall's) and each estimate lies inside the other two 95 % intervals. With honest "
              "intervals this is far from certain: an estimate falls outside another study's 95 % interval about one time "
              "in six, and a triple has six such chances."]
    flat = [s for s in summary if "coverage_all" not in s]
    if flat:
        lines += ["", f"Flat surrogate (dip 0, no optimum): alpha claimed identified in {flat[0]['identified']:.0%} of "
                  f"{flat[0]['studies']} studies (goal <= {GOALS['flat_identified']:.0%})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=30, help="surrogate studies per planted alpha")
    parser.add_argument("--flat-studies", type=int, default=None, help="flat studies (default: --studies)")
    parser.add_argument("--trials", type=int, default=None, help="trials a study (default: tune's)")
    parser.add_argument("--alphas", default=",".join(map(str, PLANTED)))
    parser.add_argument("--wall-cost", type=float, default=0.25)
    parser.add_argument("--epoch-budget", type=int, default=None,
                        help="run each study until it has trained this many epochs (equal CPU time), not --trials trials")
    parser.add_argument("--pruner", default=None, help="the study's pruner (default: tune's, answer-aware)")
    parser.add_argument("--sampler", default=None, help="the study's sampler (default: tune's, design)")
    parser.add_argument("--dip", type=float, default=None, help="the surrogate's dip (default: its own, 0.03)")
    parser.add_argument("--seed-noise", type=float, default=None, help="the surrogate's seed-to-seed SD (default: its own, 0.02)")
    parser.add_argument("--ladder", default=None, help="transfer mode on this ladder of widths, e.g. 4,16,64 (default: search mode)")
    parser.add_argument("--widths", default=None, help="search mode on these widths, e.g. 4,16,64 (default: the space's)")
    parser.add_argument("--wall-shifts", default="0,-0.5,0.5",
                        help="the surrogate's wall exponent minus the optimum's, taken in turn by the studies of each planted alpha")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="write every study's result here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--benchmarks", type=Path, help="write the table as the last section of this file (BENCHMARKS.md)")
    parser.add_argument("--from-json", type=Path, help="summarise the studies of an earlier --json instead of running new ones")
    args = parser.parse_args()
    args.flat_studies = args.studies if args.flat_studies is None else args.flat_studies
    alphas = [float(a) for a in args.alphas.split(",")]
    from autolambda.run.config import StudyConfig

    pruner, sampler = args.pruner or StudyConfig().pruner, args.sampler or StudyConfig().sampler
    args.trials = args.trials or StudyConfig().trials
    ladder = tuple(int(w) for w in args.ladder.split(",")) if args.ladder else None
    widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else None
    common = (args.seed_noise, args.wall_cost, pruner, sampler, ladder, widths)
    # Every third study's wall scales 0.5 below the optimum, every third 0.5 above: the wall's
    # exponent is no stand-in for the optimum's, and the calibration must show it.
    shifts = [float(v) for v in args.wall_shifts.split(",")] if args.wall_shifts else [0.0]
    walls = {(a, s): a + shifts[s % len(shifts)] for a in alphas for s in range(args.studies)}
    jobs = [(a, study_seed(a, s, walls[a, s]), args.trials, args.dip, *common, walls[a, s], args.epoch_budget)
            for a in alphas for s in range(args.studies)]
    jobs += [(0.0, study_seed(0.0, s, "flat"), args.trials, 0.0, *common, None, args.epoch_budget) for s in range(args.flat_studies)]
    started = time.perf_counter()
    if args.from_json:
        stored = json.loads(args.from_json.read_text())
        rows = stored["studies"]
        seconds = stored.get("seconds", sum(r["seconds"] for r in rows) / args.jobs)
    else:
        rows = []
        with ProcessPoolExecutor(args.jobs) as pool:
            for i, row in enumerate(pool.map(one_study, jobs), 1):
                rows.append(row)
                print(f"\r{i}/{len(jobs)} studies", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        seconds = time.perf_counter() - started
    truth = {a: true_wall_alpha(a, args.wall_cost, args.dip, ladder or widths) for a in alphas}
    truth |= {(a, w): true_wall_alpha(a, args.wall_cost, args.dip, ladder or widths, w) for a, w in
              {(r["planted"], r.get("wall_planted", r["planted"])) for r in rows if r["dip"] != 0}}
    summary = summarize(rows, truth)
    text = markdown(summary, args, seconds, rows)
    text += (f"\nAt other detection thresholds (the default is calibrated per study, a Monte Carlo test on studies simulated "
             f"without a dip (the third largest of 60 simulated evidences), and {HALF_THRESHOLD:g} in each half of the sizes):\n\n" + threshold_table(rows, truth))
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "studies": rows, "seconds": seconds}, indent=1, default=float))
    if args.markdown:
        args.markdown.write_text(text)
    if args.benchmarks:
        write_section(args.benchmarks, text, args)


HEADING = "## Calibration of the intervals"
TRANSFER_HEADING = "## Calibration of transfer mode"
# Other set-ups get headings that are no prefix of these (replace_section matches the first occurrence).


def write_section(path: Path, table: str, args: argparse.Namespace) -> None:
    """Replace the calibration section of ``path`` (or append it); other sections stay."""
    heading = TRANSFER_HEADING if args.ladder else HEADING
    if args.widths or args.pruner or args.sampler:
        heading = (f"## Calibration, {'transfer mode' if args.ladder else 'search mode'}"
                   + "".join(f", {k} {v}" for k, v in (("widths", args.widths), ("pruner", args.pruner), ("sampler", args.sampler)) if v))
    options = "".join(f" --{k.replace('_', '-')} {v}" for k, v in (("trials", args.trials), ("epoch_budget", args.epoch_budget), ("ladder", args.ladder), ("widths", args.widths),
                      ("flat_studies", args.flat_studies if args.flat_studies != args.studies else None), ("dip", args.dip),
                      ("seed_noise", args.seed_noise), ("wall_cost", args.wall_cost if args.wall_cost != 0.25 else None),
                      ("pruner", args.pruner), ("sampler", args.sampler), ("alphas", args.alphas))
                      if v is not None and not (k == "alphas" and v == ",".join(map(str, PLANTED))))
    command = f"python scripts/calibration.py --studies {args.studies}{options} --benchmarks {path.name}"
    section = (f"{heading}\n\nWritten by `{command}` on {time.strftime('%Y-%m-%d')}. Goals: coverage of the 95 % "
               f"interval >= {GOALS['coverage']:.2f} for every planted alpha; a true hypothesis ruled out in <= "
               f"{GOALS['ruled_out']:.0%} of studies; a flat curve called identified in <= {GOALS['flat_identified']:.0%}. "
               "A study where alpha is not identified rules nothing out, so it counts as covering in \"coverage (all)\"; "
               "\"coverage (identified)\" counts only the studies that claimed an interval.\n\n" + table)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchmarks_file import replace_section

    replace_section(path, heading, section)


if __name__ == "__main__":
    main()
