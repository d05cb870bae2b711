"""Alerts: a refused batch mails one message to a real SMTP server; the file notifier, a missed arrival, a bad setting."""

import datetime as dt
import email
import email.policy
import json
import socket
import tempfile

import pytest

from conftest import ROOT, write_spec
from gated_ml import storage

DS = "2026-11-01"
ARFF = ROOT / "include" / "data" / "vertebral_column" / "column_2C_weka.arff"
SPEC = (ROOT / "include" / "pipelines" / "vertebral_column.yaml").read_text()


class Inbox:
    """An aiosmtpd handler keeping every message it accepts, with its envelope recipients."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_inbox(monkeypatch):
    """A real SMTP server on loopback (aiosmtpd), the Airflow connection to it, and alerts configured to mail through it."""
    from aiosmtpd.controller import Controller

    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    extra = {"from_email": "gated-ml@localhost", "disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 0}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra}))
    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_NOTIFIER", "smtp")
    monkeypatch.setenv("AIRFLOW__GATED_ML__SMTP_CONN_ID", "smtp_alerts")
    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_TO", "ml-ops@example.com, oncall@example.com")
    yield inbox
    controller.stop()


@pytest.fixture
def alert_file(tmp_path, monkeypatch):
    path = tmp_path / "alerts" / "alerts.jsonl"
    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_FILE", str(path))
    monkeypatch.delenv("AIRFLOW__GATED_ML__ALERT_NOTIFIER", raising=False)  # the default notifier
    return path


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _test(dag):
    """``dag.test()`` of a DAG built in the test: written to the metadata DB first, as the DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=tempfile.mkdtemp())  # an empty folder: only this DAG
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    dr = dag.test(logical_date=dt.datetime.fromisoformat(DS).replace(tzinfo=dt.UTC))
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def _land_unreadable_pelvic_radius():
    """The day's batch with 40 of its 310 rows' ``pelvic_radius`` unreadable: the landing gate refuses it."""
    head, body = ARFF.read_text().split("@data")
    rows = [r.split(",") for r in body.strip().splitlines()]
    for r in rows[:40]:
        r[4] = "unreadable"
    storage.write(
        f"s3://gated-ml-lake/vertebral_column/landing/ds={DS}/column_2C_weka.arff", (head + "@data\n" + "\n".join(map(",".join, rows)) + "\n").encode()
    )


@pytest.mark.e2e
def test_a_refused_batch_mails_one_message_naming_the_gate_and_the_column(airflow_db, lake, smtp_inbox, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    _land_unreadable_pelvic_radius()
    monkeypatch.setenv("AIRFLOW__GATED_ML__DEFERRABLE", "false")  # dag.test runs a trigger inline, without its time-out
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors

    states = _test(bag.dags["vertebral_column"])

    assert states["ingest.landing_gate"] == "failed"
    assert len(smtp_inbox.messages) == 1, [m["Subject"] for _, m in smtp_inbox.messages]  # one failure, one message; none for what it left unrun
    recipients, message = smtp_inbox.messages[0]
    assert recipients == ["ml-ops@example.com", "oncall@example.com"]
    assert message["From"] == "gated-ml@localhost"  # the sender comes from the connection
    assert message["Subject"] == f"[gated-ml] vertebral_column: gate_failed at ingest.landing_gate for ds {DS}"
    body = message.get_body(("html",)).get_content()
    assert "column &#x27;pelvic_radius&#x27;: observed 12.90% of 310 rows unexpected" in body  # the column, the figure
    assert "threshold every value numeric" in body
    assert "/dags/vertebral_column/runs/" in body and "/tasks/ingest.landing_gate" in body  # the log URL


@pytest.mark.slow  # dag.test() of a small DAG: Airflow's in-process execution API and the target's environment load once
def test_the_file_notifier_writes_one_line_per_final_failure(airflow_db, lake, spec, alert_file):
    from airflow.sdk import DAG

    from gated_ml.dag_factory import gate_task, stage_task
    from gated_ml.errors import Fault, GateFailed
    from gated_ml.targets.local import LocalTarget

    tries = []

    def refuse(s, e, r):
        raise GateFailed("gate vertebral_column.landing: FAILED\n  FAIL column 'pelvic_tilt': observed 3 nulls, threshold 0")

    def break_every_time(s, e, r):
        tries.append(r.try_number)
        raise Fault("the gate's storage did not answer")

    target = LocalTarget()
    with DAG("alerts_file_probe", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), default_args={"retries": 1, "retry_delay": 0}) as dag:
        gate_task(spec, target, "landing_gate", refuse)
        gate_task(spec, target, "curated_gate", break_every_time)
        stage_task(spec, target, "split", refuse)  # not wired: no alert

    states = _test(dag)

    assert states == {"landing_gate": "failed", "curated_gate": "failed", "split": "failed"}
    assert tries == [1, 2]  # the Fault was retried ...
    alerts = {a["task_id"]: a for a in _lines(alert_file)}
    assert len(_lines(alert_file)) == 2 and set(alerts) == {"landing_gate", "curated_gate"}  # ... and alerted once, when it finally failed
    refused = alerts["landing_gate"]
    assert (refused["pipeline"], refused["kind"], refused["dag_id"], refused["ds"], refused["try_number"]) == (
        "vertebral_column",
        "gate_failed",
        dag.dag_id,
        DS,
        1,
    )
    assert refused["error"] == "GateFailed" and "column 'pelvic_tilt': observed 3 nulls, threshold 0" in refused["message"]
    assert refused["log_url"].endswith("/tasks/landing_gate?try_number=1") and refused["run_id"]
    broken = alerts["curated_gate"]  # a gate that broke is not reported as a refused batch
    assert (broken["kind"], broken["error"], broken["try_number"]) == ("task_failed", "Fault", 2)
    assert broken["message"] == "the gate's storage did not answer"


