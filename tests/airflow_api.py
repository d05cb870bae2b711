"""Airflow's own API server app (its app factory, the project's plugin mounted from the plugins folder) for view tests.

One app per test session; a client carries a JWT the configured auth manager (Airflow's
default, the simple auth manager) issued for a user of the given role, as the UI's login
does, in the ``Authorization`` header or the UI's ``_token`` cookie.
"""

from __future__ import annotations

import functools


@functools.cache
def app():
    from airflow.api_fastapi.app import create_app

    return create_app("core")


def token(role: str | None = "viewer", username: str = "reader") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    app()  # the auth manager is initialised by the app factory
    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))


def client(role: str | None = "viewer", *, cookie: bool = False):
    """A TestClient of the API server, logged in as a user of ``role`` (None: not logged in at all)."""
    from fastapi.testclient import TestClient

    c = TestClient(app())
    if role is not None:
        if cookie:
            c.cookies.set("_token", token(role))
        else:
            c.headers["Authorization"] = f"Bearer {token(role)}"
    return c


def add_dag_run(dag_id: str, run_id: str, ds: str) -> str:
    """A DAG run of ``ds``, as the scheduler would have written it (what the report looks its ``ds`` up in); its run id.

    The session's database is shared by every test: when a run of that date exists already
    (another test ran the DAG for it), that run is the one the report reads, and its id is returned.
    """
    import datetime as dt

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    when = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
    with create_session() as session:
        existing = session.scalar(select(DagRun.run_id).where(DagRun.dag_id == dag_id, DagRun.logical_date == when))
        if existing is not None:
            return existing
        session.add(DagRun(dag_id, run_id, logical_date=when, run_after=when, run_type=DagRunType.MANUAL, state=DagRunState.SUCCESS))
    return run_id
