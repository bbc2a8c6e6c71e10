"""Running a study: the validated config, its stores, one run lifecycle shared by one
process and K workers, and the signal handling that makes Ctrl-C clean."""
