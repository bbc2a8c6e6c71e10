"""``python -m autolambda``."""

from autolambda.cli.app import main

if __name__ == "__main__":
    main()
