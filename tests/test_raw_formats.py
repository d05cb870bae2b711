"""The raw-format rules (``gated_ml.raw_formats``), the agreement of its two readers, and its shipping to Glue.

The landing gate reads a raw batch with :meth:`RawFormat.read_pandas`, the Glue ETL with
:meth:`RawFormat.read_spark`: the agreement test runs the same files through both and
expects the same column names and the same values (an empty field is null in Spark and
``""`` in pandas; both mean missing downstream). One SparkSession serves the module.
"""

import subprocess
import sys

import pytest

from conftest import ROOT
from gated_ml import job_requests as jr
from gated_ml import storage
from gated_ml.errors import JobFailed, Refusal
from gated_ml.local.glue import run_job
from gated_ml.raw_formats import Column, RawFormat, RawFormatError, arff_header, normalise
from gated_ml.spec import load_pipeline
from gated_ml.stages.code import package_code

ABC = tuple(Column(n, "string") for n in ("a", "b", "c"))
ARFF = """% a comment before the header\r
@relation sample\r
\r
@attribute 'pelvic-incidence' numeric\r
% a comment between attributes\r
@attribute Tilt REAL\r
@ATTRIBUTE class {Abnormal, Normal}\r
\r
@DATA\r
% a comment in the data\r
63.03,22.55,Abnormal\r
\r
  39.06,?,Normal\r
"""
ARFF_FORMAT = RawFormat("arff", columns=(Column("pelvic_incidence", "double"), Column("tilt", "double"), Column("class", "string")))


# --- the rules ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, expected",
    [
        ("pelvic_tilt", "pelvic_tilt"),
        ("Fixed Acidity", "fixed_acidity"),
        ('"pH"', "ph"),
        ("'class'", "class"),
        ("  degree-spondylolisthesis ", "degree_spondylolisthesis"),
        ("__a__b__", "a_b"),
        ("Ratio (%)", "ratio"),
        ("2nd value", "2nd_value"),
    ],
)
def test_normalise(name, expected):
    assert normalise(name) == expected


def test_arff_header_skips_comments_and_blank_lines():
    lines = ARFF.splitlines()
    names, start = arff_header(lines)
    assert names == ["'pelvic-incidence'", "Tilt", "class"]
    assert lines[start] == "% a comment in the data"  # the first line after @data (case-insensitive)


def test_arff_header_without_data_section():
    lines = ["@relation r", "@attribute a numeric", "% no data"]
    with pytest.raises(RawFormatError, match="ARFF file has no @data section"):
        arff_header(lines)
    assert arff_header(lines, require_data=False) == (["a"], 3)


def test_which_lines_are_data():
    arff, csv = RawFormat("arff"), RawFormat("csv")
    for line in ("", "   ", "\t"):
        assert not arff.is_data_line(line) and not csv.is_data_line(line)
    assert not arff.is_data_line("% comment") and not arff.is_data_line("  % comment")
    assert csv.is_data_line("%1,2,3")  # only ARFF has comments
    assert arff.is_data_line("1,2,3") and csv.is_data_line(" 1,2,3")


def test_column_names_rule():
    fmt = RawFormat("csv", columns=ABC)
    assert fmt.column_names(["A", " 'B' ", "C c"], 3) == ["a", "b", "c_c"]  # declared names, normalised
    assert fmt.column_names(None, 3) == ["a", "b", "c"]  # headerless: the spec names the fields in order
    assert fmt.column_names(None, 1) == ["field_1"]  # a wrong delimiter
    assert fmt.column_names(None, 4) == ["field_1", "field_2", "field_3", "field_4"]
    assert fmt.column_names(["a", "b", "c"], 2) == ["field_1", "field_2"]  # declared names that do not line up
    with pytest.raises(RawFormatError) as err:
        RawFormat("arff", ";", columns=ABC).column_names(["a", "b", "c"], 1, strict=True)
    assert str(err.value) == "the ARFF header declares 3 attributes ['a', 'b', 'c'] but data rows have 1 fields (delimiter ';')"


def test_check_names_refuses_what_is_not_the_spec():
    fmt = RawFormat("csv", columns=ABC)
    fmt.check_names(["c", "a", "b"])  # order does not matter: the ETL selects the spec's order
    with pytest.raises(RawFormatError) as err:
        fmt.check_names(["a", "b", "bone_density"], ["A", "B", "Bone Density"])
    assert str(err.value) == (
        "source columns ['a', 'b', 'bone_density'] do not match the spec: spec columns not in the source: ['c']; "
        "source columns not in the spec: ['Bone Density'] (check the spec's columns and the delimiter ',')"
    )


