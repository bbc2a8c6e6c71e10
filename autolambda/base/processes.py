"""Whether a process, or any process of a group, still runs.

A zombie (exited, not yet reaped) counts as gone everywhere: as PID 1 in a container
nobody may ever reap it, and it will never finish a trial. Linux reads ``/proc``; other
systems ask the kernel, where a zombie still answers.
"""

from __future__ import annotations

import os


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not).

    >>> is_alive(os.getpid())
    True
    """
    if os.path.isdir("/proc/self"):
        fields = _stat_fields(pid)
        return fields is not None and fields[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies do not count)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # not Linux: ask the kernel (zombies count there)
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in entries:
        fields = _stat_fields(entry) if entry.isdigit() else None
        if fields is not None and len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux; empty elsewhere)."""
    parents = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        fields = _stat_fields(entry) if entry.isdigit() else None
        if fields is not None and len(fields) > 1:
            parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
