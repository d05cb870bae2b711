"""The endpoint under the XGBoost framework container's serving contract, answering a stock boto3 client as the runtime does.

The contract (aws/sagemaker-xgboost-container ``serving.py`` over aws/sagemaker-containers
``_transformer.py``/``_worker.py``): any exception of the entry point's handlers is a 500;
``Accept`` missing or ``*/*`` is ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (JSON by default).
The runtime (botocore's ``sagemaker-runtime`` model): a container error reaches the client
as ``ModelError`` (424) with ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn``.
"""

import http.client
import json
import types
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.local import containers, framework_handlers, hosting
from gated_ml.local.transform import csv_filter, run_transform_job
from gated_ml.targets.local import LocalTarget
from modelkit import train_and_register
from stub_container import stub_container


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
    log = tmp_path_factory.mktemp("srv") / "server.log"
    c = containers.start(model["record"]["PrimaryContainer"], "vertebral-column", log)
    yield types.SimpleNamespace(url=c.url, pid=c.pid, log=log)
    containers.stop(c.pid)


@pytest.fixture
def stub(lake, tmp_path):
    """The stub entry point in the real local container, as endpoint ``stub`` (see ``stub_container``)."""
    started = []

    def start(environment=None):
        c = containers.start(stub_container(environment=environment), "stub", tmp_path / f"stub{len(started)}.log")
        started.append(c)
        return c

    yield start
    for c in started:
        containers.stop(c.pid)


