"""From trials to an answer about alpha, one module a step: ``records`` (trials to
records), ``curve`` (the joint fit), ``estimators`` (the exponents' intervals, the noise,
the informative band), ``sizes`` (the per-size table), ``summary`` (``analyze_records``:
the whole analysis), ``verdict`` (its sentences), ``plots`` and ``report`` (the files),
``command`` (``autolambda analyze``)."""
