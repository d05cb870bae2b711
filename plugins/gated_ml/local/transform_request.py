"""Which ``CreateTransformJob`` fields the local transform honours, and the refusal of every other value.

Run before a job record exists, as ``CreateTransformJob`` validates: a refused value raises
:class:`RequestValidationError` naming the field and what to set instead, and no job starts.

Honoured (:mod:`gated_ml.local.transform`): ``TransformInput.SplitType`` ``None``/``Line``,
``CompressionType`` ``None``/``Gzip``, ``ContentType`` and ``TransformOutput.Accept`` (sent
as headers), ``AssembleWith`` ``None``/``Line``, ``BatchStrategy``, ``MaxPayloadInMB``
(1 to 100; a record over it fails the job), ``MaxConcurrentTransforms`` (its product with
``MaxPayloadInMB`` at most 100), ``ModelClientConfig`` (time-out and retries of each
invocation), ``Environment`` (the container's), ``DataProcessing`` on CSV records.
Recorded only (no effect on this machine): ``TransformResources``, ``KmsKeyId``,
``ExperimentConfig``, ``Tags``.
"""

from __future__ import annotations

from gated_ml.errors import RequestValidationError

MAX_PAYLOAD_MB = 100  # "The value of MaxPayloadInMB cannot be greater than 100 MB" (CreateTransformJob)
CSV = "text/csv"


def _refuse(field: str, value, what: str) -> None:
    raise RequestValidationError(f"CreateTransformJob {field}={value!r}: {what}")


def check_payload(req: dict) -> None:
    """``MaxPayloadInMB`` and ``MaxConcurrentTransforms`` as the API documents their limits."""
    mb = req.get("MaxPayloadInMB", 6)
    if mb == 0:
        _refuse("MaxPayloadInMB", mb, "0 asks for HTTP chunked transfer, which the XGBoost container does not support; set 1 to 100")
    if mb > MAX_PAYLOAD_MB:
        _refuse("MaxPayloadInMB", mb, f"cannot be greater than {MAX_PAYLOAD_MB}")
    concurrent = req.get("MaxConcurrentTransforms") or 1
    if concurrent * mb > MAX_PAYLOAD_MB:
        _refuse("MaxConcurrentTransforms", concurrent, f"MaxConcurrentTransforms * MaxPayloadInMB ({concurrent} * {mb}) cannot exceed {MAX_PAYLOAD_MB} MB")


def check_input(req: dict) -> None:
    tin = req["TransformInput"]
    data_type = tin["DataSource"]["S3DataSource"]["S3DataType"]
    if data_type != "S3Prefix":
        _refuse("TransformInput.DataSource.S3DataSource.S3DataType", data_type, "the local target reads S3Prefix input only; use S3Prefix")
    split = tin.get("SplitType", "None")
    if split not in ("None", "Line"):
        _refuse("TransformInput.SplitType", split, "the local target splits by Line or not at all (None); RecordIO and TFRecord are not emulated")


def check_data_processing(req: dict) -> None:
    """``DataProcessing`` works on CSV records locally: Line-split ``text/csv`` in, ``text/csv`` out."""
    from gated_ml.local.transform_records import csv_filter

    dp = req.get("DataProcessing", {})
    tin, tout = req["TransformInput"], req["TransformOutput"]
    used = {k: v for k, v in dp.items() if (k == "JoinSource" and v != "None") or (k != "JoinSource" and v not in ("", "$"))}
    for key, value in used.items():
        field = f"DataProcessing.{key}"
        if key != "JoinSource":
            try:
                csv_filter(value)
            except ValueError as e:
                _refuse(field, value, str(e))
        if tin.get("SplitType", "None") != "Line":
            _refuse(field, value, "locally DataProcessing needs records: set TransformInput.SplitType to Line")
        if key == "InputFilter" and tin.get("ContentType") != CSV:
            _refuse(field, value, f"locally filters apply to CSV records only: set TransformInput.ContentType to {CSV} or InputFilter to $")
        if key != "InputFilter" and tout.get("Accept") != CSV:
            _refuse(field, value, f"locally joined and filtered output is CSV only: set TransformOutput.Accept to {CSV}")


def check_unemulated(req: dict) -> None:
    if req.get("DataCaptureConfig"):
        _refuse("DataCaptureConfig", req["DataCaptureConfig"], "batch data capture is not emulated by the local target; remove it")


def check(req: dict) -> None:
    """Refuse, naming the field, every value the local transform would not honour as SageMaker does."""
    check_payload(req)
    check_input(req)
    check_data_processing(req)
    check_unemulated(req)
