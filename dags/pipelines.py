"""One airflow DAG per pipeline spec in include/pipelines/ (see plugins/gated_ml/dag_factory.py).

Adding a dataset needs only a new spec file. An invalid spec fails the import of this
file with a message naming the spec file, the field and what is allowed.
"""

from gated_ml.dag_factory import build_dag
from gated_ml.spec import load_spec, spec_paths

for _path in spec_paths():
    _dag = build_dag(load_spec(_path))
    globals()[_dag.dag_id] = _dag
