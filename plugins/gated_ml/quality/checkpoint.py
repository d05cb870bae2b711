"""Run a gate's expectations as a GX checkpoint over a DataFrame and explain the outcome.

One ephemeral GX context per process (GX's import and context start-up are paid once,
not per gate). The result is saved as GX's own validation-result JSON; a failed
critical expectation raises :class:`GateFailed` with a message naming the gate, the
check, the column, the observed figure and the threshold.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field

from gated_ml.errors import Fault

log = logging.getLogger(__name__)


@dataclass
class Finding:
    check: str
    expectation: str
    column: str | None
    success: bool
    severity: str
    observed: str
    threshold: str

    def line(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        return f"{self.check}: {where}: observed {self.observed}, threshold {self.threshold} ({self.expectation})"


@dataclass
class GateResult:
    gate: str
    success: bool
    findings: list[Finding]
    result_json: dict = field(repr=False)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.success and f.severity == "critical"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.success and f.severity != "critical"]

    def summary(self) -> str:
        state = "PASSED" if not self.failures else "FAILED"
        return f"gate {self.gate}: {state} ({len(self.findings)} checks, {len(self.failures)} failed, {len(self.warnings)} warnings)"

    def message(self) -> str:
        lines = [self.summary()] + [f"  FAIL {f.line()}" for f in self.failures] + [f"  WARN {f.line()}" for f in self.warnings]
        return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its INFO lines drown the task log
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _pct(x) -> str:
    return f"{x:.2f}%" if x is not None else "n/a"


def _explain(cfg: dict, res: dict) -> tuple[str, str]:
    """(observed, threshold) in words for one expectation result."""
    kw, typ = cfg["kwargs"], cfg["type"]
    if "unexpected_percent" in res:
        allowed = 100.0 * (1.0 - kw.get("mostly", 1.0))
        observed = f"{_pct(res['unexpected_percent'])} of {res.get('element_count')} rows unexpected"
        if typ == "expect_column_values_to_not_be_null":
            return f"{_pct(res['unexpected_percent'])} null ({res['unexpected_count']} of {res['element_count']} rows)", f"at most {allowed:.2f}% null"
        if typ == "expect_column_values_to_be_between":
            return (
                observed + f", e.g. {res.get('partial_unexpected_list', [])[:3]}",
                f"at most {allowed:.2f}% outside [{kw['min_value']:.4g}, {kw['max_value']:.4g}]",
            )
        if typ == "expect_column_values_to_be_in_set" and kw.get("mostly", 1.0) < 1.0:
            share = 100.0 - res["unexpected_percent"]
            scope = f" in rows where {kw['row_condition']}" if kw.get("row_condition") else ""
            values = repr(kw["value_set"][0]) if len(kw["value_set"]) == 1 else str(kw["value_set"])
            return f"{values} is {share:.2f}% of rows{scope}", f"at least {100 * kw['mostly']:.2f}%"
        if typ == "expect_compound_columns_to_be_unique":
            return f"{res['unexpected_count']} rows ({_pct(res['unexpected_percent'])}) repeat another row", f"at most {allowed:.2f}% repeated"
        if typ == "expect_column_values_to_match_regex":
            return observed + f", e.g. {res.get('partial_unexpected_list', [])[:3]}", "every value numeric"
        return observed, f"at most {allowed:.2f}% unexpected"
    observed = res.get("observed_value")
    if typ == "expect_table_columns_to_match_ordered_list":
        return f"columns {observed}", f"columns {kw['column_list']}"
    if typ == "expect_column_kl_divergence_to_be_less_than":
        return f"KL divergence {observed:.4f} from the baseline" if observed is not None else "no KL divergence", f"below {kw['threshold']}"
    if typ == "expect_column_values_to_be_in_type_list":
        return f"type {observed}", f"one of {kw['type_list']}"
    if "value_set" in kw:
        seen = f"unexpected values {res['partial_unexpected_list']}" if observed is None and "partial_unexpected_list" in res else f"values {observed}"
        return seen, f"values within {kw['value_set']}"
    if "value" in kw:
        return f"{observed}", f"exactly {kw['value']}"
    bounds = [f">= {kw['min_value']}" if kw.get("min_value") is not None else "", f"<= {kw['max_value']}" if kw.get("max_value") is not None else ""]
    return f"{observed}", " and ".join(b for b in bounds if b) or "n/a"


def _docs_site(ctx, name: str, docs_dir) -> list[str]:
    """A Data Docs site in ``docs_dir`` for this gate's results (none if ``docs_dir`` is None)."""
    if docs_dir is None:
        return []
    if name in ctx.get_site_names():
        ctx.delete_data_docs_site(name)
    ctx.add_data_docs_site(
        site_name=name,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return [name]


def run_checkpoint(gate: str, expectations: list[dict], frame, docs_dir=None) -> GateResult:
    """Validate ``frame`` against ``expectations`` (see :mod:`gated_ml.quality.suites`).

    With ``docs_dir``, the checkpoint also builds GX Data Docs there (``index.html``).
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    ctx = _context()
    for store in (ctx.checkpoints, ctx.validation_definitions, ctx.suites):  # a gate run again in this process
        if gate in {item.name for item in store.all()}:
            store.delete(gate)
    ds = ctx.data_sources.all().get("frames") or ctx.data_sources.add_pandas("frames")
    asset = ds.get_asset(gate) if gate in ds.get_asset_names() else ds.add_dataframe_asset(gate)
    known = {b.name: b for b in asset.batch_definitions}
    batch = known.get("whole") or asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=gate)
    first_of: dict[int, int] = {}  # GX keeps one of identical expectations: map each to the kept one
    seen: dict[str, int] = {}
    for i, e in enumerate(expectations):
        key = json.dumps([e["type"], e["kwargs"]], sort_keys=True, default=str)
        first_of[i] = seen.setdefault(key, i)
        if first_of[i] != i:
            continue
        meta = {**e["meta"], "index": i}  # results come back in GX's order, not ours
        # add_expectation, not add_expectation_configuration: the latter upserts by column, so a
        # second expectation of the same type on the same column would silently replace the first
        config = ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=meta, severity=e.get("severity", "critical"))
        suite.add_expectation(config.to_domain_obj())
    suite = ctx.suites.add(suite)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=gate, data=batch, suite=suite))
    sites = _docs_site(ctx, gate, docs_dir)
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=sites)] if sites else []
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(name=gate, validation_definitions=[vd], actions=actions, result_format={"result_format": "SUMMARY"}))
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    validation = next(iter(result.run_results.values()))
    findings = []
    by_index = {r.expectation_config.meta["index"]: r for r in validation.results}
    if sorted(by_index) != sorted(set(first_of.values())):
        raise Fault(f"gate {gate}: GX returned results for expectations {sorted(by_index)} of {len(expectations)}")
    for i, cfg in enumerate(expectations):
        res = by_index[first_of[i]]
        if res.exception_info.get("raised_exception"):
            observed, threshold = f"error: {res.exception_info.get('exception_message')}", "expectation must evaluate"
            success = False
        elif not res.success and cfg["kwargs"].get("column") and cfg["kwargs"]["column"] not in frame.columns:
            observed, threshold, success = "column missing from the batch", "column present", False
        else:
            observed, threshold = _explain(cfg, res.result)
            success = bool(res.success)
        findings.append(Finding(cfg["meta"]["check"], cfg["type"], cfg["kwargs"].get("column"), success, cfg.get("severity", "critical"), observed, threshold))
    failed = any(not f.success and f.severity == "critical" for f in findings)
    return GateResult(gate=gate, success=not failed, findings=findings, result_json=json.loads(json.dumps(validation.to_json_dict(), default=str)))
