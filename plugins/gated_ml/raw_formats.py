"""Raw file formats: the one description of how a landed raw file is read.

This module owns the rules both readers of a raw batch follow: the landing gate's pandas
reader (:meth:`RawFormat.read_pandas`) and the Glue ETL script's Spark reader
(:meth:`RawFormat.read_spark`):

* what a format is (:class:`RawFormat`: ``arff`` | ``csv``, delimiter, header line, the
  spec's expected columns), and its Glue job arguments (``--source_format``,
  ``--delimiter``, ``--header``, ``--columns``);
* how column names are normalised (:func:`normalise`);
* the ARFF header (:func:`arff_header`: attribute names, where ``@data`` starts) and which
  lines are data (:meth:`RawFormat.is_data_line`: not blank; in ARFF, not a ``%`` comment);
* how the file's fields are named (:meth:`RawFormat.column_names`: the normalised header
  names; a headerless file named by the spec in order; otherwise ``field_1..n``, or the
  ETL's refusal) and the ETL's check of those names against the spec
  (:meth:`RawFormat.check_names`);
* the csv options both engines read with (:meth:`RawFormat.csv_options`).

It imports only the standard library at module level and nothing from ``gated_ml``: the
same file is shipped to AWS Glue with ``--extra-py-files`` and imported there as the
top-level module ``raw_formats``. pandas and pyspark are imported inside the readers.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FORMATS = ("arff", "csv")
TYPES = ("double", "integer", "string")
QUOTE = '"'
ARFF_HEADER_SCAN = 1000  # the Spark reader looks for ``@data`` in this many first lines


class RawFormatError(ValueError):
    """The raw file cannot be read as its format says; the message says why."""


def normalise(name: str) -> str:
    """A source column name as a spec column name: ``"Fixed Acidity"`` -> ``fixed_acidity``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().strip("'\"").lower()).strip("_")


def arff_header(lines: Sequence[str], *, require_data: bool = True) -> tuple[list[str], int]:
    """Attribute names declared before ``@data`` and the index of the first line after it.

    No ``@data`` line: :class:`RawFormatError`, or with ``require_data=False`` every
    declared attribute and ``len(lines)`` (no data lines).
    """
    names = []
    for i, line in enumerate(lines):
        text = line.strip()
        low = text.lower()
        if low.startswith("@attribute"):
            names.append(re.split(r"\s+", text, maxsplit=2)[1])
        elif low.startswith("@data"):
            return names, i + 1
    if require_data:
        raise RawFormatError("ARFF file has no @data section")
    return names, len(lines)


@dataclass(frozen=True)
class Column:
    """An expected column of the spec: its name and type (``double`` | ``integer`` | ``string``)."""

    name: str
    type: str


