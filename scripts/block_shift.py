"""Does a seed block move its dip, or only its level? A test on stored studies.

The joint fit (autolambda.analysis.curve) gives each (size, seed block) its own floor but
one dip centre per size, on the line ``ln lambda_opt = c - alpha * x``. Here the fit's
shape is held and the dip's centre is freed, first per size (the line's lack of fit),
then per (size, block), each shift on a grid of +-3 nats by coordinate descent with the
floors, top and depth re-solved (the analysis' own weights). The F statistic compares
the per-block shifts with the per-size ones. The shifts are searched, not linear, so
F's null distribution is taken from surrogate studies of the default design, whose
blocks shift only the level (``--surrogate K``), not from the F table.

    python scripts/block_shift.py DIR [DIR ...] [--surrogate 6] [--markdown FILE]

DIR holds a study's ``autolambda.db`` (e.g. a folder `autolambda tune` ran in).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GRID = np.linspace(-3.0, 3.0, 61)


@contextlib.contextmanager
def shifted_dips(shift: np.ndarray):
    """The analysis' dip column with each trial's centre moved by ``shift[unit]`` nats."""
    from autolambda.analysis import curve as C

    original = C._dip_column

    def column(d, th):
        z = (d.l + th["alpha"] * d.x - th["c"] - shift[d.unit]) / th["s"]
        return -np.exp(-0.5 * z * z)

    C._dip_column = column
    try:
        yield
    finally:
        C._dip_column = original


def block_shift_test(records) -> dict:
    """The joint fit, then the dip's centre freed per size and per (size, block)."""
    from autolambda.analysis.curve import curve_shape, weighted_curve
    from autolambda.analysis.records import complete_curve_data

    data, _ = complete_curve_data(records)
    curve = weighted_curve(data)
    full = curve.fit()
    theta = curve_shape(full.params)
    shift = np.zeros(data.n_units)

    def descend(key_of, start) -> tuple[float, dict]:
        keys = sorted({key_of(u) for u in range(data.n_units)})
        value = {k: start(k) for k in keys}
        for _ in range(4):
            for k in keys:
                scores = []
                for g in GRID:
                    value[k] = g
                    shift[:] = [value[key_of(u)] for u in range(data.n_units)]
                    scores.append(curve.rss(theta))
                value[k] = float(GRID[int(np.argmin(scores))])
        shift[:] = [value[key_of(u)] for u in range(data.n_units)]
        return curve.rss(theta), value

    with shifted_dips(shift):
        rss_size, per_size = descend(lambda u: int(data.unit_group[u]), lambda k: 0.0)
        # Each block starts from its size's shift: the per-block fit is never worse.
        rss_block, per_block = descend(lambda u: u, lambda u: per_size[int(data.unit_group[u])])
    k = data.n_units - data.n_groups
    dof = len(data.y) - (2 * data.n_units + 2 + 6)
    f = ((rss_size - rss_block) / k) / (rss_block / dof)
    within = [per_block[u] - np.mean([per_block[v] for v in range(data.n_units) if data.unit_group[v] == data.unit_group[u]])
              for u in range(data.n_units)]
    return {"alpha": full.params["alpha"], "n": len(data.y), "units": data.n_units, "rss": curve.rss(theta),
            "rss_size": rss_size, "rss_block": rss_block, "F": f, "k": k, "dof": dof,
            "block_sd": float(np.sqrt(np.sum(np.square(within)) / k)),
            "per_size": [per_size[g] for g in range(data.n_groups)],
            "per_block": [[per_block[u] for u in range(data.n_units) if data.unit_group[u] == g] for g in range(data.n_groups)]}


def stored(folder: str):
    import optuna

    from autolambda.run.study import load_study
    from autolambda.analysis.records import records_from_trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(None, f"sqlite:///{Path(folder).resolve() / 'autolambda.db'}")
    return records_from_trials(study.get_trials(deepcopy=False))


def surrogate(index: int, trials: int):
    """A default-design surrogate study (blocks shift the level only), alpha 0.5."""
    import optuna

    from autolambda import LambdaScalingObjective
    from autolambda.analysis.records import records_from_trials
    from autolambda.run.config import StudyConfig
    from autolambda.search.design import Replicator
    from autolambda.search.factories import make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    defaults = StudyConfig()
    seed = 7919 * (index + 1)
    study = optuna.create_study(sampler=make_sampler(defaults.sampler, seed), pruner=make_pruner(defaults.pruner, defaults.epochs))
    objective = LambdaScalingObjective(trainer="surrogate", planted_alpha=0.5, epochs=defaults.epochs, seed=seed,
                                       seed_blocks=defaults.seed_blocks)
    study.optimize(objective, n_trials=trials, callbacks=[Replicator(defaults.replicate_every, total=trials)])
    return records_from_trials(study.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--surrogate", type=int, default=0, help="also test this many surrogate studies (the null)")
    parser.add_argument("--trials", type=int, default=None, help="trials of a surrogate study (default: tune's)")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here")
    args = parser.parse_args()
    from autolambda.core.choices import DEFAULT_TRIALS

    rows = [(f"`{f}`", block_shift_test(stored(f))) for f in args.folders]
    rows += [(f"surrogate {i}", block_shift_test(surrogate(i, args.trials or DEFAULT_TRIALS))) for i in range(args.surrogate)]
    lines = ["| study | alpha | F (per-block shifts) | df | block SD (nats) | per-size shifts | per-block shifts |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        blocks = " / ".join(" ".join(f"{v:+.1f}" for v in b) for b in r["per_block"])
        lines.append(f"| {name} | {r['alpha']:.2f} | {r['F']:.2f} | {r['k']}, {r['dof']} | {r['block_sd']:.2f} | "
                     + " ".join(f"{v:+.1f}" for v in r["per_size"]) + f" | {blocks} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
