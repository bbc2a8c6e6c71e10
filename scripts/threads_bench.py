"""How should TensorFlow's CPU thread pools be sized for autolambda's nets?

Times the compiled epochs (autolambda.training.compiled, as a trial runs them) of one net
per width under two pool sizes, each in a fresh process (the pools are fixed at
TensorFlow's first op): TensorFlow's own (threads per op and ops at once = cores) and one
thread per op with the cores running independent ops side by side (what `autolambda
tune` picks for small nets, see autolambda.training.trainers.cpu_threads). Two data
shapes: digits as the default study trains it (300 images of 8x8, 80 epochs, the
validation pass every 10 epochs and in the last 5) and random 32x32x3 images (1000, 3
epochs), CIFAR's shape. Each time is the median of the repeats after a first, traced one.

    python scripts/threads_bench.py --benchmarks BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADING = "## Threads: small nets on one thread per op"
PY = sys.executable
CASES = {  # name: (input side, channels, images, epochs, widths)
    "digits": (8, 1, 300, 80, (2, 4, 8, 16, 32, 64)),
    "32x32x3": (32, 3, 1000, 3, (16, 64, 128)),
}


def child(case: str, pools: str, repeats: int) -> None:
    """Run in a fresh process: size the pools, time each width, print JSON."""
    import time

    import numpy as np

    from autolambda.training.trainers import import_tensorflow_quietly, set_threads

    import_tensorflow_quietly()
    if pools != "tensorflow" and not set_threads(*(int(v) for v in pools.split("x"))):
        sys.exit("TensorFlow had started before its thread pools could be sized.")
    import keras

    from autolambda.core.scaling import count_convnet_macs
    from autolambda.training.compiled import EpochProgram
    from autolambda.training.data import Dataset, load_dataset
    from autolambda.training.model import Penalty, build_convnet

    side, channels, n, epochs, widths = CASES[case]
    if case == "digits":
        data = load_dataset("digits", n_train=n, spare_to_val=True)
    else:
        rng = np.random.default_rng(0)
        shape = (n, side, side, channels)
        data = Dataset(case, rng.random(shape, dtype=np.float32), rng.integers(0, 10, n),
                       rng.random(shape, dtype=np.float32), rng.integers(0, 10, n), 10)
    out = {}
    for width in widths:
        penalty = Penalty("l2", 1e-3, variable=True)
        model = build_convnet(width, data.input_shape, 10, depth=2, kernel_size=(3, 3), penalty=penalty)
        program = EpochProgram(model, keras.optimizers.Adam(3e-3), 32, penalty)
        seconds = []
        for rep in range(repeats + 1):
            program.reset(seed=rep, learning_rate=3e-3, penalty=penalty)
            started = time.perf_counter()
            program.fit(data, epochs=epochs, seed=rep, on_epoch=lambda e, m: None,
                        evaluate=lambda e: e % 10 == 9 or e >= epochs - 5)
            seconds.append(time.perf_counter() - started)
        macs = count_convnet_macs(width, 2, (3, 3), data.input_shape, 10)
        out[width] = {"seconds": statistics.median(seconds[1:]), "step_macs": macs * 32}
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--benchmarks", default=None, help="replace this file's section with the results")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "POOLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1 but got {args.repeats}.")
    if args.child:
        child(*args.child, args.repeats)
        return
    from autolambda.training.trainers import usable_cores

    cores = usable_cores()
    settings = {"tensorflow": "TensorFlow's own", f"1x{cores}": f"1 per op, {cores} ops at once"}
    lines = [HEADING, "", f"Written by `python scripts/threads_bench.py` ({cores} cores). Seconds per trial's "
             "training (median of the repeats after a first, traced one); multiply-adds of a step's forward "
             "pass, one batch of 32.", ""]
    for case in CASES:
        times = {}
        for pools in settings:
            env = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")} | {"TF_CPP_MIN_LOG_LEVEL": "2"}
            run = subprocess.run([PY, __file__, "--repeats", str(args.repeats), "--child", case, pools],
                                 capture_output=True, text=True, env=env)
            if run.returncode:
                sys.exit(f"the {case} / {pools} run failed:\n{run.stderr[-2000:]}")
            times[pools] = json.loads(run.stdout.strip().splitlines()[-1])
        side, channels, n, epochs, widths = CASES[case]
        lines += [f"**{case}** ({n} images, {epochs} epochs):", "",
                  "| width | step multiply-adds | " + " | ".join(f"{label} (s)" for label in settings.values())
                  + " | ratio |", "|---|---|" + "---|" * len(settings) + "---|"]
        base, small = list(settings)
        for width in times[base]:
            t = [times[p][width]["seconds"] for p in settings]
            lines.append(f"| {width} | {times[base][width]['step_macs'] / 1e6:.1f} M | "
                         + " | ".join(f"{v:.2f}" for v in t) + f" | {t[1] / t[0]:.2f} |")
        total = [sum(times[p][w]["seconds"] for w in times[p]) for p in settings]
        lines += ["", f"All widths: {total[0]:.2f} s against {total[1]:.2f} s (ratio {total[1] / total[0]:.2f}).", ""]
    from autolambda.training.trainers import SMALL_NET_MAX_CORES, SMALL_STEP_MACS

    lines += [f"`autolambda tune` takes one thread per op when the costliest net's step is under "
              f"{SMALL_STEP_MACS / 1e6:.0f} M multiply-adds (`SMALL_STEP_MACS`), on the CPU, on at most "
              f"{SMALL_NET_MAX_CORES} cores, unless `TF_NUM_INTRAOP_THREADS` or `TF_NUM_INTEROP_THREADS` is set."]
    text = "\n".join(lines)
    print(text)
    if args.benchmarks:
        sys.path.insert(0, os.path.dirname(__file__))
        from benchmarks_file import replace_section

        replace_section(args.benchmarks, HEADING, text)


if __name__ == "__main__":
    main()
