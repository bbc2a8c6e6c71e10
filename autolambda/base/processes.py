"""Whether a process, or any process of a group, still runs.

A zombie (exited, not yet reaped) counts as gone: as PID 1 in a container nobody may ever
reap it, and it will never finish a trial. Linux reads ``/proc``; where a process's entry
cannot be read (other systems, or ``/proc`` mounted with ``hidepid``) the kernel is asked,
and a process it knows of, or that belongs to another user, counts as alive.
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
    fields = _stat_fields(pid) if os.path.isdir("/proc/self") else None
    if fields is not None:
        return fields[0] != "Z"
    try:  # no /proc, or another user's process hidden by hidepid: ask the kernel (a zombie answers)
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
