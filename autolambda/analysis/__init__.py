"""From trial records to an answer about alpha, one module a step, pure (no storage, no
MLflow): ``records`` (trials to records), ``curve`` (the joint fit), ``estimators`` (the
exponents' intervals, the noise, the informative band), ``sizes`` (the per-size table),
``summary`` (``analyze_records``: the whole analysis), ``verdict`` (its sentences),
``recommend`` (a lambda for a given N), ``plots`` and ``report`` (the files), ``settings``
(``AnalysisConfig``). ``autolambda analyze`` itself (loading a study, logging to MLflow)
is ``autolambda.run.analyze``."""
