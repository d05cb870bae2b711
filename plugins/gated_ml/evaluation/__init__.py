"""Model evaluation: metrics with sklearn.metrics, the report, and the model gate."""
