"""The handler contract of the SageMaker XGBoost framework container, for a user entry point (script mode).

With ``SAGEMAKER_PROGRAM`` set, the single-model XGBoost container serves the entry point
through the ``sagemaker_containers`` worker (``sagemaker_xgboost_container/serving.py``:
``main`` builds ``_user_module_transformer`` and ``worker.Worker``). What this module
follows, from the public sources of aws/sagemaker-xgboost-container and
aws/sagemaker-containers (``src/sagemaker_containers/_transformer.py``, ``_worker.py``,
``_functions.py``, ``_content_types.py``, ``_env.py``):

- ``model_fn(model_dir)`` is called once at start; ``transform_fn(model, content,
  content_type, accept)`` cannot be combined with ``input_fn``/``predict_fn``/``output_fn``
  (``UserError``: the container does not start);
- the request content type is the ``ContentType`` header, else ``Content-Type``, else
  ``application/json``; the body reaches ``input_fn`` as text for ``application/json`` and
  ``text/csv`` (``UTF8_TYPES``), as bytes otherwise;
- ``Accept`` missing or ``*/*`` becomes ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  (default ``application/json``);
- every user handler is wrapped by ``error_wrapper(fn, ClientError)``, so any exception it
  raises (an unsupported content type included) is unhandled by the worker and Flask
  answers ``500 Internal Server Error`` with its stock page; the 415/406 answers of
  ``_default_transform_fn`` only come from the container's default handlers, which a user
  module that defines all three never reaches;
- ``output_fn`` returning ``(body, mimetype)`` becomes a Flask ``Response``, whose
  ``Content-Type`` carries ``; charset=utf-8`` for ``text/*`` types (werkzeug's rule).

The container's own default handlers (DMatrix decoders) are not emulated: an entry point
must define ``input_fn``, ``predict_fn`` and ``output_fn`` (or ``transform_fn``), else the
local container refuses to start and says so.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

from werkzeug.exceptions import InternalServerError
from werkzeug.utils import get_content_type

JSON, CSV, ANY = "application/json", "text/csv", "*/*"
UTF8_TYPES = (JSON, CSV)
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
HANDLERS = ("input_fn", "predict_fn", "output_fn")


class UserError(Exception):
    """The entry point cannot be served (the container's ``sagemaker_algorithm_toolkit`` ``UserError``)."""


@dataclass(frozen=True)
class Answer:
    """What the container answers ``/invocations``: status, body and ``Content-Type``."""

    status: int
    body: bytes
    content_type: str


def check_entry_point(module) -> None:
    """Refuse an entry point the container would not serve (or whose defaults are not emulated here)."""
    name = getattr(module, "__file__", "the entry point")
    if not callable(getattr(module, "model_fn", None)):
        raise UserError(f"{name}: define model_fn(model_dir); the XGBoost container provides none (Please provide a model_fn implementation)")
    own = [h for h in HANDLERS if callable(getattr(module, h, None))]
    if callable(getattr(module, "transform_fn", None)):
        if own:
            raise UserError(f"{name}: Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn (it defines {own})")
        return
    missing = [h for h in HANDLERS if h not in own]
    if missing:
        raise UserError(f"{name}: define {missing}; the local container does not emulate the XGBoost container's default handlers")


def request_content_type(headers) -> str:
    """``_worker.Request.content_type``: ``ContentType``, else ``Content-Type``, else JSON."""
    return headers.get("ContentType") or headers.get("Content-Type") or JSON


def request_accept(headers) -> str:
    """``_worker.Request.accept``: ``Accept``, or the serving default when missing or ``*/*``."""
    accept = headers.get("Accept")
    if not accept or accept == ANY:
        return os.environ.get(DEFAULT_ACCEPT_ENV, JSON)
    return accept


def response_content_type(mimetype: str) -> str:
    """The ``Content-Type`` Flask sends for ``Response(mimetype=...)`` (werkzeug adds the charset)."""
    return get_content_type(mimetype, "utf-8")


def internal_server_error() -> Answer:
    """Flask's answer to an exception a view does not handle: werkzeug's stock 500 page."""
    return Answer(500, InternalServerError().get_body().encode(), response_content_type("text/html"))


def invoke(module, model, body: bytes, content_type: str, accept: str) -> Answer:
    """``Transformer.transform`` for a user module: the handlers in order, any exception a 500."""
    content = body.decode("utf-8") if content_type in UTF8_TYPES else body
    try:
        if callable(getattr(module, "transform_fn", None)):
            result = module.transform_fn(model, content, content_type, accept)
        else:
            result = module.output_fn(module.predict_fn(module.input_fn(content, content_type), model), accept)
    except Exception:  # noqa: BLE001 (error_wrapper turns every exception into ClientError, which the worker does not handle)
        traceback.print_exc()  # the container's log: CloudWatch on AWS, the container log here
        return internal_server_error()
    if isinstance(result, tuple):
        data, mimetype = result
    else:  # a plain return value: Flask's default mimetype for a view's str
        data, mimetype = result, "text/html"
    return Answer(200, data.encode("utf-8") if isinstance(data, str) else bytes(data), response_content_type(mimetype))
