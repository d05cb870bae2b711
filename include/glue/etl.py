"""Glue ETL: one landed raw batch -> curated Parquet. Plain PySpark (Glue 5.0: Spark 3.5, Python 3.11).

Job arguments (``glue.StartJobRun`` ``Arguments``):
  --source_uri     the raw file (s3:// on Glue; file:// when run on local Spark)
  --output_uri     the curated partition to (re)write
  --source_format  arff | csv
  --delimiter      field delimiter of the raw file
  --header         true if a csv file starts with a header line
  --columns        JSON list of {"name", "type"}: the columns the spec expects, in order

Steps: read the raw lines, check the file's columns against the spec, normalise column
names, cast types (a value that does not parse is an error, not a silent null), trim
strings, drop exact duplicate rows, then write Parquet to a staging folder and move it
into place, so the curated partition is either the old one or the complete new one.
Any failure exits non-zero with a message and writes nothing to ``--output_uri``.
"""

import argparse
import json
import re
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

SPARK_TYPES = {"double": T.DoubleType(), "integer": T.LongType(), "string": T.StringType()}


class EtlError(Exception):
    pass


def parse_args(argv):
    p = argparse.ArgumentParser()
    for name in ("source_uri", "output_uri", "source_format", "columns"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--delimiter", default=",")
    p.add_argument("--header", default="false")
    args, _ = p.parse_known_args(argv)  # Glue adds --JOB_ID, --job-bookmark-option, ...
    return args


def normalise(name):
    return re.sub(r"[^0-9a-z]+", "_", name.strip().strip("'\"").lower()).strip("_")


def arff_header(lines):
    """Attribute names declared before ``@data`` and the number of header lines."""
    names = []
    for i, line in enumerate(lines):
        text = line.strip()
        low = text.lower()
        if low.startswith("@attribute"):
            names.append(re.split(r"\s+", text, maxsplit=2)[1])
        elif low.startswith("@data"):
            return names, i + 1
    raise EtlError("ARFF file has no @data section")


def read_raw(spark, args):
    """-> (DataFrame of string columns named as in the source, source column names)."""
    try:
        text = spark.read.text(args.source_uri)
    except Exception as e:  # AnalysisException [PATH_NOT_FOUND]
        raise EtlError(f"cannot read the source file {args.source_uri}: {str(e).splitlines()[0]}") from None
    lines = [r.value for r in text.limit(1000).collect()]
    if args.source_format == "arff":
        names, skip = arff_header(lines)
        body = text.rdd.zipWithIndex().filter(lambda t: t[1] >= skip).map(lambda t: t[0].value)
        body = body.filter(lambda v: v.strip() and not v.lstrip().startswith("%"))
        has_header = False
    else:
        names, has_header = None, args.header == "true"
        body = text.rdd.map(lambda r: r.value).filter(lambda v: v.strip())
    frame = spark.read.csv(body, sep=args.delimiter, header=has_header, inferSchema=False, quote='"', ignoreLeadingWhiteSpace=True, ignoreTrailingWhiteSpace=True)
    if names is not None:
        if len(names) != len(frame.columns):
            raise EtlError(f"the ARFF header declares {len(names)} attributes {names} but data rows have {len(frame.columns)} fields (delimiter {args.delimiter!r})")
        frame = frame.toDF(*names)
    return frame, list(frame.columns)


def conform(frame, source_columns, expected, delimiter):
    wanted = [c["name"] for c in expected]
    normalised = [normalise(c) for c in source_columns]
    if not any(c in wanted for c in normalised) and len(source_columns) == len(wanted):
        normalised = wanted  # a headerless file: the spec names its columns in order
    missing = [c for c in wanted if c not in normalised]
    extra = [c for c, n in zip(source_columns, normalised) if n not in wanted]
    if missing or extra:
        raise EtlError(
            f"source columns {normalised} do not match the spec: spec columns not in the source: {missing}; "
            f"source columns not in the spec: {extra} (check the spec's columns and the delimiter {delimiter!r})"
        )
    frame = frame.toDF(*normalised)
    out = []
    for col in expected:
        value = F.trim(F.col(col["name"]))
        value = F.when((value == "") | (value == "?"), F.lit(None)).otherwise(value)
        if col["type"] != "string":
            cast = value.cast(SPARK_TYPES[col["type"]])
            bad = frame.filter(value.isNotNull() & cast.isNull()).select(col["name"]).limit(3).collect()
            if bad:
                raise EtlError(f"column {col['name']!r} must be {col['type']}; found unparseable values {[r[0] for r in bad]}")
            value = cast
        out.append(value.alias(col["name"]))
    return frame.select(*out)


def write_atomically(spark, frame, output_uri):
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    final = jvm.org.apache.hadoop.fs.Path(output_uri.rstrip("/"))
    staging = jvm.org.apache.hadoop.fs.Path(output_uri.rstrip("/") + "._staging")
    fs = final.getFileSystem(conf)
    fs.delete(staging, True)
    frame.coalesce(1).write.mode("overwrite").parquet(str(staging.toString()))
    fs.delete(final, True)
    if not fs.rename(staging, final):
        raise EtlError(f"could not move the staged output into {output_uri}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("gated-ml-etl").getOrCreate()
    try:
        raw, source_columns = read_raw(spark, args)
        curated = conform(raw, source_columns, json.loads(args.columns), args.delimiter)
        before = curated.count()
        if before == 0:
            raise EtlError(f"{args.source_uri} holds no data rows")
        curated = curated.dropDuplicates().orderBy(*curated.columns)  # stable order: splits are reproducible
        after = curated.count()
        write_atomically(spark, curated, args.output_uri)
        print(f"ETL done: {before} rows read, {before - after} exact duplicates dropped, {after} rows written to {args.output_uri}")
    except EtlError as e:
        print(f"ETL failed: {e}", file=sys.stderr)
        sys.exit(2)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
