"""What produced a run: package versions and the git commit, tagged on the parent run."""

from __future__ import annotations

import platform
import subprocess
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


def git_commit() -> str | None:
    """The current folder's git commit, when there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
