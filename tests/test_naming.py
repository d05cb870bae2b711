"""Job names: unique per logical date and try, within SageMaker's limits and pattern."""

import datetime as dt

import pytest

from gated_ml.naming import MAX_TUNING_LEN, NAME_PATTERN, job_name

D = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_readable_when_it_fits():
    assert job_name("vertebral-column", "train", D, 1) == "vertebral-column-train-20261101-1"


@pytest.mark.parametrize("stages, max_len", [(("train", "transform", "model", "epc"), 63), (("tune",), MAX_TUNING_LEN)])
@pytest.mark.parametrize("pipeline", ["vertebral-column", "a" * 80, "wine_quality red!", "x"])
def test_names_fit_limit_and_pattern(pipeline, stages, max_len):
    for stage in stages:
        for when in (D, D.replace(hour=6, minute=30)):
            name = job_name(pipeline, stage, when, 12, max_len)
            assert len(name) <= max_len and NAME_PATTERN.match(name), name


def test_unique_per_date_try_and_pipeline_even_when_truncated():
    long_a, long_b = "p" * 70 + "-a", "p" * 70 + "-b"
    names = {job_name(p, "tune", d, t, MAX_TUNING_LEN) for p in (long_a, long_b) for d in (D, D + dt.timedelta(days=1), D.replace(hour=1)) for t in (1, 2, 3)}
    assert len(names) == 2 * 3 * 3


def test_names_are_deterministic():
    assert job_name("a" * 70, "tune", D, 1, 32) == job_name("a" * 70, "tune", D, 1, 32)
