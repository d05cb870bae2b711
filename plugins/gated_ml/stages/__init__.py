"""The pipeline's stages, one module per concern, each a set of plain functions of (spec, env, run, ...).

- :mod:`.code`: the entry points packed into the lake (``code/<hash>/``).
- :mod:`.data`: land a raw batch, the Glue ETL request and the catalog partition, the split.
- :mod:`.gates`: the GX checkpoints over each stage's data.
- :mod:`.training`: training and tuning requests, their results, the model selection.
- :mod:`.transform`: the model and the batch transforms (test, validation, champion).
- :mod:`.deployment`: the endpoint request, the smoke test, the model-package registration.

Evaluation is the project's plugin, :mod:`gated_ml.evaluation`. Stages build requests and
read answers; the targets (:mod:`gated_ml.targets`) execute them. Nothing here imports
the targets, the DAG factory or Airflow.
"""
