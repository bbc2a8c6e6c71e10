"""MLflow: one parent run per study, one nested run per trial, and the local server."""
