"""Glue ETL: one landed raw batch -> curated Parquet. Plain PySpark (Glue 5.0: Spark 3.5, Python 3.11).

Job arguments (``glue.StartJobRun`` ``Arguments``):
  --source_uri     the raw file (s3:// on Glue; file:// when run on local Spark)
  --output_uri     the curated partition to (re)write
  --source_format  arff | csv
  --delimiter      field delimiter of the raw file
  --header         true if a csv file starts with a header line
  --columns        JSON list of {"name", "type"}: the columns the spec expects, in order

Steps: read the raw file by its format (the rules are the module ``raw_formats``, shipped
beside this script with ``--extra-py-files``), check its columns against the spec, cast
types (a value that does not parse is an error, not a silent null), trim strings, drop
exact duplicate rows, then commit the batch (:func:`commit`).

Commit: neither S3 nor a local folder can swap a folder in one step, so the partition is
committed by a marker written last. The Parquet files are written under a staging folder
inside the partition (``_attempt-<token>/``: Spark, Hive and the project's readers ignore
``_`` names), moved next to it under names unique to this attempt, then the marker
``_COMMITTED`` (JSON: the file names and the row count) replaces the previous one, then the
files of earlier attempts are deleted. Readers read exactly the files the marker lists and
refuse a partition without one (``gated_ml.batch_commit``), so they see the old batch or the
new one, never a mix, and never a half-written one. The same Hadoop FileSystem calls run on
``s3://`` (Glue) and ``file://`` (local Spark).

A batch the script refuses (columns, types, no rows) raises :class:`EtlRefusal`, whose
message starts with ``GATED_ML_REFUSED:``; Glue reports it in the job run's
``ErrorMessage`` and the `aws` target fails the task without retry. Anything else that breaks
(Spark, S3) fails the run with its own error, which the task retries. A refused batch writes
nothing to ``--output_uri``.
"""

import argparse
import json
import sys
import uuid

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

# shipped beside this script with --extra-py-files: the raw-format rules the landing gate reads by too
from raw_formats import RawFormat, RawFormatError

SPARK_TYPES = {"double": T.DoubleType(), "integer": T.LongType(), "string": T.StringType()}
REFUSAL_MARKER = "GATED_ML_REFUSED:"  # = gated_ml.errors.GLUE_REFUSAL_MARKER (this script cannot import the package)
COMMIT_MARKER = "_COMMITTED"  # = gated_ml.batch_commit.COMMIT_MARKER


class EtlError(Exception):
    """The batch cannot be curated as it is."""


class EtlRefusal(Exception):
    """The script's refusal of its batch, raised out of the script so that Glue reports it in ``ErrorMessage``."""


class CommitError(Exception):
    """The file system did not do what the commit asked (not the data's fault: the run may be retried)."""


def parse_args(argv):
    p = argparse.ArgumentParser()
    for name in ("source_uri", "output_uri", "source_format", "columns"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--delimiter", default=",")
    p.add_argument("--header", default="false")
    args, _ = p.parse_known_args(argv)  # Glue adds --JOB_ID, --job-bookmark-option, ...
    return args


def conform(frame, source_columns, fmt):
    """The spec's columns, in order: names checked, values trimmed, types cast."""
    fmt.check_names(frame.columns, source_columns)
    out = []
    for col in fmt.columns:
        value = F.trim(F.col(col.name))
        value = F.when((value == "") | (value == "?"), F.lit(None)).otherwise(value)
        if col.type != "string":
            cast = value.cast(SPARK_TYPES[col.type])
            bad = frame.filter(value.isNotNull() & cast.isNull()).select(col.name).limit(3).collect()
            if bad:
                raise EtlError(f"column {col.name!r} must be {col.type}; found unparseable values {[r[0] for r in bad]}")
            value = cast
        out.append(value.alias(col.name))
    return frame.select(*out)


class _Hadoop:
    """The Hadoop FileSystem calls the commit needs, on whatever ``output_uri`` is (``s3://`` on Glue, ``file://`` locally)."""

    def __init__(self, spark, output_uri):
        self.jvm = spark.sparkContext._jvm
        self.root = self.path(output_uri.rstrip("/"))
        self.fs = self.root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def path(self, uri):
        return self.jvm.org.apache.hadoop.fs.Path(uri)

    def child(self, name):
        return self.path(self.root.toString() + "/" + name)

    def children(self, folder):
        return [s.getPath() for s in self.fs.listStatus(folder)] if self.fs.exists(folder) else []

    def write_text(self, target, text):
        stream = self.fs.create(target, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def move(self, source, target):
        if not self.fs.rename(source, target):
            if not (self.fs.delete(target, False) and self.fs.rename(source, target)):
                raise CommitError(f"could not move {source.toString()} to {target.toString()}")


def commit(spark, frame, output_uri, rows):
    """Write ``frame`` as the partition ``output_uri``: data files first, then the marker naming them, then drop the old files."""
    hadoop = _Hadoop(spark, output_uri)
    token = uuid.uuid4().hex[:12]
    staging = hadoop.child(f"_attempt-{token}")
    try:
        frame.coalesce(1).write.mode("overwrite").parquet(staging.toString())
        parts = sorted((p for p in hadoop.children(staging) if p.getName().endswith(".parquet")), key=lambda p: p.getName())
        names = [f"part-{token}-{i:05d}.parquet" for i in range(len(parts))]
        for part, name in zip(parts, names, strict=True):
            hadoop.move(part, hadoop.child(name))
        marker = json.dumps({"files": names, "rows": rows, "attempt": token})
        pending = hadoop.child(f"_{COMMIT_MARKER}.{token}")
        hadoop.write_text(pending, marker)
        hadoop.move(pending, hadoop.child(COMMIT_MARKER))  # the commit: from here on readers see this batch
    finally:
        hadoop.fs.delete(staging, True)
    keep = {*names, COMMIT_MARKER}
    keep |= {f".{name}.crc" for name in keep}  # the local file system's checksums of what is kept
    for old in hadoop.children(hadoop.root):  # earlier attempts' files: nothing the marker names (a concurrent attempt's marker-to-be stays)
        if old.getName() not in keep and not old.getName().startswith(f"_{COMMIT_MARKER}."):
            hadoop.fs.delete(old, True)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("gated-ml-etl").getOrCreate()
    try:
        fmt = RawFormat.from_job_arguments({f"--{k}": v for k, v in vars(args).items()})
        raw, source_columns = fmt.read_spark(spark, args.source_uri)
        curated = conform(raw, source_columns, fmt)
        before = curated.count()
        if before == 0:
            raise EtlError(f"{args.source_uri} holds no data rows")
        curated = curated.dropDuplicates().orderBy(*curated.columns)  # stable order: splits are reproducible
        after = curated.count()
        commit(spark, curated, args.output_uri, after)
        print(f"ETL done: {before} rows read, {before - after} exact duplicates dropped, {after} rows committed to {args.output_uri}")
    except (EtlError, RawFormatError) as e:
        print(f"ETL failed: {e}", file=sys.stderr)
        raise EtlRefusal(f"{REFUSAL_MARKER} {e}") from None
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