@dataclass(frozen=True)
class RawFormat:
    """How a raw file is laid out, and the columns the spec expects from it, in order."""

    format: str
    delimiter: str = ","
    header: bool = False
    columns: tuple[Column, ...] = ()

    def __post_init__(self):
        if self.format not in FORMATS:
            raise RawFormatError(f"unknown source format {self.format!r}: one of {list(FORMATS)}")
        if not self.delimiter:
            raise RawFormatError("the delimiter must not be empty")
        cols = tuple(c if isinstance(c, Column) else Column(c["name"], c["type"]) for c in self.columns)
        bad = [c.type for c in cols if c.type not in TYPES]
        if bad:
            raise RawFormatError(f"unknown column types {bad}: one of {list(TYPES)}")
        object.__setattr__(self, "columns", cols)

    # --- Glue job arguments -------------------------------------------------------
    @classmethod
    def from_job_arguments(cls, args: Mapping[str, str]) -> RawFormat:
        """From Glue job arguments: ``--source_format``, ``--delimiter`` (default ``,``),
        ``--header`` (``true`` | ``false``, default ``false``), ``--columns`` (JSON list of
        ``{"name", "type"}``)."""
        missing = [k for k in ("--source_format", "--columns") if k not in args]
        if missing:
            raise RawFormatError(f"missing job arguments {missing}")
        try:
            columns = json.loads(args["--columns"])
        except ValueError as e:
            raise RawFormatError(f"--columns is not JSON: {e}") from None
        return cls(
            format=args["--source_format"],
            delimiter=args.get("--delimiter", ","),
            header=args.get("--header", "false").lower() == "true",
            columns=tuple(Column(c["name"], c["type"]) for c in columns),
        )

    def job_arguments(self) -> dict[str, str]:
        """The Glue job arguments that describe this format (inverse of :meth:`from_job_arguments`)."""
        return {
            "--source_format": self.format,
            "--delimiter": self.delimiter,
            "--header": str(self.header).lower(),
            "--columns": json.dumps([{"name": c.name, "type": c.type} for c in self.columns]),
        }

    # --- the rules ----------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The spec's column names, in order."""
        return [c.name for c in self.columns]

    @property
    def has_header_line(self) -> bool:
        """True if the first data line names the columns (csv with a header; ARFF declares them instead)."""
        return self.format == "csv" and self.header

    def is_data_line(self, line: str) -> bool:
        """A line that holds a row: not blank and, in ARFF, not a ``%`` comment."""
        if not line.strip():
            return False
        return not (self.format == "arff" and line.lstrip().startswith("%"))

    def split_lines(self, text: str) -> tuple[list[str], list[str], list[str] | None]:
        """(header lines, data lines, the names the file declares or ``None``), line ends kept.

        The header is what every batch cut from this file must repeat: an ARFF file's lines up
        to ``@data``, a csv file's header line. Blank and comment lines are dropped from the data.
        """
        lines = text.splitlines(keepends=True)
        if self.format == "arff":
            declared, skip = arff_header(lines)
            head, rest = lines[:skip], lines[skip:]
        else:
            declared = None
            data = [i for i, line in enumerate(lines) if self.is_data_line(line)]
            cut = data[0] + 1 if self.has_header_line and data else 0
            head, rest = lines[:cut], lines[cut:]
            if head:  # the csv header line names the fields
                declared = next(csv.reader([head[-1].strip()], delimiter=self.delimiter, skipinitialspace=True))
        return head, [line for line in rest if self.is_data_line(line)], declared

    def column_names(self, declared: Sequence[str] | None, n_fields: int, *, strict: bool = False) -> list[str]:
        """Names for the ``n_fields`` fields of the data rows.

        ``declared`` is what the file names its fields (ARFF attributes, the csv header
        line) or None for a headerless csv. Declared names that line up with the fields are
        normalised; a headerless file with as many fields as the spec has columns is named by
        the spec, in order; anything else (a wrong delimiter, a missing field) is
        ``field_1..n``, or with ``strict`` a declared header that does not line up is a
        :class:`RawFormatError` (the ETL's refusal).
        """
        if declared is not None:
            if len(declared) == n_fields:
                return [normalise(str(n)) for n in declared]
            if strict:
                raise RawFormatError(  # only ARFF can: a csv header line sets the number of fields
                    f"the ARFF header declares {len(declared)} attributes {list(declared)} but data rows have {n_fields} fields (delimiter {self.delimiter!r})"
                )
        elif n_fields == len(self.columns):
            return self.names
        return [f"field_{i + 1}" for i in range(n_fields)]

    def check_names(self, names: Sequence[str], source_names: Sequence[str] | None = None) -> None:
        """Refuse column names (from :meth:`column_names`) that are not exactly the spec's columns.

        ``source_names`` are the names as the file gives them, shown for the extra columns.
        """
        wanted = self.names
        missing = [c for c in wanted if c not in names]
        extra = [s for s, n in zip(source_names if source_names is not None else names, names, strict=True) if n not in wanted]
        if missing or extra:
            raise RawFormatError(
                f"source columns {list(names)} do not match the spec: spec columns not in the source: {missing}; "
                f"source columns not in the spec: {extra} (check the spec's columns and the delimiter {self.delimiter!r})"
            )

    def csv_options(self, engine: str) -> dict:
        """Options of pandas' ``read_csv`` or Spark's ``DataFrameReader.csv`` for the data lines.

        Both split on the delimiter, honour ``"`` quotes, drop whitespace before a field and
        read every value as a string. Differences kept as they were: Spark also drops
        whitespace after a field, reads an empty field as null (pandas: ``""``; the ETL trims
        values and treats ``""`` as null either way) and escapes with ``\\`` inside quotes
        (pandas: a doubled ``""``); pandas refuses a row with more fields than the first one,
        Spark drops the extra fields.
        """
        header = self.has_header_line
        if engine == "pandas":
            return {
                "sep": self.delimiter,
                "quotechar": QUOTE,
                "skipinitialspace": True,
                "header": 0 if header else None,
                "dtype": str,
                "keep_default_na": False,
            }
        if engine == "spark":
            return {
                "sep": self.delimiter,
                "quote": QUOTE,
                "ignoreLeadingWhiteSpace": True,
                "ignoreTrailingWhiteSpace": True,
                "header": header,
                "inferSchema": False,
            }
        raise ValueError(f"unknown engine {engine!r}: pandas | spark")

    # --- the readers --------------------------------------------------------------
    def read_pandas(self, data: bytes | str):
        """The raw file as a pandas DataFrame of strings, fields named by :meth:`column_names`.

        For the landing gate: it never refuses a file; what does not line up is named
        ``field_1..n`` (the gate's schema check then says so). No data rows: an empty
        frame with the declared (or, headerless, the spec's) columns.
        """
        import io

        import pandas as pd

        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        lines = text.splitlines()
        declared = None
        if self.format == "arff":
            declared, start = arff_header(lines, require_data=False)
            lines = lines[start:]
        body = "\n".join(line for line in lines if self.is_data_line(line))
        if not body:
            if self.has_header_line:
                declared = []
            return pd.DataFrame(columns=self.column_names(declared, len(self.columns) if declared is None else len(declared)))
        frame = pd.read_csv(io.StringIO(body), **self.csv_options("pandas"))
        if self.has_header_line:
            declared = list(frame.columns)
        frame.columns = self.column_names(declared, frame.shape[1])
        return frame

    def read_spark(self, spark, uri: str):
        """-> (Spark DataFrame of string columns named by :meth:`column_names` (strict), the
        names as the file gives them). Spark reads the file; only the first
        ``ARFF_HEADER_SCAN`` lines come to the driver (to find an ARFF header).
        """
        from pyspark.errors import AnalysisException

        try:
            text = spark.read.text(uri)
        except AnalysisException as e:  # [PATH_NOT_FOUND]
            raise RawFormatError(f"cannot read the source file {uri}: {str(e).splitlines()[0]}") from None
        declared = None
        if self.format == "arff":
            declared, skip = arff_header([r.value for r in text.limit(ARFF_HEADER_SCAN).collect()])
            lines = text.rdd.zipWithIndex().filter(lambda t: t[1] >= skip).map(lambda t: t[0].value)
        else:
            lines = text.rdd.map(lambda r: r.value)
        frame = spark.read.csv(lines.filter(self.is_data_line), **self.csv_options("spark"))
        if self.has_header_line:
            declared = list(frame.columns)
        names = self.column_names(declared, len(frame.columns), strict=True)
        return frame.toDF(*names), list(declared) if declared is not None else names
