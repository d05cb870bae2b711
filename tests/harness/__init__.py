"""The real Airflow processes on a real PostgreSQL, for tests.

- ``postgres.py``: a private PostgreSQL cluster through ``scripts/postgres.sh``.
- ``ports.py``: free loopback ports.
- ``rest.py``: a small client of Airflow's REST API (JWT from the simple auth manager).
- ``airflow_cluster.py``: ``AirflowCluster``, the scheduler, dag-processor, triggerer and
  api-server as subprocesses, with helpers to trigger, backfill and wait.
- ``fixtures.py``: the session-scoped pytest fixtures (``postgres``, ``airflow_cluster``).
"""