@pytest.mark.slow  # dag.test() of a small DAG: Airflow's in-process execution API and the target's environment load once
def test_a_mail_server_that_is_down_leaves_the_failure_as_it_was(airflow_db, lake, spec, monkeypatch, capfd):
    from airflow.sdk import DAG

    from gated_ml.dag_factory import gate_task
    from gated_ml.errors import GateFailed
    from gated_ml.targets.local import LocalTarget

    extra = {"from_email": "gated-ml@localhost", "disable_ssl": True, "disable_tls": True, "timeout": 5, "retry_limit": 0}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DOWN", json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": _free_port(), "extra": extra}))
    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_NOTIFIER", "smtp")
    monkeypatch.setenv("AIRFLOW__GATED_ML__SMTP_CONN_ID", "smtp_down")
    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_TO", "ml-ops@example.com")

    def refuse(s, e, r):
        raise GateFailed("column 'sacral_slope': observed 4 outliers, threshold 0")

    with DAG("alerts_smtp_down_probe", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        gate_task(spec, LocalTarget(), "curated_gate", refuse)

    assert _test(dag) == {"curated_gate": "failed"}  # failed, as it would have without the alert
    out, err = capfd.readouterr()
    assert "ALERT [gated-ml] vertebral_column: gate_failed at curated_gate" in out + err  # the alert is still in the task log
    assert "Failed to run task callback" in out + err


@pytest.mark.slow  # dag.test() of a small DAG: Airflow's in-process execution API and the target's environment load once
def test_a_missed_arrival_alerts_once_naming_the_key(airflow_db, lake, tmp_path, alert_file, monkeypatch):
    from airflow.sdk import DAG

    from gated_ml.dag_factory import ingest_group
    from gated_ml.spec import load_spec
    from gated_ml.targets.local import LocalTarget

    monkeypatch.setenv("AIRFLOW__GATED_ML__DEFERRABLE", "false")  # dag.test runs a trigger inline, without its time-out
    quick = SPEC.replace("arrival: {timeout_minutes: 60, poke_seconds: 30}", "arrival: {timeout_minutes: 0.02, poke_seconds: 0.2}")
    spec = load_spec(write_spec(tmp_path / "specs", quick))
    with DAG("alerts_arrival_probe", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        ingest_group(spec, LocalTarget())

    states = _test(dag)

    assert states == {"ingest.wait_for_batch": "failed", "ingest.landing_gate": "upstream_failed"}
    [alert] = _lines(alert_file)
    assert (alert["kind"], alert["task_id"], alert["error"]) == ("arrival_missed", "ingest.wait_for_batch", "AirflowSensorTimeout")
    assert alert["message"].startswith(f"no batch arrived at s3://gated-ml-lake/vertebral_column/landing/ds={DS}/column_2C_weka.arff within 0.02 minutes")


def test_an_unknown_notifier_is_refused_at_parse_time_naming_the_setting(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_NOTIFIER", "pager")
    errors = DagBag(dag_folder=str(ROOT / "dags")).import_errors
    assert len(errors) == 1
    assert "[gated_ml] alert_notifier = 'pager' is not supported; use one of ('file', 'smtp')" in next(iter(errors.values()))


def test_smtp_without_recipients_is_refused_at_parse_time(spec, monkeypatch):
    from gated_ml.dag_factory import build_dag

    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_NOTIFIER", "smtp")
    monkeypatch.setenv("AIRFLOW__GATED_ML__ALERT_TO", " , ")
    with pytest.raises(ValueError, match=r"\[gated_ml\] alert_to is empty but alert_notifier = 'smtp'"):
        build_dag(spec)


def test_an_unknown_alert_kind_is_refused(spec):
    from gated_ml import alerts

    with pytest.raises(ValueError, match="unknown alert kind 'gate_faild'; use one of"):
        alerts.on_failure(spec, "gate_faild")


def test_the_factory_alerts_on_the_gates_the_arrival_evaluate_and_the_deployment(spec, monkeypatch):
    from gated_ml.dag_factory import build_dag

    for target in ("local", "aws"):  # on aws the deployment group holds request, operator and result tasks: every one alerts
        monkeypatch.setenv("AIRFLOW__GATED_ML__TARGET", target)
        wired = {t.task_id: [n.kind for n in t.on_failure_callback] for t in build_dag(spec).tasks if t.on_failure_callback}
        expected = {t: ["gate_failed"] for t in wired if t.endswith("_gate")}
        expected |= {"ingest.wait_for_batch": ["arrival_missed"], "evaluate": ["model_rejected"]}
        expected |= {t: ["deployment_failed"] for t in wired if t.startswith("deployment.")}
        assert wired == expected
        assert {"ingest.landing_gate", "etl.curated_gate", "features.splits_gate", "batch_transform.predictions_gate"} <= set(wired)
        assert {"deployment.register_model_version", "deployment.deploy_endpoint", "deployment.smoke_test_endpoint"} <= set(wired)


@pytest.mark.parametrize(
    "kind, raised, expected_kind, expected_error",
    [
        ("model_rejected", "ModelGateFailed", "model_rejected", "ModelGateFailed"),
        ("deployment_failed", "SmokeTestFailed", "deployment_failed", "SmokeTestFailed"),
        ("deployment_failed", "SmokeTestUnanswered", "deployment_failed", "SmokeTestUnanswered"),  # a Fault, after its retries
        ("model_rejected", "ContainerError", "task_failed", "ContainerError"),  # evaluate broke: not a rejected model
    ],
)
def test_an_alert_names_the_error_behind_airflows_and_its_kind(kind, raised, expected_kind, expected_error):
    """The error as a task raises it: through ``airflow_outcome``, which turns a Refusal into ``AirflowFailException``."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from gated_ml import alerts, errors

    @errors.airflow_outcome
    def task():
        raise getattr(errors, raised)(f"{raised}: roc_auc 0.61 < 0.85 (evaluation.thresholds.roc_auc)")

    with pytest.raises((AirflowFailException, errors.Fault)) as raised_error:
        task()
    ti = SimpleNamespace(dag_id="vertebral_column", run_id="scheduled__2026-11-01", task_id="evaluate", try_number=3, log_url="http://localhost:8080/x")
    alert = alerts.alert_from({"ti": ti, "ds": DS, "exception": raised_error.value}, "vertebral_column", kind)
    assert (alert.kind, alert.error, alert.try_number) == (expected_kind, expected_error, 3)
    assert alert.message == f"{raised}: roc_auc 0.61 < 0.85 (evaluation.thresholds.roc_auc)"
    assert alert.subject == f"[gated-ml] vertebral_column: {expected_kind} at evaluate for ds {DS}"
