"""Which processes a command left behind (Linux /proc), for the tests of clean stops. A
process counts as alive by the package's own rule (``autolambda.base.processes``: a zombie
does not), so the tests and the code agree."""

import os

from autolambda.base.processes import is_alive as alive  # noqa: F401


def descendants(pid):
    """Every live process below ``pid``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
