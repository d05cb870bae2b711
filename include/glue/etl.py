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
exact duplicate rows, then write Parquet to a staging folder and move it
into place, so the curated partition is either the old one or the complete new one.
Any failure exits non-zero with a message and writes nothing to ``--output_uri``.
"""

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

# shipped beside this script with --extra-py-files: the raw-format rules the landing gate reads by too
from raw_formats import RawFormat, RawFormatError

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
        fmt = RawFormat.from_job_arguments({f"--{k}": v for k, v in vars(args).items()})
        raw, source_columns = fmt.read_spark(spark, args.source_uri)
        curated = conform(raw, source_columns, fmt)
        before = curated.count()
        if before == 0:
            raise EtlError(f"{args.source_uri} holds no data rows")
        curated = curated.dropDuplicates().orderBy(*curated.columns)  # stable order: splits are reproducible
        after = curated.count()
        write_atomically(spark, curated, args.output_uri)
        print(f"ETL done: {before} rows read, {before - after} exact duplicates dropped, {after} rows written to {args.output_uri}")
    except (EtlError, RawFormatError) as e:
        print(f"ETL failed: {e}", file=sys.stderr)
        sys.exit(2)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
