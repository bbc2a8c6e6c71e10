"""``python -m autolambda``."""

from autolambda.cli.app import main

main()