def test_format_and_job_arguments(spec, env, run):
    args = jr.glue_job_run(spec, env, run)["Arguments"]
    fmt = RawFormat.from_job_arguments(args)
    assert fmt == RawFormat("arff", ",", False, tuple(Column(c.name, c.type) for c in spec.columns))
    assert fmt.job_arguments() == {k: args[k] for k in ("--source_format", "--delimiter", "--header", "--columns")}
    assert RawFormat.from_job_arguments(fmt.job_arguments()) == fmt
    with pytest.raises(RawFormatError, match="unknown source format 'xlsx'"):
        RawFormat.from_job_arguments({**args, "--source_format": "xlsx"})
    with pytest.raises(RawFormatError, match=r"missing job arguments \['--columns'\]"):
        RawFormat.from_job_arguments({"--source_format": "csv"})


def test_module_imports_only_the_standard_library():
    """Glue imports it as the top-level module ``raw_formats``, without gated_ml, pandas or pyspark."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import raw_formats; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('gated_ml', 'pandas', 'pyspark', 'numpy')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-I", "-c", code, str(ROOT / "plugins" / "gated_ml")], check=True)


# --- the pandas reader (landing gate) -----------------------------------------------
def test_pandas_reads_arff():
    frame = ARFF_FORMAT.read_pandas(ARFF.encode())
    assert list(frame.columns) == ["pelvic_incidence", "tilt", "class"]
    assert frame.values.tolist() == [["63.03", "22.55", "Abnormal"], ["39.06", "?", "Normal"]]


def test_pandas_reads_headered_and_headerless_csv():
    headered = RawFormat("csv", ";", True, ABC).read_pandas(b'"A";"B";"C"\n1;2;3\n')
    assert list(headered.columns) == ["a", "b", "c"] and headered.values.tolist() == [["1", "2", "3"]]
    headerless = RawFormat("csv", ",", False, ABC).read_pandas(b"1, 2,\n\n4,5,6\n")
    assert list(headerless.columns) == ["a", "b", "c"] and headerless.values.tolist() == [["1", "2", ""], ["4", "5", "6"]]


@pytest.mark.parametrize(
    "fmt, raw",
    [
        (RawFormat("csv", ",", False, ABC), b"1;2;3\n4;5;6\n"),
        (RawFormat("arff", ",", False, ABC), b"@attribute a real\n@attribute b real\n@attribute c real\n@data\n1;2;3\n"),
    ],
)
def test_pandas_names_fields_that_do_not_line_up(fmt, raw):
    frame = fmt.read_pandas(raw)
    assert list(frame.columns) == ["field_1"] and frame.values.tolist()[0] == ["1;2;3"]


@pytest.mark.parametrize(
    "fmt, raw, columns",
    [
        (RawFormat("arff", columns=ABC), b"", []),
        (RawFormat("arff", columns=ABC), b"@attribute A real\n@attribute B real\n", ["a", "b"]),  # no @data
        (RawFormat("arff", columns=ABC), b"@attribute A real\n@data\n% nothing\n\n", ["a"]),
        (RawFormat("csv", columns=ABC), b"\n \n", ["a", "b", "c"]),
        (RawFormat("csv", header=True, columns=ABC), b"", []),
        (RawFormat("csv", header=True, columns=ABC), b"a,b,x\n", ["a", "b", "x"]),
    ],
)
def test_pandas_without_data_rows(fmt, raw, columns):
    frame = fmt.read_pandas(raw)
    assert len(frame) == 0 and list(frame.columns) == columns


# --- the two readers agree ----------------------------------------------------------
@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    mp = pytest.MonkeyPatch()
    mp.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.executorEnv.PYTHONPATH", str(ROOT / "plugins"))  # the workers unpickle gated_ml.raw_formats
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    yield session
    from pyspark import SparkContext

    session.stop()
    SparkContext._gateway.shutdown()  # the JVM too, now rather than at interpreter exit
    SparkContext._gateway = SparkContext._jvm = None
    mp.undo()


def _spec_format(name):
    spec = load_pipeline(name)
    src = spec.source
    return RawFormat(src.format, src.delimiter, src.header, tuple(Column(c.name, c.type) for c in spec.columns)), (ROOT / src.path).read_bytes()


AGREEMENT = [
    ("vertebral_column file (arff)", *_spec_format("vertebral_column")),
    ("wine_quality file (csv, header, ';')", *_spec_format("wine_quality")),
    ("car_evaluation file (csv, no header)", *_spec_format("car_evaluation")),
    ("arff: comments, blank lines, CRLF, quoted names", ARFF_FORMAT, ARFF.encode()),
    ("csv header with quoted names", RawFormat("csv", ";", True, ABC), b'"A";" B";"C c"\n1;2;3\n'),
    ("csv: quotes, leading spaces, empty and ? values", RawFormat("csv", ",", False, ABC), b'"x, y", 2,3\n "q",,?\n\n'),
    ("csv: wrong delimiter", RawFormat("csv", ",", False, ABC), b"1;2;3\n4;5;6\n"),
    ("csv: one field too many", RawFormat("csv", ",", False, ABC), b"1,2,3,4\n5,6,7,8\n"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case, fmt, raw", AGREEMENT, ids=[c[0] for c in AGREEMENT])
def test_pandas_and_spark_read_the_same(spark, tmp_path, case, fmt, raw):
    path = tmp_path / "raw"
    path.write_bytes(raw)
    expected = fmt.read_pandas(raw)
    frame, _ = fmt.read_spark(spark, str(path))
    assert frame.columns == list(expected.columns)
    got = [["" if v is None else v for v in row] for row in frame.collect()]
    assert got == expected.values.tolist()


@pytest.mark.slow
def test_spark_refuses_an_arff_header_that_does_not_line_up(spark, tmp_path):
    path = tmp_path / "raw.arff"
    path.write_text(ARFF.replace("63.03,22.55,", "63.03;22.55;").replace("39.06,?,", "39.06;?;"))
    with pytest.raises(
        RawFormatError, match=r"the ARFF header declares 3 attributes \[\"'pelvic-incidence'\", 'Tilt', 'class'\] but data rows have 1 fields \(delimiter ','\)"
    ):
        ARFF_FORMAT.read_spark(spark, str(path))
    with pytest.raises(RawFormatError, match="cannot read the source file"):
        ARFF_FORMAT.read_spark(spark, str(tmp_path / "missing.arff"))


# --- shipping to Glue ---------------------------------------------------------------
def test_package_code_ships_raw_formats_beside_the_glue_script(lake, spec, env):
    code = package_code(spec, env)
    assert code["raw_formats_uri"] == code["glue_script_uri"].rsplit("/", 1)[0] + "/raw_formats.py"
    assert storage.read_bytes(code["raw_formats_uri"]) == (ROOT / "plugins/gated_ml/raw_formats.py").read_bytes()
    create = jr.glue_create_job(spec, env, code["glue_script_uri"], extra_py_files=[code["raw_formats_uri"]])
    assert create["DefaultArguments"]["--extra-py-files"] == code["raw_formats_uri"]


def _job(spec, env, run, script: str, extra_py_files):
    loc = jr.locations(spec, env)
    script_uri = loc.code("test") + "job.py"
    storage.write(script_uri, script)
    return jr.glue_create_job(spec, env, script_uri, extra_py_files=extra_py_files), jr.glue_job_run(spec, env, run)


@pytest.mark.slow
def test_local_glue_puts_extra_py_files_on_the_path(lake, spec, env, run):
    lib = jr.locations(spec, env).code("lib") + "helper.py"  # not beside the script
    storage.write(lib, "ANSWER = 42\n")
    script = "import helper\nprint('helper says', helper.ANSWER)\n"
    record = run_job(*_job(spec, env, run, script, [lib]))
    assert "helper says 42" in record["Log"]


def test_local_glue_refuses_a_missing_extra_py_file(lake, spec, env, run, tmp_path):
    marker = tmp_path / "ran"
    missing = jr.locations(spec, env).code("nowhere") + "raw_formats.py"
    script = f"open({str(marker)!r}, 'w').close()\n"
    with pytest.raises(JobFailed) as err:
        run_job(*_job(spec, env, run, script, [missing]))
    assert f"--extra-py-files {missing} does not exist" in str(err.value)
    assert isinstance(err.value, Refusal)
    assert not marker.exists()  # refused before the script (and Spark) started
