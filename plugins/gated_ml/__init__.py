"""Gated ML pipelines on Airflow and SageMaker: specs, job requests, targets, gates, metrics."""
