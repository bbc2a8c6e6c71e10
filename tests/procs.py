"""Which processes a command left behind, for the tests of clean stops: the package's own
liveness rules (``autolambda.base.processes``), so tests and code agree on a zombie."""

from autolambda.base.processes import descendants, is_alive as alive  # noqa: F401
