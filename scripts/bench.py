"""Benchmarks of autolambda, side by side on this machine; rewrites BENCHMARKS.md.

    python scripts/bench.py            # the full run (tens of minutes on 2 cores)
    python scripts/bench.py --quick    # a short run (under 10 minutes)
    python scripts/bench.py --smoke    # seconds: every section on a toy budget (tests)

Sections (each figure with its median and spread over repeats, and its goal):
 1. overhead: the same fixed-epoch search through `autolambda tune` and through
    scripts/plain_loop.py (hand-written Optuna + Keras, no tracking); wall-time ratio;
 2. where the time goes in a default `autolambda tune`: Keras fit, model building,
    MLflow logging, the rest (Optuna storage, sampling, pruning), start-up;
 3. pruning: median, successive halving, hyperband, none — total epochs, wall time,
    best penalty-free validation loss, over seeds;
 4. worker scaling: trials per minute with 1 and 2 workers;
 5. memory: resident memory after trial 1 and after the last trial of one process;
 6. start-up: `autolambda --help` and `import autolambda`;
 7. the main job: `autolambda tune --trials 100` with defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PRUNERS = ("median", "successive-halving", "hyperband", "none")
PLANTED = 0.7  # the surrogate's planted alpha in the pruning section

BUDGETS = {
    # overhead: trials, epochs, repeats | profile: trials, repeats | pruning: trials, epochs, seeds, surrogate trials, surrogate seeds
    # workers: trials, epochs, repeats | main: trials (None: skipped), repeats | startup repeats
    # smoke: the surrogate trainer where a section allows it (no TensorFlow start-up)
    "smoke": dict(overhead=(1, 1, 1), profile=(3, 1), pruning=(4, 3, 1, 12, 1), workers=(2, 2, 1), main=(None, 0), startup=1,
                  trainer="surrogate"),
    "quick": dict(overhead=(20, 10, 1), profile=(30, 1), pruning=(36, 40, 1, 150, 3), workers=(16, 20, 1), main=(None, 0), startup=5),
    "full": dict(overhead=(20, 10, 3), profile=(100, 1), pruning=(60, 40, 3, 150, 10), workers=(24, 20, 3), main=(100, 3), startup=9),
}


def timed(cmd: list[str], cwd: str | Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} (1 run)"
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)"


# ---- sections run in child processes ---------------------------------------------------


def profile_child(trials: int, trainer: str, out: str) -> None:
    """A default tune in this process, with timers around training, reporting, build and MLflow."""
    t0 = time.perf_counter()
    wall0 = time.time()
    from autolambda.run.config import load_config
    from autolambda.search.monitor import TrialMonitor
    from autolambda.run.runner import run_study
    from autolambda.tracking.tracker import MLflowTracker
    from autolambda.training.trainers import KerasTrainer

    clocks = {"fit": 0.0, "train": 0.0, "report": 0.0, "mlflow": 0.0, "setup": 0.0}

    def wrap(owner, name, key):
        original = getattr(owner, name)

        def timed_call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clocks[key] += time.perf_counter() - started

        setattr(owner, name, timed_call)

    if trainer == "keras":
        from autolambda.training.compiled import EpochProgram

        wrap(EpochProgram, "fit", "fit")  # the training loop: compiled epochs + per-epoch callbacks
        wrap(KerasTrainer, "train", "train")
    wrap(TrialMonitor, "on_epoch", "report")  # history, divergence check, Optuna report + prune
    for name in ("log_trial", "finish"):
        wrap(MLflowTracker, name, "mlflow")
    for name in ("start", "check_reachable"):  # part of start-up
        wrap(MLflowTracker, name, "setup")
    rss = []

    def memory(study, trial):
        rss.append(_rss_mb())

    config = load_config(trials=trials, trainer=trainer)
    result = run_study(config, callbacks=[memory])
    total = time.perf_counter() - t0
    first = min(t.datetime_start for t in result.study.trials).timestamp()
    startup = first - wall0
    json.dump({"total": total, "startup": startup, "fit": clocks["fit"], "report": clocks["report"],
               "build": clocks["train"] - clocks["fit"], "mlflow": clocks["mlflow"], "rss": rss, "trials": trials},
              open(out, "w"))


def pruning_child(trials: int, epochs: int, seed: int, trainer: str, out: str) -> None:
    """Each pruner on the same seed and budget on digits (no MLflow): epochs, wall time,
    best score, and the fewest complete trials any width kept."""
    from collections import Counter

    from autolambda.run.config import load_config
    from autolambda.run.runner import run_study

    rows = []
    for pruner in PRUNERS:
        with tempfile.TemporaryDirectory() as folder:
            config = load_config(trials=trials, epochs=epochs, pruner=pruner, seed=seed, trainer=trainer,
                                 storage=f"sqlite:///{folder}/p.db")
            started = time.perf_counter()
            result = run_study(config, track=False)
            wall = time.perf_counter() - started
            trials_ = result.study.trials
            values = [t.value for t in trials_ if t.state.name == "COMPLETE"]
            per_width = Counter(t.user_attrs.get("width") for t in trials_ if t.state.name == "COMPLETE")
            widths = {t.user_attrs.get("width") for t in trials_}
        rows.append({"pruner": pruner, "seed": seed, "wall": wall, "epochs": sum(t.user_attrs.get("epochs_run", 0) for t in trials_),
                     "best": min(values) if values else None, "fewest": min(per_width.get(w, 0) for w in widths)})
    json.dump(rows, open(out, "w"))


def surrogate_pruning(trials: int, seeds: int) -> list[dict]:
    """Each pruner (stratified, default sampler) on the surrogate with a planted alpha:
    what the analysis finds, and at what cost in epochs. Milliseconds per trial."""
    import optuna

    from autolambda import LambdaScalingObjective
    from autolambda.analysis.records import records_from_trials
    from autolambda.analysis.summary import analyze_records
    from autolambda.search.factories import make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for pruner in PRUNERS:
        for seed in range(seeds):
            study = optuna.create_study(study_name=f"bench-{seed}", sampler=make_sampler("tpe", seed), pruner=make_pruner(pruner, 40))
            study.optimize(LambdaScalingObjective(trainer="surrogate", planted_alpha=PLANTED, epochs=40, seed=seed), n_trials=trials)
            analysis = analyze_records(records_from_trials(study.trials))
            ci = analysis.alpha_ci
            rows.append({"pruner": pruner, "seed": seed, "epochs": sum(t.user_attrs.get("epochs_run", 0) for t in study.trials),
                         "alpha_error": abs(analysis.alpha_hat - PLANTED) if analysis.alpha_hat is not None else None,
                         "ci_width": (ci[1] - ci[0]) if ci else None, "covered": bool(ci and ci[0] <= PLANTED <= ci[1])})
    return rows


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


CALIBRATION_HEADING = "## Calibration of the intervals"
KEPT_HEADINGS = (CALIBRATION_HEADING, "## The answer on digits (the default study)")


def child(args: list[str]) -> dict | list:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.json")
        subprocess.run([PY, __file__, *args, "--out", out], cwd=folder, check=True, capture_output=True, text=True)
        return json.load(open(out))


# ---- the sections ------------------------------------------------------------------------


def section_overhead(trials: int, epochs: int, repeats: int) -> tuple[str, bool]:
    tool, plain = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            tool.append(timed([PY, "-m", "autolambda", "tune", "--trials", str(trials), "--epochs", str(epochs),
                               "--pruner", "none", "--no-progress"], cwd=folder))
        plain.append(timed([PY, str(ROOT / "scripts" / "plain_loop.py"), "--trials", str(trials), "--epochs", str(epochs)]))
    ratios = [a / b for a, b in zip(tool, plain)]
    ok = statistics.median(ratios) <= 1.10
    text = (f"{trials} trials x {epochs} epochs, pruning off, each command in a fresh process.\n\n"
            f"| | wall time (s) |\n|---|---|\n| `autolambda tune` (MLflow on) | {spread(tool)} |\n"
            f"| scripts/plain_loop.py (no tracking) | {spread(plain)} |\n| ratio | {spread(ratios)} |\n\n"
            f"Goal: ratio at most 1.10 — **{'holds' if ok else 'does not hold'}**.")
    return text, ok


def section_profile(trials: int, repeats: int, trainer: str) -> tuple[str, bool, str, bool]:
    runs = [child(["--profile-child", str(trials), "--trainer", trainer]) for _ in range(repeats)]
    r = runs[0]
    compiled = max(r["fit"] - r["report"], 0.0)  # the surrogate (smoke) has no compiled epochs
    parts = {"training: the compiled epochs": compiled,
             "per-epoch reporting (history, Optuna report and prune)": r["report"],
             "model building, tracing, resetting per trial": r["build"], "MLflow logging": r["mlflow"],
             "start-up (imports, data, stores, until the first trial)": r["startup"]}
    parts["the rest (Optuna storage, sampling, trial bookkeeping)"] = r["total"] - sum(parts.values())
    share = r["fit"] / r["total"]
    ok = share >= 0.85
    rows = "\n".join(f"| {k} | {v:.1f} | {100 * v / r['total']:.1f} % |" for k, v in parts.items())
    text = (f"A default `tune` of {trials} trials in one process, timers around each part.\n\n"
            f"| part | seconds | share |\n|---|---|---|\n{rows}\n| **total** | {r['total']:.1f} | 100 % |\n\n"
            "autolambda no longer trains through Keras `fit` (one compiled call per epoch instead, see "
            "`autolambda/training/compiled.py`); its training loop — the compiled epochs and the per-epoch reporting, "
            f"what `fit` with a pruning callback did — takes {100 * share:.1f} % of the wall time, the compiled "
            f"epochs alone {100 * compiled / r['total']:.1f} %.\n\n"
            f"Goal: at least 85 % of wall time inside the training loop (`fit`) — "
            f"**{'holds' if ok else f'does not hold ({100 * share:.0f} %)'}**.")
    rss = r["rss"]
    growth = rss[-1] - rss[0]
    mem_ok = growth < 150
    mem = (f"Resident memory of that process: {rss[0]:.0f} MB after trial 1, {rss[-1]:.0f} MB after trial {len(rss)} "
           f"(growth {growth:+.0f} MB).\n\nGoal: growth under 150 MB over 100 trials — "
           f"**{'holds' if mem_ok else 'does not hold'}**" + ("" if len(rss) >= 100 else f" (measured over {len(rss)} trials only)") + ".")
    return text, ok, mem, mem_ok


def section_pruning(trials: int, epochs: int, seeds: int, surrogate_trials: int, surrogate_seeds: int,
                    trainer: str) -> tuple[str, bool]:
    from autolambda.run.config import StudyConfig

    default = StudyConfig().pruner
    rows = [row for seed in range(seeds) for row in child(["--pruning-child", str(trials), str(epochs), str(seed), "--trainer", trainer])]
    none = {r["seed"]: r for r in rows if r["pruner"] == "none"}
    nb = [r["best"] for r in none.values() if r["best"] is not None]
    noise = (max(nb) - min(nb)) if len(nb) > 1 else 0.0
    lines, good = [], []
    for pruner in PRUNERS:
        mine = [r for r in rows if r["pruner"] == pruner]
        saved = [1 - r["epochs"] / none[r["seed"]]["epochs"] for r in mine]
        best = [r["best"] for r in mine if r["best"] is not None]
        ok = pruner != "none" and statistics.median(saved) >= 0.40 and best and statistics.median(best) <= statistics.median(nb) + noise
        if ok:
            good.append(pruner)
        lines.append(f"| {pruner}{' (default)' if pruner == default else ''} | {spread([float(r['epochs']) for r in mine])} | "
                     f"{spread(saved)} | {spread([r['wall'] for r in mine])} | {spread(best) if best else '—'} | "
                     f"{min(r['fewest'] for r in mine)} |")
    verdict = f"holds for {', '.join(good)}" if good else "does not hold"

    # The tool's answer is alpha: what each pruner does to it, on the planted answer.
    srows = surrogate_pruning(surrogate_trials, surrogate_seeds)
    base_epochs = statistics.median(r["epochs"] for r in srows if r["pruner"] == "none")
    slines, efficiency = [], {}
    for pruner in PRUNERS:
        mine = [r for r in srows if r["pruner"] == pruner]
        errors = [r["alpha_error"] for r in mine if r["alpha_error"] is not None]
        widths = [r["ci_width"] for r in mine if r["ci_width"] is not None]
        ep = statistics.median(r["epochs"] for r in mine)
        # Precision (1 / interval width squared) per epoch, relative to no pruning's.
        none_w = statistics.median(r["ci_width"] for r in srows if r["pruner"] == "none" and r["ci_width"] is not None) \
            if any(r["pruner"] == "none" and r["ci_width"] for r in srows) else None
        efficiency[pruner] = (none_w ** 2 * base_epochs) / (statistics.median(widths) ** 2 * ep) if widths and none_w else 0.0
        slines.append(f"| {pruner}{' (default)' if pruner == default else ''} | {1 - ep / base_epochs:.0%} | "
                      f"{spread(errors) if errors else '—'} | {spread(widths) if widths else '—'} | "
                      f"{sum(r['covered'] for r in mine)} of {len(mine)} | {efficiency[pruner]:.2f} |")
    ranked = sorted((p for p in PRUNERS if p != "none"), key=lambda p: -efficiency[p])
    if efficiency[ranked[0]] == 0.0:
        choice = f"The default is `{default}`; alpha was not identified in this run, so its precision was not measured."
    else:
        choice = (f"Precision on alpha per epoch, relative to no pruning: " + ", ".join(f"{p} {efficiency[p]:.2f}" for p in ranked)
                  + f". The default is `{default}`.")
    text = (f"**On digits**: {trials} trials x {epochs} epochs per study, {seeds} seed(s), width-stratified, default "
            "sampler, no MLflow. \"Fewest complete\" is the fewest complete trials any width kept in any seed (the "
            "per-size table flags fewer than 4; the joint fit pools all sizes).\n\n"
            "| pruner | epochs trained | epochs saved vs none | wall (s) | best val_ce | fewest complete in a width |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(lines)
            + f"\n\nGoal: a pruner that saves at least 40 % of epochs with its best value within the seed-to-seed spread of "
            f"no pruning ({noise:.4f}) — **{verdict}**" + ("" if seeds >= 3 else f" (only {seeds} seed: no spread measured)") + ".\n\n"
            f"**On the surrogate** (planted alpha {PLANTED}, {surrogate_trials} trials x 40 epochs, seeds 0–{surrogate_seeds - 1}): "
            "how far alpha_hat lands from the planted value, the width of its 95 % interval, whether the interval holds "
            "it (a study where alpha is not identified counts as not holding it), and alpha's precision (1 / width²) per "
            "epoch trained relative to no pruning. Runs before 2026-11-25 used the clean surrogate and "
            "the per-size estimator; later ones the realistic surrogate and the joint fit.\n\n"
            "| pruner | epochs saved | alpha error | 95 % interval width | interval holds alpha | precision per epoch |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(slines) + "\n\n" + choice)
    return text, bool(good)


def section_workers(trials: int, epochs: int, repeats: int, trainer: str) -> tuple[str, bool]:
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_workers import run

    one = [run(1, trials, epochs, trainer) for _ in range(repeats)]
    two = [run(2, trials, epochs, trainer) for _ in range(repeats)]
    rate1, rate2 = [trials / r[1] * 60 for r in one], [trials / r[1] * 60 for r in two]
    cmd1, cmd2 = [trials / r[0] * 60 for r in one], [trials / r[0] * 60 for r in two]
    busy1, busy2 = [r[2] / r[0] for r in one], [r[2] / r[0] for r in two]
    speedup = statistics.median(rate2) / statistics.median(rate1)
    ok = speedup >= 1.5
    cores = os.cpu_count() or 1
    text = (f"{trials} trials x {epochs} epochs, pruning off, no MLflow, Optuna journal file, each in a fresh folder. "
            "Trials per minute over the study (first trial's start to last trial's end, from the storage) and over "
            "the whole command (with its start-up: imports, data, spawning workers); cores busy = CPU seconds of the "
            "command's processes / its wall time.\n\n"
            "| workers | trials per minute (study) | trials per minute (command) | cores busy |\n|---|---|---|---|\n"
            f"| 1 | {spread(rate1)} | {spread(cmd1)} | {spread(busy1)} |\n| 2 | {spread(rate2)} | {spread(cmd2)} | {spread(busy2)} |\n\n"
            f"Speed-up {speedup:.2f}x over the study ({statistics.median(cmd2) / statistics.median(cmd1):.2f}x over the "
            f"command). Goal: at least 1.5x — **{'holds' if ok else 'does not hold'}**. One worker already keeps "
            f"{statistics.median(busy1):.2f} of the {cores} cores busy (TensorFlow's ops run on {cores} threads), so a "
            f"second worker can add at most {cores / statistics.median(busy1):.2f}x.")
    return text, ok


def section_startup(repeats: int) -> tuple[str, bool]:
    helps = [timed([PY, "-m", "autolambda", "--help"]) for _ in range(repeats)]
    imports = [timed([PY, "-c", "import autolambda"]) for _ in range(repeats)]
    ok = statistics.median(helps) < 0.5 and statistics.median(imports) < 0.5
    return (f"| command | seconds |\n|---|---|\n| `python -m autolambda --help` | {spread(helps)} |\n"
            f"| `python -c 'import autolambda'` | {spread(imports)} |\n\n(Each includes the Python interpreter's own start.) "
            f"Goal: under 0.5 s each — **{'holds' if ok else 'does not hold'}**."), ok


def section_main(trials: int | None, repeats: int) -> tuple[str, bool | None]:
    if trials is None:
        return "Not measured in this mode (run `python scripts/bench.py` for the full run).", None
    walls = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            walls.append(timed([PY, "-m", "autolambda", "tune", "--trials", str(trials), "--no-progress"], cwd=folder))
    ok = statistics.median(walls) <= 300
    return (f"`autolambda tune --trials {trials}`, defaults, fresh folder: {spread(walls)} s.\n\n"
            f"Goal: at most 5 minutes — **{'holds' if ok else 'does not hold'}**."), ok


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        mem = float("nan")
    from importlib import metadata

    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("tensorflow", "keras", "optuna", "mlflow"))
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB memory, Python {platform.python_version()}; {versions}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short run (under 10 minutes)")
    mode.add_argument("--smoke", action="store_true", help="toy budgets, seconds (tests)")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="where to write the report")
    parser.add_argument("--profile-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pruning-child", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trainer", default="keras", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child:
        return profile_child(args.profile_child, args.trainer, args.out)
    if args.pruning_child:
        return pruning_child(*args.pruning_child, args.trainer, args.out)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    b = BUDGETS[name]
    trainer = b.get("trainer", "keras")
    started = time.perf_counter()
    sections = []
    print("1/7 overhead", flush=True)
    sections.append(("1. Overhead against a plain Optuna + Keras loop", *section_overhead(*b["overhead"])))
    print("2/7 time breakdown and 5/7 memory", flush=True)
    profile, p_ok, memory, m_ok = section_profile(*b["profile"], trainer)
    sections.append(("2. Where the time goes", profile, p_ok))
    print("3/7 pruning", flush=True)
    sections.append(("3. Pruning", *section_pruning(*b["pruning"], trainer)))
    print("4/7 workers", flush=True)
    sections.append(("4. Worker scaling", *section_workers(*b["workers"], trainer)))
    sections.append(("5. Memory", memory, m_ok))
    print("6/7 start-up", flush=True)
    sections.append(("6. Start-up", *section_startup(b["startup"])))
    print("7/7 main job", flush=True)
    sections.append(("7. The main job", *section_main(*b["main"])))
    elapsed = time.perf_counter() - started
    summary = "\n".join(f"| {title} | {'holds' if ok else 'not measured' if ok is None else 'does not hold'} |" for title, _, ok in sections)
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text, _ in sections)
    note = "" if trainer == "keras" else "\n\n**Smoke run: sections 2–5 used the surrogate trainer; the figures mean nothing.**"
    report = (f"# Benchmarks{note}\n\nWritten by `python scripts/bench.py{'' if name == 'full' else ' --' + name}` "
              f"({name} run, {elapsed / 60:.1f} min) on {time.strftime('%Y-%m-%d')}.\n\nMachine: {machine()}.\n\n"
              f"| goal | status |\n|---|---|\n{summary}\n\n{body}\n")
    # The calibration and answer sections are written by scripts/calibration.py and
    # scripts/answer_bench.py (each takes its own quarter of an hour): keep them.
    old = Path(args.output).read_text() if Path(args.output).exists() else ""
    kept = [old.index(h) for h in KEPT_HEADINGS if h in old]
    keep = old[min(kept):] if kept else ""
    Path(args.output).write_text(report + ("\n" + keep if keep else ""))
    print(f"wrote {args.output} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
