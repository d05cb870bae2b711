"""Check a request dict against botocore's own service model, offline, before it runs.

botocore's :class:`~botocore.validate.ParamValidator` checks required members, types,
unknown keys, minimum lengths and numeric ranges. It does not check maximum lengths or
the ``pattern`` of string shapes (AWS checks those server side), so those are checked
here from the same model, which is what makes a job name of 64 characters or with an
underscore fail on this machine exactly as it would fail on AWS.
"""

from __future__ import annotations

import functools
import re

from gated_ml.errors import RequestValidationError


@functools.cache
def _service(service: str):
    import botocore.session  # here, not at the top: request builders are imported at DAG parse time

    return botocore.session.get_session().get_service_model(service)


def _walk(value, shape, path: str, errors: list[str]) -> None:
    if value is None:
        return
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member in shape.members.items():
            if key in value:
                _walk(value[key], member, f"{path}.{key}", errors)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            errors.append(f"{path}: {len(value)} items, at most {shape.metadata['max']} allowed")
        for i, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{i}]", errors)
    elif shape.type_name == "map" and isinstance(value, dict):
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            errors.append(f"{path}: {len(value)} entries, at most {shape.metadata['max']} allowed")
        for k, v in value.items():
            _walk(k, shape.key, f"{path} key {k!r}", errors)
            _walk(v, shape.value, f"{path}[{k!r}]", errors)
    elif shape.type_name == "string" and isinstance(value, str):
        limit = shape.metadata.get("max")
        if limit is not None and len(value) > limit:
            errors.append(f"{path}: {len(value)} characters, at most {limit} allowed")
        pattern = shape.metadata.get("pattern")
        if pattern and not _compiled(pattern).fullmatch(value):
            errors.append(f"{path}: {value[:80]!r} does not match the pattern {pattern}")
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            errors.append(f"{path}: {value!r} is not one of {enum}")


@functools.cache
def _compiled(pattern: str):
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # a Java-only construct: accept anything rather than reject valid input
        return re.compile(".*", re.DOTALL)


def validate_request(service: str, operation: str, params: dict) -> dict:
    """Return ``params`` unchanged if AWS would accept them; raise :class:`RequestValidationError` otherwise."""
    op = _service(service).operation_model(operation)
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, op.input_shape)
    errors = [report.generate_report()] if report.has_errors() else []
    extra: list[str] = []
    _walk(params, op.input_shape, operation, extra)
    errors += extra
    if errors:
        raise RequestValidationError(f"{service}.{operation} request rejected by the service model:\n" + "\n".join(errors))
    return params
