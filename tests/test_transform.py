"""Batch transform: every CreateTransformJob field honoured as SageMaker documents it, or refused by name.

The model is a stub entry point in the real local container (``stub_container``): each
prediction is ``<first field>:<records in its request>``, so the tests see how records were
split, batched and assembled.
"""

import copy
import gzip
import json

import pytest

from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import JobFailed, RequestValidationError
from gated_ml.local.control_plane import ControlPlane
from gated_ml.local.transform import KIND, run_transform_job
from stub_container import stub_container

ROWS = [f"{label},{i},{i * 2}" for i, label in enumerate("ABCDEFGH")]


@pytest.fixture
def job(lake, spec, env, run):
    """The project's transform request (test split) and a stub model; ``write`` puts input objects."""
    req = jr.transform_job(spec, env, run, "stub-model")
    prefix = req["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]

    class Job:
        request = req
        out = req["TransformOutput"]["S3OutputPath"]

        @staticmethod
        def write(name: str, data: bytes | str):
            storage.write(prefix + name, data.encode() if isinstance(data, str) else data)

        @staticmethod
        def run(request=None, environment=None):
            model = {"ModelName": "stub-model", "PrimaryContainer": stub_container(environment=environment)}
            return run_transform_job(request or req, model)

        @staticmethod
        def output(name: str) -> str:
            return storage.read_text(Job.out + name + ".out")

    return Job


def plain(req, **fields):
    """The request without DataProcessing, with top-level / TransformInput / TransformOutput fields set."""
    r = copy.deepcopy(req)
    r.pop("DataProcessing")
    for key, value in fields.items():
        section, _, field = key.rpartition("__")
        (r[section] if section else r)[field] = value
    return r


@pytest.mark.slow
def test_the_projects_request_joins_each_label_with_its_prediction(job):
    job.write("test.csv", "".join(r + "\n" for r in ROWS))
    describe = job.run()
    assert describe["TransformJobStatus"] == "Completed" and "OutputFiles" not in describe
    assert describe["TransformInput"] == job.request["TransformInput"]  # DescribeTransformJob echoes the request's fields
    # InputFilter $[1:] drops the label, JoinSource Input appends the prediction, OutputFilter $[0,-1] keeps label,prediction;
    # MultiRecord packs all eight records in one request, AssembleWith Line ends each record with a newline.
    assert job.output("test.csv") == "".join(f"{r[0]},{i}:8\n" for i, r in enumerate(ROWS))


@pytest.mark.slow
def test_single_record_sends_one_record_per_request(job):
    job.write("test.csv", "\n".join(ROWS))
    job.run(plain(job.request, BatchStrategy="SingleRecord"))
    assert job.output("test.csv").splitlines() == [f"{r[0]}:1" for r in ROWS]


@pytest.mark.slow
def test_multi_record_packs_requests_up_to_max_payload(job):
    big = ["x" * 300_000 + f",{i}" for i in range(5)]  # 1 MB holds three such records
    job.write("test.csv", "\n".join(big))
    job.run(plain(job.request, MaxPayloadInMB=1))
    assert [line.split(":")[1] for line in job.output("test.csv").splitlines()] == ["3", "3", "3", "2", "2"]


@pytest.mark.slow
def test_a_record_over_max_payload_fails_the_job(job):
    job.write("test.csv", "a,1\n" + "b," + "9" * (1024 * 1024 + 10) + "\n")
    with pytest.raises(JobFailed, match=r"record 2 is .* over MaxPayloadInMB"):
        job.run(plain(job.request, MaxPayloadInMB=1))
    describe = ControlPlane().get(KIND, job.request["TransformJobName"])
    assert describe["TransformJobStatus"] == "Failed" and "MaxPayloadInMB" in describe["FailureReason"]
    assert not storage.exists(job.out + "test.csv.out")


@pytest.mark.slow
def test_split_type_none_sends_each_object_whole(job):
    job.write("a.csv", "\n".join(ROWS[:3]) + "\n")
    job.write("b.csv", "\n".join(ROWS[3:]) + "\n")
    job.run(plain(job.request, BatchStrategy="SingleRecord", TransformInput__SplitType="None"))
    assert job.output("a.csv").splitlines() == [f"{r[0]}:3" for r in ROWS[:3]]
    assert job.output("b.csv").splitlines() == [f"{r[0]}:5" for r in ROWS[3:]]


@pytest.mark.slow
def test_an_object_over_max_payload_without_split_fails(job):
    job.write("test.csv", ("1," * 400_000 + "1\n") * 2)  # 1.6 MB in one piece
    with pytest.raises(JobFailed, match="MaxPayloadInMB"):
        job.run(plain(job.request, MaxPayloadInMB=1, TransformInput__SplitType="None"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "assemble_with, expected",
    [("Line", '{"predictions": ["A:1"]}\n{"predictions": ["B:1"]}\n'), ("None", '{"predictions": ["A:1"]}{"predictions": ["B:1"]}')],
)
def test_assemble_with_line_ends_each_record_and_none_concatenates(job, assemble_with, expected):
    job.write("test.csv", "\n".join(ROWS[:2]))
    job.run(plain(job.request, BatchStrategy="SingleRecord", TransformOutput__Accept="application/json", TransformOutput__AssembleWith=assemble_with))
    assert job.output("test.csv") == expected


@pytest.mark.slow
def test_assemble_with_none_concatenates_joined_csv_records(job):
    req = copy.deepcopy(job.request)
    req["TransformOutput"]["AssembleWith"] = "None"
    job.write("test.csv", "\n".join(ROWS[:2]))
    job.run(req)
    assert job.output("test.csv") == "A,0:2B,1:2"


@pytest.mark.slow
def test_gzip_input_is_decompressed_and_named_after_its_object(job):
    job.write("test.csv.gz", gzip.compress("\n".join(ROWS).encode()))
    job.run(plain(job.request, TransformInput__CompressionType="Gzip"))
    assert job.output("test.csv.gz").splitlines() == [f"{r[0]}:8" for r in ROWS]


@pytest.mark.slow
def test_input_that_is_not_gzip_fails_the_job_naming_compression(job):
    job.write("test.csv", "\n".join(ROWS))
    with pytest.raises(JobFailed, match=r"not Gzip data .* TransformInput\.CompressionType is Gzip"):
        job.run(plain(job.request, TransformInput__CompressionType="Gzip"))


@pytest.mark.slow
def test_a_model_error_fails_the_job_after_its_retries(job, lake):
    job.write("test.csv", "\n".join([*ROWS[:2], "fail,1,2"]))
    req = plain(job.request, ModelClientConfig={"InvocationsTimeoutInSeconds": 30, "InvocationsMaxRetries": 1})
    with pytest.raises(JobFailed, match=r"answered status 500 to /invocations after 2 attempt\(s\)"):
        job.run(req)
    describe = ControlPlane().get(KIND, req["TransformJobName"])
    assert describe["TransformJobStatus"] == "Failed" and describe["FailureReason"].startswith("ClientError: ")
    container_log = (lake / "_control" / "work" / KIND / req["TransformJobName"] / "container.log").read_text()
    assert container_log.count("RuntimeError: stub model: a record asked to fail") == 2  # one traceback per attempt


@pytest.mark.slow
def test_accept_and_environment_reach_the_container(job):
    job.write("test.csv", "\n".join(ROWS[:2]))
    job.run(plain(job.request, TransformOutput__Accept="application/json", Environment={"STUB_SUFFIX": "!"}))
    assert json.loads(job.output("test.csv")) == {"predictions": ["A:2!", "B:2!"]}


@pytest.mark.slow
def test_an_accept_type_the_entry_point_refuses_fails_the_job(job):
    job.write("test.csv", "\n".join(ROWS[:2]))
    with pytest.raises(JobFailed, match="status 500"):
        job.run(plain(job.request, TransformOutput__Accept="application/x-npy", ModelClientConfig={"InvocationsMaxRetries": 0}))


def _set(path: str, value):
    def change(req):
        *parents, last = path.split(".")
        node = req
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    return change


@pytest.mark.parametrize(
    "change, field",
    [
        (_set("TransformInput.SplitType", "RecordIO"), "TransformInput.SplitType='RecordIO'"),
        (_set("TransformInput.DataSource.S3DataSource.S3DataType", "ManifestFile"), "S3DataType='ManifestFile'"),
        (_set("MaxPayloadInMB", 0), "MaxPayloadInMB=0"),
        (_set("MaxPayloadInMB", 101), "MaxPayloadInMB=101: cannot be greater than 100"),
        (_set("MaxConcurrentTransforms", 20), r"MaxConcurrentTransforms=20: .*\(20 \* 6\)"),
        (_set("DataProcessing.InputFilter", "$.features"), "DataProcessing.InputFilter='\\$.features'"),
        (_set("TransformOutput.Accept", "application/json"), "DataProcessing.JoinSource='Input'.*TransformOutput.Accept"),
        (_set("TransformInput.ContentType", "application/json"), "DataProcessing.InputFilter=.*TransformInput.ContentType"),
        (_set("TransformInput.SplitType", "None"), "DataProcessing.InputFilter=.*SplitType to Line"),
        (_set("DataCaptureConfig", {"DestinationS3Uri": "s3://b/capture/"}), "DataCaptureConfig="),
    ],
)
def test_values_the_local_target_does_not_honour_are_refused_by_name_before_the_job(lake, spec, env, run, change, field):
    req = jr.transform_job(spec, env, run, "stub-model")
    change(req)
    with pytest.raises(RequestValidationError, match=field):
        run_transform_job(req, {"ModelName": "stub-model", "PrimaryContainer": {}})
    assert ControlPlane().get(KIND, req["TransformJobName"]) is None  # no job was created
