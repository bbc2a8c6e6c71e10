"""BENCHMARKS.md is written by several scripts, each owning one section: replace one."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: str | Path, heading: str, text: str) -> None:
    """Put ``text`` (which starts with ``heading``) where the section ``heading`` stands in
    ``path``, up to the next ``## `` heading; append it when the file has no such section."""
    path = Path(path)
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    tail = ""
    if heading in old:
        start = old.index(heading)
        after = old.find("\n## ", start + len(heading))
        tail = old[after + 1:] if after >= 0 else ""
        old = old[:start]
    path.write_text(old.rstrip() + "\n\n" + text.rstrip() + "\n" + ("\n" + tail if tail else ""))
