"""Every Airflow DAG of each pipeline spec in include/pipelines/ (see plugins/gated_ml/dag_factory.py):

- ``<pipeline>``: training, from the raw batch to the deployed model (``dag_factory.build_dag``);
- ``<pipeline>_scoring``: new rows scored with the approved model (``scoring_dag.py``);
- ``<pipeline>_review_model``, ``_promote_model``, ``_rollback_model``: the operators' actions
  on its models (``action_dags.py``).

Adding a dataset needs only a new spec file. A spec that fails to load shows as an import
error of this file naming the spec file, the field and what is allowed; the other
pipelines' DAGs load as usual. (Airflow's safe mode parses only files that mention both
"airflow" and "dag": keep the words in this docstring.)
"""

from gated_ml.dag_factory import build_dags
from gated_ml.spec import spec_paths

globals().update(build_dags(spec_paths()))
