"""What produced a run: package versions and the git commit, tagged on the parent run."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape results."""
    out = {"python": platform.python_version()}
    for pkg in ("autolambda", "optuna", "tensorflow", "keras", "mlflow", "scikit-learn", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def tensorflow_threads() -> dict[str, str]:
    """TensorFlow's CPU thread pools in this process, when it is loaded (never imported
    here): ``intra_op`` threads per op and ``inter_op`` ops at once, 0 meaning
    TensorFlow's own choice (``autolambda tune`` sets 1 per op for small nets)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return {}
    try:
        return {"intra_op": str(tf.config.threading.get_intra_op_parallelism_threads()),
                "inter_op": str(tf.config.threading.get_inter_op_parallelism_threads())}
    except Exception:  # a stub or a broken install: the run goes on untagged
        return {}


def git_commit() -> str | None:
    """The current folder's git commit, when there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