def _post(url, body, content_type="text/csv", path="/invocations", accept=None):
    headers = {"Content-Type": content_type} if content_type else {}
    if accept:
        headers["Accept"] = accept
    req = urllib.request.Request(url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type")


# --- the container's handler contract, in process -----------------------------------------
def _module(**handlers):
    return types.SimpleNamespace(**{"__file__": "entry.py", "model_fn": lambda d: None, **handlers})


@pytest.mark.parametrize(
    "handlers, message",
    [
        ({"model_fn": None}, "define model_fn"),
        ({"input_fn": print, "predict_fn": print}, r"define \['output_fn'\]"),
        ({"transform_fn": print, "input_fn": print}, "Cannot use transform_fn implementation with input_fn"),
    ],
)
def test_an_entry_point_the_container_cannot_serve_is_refused_at_start(handlers, message):
    with pytest.raises(framework_handlers.UserError, match=message):
        framework_handlers.check_entry_point(_module(**handlers))


def test_any_handler_exception_is_the_workers_500_page():
    def input_fn(body, content_type):
        raise ValueError(f"unsupported content type {content_type}")

    module = _module(input_fn=input_fn, predict_fn=None, output_fn=None)
    answer = framework_handlers.invoke(module, None, b"x", "text/plain", "text/csv")
    assert answer.status == 500 and b"Internal Server Error" in answer.body and answer.content_type.startswith("text/html")


def test_the_body_is_text_for_csv_and_json_only_and_a_tuple_sets_the_mimetype():
    seen = []
    module = _module(transform_fn=lambda model, content, ct, accept: (seen.append(content) or "1\n", accept))
    csv_answer = framework_handlers.invoke(module, None, b"1,2", "text/csv", "text/csv")
    framework_handlers.invoke(module, None, b"1,2", "application/x-npy", "application/json")
    assert seen == ["1,2", b"1,2"]
    assert csv_answer == framework_handlers.Answer(200, b"1\n", "text/csv; charset=utf-8")


def test_accept_defaults_to_the_serving_environment(monkeypatch):
    monkeypatch.delenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", raising=False)
    assert framework_handlers.request_accept({}) == framework_handlers.request_accept({"Accept": "*/*"}) == "application/json"
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
    assert framework_handlers.request_accept({"Accept": "*/*"}) == "text/csv"
    assert framework_handlers.request_accept({"Accept": "application/json"}) == "application/json"
    assert framework_handlers.request_content_type({}) == "application/json"
    assert framework_handlers.request_content_type({"ContentType": "text/csv", "Content-Type": "x/y"}) == "text/csv"


# --- the runtime's answers to a stock boto3 client (stub entry point) ---------------------
@pytest.mark.slow
def test_a_model_error_reaches_boto3_as_model_error_424(stub):
    c = stub()
    client = hosting.runtime_client(c.url, max_attempts=1)
    with pytest.raises(client.exceptions.ModelError) as err:
        client.invoke_endpoint(EndpointName="stub", ContentType="text/csv", Accept="text/csv", Body=b"fail,1")
    r = err.value.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 424 and r["Error"]["Code"] == "ModelError"
    assert r["OriginalStatusCode"] == 500 and "Internal Server Error" in r["OriginalMessage"]
    assert r["LogStreamArn"].startswith("arn:aws:logs:") and ":log-group:/aws/sagemaker/Endpoints/stub:" in r["LogStreamArn"]
    assert r["Error"]["Message"].startswith("Received server error (500) from AllTraffic with message")
    assert containers.ping(c.url)  # the container still serves


@pytest.mark.slow
def test_an_unsupported_content_type_is_a_model_error_with_the_reason_in_the_log(stub, tmp_path):
    c = stub()
    client = hosting.runtime_client(c.url, max_attempts=1)
    with pytest.raises(client.exceptions.ModelError) as err:
        client.invoke_endpoint(EndpointName="stub", ContentType="text/plain", Body=b"a,1")
    assert err.value.response["OriginalStatusCode"] == 500  # a user input_fn's error: the worker's 500, not 415
    assert "ValueError: unsupported content type 'text/plain'" in (tmp_path / "stub0.log").read_text()


@pytest.mark.slow
def test_accept_default_and_explicit(stub):
    c = stub()
    client = hosting.runtime_client(c.url)
    default = client.invoke_endpoint(EndpointName="stub", ContentType="text/csv", Body=b"a,1\nb,2")
    assert default["ContentType"] == "application/json" and json.loads(default["Body"].read()) == {"predictions": ["a:2", "b:2"]}
    assert default["InvokedProductionVariant"] == "AllTraffic"
    as_csv = client.invoke_endpoint(EndpointName="stub", ContentType="text/csv", Accept="text/csv", Body=b"a,1")
    assert as_csv["ContentType"] == "text/csv; charset=utf-8" and as_csv["Body"].read() == b"a:1\n"
    with pytest.raises(client.exceptions.ModelError):  # the entry point's output_fn refuses it
        client.invoke_endpoint(EndpointName="stub", ContentType="text/csv", Accept="application/x-npy", Body=b"a,1")


@pytest.mark.slow
def test_the_container_environment_sets_the_default_accept(stub):
    c = stub(environment={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    answer = hosting.runtime_client(c.url).invoke_endpoint(EndpointName="stub", ContentType="text/csv", Accept="*/*", Body=b"a,1")
    assert answer["ContentType"] == "text/csv; charset=utf-8" and answer["Body"].read() == b"a:1\n"


@pytest.mark.slow
def test_another_endpoint_name_is_a_validation_error(stub):
    client = hosting.runtime_client(stub().url, max_attempts=1)
    with pytest.raises(client.exceptions.ValidationError, match="Endpoint other of account 000000000000 not found"):
        client.invoke_endpoint(EndpointName="other", ContentType="text/csv", Body=b"a,1")


@pytest.mark.slow
def test_the_container_path_answers_the_containers_own_codes(stub):
    url = stub().url
    status, body, content_type = _post(url, b"fail,1", accept="text/csv")
    assert status == 500 and "Internal Server Error" in body and content_type.startswith("text/html")
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
    conn.request("POST", "/invocations", body=b'{"a": 1}', headers={"Accept": "text/csv"})  # no Content-Type: JSON, as the worker assumes
    assert conn.getresponse().read() == b'{"a": 1}:1\n'
    conn.close()


@pytest.mark.slow
def test_the_6_mb_limit_is_the_runtimes_not_the_containers(stub):
    url = stub().url
    big = b"a," + b"1" * (6 * 1024 * 1024)
    code, text, _ = _post(url, big, path="/endpoints/stub/invocations")
    assert code == 413 and "payload limit of InvokeEndpoint" in json.loads(text)["Message"]
    assert _post(url, big, accept="text/csv")[:2] == (200, "a:1\n")  # batch transform may send up to MaxPayloadInMB (100)


@pytest.mark.slow
def test_the_router_passes_the_runtime_answer_through(stub, tmp_path):
    router = containers.start_router("stub", stub().url, tmp_path / "router.log")
    try:
        client = hosting.runtime_client(router.url, max_attempts=1)
        with pytest.raises(client.exceptions.ModelError) as err:
            client.invoke_endpoint(EndpointName="stub", ContentType="text/csv", Body=b"fail,1")
        assert err.value.response["OriginalStatusCode"] == 500
        ok = client.invoke_endpoint(EndpointName="stub", ContentType="text/csv", Body=b"a,1")
        assert ok["InvokedProductionVariant"] == "AllTraffic" and ok["ContentType"] == "application/json"
    finally:
        containers.stop(router.pid)


# --- the real model ------------------------------------------------------------------------
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
    request = jr.transform_job(spec, env, run, model["record"]["ModelName"])
    describe = run_transform_job(request, model["record"])
    assert describe["TransformJobStatus"] == "Completed"
    out = request["TransformOutput"]["S3OutputPath"] + "test.csv.out"  # <S3OutputPath>/<input object>.out, as on AWS
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
    a = _post(server.url, row.encode(), accept="text/csv")
    b = _post(server.url, row.encode(), path="/endpoints/vertebral-column/invocations", accept="text/csv")
    assert a[0] == b[0] == 200 and a[1] == b[1]


@pytest.mark.slow
def test_stock_boto3_runtime_client(server, model):
    client = hosting.runtime_client(server.url)
    rows = model["test"].iloc[:5, 1:]
    body = rows.to_csv(index=False, header=False)
    answer = client.invoke_endpoint(EndpointName="vertebral-column", ContentType="text/csv", Accept="text/csv", Body=body)
    preds = answer["Body"].read().decode().split()
    assert answer["ContentType"] == "text/csv; charset=utf-8" and len(preds) == 5
    as_json = client.invoke_endpoint(
        EndpointName="vertebral-column", ContentType="application/json", Body=json.dumps({"instances": rows.to_dict(orient="records")})
    )
    assert as_json["ContentType"] == "application/json"  # no Accept: the container's default
    assert json.loads(as_json["Body"].read())["predictions"] == pytest.approx([float(p) for p in preds])


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, content_type, logged",
    [
        (b"1,2,3", "text/csv", "expected 6"),
        (b"1,2,3,4,5,abc", "text/csv", "must be numeric"),
        (b"  \n", "text/csv", "empty request body"),
        (b"1,2,3,4,5,6", "text/plain", "unsupported content type"),
        (b"{not json", "application/json", "not valid JSON"),
        (b'{"instances": [{"pelvic_tilt": 1}]}', "application/json", "lack the fields"),
    ],
)
def test_bad_requests_are_model_errors_with_the_reason_in_the_endpoint_log(server, body, content_type, logged):
    client = hosting.runtime_client(server.url, max_attempts=1)
    logged_before = server.log.stat().st_size
    with pytest.raises(client.exceptions.ModelError) as err:
        client.invoke_endpoint(EndpointName="vertebral-column", ContentType=content_type, Body=body)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424 and err.value.response["OriginalStatusCode"] == 500
    assert str(server.log) in err.value.response["Error"]["Message"]  # "See <the log> for more information"
    with open(server.log, errors="replace") as f:
        f.seek(logged_before)
        assert logged in f.read()  # this request's traceback, in the container log
    assert containers.ping(server.url)  # still serving


@pytest.mark.slow
def test_an_oversized_request_is_refused_before_the_model(server):
    with pytest.raises(ClientError) as err:
        hosting.runtime_client(server.url, max_attempts=1).invoke_endpoint(
            EndpointName="vertebral-column", ContentType="text/csv", Body=b"1," * (3 * 1024 * 1024) + b"1"
        )
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


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
