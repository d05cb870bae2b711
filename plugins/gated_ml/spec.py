"""Pipeline specs: one YAML file per dataset under ``include/pipelines/``.

A spec is validated when it is loaded (at DAG parse time): an invalid spec raises
:class:`SpecError` naming the file, the field and what is allowed, so the DAG shows up
as an import error in the Airflow UI instead of failing half-way through a run.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gated_ml import metric_names
from gated_ml.errors import SpecError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = PROJECT_ROOT / "include" / "pipelines"

_NAME = r"^[a-z][a-z0-9_]{1,39}$"
_COLUMN = r"^[a-z_][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    path: str = Field(description="raw file, relative to the project root")
    format: Literal["arff", "csv"]
    delimiter: str = ","
    header: bool = False


class Column(_Strict):
    name: Annotated[str, Field(pattern=_COLUMN)]
    type: Literal["double", "integer", "string"]
    categories: tuple[str, ...] | None = Field(default=None, description="ordered categories of an ordinal string column")


class Target(_Strict):
    column: str
    classes: tuple[str, ...] | None = None
    positive_class: str | None = None


class Split(_Strict):
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 42

    @model_validator(mode="after")
    def _sums_to_one(self) -> Split:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9 or min(self.train, self.validation, self.test) <= 0:
            raise ValueError(f"train + validation + test must be positive and sum to 1, got {total:g}")
        return self


CHECKS = (
    "schema",
    "row_count",
    "parseable",
    "duplicates",
    "nulls",
    "outliers",
    "class_balance",
    "drift",
    "split_sizes",
    "stratification",
    "leakage",
    "completeness",
    "range",
)
DEFAULT_SEVERITY = {"drift": "warn"}  # every other check stops the pipeline unless the spec says warn


class Drift(_Strict):
    bins: int = Field(10, ge=2, le=100, description="quantile bins of the baseline histogram")
    max_kl_divergence: float = Field(0.1, gt=0, description="KL divergence of a feature from its baseline")


class Gates(_Strict):
    max_null_fraction: float = Field(0.0, ge=0, le=1)
    null_tolerance: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict, description="per-column override")
    max_outlier_fraction: float = Field(0.05, ge=0, le=1)
    iqr_multiplier: float = Field(1.5, gt=0)
    min_class_share: float = Field(0.1, ge=0, le=0.5)
    max_duplicate_fraction: float = Field(0.05, ge=0, le=1)
    split_share_tolerance: float = Field(0.05, ge=0, le=1)
    stratification_sigmas: float = Field(
        3.0, ge=0, le=10, description="a class share in a split may also stray this many binomial standard errors (rows are split by hash)"
    )
    drift: Drift = Drift()
    severity: dict[Literal[CHECKS], Literal["fail", "warn"]] = Field(default_factory=dict)
    baseline_ds: dt.date | None = Field(None, description="the accepted batch whose statistics are the baseline")

    def severity_of(self, check: str) -> str:
        return self.severity.get(check, DEFAULT_SEVERITY.get(check, "fail"))


class Training(_Strict):
    instance_type: str = "ml.m5.large"
    max_runtime_seconds: int = Field(3600, gt=0)
    hyperparameters: dict[str, int | float | str] = Field(default_factory=dict)


class IntegerRange(_Strict):
    type: Literal["integer"]
    min: int
    max: int
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"


class ContinuousRange(_Strict):
    type: Literal["continuous"]
    min: float
    max: float
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"


class CategoricalRange(_Strict):
    type: Literal["categorical"]
    values: tuple[str, ...]


ParameterRange = Annotated[IntegerRange | ContinuousRange | CategoricalRange, Field(discriminator="type")]


class Tuning(_Strict):
    strategy: Literal["Bayesian", "Random"] = "Bayesian"
    objective_metric: str
    objective_type: Literal["Maximize", "Minimize"]
    max_jobs: int = Field(10, ge=1, le=500)
    max_parallel: int = Field(2, ge=1, le=100)
    ranges: dict[str, ParameterRange]

    @field_validator("ranges")
    @classmethod
    def _bounds(cls, ranges: dict) -> dict:
        for name, r in ranges.items():
            if r.type != "categorical":
                if r.min >= r.max:
                    raise ValueError(f"range {name!r}: min {r.min} must be below max {r.max}")
                if r.scaling in ("Logarithmic", "ReverseLogarithmic") and r.min <= 0:
                    raise ValueError(f"range {name!r}: {r.scaling} scaling needs min > 0")
        return ranges


class Evaluation(_Strict):
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="evaluation metric -> the minimum it must reach (the maximum for errors: log_loss, mse, rmse, mae)"
    )
    threshold_rule: Literal["fixed", "max_f1", "min_sensitivity"] = Field("fixed", description="binary decision threshold, chosen on the validation split")
    decision_threshold: float = Field(0.5, gt=0, lt=1, description="the threshold of the fixed rule")
    min_sensitivity: float = Field(0.9, gt=0, le=1, description="the target of the min_sensitivity rule")
    champion_metric: str | None = Field(None, description="default: roc_auc (binary), macro_f1 (multiclass), rmse (regression)")
    champion_margin: float = Field(0.02, ge=0, description="how much worse than the serving model a new one may be")
    manual_approval: bool = Field(False, description="register passing models as PendingManualApproval instead of deploying")


class Endpoint(_Strict):
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(1, ge=1)
    smoke_test_rows: int = Field(10, ge=1)


class Vpc(_Strict):
    subnets: tuple[str, ...] = Field(min_length=1)
    security_group_ids: tuple[str, ...] = Field(min_length=1)


class Security(_Strict):
    """Settings of the AWS jobs (ignored by the local target, which runs on loopback only)."""

    kms_key_id: str | None = Field(None, description="KMS key for job outputs and volumes (and S3 writes via [gated_ml] kms_key_id)")
    network_isolation: bool = Field(False, description="EnableNetworkIsolation on training and models")
    encrypt_inter_container_traffic: bool = True
    vpc: Vpc | None = None


class Arrival(_Strict):
    """How long a run waits for its batch in ``landing/ds=<ds>/`` before it fails naming the prefix."""

    timeout_minutes: float = Field(60, gt=0, le=7 * 24 * 60)
    poke_seconds: float = Field(60, gt=0, le=3600)


class Window(_Strict):
    """The curated batches a run trains on: every batch up to its date, or the last ``batches`` of them."""

    batches: Literal["all"] | Annotated[int, Field(ge=1)] = "all"


class Replay(_Strict):
    """How ``make replay`` cuts the bundled source file into dated batches (for demos and tests).

    Batch dates are ``first_ds``, then every ``every_days`` days, ``batches`` of them. With a
    ``date_column`` a row goes to the first batch date on or after its own date (rows after the
    last date are not replayed); without one, the rows are shuffled with ``split.seed`` and
    the first batch takes ``initial_share`` of them (the history), the others an equal part each.
    """

    first_ds: dt.date
    batches: int = Field(4, ge=1, le=520)
    every_days: int = Field(7, ge=1, le=366)
    initial_share: float = Field(0.7, gt=0, le=1)
    date_column: str | None = None

    @model_validator(mode="after")
    def _one_batch_takes_all(self) -> Replay:
        if self.batches == 1 and self.initial_share != 1:
            raise ValueError("replay: one batch takes every row; set initial_share: 1")
        return self


class ScoringReplay(_Strict):
    """How ``make replay ZONE=scoring`` lands scoring batches (for demos and tests).

    Batch dates are ``first_ds`` (default: the training replay's first date), then every
    ``every_days`` days, ``batches`` of them. Each batch is ``rows`` rows of the bundled
    source file drawn with a seed of ``split.seed`` and the date (the same rows for a date on
    every machine), in the source's format, the target column dropped.
    """

    first_ds: dt.date | None = None
    batches: int = Field(4, ge=1, le=520)
    every_days: int = Field(7, ge=1, le=366)
    rows: int = Field(40, ge=1, le=100_000)


class Scoring(_Strict):
    """The ``<pipeline>_scoring`` DAG: new rows in ``scoring/ds=<ds>/`` scored by the approved model."""

    schedule: str | None = Field("@weekly", description="cron or preset; null: only when a new model is approved")
    max_drift_kl: float = Field(0.5, gt=0, description="a batch with any numeric feature's KL divergence from the training baseline above it is refused")
    arrival: Arrival | None = Field(None, description="how long a scheduled run waits for its batch; default: the spec's arrival")
    replay: ScoringReplay = ScoringReplay()

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str | None) -> str | None:
        from croniter import croniter

        if schedule is not None and not croniter.is_valid(schedule):
            raise ValueError(f"{schedule!r} is not a cron expression or preset (e.g. '0 6 * * *', '@daily'); null scores only when a model is approved")
        return schedule


class PipelineSpec(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    description: str
    owner: str = "ml-platform"
    tags: tuple[str, ...] = ()
    schedule: str | None = "@weekly"
    start_date: dt.date
    catchup: bool = Field(False, description="create a run for every missed interval since start_date")
    max_active_runs: int = Field(1, ge=1, le=16, description="runs of this DAG at once (a backfill sets its own)")
    retries: int = Field(1, ge=0, le=10)
    retry_delay_seconds: int = Field(60, ge=0, le=3600, description="how long a failed task waits before its retry (Airflow's retry_delay)")
    problem_type: Literal["binary_classification", "multiclass_classification", "regression"]
    source: Source
    columns: tuple[Column, ...]
    target: Target
    split: Split = Split()
    gates: Gates = Gates()
    training: Training = Training()
    tuning: Tuning
    evaluation: Evaluation = Evaluation()
    endpoint: Endpoint = Endpoint()
    security: Security = Security()
    arrival: Arrival = Arrival()
    window: Window = Window()
    replay: Replay | None = None
    scoring: Scoring = Scoring()

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSpec:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"columns: duplicate names in {names}")
        if self.target.column not in names:
            raise ValueError(f"target.column {self.target.column!r} is not one of the columns {names}")
        if self.problem_type != "regression":
            classes = self.target.classes
            if not classes or len(classes) < 2:
                raise ValueError("target.classes must list at least two labels for a classification problem")
            if self.problem_type == "binary_classification":
                if len(classes) != 2:
                    raise ValueError(f"target.classes must have exactly 2 labels for binary_classification, got {list(classes)}")
                if self.target.positive_class not in classes:
                    raise ValueError(f"target.positive_class {self.target.positive_class!r} must be one of {list(classes)}")
        unknown = sorted(set(self.gates.null_tolerance) - set(names))
        if unknown:
            raise ValueError(f"gates.null_tolerance names columns {unknown} that are not among the columns {names}")
        for name in list(self.training.hyperparameters) + list(self.tuning.ranges):
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"hyperparameter name {name!r} must be lower_snake_case")
        self._check_metric_names()
        if self.replay and self.replay.date_column and self.replay.date_column not in names:
            raise ValueError(f"replay.date_column {self.replay.date_column!r} is not one of the columns {names}")
        return self

    def _check_metric_names(self) -> None:
        """Every metric the spec names is one its problem type produces (see :mod:`gated_ml.metric_names`)."""
        t = self.tuning
        metric_names.check_training_metric(self.problem_type, t.objective_metric, "tuning.objective_metric")
        wanted = "Minimize" if metric_names.lower_is_better(t.objective_metric) else "Maximize"
        if t.objective_type != wanted:
            raise ValueError(f"tuning.objective_type: {t.objective_metric!r} is better when {'lower' if wanted == 'Minimize' else 'higher'}; use {wanted}")
        for name in self.evaluation.thresholds:
            metric_names.check_evaluation_metric(self.problem_type, name, f"evaluation.thresholds.{name}")
        if self.evaluation.champion_metric:
            metric_names.check_evaluation_metric(self.problem_type, self.evaluation.champion_metric, "evaluation.champion_metric")

    # --- derived views -------------------------------------------------------
    @property
    def dag_id(self) -> str:
        return self.name

    @property
    def slug(self) -> str:
        """The pipeline name as AWS resource names spell it (hyphens, no underscores)."""
        return self.name.replace("_", "-")

    @property
    def scoring_dag_id(self) -> str:
        return f"{self.name}_scoring"

    @property
    def scoring_arrival(self) -> Arrival:
        """How long a scoring run waits for its batch: ``scoring.arrival``, else the spec's ``arrival``."""
        return self.scoring.arrival or self.arrival

    @property
    def feature_columns(self) -> list[Column]:
        return [c for c in self.columns if c.name != self.target.column]

    @property
    def numeric_features(self) -> list[str]:
        return [c.name for c in self.feature_columns if c.type != "string"]

    @property
    def categorical_features(self) -> list[str]:
        return [c.name for c in self.feature_columns if c.type == "string"]

    @property
    def is_classification(self) -> bool:
        return self.problem_type != "regression"

    @property
    def champion_metric(self) -> str:
        return self.evaluation.champion_metric or metric_names.DEFAULT_CHAMPION_METRIC[self.problem_type]

    @property
    def label_classes(self) -> list[str]:
        """Labels in encoding order; for binary problems the positive class is last (encoded 1)."""
        classes = list(self.target.classes or ())
        if self.problem_type == "binary_classification":
            classes.remove(self.target.positive_class)
            classes.append(self.target.positive_class)
        return classes


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"invalid pipeline spec {path}:"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "literal_error":
            msg = f"got {e.get('input')!r}; {msg[0].lower()}{msg[1:]}"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        lines.append(f"  {field}: {msg}")
    return "\n".join(lines)


def load_spec(path: str | Path) -> PipelineSpec:
    """Load and validate one spec; raise :class:`SpecError` with a readable message."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"pipeline spec {path} does not exist") from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid pipeline spec {path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise SpecError(f"invalid pipeline spec {path}: the top level must be a mapping of fields")
    try:
        spec = PipelineSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_format_errors(path, e)) from None
    if spec.name != path.stem:
        raise SpecError(f"invalid pipeline spec {path}: name: {spec.name!r} must equal the file name {path.stem!r}")
    return spec


def spec_dir() -> Path:
    """``[gated_ml] spec_dir`` if set, else ``include/pipelines/``."""
    from gated_ml import settings

    return Path(settings.get("spec_dir", str(SPEC_DIR)))


def spec_paths() -> list[Path]:
    return sorted(spec_dir().glob("*.yaml"))


def load_pipeline(name: str) -> PipelineSpec:
    return load_spec(spec_dir() / f"{name}.yaml")
