"""Batch transform with SageMaker's CSV semantics, and the endpoint answering a stock boto3 client."""

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.local import containers, hosting
from gated_ml.local.transform import csv_filter, run_transform_job
from gated_ml.targets.local import LocalTarget
from modelkit import train_and_register


@pytest.fixture(scope="module")
def model(tmp_path_factory, spec):
    """A real model trained on the bundled data, registered with CreateModel, in a module-wide lake."""
    import datetime as dt

    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__GATED_ML__LAKE_ROOT", str(tmp_path_factory.mktemp("lake")))
    env, run = LocalTarget().environment(), jr.Run(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 1)
    record, data = train_and_register(spec, env, run)
    yield {"spec": spec, "env": env, "run": run, "record": record, "test": data.iloc[3::4]}
    mp.undo()


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    c = containers.start(model["record"]["PrimaryContainer"], "vertebral-column", tmp_path_factory.mktemp("srv") / "server.log")
    yield c
    containers.stop(c.pid)


def _post(url, body, content_type="text/csv", path="/invocations"):
    req = urllib.request.Request(url + path, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_csv_filters_follow_sagemaker_jsonpath():
    fields = ["y", "a", "b", "c"]
    assert csv_filter("$[1:]")(fields) == ["a", "b", "c"]
    assert csv_filter("$[0,-1]")(fields) == ["y", "c"]
    assert csv_filter("$[0,2:]")(fields) == ["y", "b", "c"]
    assert csv_filter("$")(fields) == fields and csv_filter(None)(fields) == fields
    with pytest.raises(ValueError, match="unsupported CSV filter"):
        csv_filter("$.features")


@pytest.mark.slow
def test_batch_transform_joins_every_test_row_with_its_label(model):
    spec, env, run = model["spec"], model["env"], model["run"]
    describe = run_transform_job(jr.transform_job(spec, env, run, model["record"]["ModelName"]), model["record"])
    assert describe["TransformJobStatus"] == "Completed"
    (out,) = describe["OutputFiles"]
    assert out.endswith("/transform/ds=2026-11-01/test/test.csv.out")
    rows = [line.split(",") for line in storage.read_text(out).splitlines()]
    test = model["test"]
    assert len(rows) == len(test)
    assert [r[0] for r in rows] == test[spec.target.column].tolist()  # label joined from the input (OutputFilter $[0,-1])
    assert all(len(r) == 2 and 0.0 <= float(r[1]) <= 1.0 for r in rows)


@pytest.mark.slow
def test_ping_and_both_invocation_paths(server, model):
    with urllib.request.urlopen(server.url + "/ping") as r:
        assert r.status == 200
    row = ",".join(str(v) for v in model["test"].iloc[0, 1:])
    a = _post(server.url, row.encode())
    b = _post(server.url, row.encode(), path="/endpoints/vertebral-column/invocations")
    assert a[0] == b[0] == 200 and a[1] == b[1]


@pytest.mark.slow
def test_stock_boto3_runtime_client(server, model):
    client = hosting.runtime_client(server.url)
    rows = model["test"].iloc[:5, 1:]
    body = rows.to_csv(index=False, header=False)
    answer = client.invoke_endpoint(EndpointName="vertebral-column", ContentType="text/csv", Body=body)
    preds = answer["Body"].read().decode().split()
    assert answer["ContentType"] == "text/csv" and len(preds) == 5
    as_json = client.invoke_endpoint(
        EndpointName="vertebral-column",
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"instances": rows.to_dict(orient="records")}),
    )
    assert json.loads(as_json["Body"].read())["predictions"] == pytest.approx([float(p) for p in preds])


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, content_type, status, message",
    [
        (b"1,2,3", "text/csv", 400, "expected 6"),
        (b"1,2,3,4,5,abc", "text/csv", 400, "must be numeric"),
        (b"", "text/csv", 400, "empty request body"),
        (b"  \n", "text/csv", 400, "empty request body"),
        (b"1,2,3,4,5,6", "text/plain", 400, "unsupported content type"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"instances": [{"pelvic_tilt": 1}]}', "application/json", 400, "lack the fields"),
        (b"1," * (3 * 1024 * 1024) + b"1", "text/csv", 413, "payload limit"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(server, body, content_type, status, message):
    code, text = _post(server.url, body, content_type)
    assert code == status and message in json.loads(text)["Message"]
    assert containers.ping(server.url)  # still serving


@pytest.mark.slow
def test_bad_request_through_boto3_is_a_client_error(server):
    with pytest.raises(ClientError) as err:
        hosting.runtime_client(server.url).invoke_endpoint(EndpointName="vertebral-column", ContentType="text/csv", Body=b"1,2")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _configs(model, n):
    spec, run = model["spec"], model["run"]
    return [hosting.create_endpoint_config(jr.endpoint_config(spec, jr.Run(run.logical_date, t), model["record"]["ModelName"])) for t in range(1, n + 1)]


@pytest.mark.slow
def test_endpoint_update_keeps_the_url_and_replaces_the_server(model):
    spec = model["spec"]
    first, second = _configs(model, 2)
    try:
        a = hosting.create_or_update_endpoint(jr.endpoint(spec, first["EndpointConfigName"]))
        b = hosting.create_or_update_endpoint(jr.endpoint(spec, second["EndpointConfigName"]), grace_seconds=0.2)
        assert b["Url"] == a["Url"] and b["PreviousEndpointConfigName"] == first["EndpointConfigName"]
        assert containers.ping(b["BackendUrl"]) and not containers.ping(a["BackendUrl"])
        assert hosting.describe_endpoint(spec.slug)["EndpointConfigName"] == second["EndpointConfigName"]
    finally:
        hosting.delete_endpoint(spec.slug)
    assert hosting.describe_endpoint(spec.slug) is None and not containers.ping(b["Url"])


@pytest.mark.slow
def test_a_new_model_that_fails_its_smoke_test_never_takes_traffic(model):
    spec = model["spec"]
    first, second = _configs(model, 2)

    def failing_smoke_test(url):
        raise RuntimeError("smoke test: endpoint and batch transform disagree on test rows [0]")

    try:
        a = hosting.create_or_update_endpoint(jr.endpoint(spec, first["EndpointConfigName"]))
        with pytest.raises(RuntimeError, match="disagree"):
            hosting.create_or_update_endpoint(jr.endpoint(spec, second["EndpointConfigName"]), verify=failing_smoke_test)
        now = hosting.describe_endpoint(spec.slug)
        assert now["EndpointConfigName"] == first["EndpointConfigName"] and now["BackendUrl"] == a["BackendUrl"]
        assert _post(a["Url"], b"50,10,40,40,120,5", path="/endpoints/vertebral-column/invocations")[0] == 200  # the old model still serves
    finally:
        hosting.delete_endpoint(spec.slug)


@pytest.mark.slow
def test_no_request_fails_while_the_endpoint_is_updated(model):
    import threading

    spec = model["spec"]
    configs = _configs(model, 4)
    row = ",".join(str(v) for v in model["test"].iloc[0, 1:])
    results = []
    stop = threading.Event()
    try:
        ep = hosting.create_or_update_endpoint(jr.endpoint(spec, configs[0]["EndpointConfigName"]))
        client = hosting.runtime_client(ep["Url"], max_attempts=1)  # no retries: a failed request shows

        def hammer():
            while not stop.is_set():
                try:
                    r = client.invoke_endpoint(EndpointName="vertebral-column", ContentType="text/csv", Body=row)
                    results.append(r["ResponseMetadata"]["HTTPStatusCode"])
                except Exception as e:  # noqa: BLE001 (any failure counts: the loop records it instead of dying silently)
                    results.append(repr(e))

        thread = threading.Thread(target=hammer)
        thread.start()
        for config in configs[1:]:  # three switches under load
            hosting.create_or_update_endpoint(jr.endpoint(spec, config["EndpointConfigName"]), grace_seconds=0.3)
        stop.set()
        thread.join()
    finally:
        stop.set()
        hosting.delete_endpoint(spec.slug)
    assert len(results) > 50
    assert [r for r in results if r != 200] == []
