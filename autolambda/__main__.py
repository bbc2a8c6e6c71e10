"""``python -m autolambda``."""

from autolambda.cli import main

main()
