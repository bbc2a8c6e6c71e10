"""Running a study: the validated config, opening or resuming the study, one run lifecycle
shared by one process and K workers, the stop rules, and ``autolambda analyze``'s loading
and logging (``analyze``). Signals and store URLs are ``autolambda.base``'s."""
