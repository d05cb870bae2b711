"""The data path of a batch transform: one input object in, its ``.out`` object's bytes out.

As the ``CreateTransformJob`` shapes document it:
- ``CompressionType: Gzip``: the object is decompressed before it is split;
- ``SplitType: Line`` splits it into records on newlines; ``None`` sends the whole object as
  one payload;
- ``BatchStrategy: MultiRecord`` packs records, joined by newlines, into payloads of at most
  ``MaxPayloadInMB``; ``SingleRecord`` sends one record per request; a record (or, unsplit,
  the object) larger than ``MaxPayloadInMB`` fails the job;
- ``DataProcessing`` (CSV): ``InputFilter`` selects the fields sent, ``JoinSource: Input``
  appends each prediction to its input record, ``OutputFilter`` selects the fields kept;
- ``AssembleWith: Line`` adds a newline at the end of every transformed record (a response
  without per-record output is one record); ``None`` concatenates the results as they came.
A model that does not answer one CSV line per record where records are joined or filtered
fails the job.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator

from gated_ml.errors import JobFailed

_FILTER = re.compile(r"^\$(\[(?P<items>[-0-9:, ]+)\])?$")
Invoke = Callable[[bytes], bytes]


def csv_filter(expression: str | None):
    """Compile a SageMaker CSV JSONPath filter (``$``, ``$[1:]``, ``$[0,-1]``, ``$[1:3,5]``)."""
    if not expression or expression == "$":
        return lambda fields: fields
    m = _FILTER.match(expression.strip())
    if not m:
        raise ValueError(f"unsupported CSV filter {expression!r}; use $, $[i,j] or $[a:b]")
    items = []
    for part in m.group("items").split(","):
        part = part.strip()
        if ":" in part:
            a, b = part.split(":", 1)
            items.append(slice(int(a) if a else None, int(b) if b else None))
        else:
            items.append(int(part))

    def apply(fields: list[str]) -> list[str]:
        out: list[str] = []
        for item in items:
            out += fields[item] if isinstance(item, slice) else [fields[item]]
        return out

    return apply


def read_object(data: bytes, compression: str, name: str) -> bytes:
    if compression != "Gzip":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise JobFailed(f"ClientError: {name} is not Gzip data ({e}) but TransformInput.CompressionType is Gzip") from None


def split_records(data: bytes, split_type: str) -> list[bytes]:
    if split_type == "Line":
        return [line for line in data.splitlines() if line.strip()]
    return [data] if data else []


def batches(records: list[bytes], max_bytes: int, multi: bool, name: str) -> Iterator[list[bytes]]:
    """Mini-batches of records; a record over ``max_bytes`` fails the job."""
    batch, size = [], 0
    for i, rec in enumerate(records):
        if len(rec) > max_bytes:
            raise JobFailed(
                f"ClientError: {name}: record {i + 1} is {len(rec)} bytes, over MaxPayloadInMB ({max_bytes // (1024 * 1024)} MB); "
                "raise MaxPayloadInMB (at most 100) or split the input into smaller records"
            )
        n = len(rec) + 1
        if batch and (not multi or size + n > max_bytes + 1):
            yield batch
            batch, size = [], 0
        batch.append(rec)
        size += n
    if batch:
        yield batch


def _parse(text: str) -> list[list[str]]:
    """CSV records; plain comma splitting when nothing is quoted (the common, numeric case)."""
    if '"' not in text:
        return [line.split(",") for line in text.splitlines() if line]
    return [r for r in csv.reader(io.StringIO(text)) if r]


def _format(row: list[str]) -> str:
    if not any(c in f for f in row for c in ',"\n'):
        return ",".join(row)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(row)
    return buf.getvalue()


def _assemble(records: list[bytes], assemble_with: str) -> bytes:
    if assemble_with == "Line":
        return b"".join(r.rstrip(b"\n") + b"\n" for r in records)
    return b"".join(records)


class Transform:
    """The settings of one job's data path, from its request."""

    def __init__(self, req: dict):
        tin, tout, dp = req["TransformInput"], req["TransformOutput"], req.get("DataProcessing", {})
        self.split, self.compression = tin.get("SplitType", "None"), tin.get("CompressionType", "None")
        self.multi = req.get("BatchStrategy", "MultiRecord") == "MultiRecord" and self.split != "None"
        self.max_bytes = req.get("MaxPayloadInMB", 6) * 1024 * 1024
        self.assemble_with = tout.get("AssembleWith", "None")
        self.in_filter = csv_filter(dp.get("InputFilter")) if dp.get("InputFilter") not in (None, "", "$") else None
        self.out_filter = csv_filter(dp.get("OutputFilter"))
        self.join = dp.get("JoinSource", "None") == "Input"
        self.per_record = self.join or dp.get("OutputFilter") not in (None, "", "$")

    def _sent(self, records: list[bytes]) -> list[bytes]:
        if self.in_filter is None:
            return records
        return [_format(self.in_filter(r)).encode() for r in _parse(b"\n".join(records).decode())]

    def _per_record(self, batch: list[bytes], answer: bytes, name: str) -> list[bytes]:
        rows, predictions = _parse(b"\n".join(batch).decode()), _parse(answer.decode())
        if len(predictions) != len(rows):
            raise JobFailed(f"ClientError: {name}: the model returned {len(predictions)} CSV lines for {len(rows)} records; DataProcessing needs one each")
        return [_format(self.out_filter(r + p if self.join else p)).encode() for r, p in zip(rows, predictions, strict=True)]

    def run(self, data: bytes, name: str, invoke: Invoke) -> bytes:
        """The ``.out`` object for one input object; ``invoke(payload)`` is the container's answer."""
        records = split_records(read_object(data, self.compression, name), self.split)
        out: list[bytes] = []
        for batch in batches(records, self.max_bytes, self.multi, name):
            answer = invoke(b"\n".join(self._sent(batch)))
            out += self._per_record(batch, answer, name) if self.per_record else [answer]
        return _assemble(out, self.assemble_with)
