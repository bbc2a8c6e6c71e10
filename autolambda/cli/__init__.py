"""The ``autolambda`` command line (``autolambda.cli.app``) and its console output."""
