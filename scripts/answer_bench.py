"""Does the default study answer the question on real digits, reproducibly, in minutes?

Runs `autolambda tune --seed S` (no other option) for each seed in a fresh folder (wall
time of the whole command: training, MLflow, the analysis at the end), reads each study's
answer and the lambda it recommends at N = 1220 (`autolambda analyze --json --n-params
1220`, the 1220-weight layer of the question), checks that the intervals agree, then times
`autolambda tune --precision P` (seconds until alpha's interval has half-width P).
Writes a Markdown section; with --benchmarks FILE it replaces that file's section of
the same heading (scripts/bench.py keeps it).

    python scripts/answer_bench.py --seeds 0 1 2 --precision 0.25 --benchmarks BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADING = "## The answer on digits (the default study)"
#: The question's layer: 20 filters of [2, 3] on depth 10, 20 * (2 * 3 * 10 + 1) weights.
QUESTION_N = 1220
PY = sys.executable


def run(cmd: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def answer(cwd: str) -> dict:
    out = subprocess.run([PY, "-m", "autolambda", "analyze", "--json", "--no-mlflow", "--out", "json-report",
                          "--n-params", str(QUESTION_N)], cwd=cwd, check=True, capture_output=True, text=True).stdout
    a = json.loads(out)
    which, hat, ci = a["answer"]["which"], a["answer"]["alpha"], a["answer"]["ci"]  # Analysis.answer()
    return {"which": which, "hat": hat, "ci": ci, "noise_sd": a["noise_sd"], "noise_source": a["noise_source"],
            "optimum": [a["alpha_hat"], a["alpha_ci"]], "wall": [a["wall_alpha_hat"], a["wall_alpha_ci"]],
            "informative_share": a["informative_share"], "dip_evidence": a["dip_evidence"],
            "n_trials": a["n_trials"], "states": a["states"], "dip_evidence_level": a["dip_evidence_level"],
            "recommendation": (a["recommendations"] or [None])[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=None, help="--trials for tune (default: none, tune's default)")
    parser.add_argument("--precision", type=float, default=0.25)
    parser.add_argument("--precision-seed", type=int, default=0)
    parser.add_argument("--skip-precision", action="store_true", help="run the seeds only (no --precision run)")
    parser.add_argument("--json", default=None, help="write the raw results here")
    parser.add_argument("--keep", default=None, help="keep each study in DIR/seed-S (and DIR/precision) instead of a temporary folder")
    parser.add_argument("--analyze-only", action="store_true",
                        help="with --keep: re-analyze the kept studies (wall times from DIR/*/seconds.txt), tune nothing")
    parser.add_argument("--benchmarks", default=None, help="replace this file's section with the results")
    args = parser.parse_args()
    if args.analyze_only and not args.keep:
        parser.error("--analyze-only needs --keep DIR")

    def study(name: str, cmd: list[str]) -> dict:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(args.keep) / name if args.keep else Path(scratch)
            folder.mkdir(parents=True, exist_ok=True)
            if args.analyze_only:
                wall = float((folder / "seconds.txt").read_text())
            else:
                wall = run(cmd, str(folder))
                (folder / "seconds.txt").write_text(f"{wall:.2f}\n")
            return {"seconds": wall} | answer(str(folder))

    rows = []
    for seed in args.seeds:
        cmd = [PY, "-m", "autolambda", "tune", *(["--trials", str(args.trials)] if args.trials else []), "--seed", str(seed),
               "--no-progress"]
        rows.append({"seed": seed} | study(f"seed-{seed}", cmd))
        print(json.dumps(rows[-1]), flush=True)
    precise = None
    if not args.skip_precision:
        cmd = [PY, "-m", "autolambda", "tune", "--precision", str(args.precision), "--seed", str(args.precision_seed),
               "--no-progress"]
        precise = {"seed": args.precision_seed} | study("precision", cmd)
        print(json.dumps(precise), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "precision": precise}, indent=1))
    text = section(rows, precise, args)
    print(text)
    if args.benchmarks:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchmarks_file import replace_section

        replace_section(args.benchmarks, HEADING, text)


def section(rows: list[dict], precise: dict | None, args: argparse.Namespace) -> str:
    def ci(r: dict) -> str:
        return f"[{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]" if r["ci"] else "—"

    lines = [HEADING, "",
             f"Written by `python scripts/answer_bench.py` on {time.strftime('%Y-%m-%d')}: `autolambda tune"
             f"{f' --trials {args.trials}' if args.trials else ''} --seed S` in a fresh folder (the whole command: training, "
             f"MLflow, the analysis at the end), then `autolambda analyze --json --n-params {QUESTION_N}`. The answer is "
             "`Analysis.answer()`: the optimum's alpha when identified, else the wall's; the wall's own exponent is in the "
             f"last column. `lambda_eff at N = {QUESTION_N}`: the recommended lambda for a net of {QUESTION_N} trainable "
             "parameters (N counts the whole net's, as the study does; the question's layer alone has that many), with its "
             "95 % interval.", "",
             "| seed | wall time (s) | answer | alpha | 95 % interval | half-width | noise SD | dip evidence (level) | "
             f"lambda_eff at N = {QUESTION_N} | wall's alpha |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    extra = [precise | {"seed": f"{precise['seed']} (--precision {args.precision:g})"}] if precise else []
    for r in rows + extra:
        half = f"{(r['ci'][1] - r['ci'][0]) / 2:.2f}" if r["ci"] else "—"
        hat = f"{r['hat']:+.2f}" if r["hat"] is not None else "—"
        level = f" ({r['dip_evidence_level']:.1f})" if r.get("dip_evidence_level") is not None else ""
        rec = r.get("recommendation")
        rec_text = "—" if not rec else f"{rec['lambda_opt']:.2e}" + (
            f" [{rec['ci'][0]:.2e}, {rec['ci'][1]:.2e}]" if rec["ci"] else " (unbounded)")
        wall_hat, wall_ci = r["wall"]
        wall_text = "—" if wall_ci is None else f"{wall_hat:+.2f} [{wall_ci[0]:+.2f}, {wall_ci[1]:+.2f}]"
        lines.append(f"| {r['seed']} | {r['seconds']:.0f} | {r['which']} | {hat} | {ci(r)} | {half} | "
                     f"{r['noise_sd']:.3f} | {r['dip_evidence']:.1f}{level} | {rec_text} | {wall_text} |")
    answered = [r for r in rows if r["ci"]]
    overlap = all(max(a["ci"][0], b["ci"][0]) <= min(a["ci"][1], b["ci"][1]) for a in answered for b in answered)
    inside = all(b["ci"][0] <= a["hat"] <= b["ci"][1] for a in answered for b in answered)
    walls = [r["seconds"] for r in rows]
    lines += ["", f"Main job: median {statistics.median(walls):.0f} s of {len(walls)} runs (min {min(walls):.0f}, max "
              f"{max(walls):.0f}). Goal: at most 5 minutes — **{'holds' if statistics.median(walls) <= 300 else 'does not hold'}**.",
              "", f"Answers: {len(answered)} of {len(rows)} identified; every pair of intervals overlaps: "
              f"**{'yes' if overlap and answered else 'no'}**; each estimate inside every other interval: "
              f"**{'yes' if inside and answered else 'no'}**.", ""]
    if precise:
        lines += [f"`--precision {args.precision:g}`: {precise['seconds']:.0f} s to "
                  + (f"a {precise['which']} interval of half-width {(precise['ci'][1] - precise['ci'][0]) / 2:.2f} "
                     f"({precise['n_trials']} trials)." if precise["ci"] else f"no interval ({precise['n_trials']} trials)."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
