"""One Airflow DAG per pipeline spec in include/pipelines/ (see plugins/gated_ml/dag_factory.py), and its action DAGs.

Next to each training DAG, the operators' actions on its models: ``<pipeline>_review_model``,
``<pipeline>_promote_model`` and ``<pipeline>_rollback_model`` (plugins/gated_ml/action_dags.py).

Adding a dataset needs only a new spec file. A spec that fails to load shows as an import
error of this file naming the spec file, the field and what is allowed; the other
pipelines' DAGs load as usual.
"""

from gated_ml.action_dags import build_action_dags
from gated_ml.dag_factory import build_dags
from gated_ml.scoring_dag import build_scoring_dags
from gated_ml.spec import spec_paths

globals().update(build_dags(spec_paths()))
globals().update(build_action_dags(spec_paths()))
globals().update(build_scoring_dags(spec_paths()))  # <pipeline>_scoring
