"""A stage's AWS call as data: which verb, how its request is built and how its answer is read.

A :class:`Step` is what the stage modules (:mod:`gated_ml.stages`) hand to a target
(:mod:`gated_ml.targets`). The stage owns the pure parts: ``request`` builds the validated
AWS request from the spec, the run and upstream results; ``result`` reads the
Describe-shaped answer into the few fields downstream tasks need. The target owns the
execution: the `local` target calls its method named ``verb`` with the request; the `aws`
target builds the provider operator for that verb. Neither side knows the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One AWS verb of one stage.

    - ``verb``: the :class:`~gated_ml.targets.base.Target` verb (``train``, ``transform``, ...).
    - ``request(spec, env, run, **inputs)``: the request, or ``None`` when there is nothing
      to do for this run (the task then returns ``None``; on `aws` the operator is skipped).
    - ``result(spec, env, run, request, describe, **inputs)``: the slim result for XCom.
      ``describe`` is the verb's Describe answer, or ``None`` for verbs whose result follows
      from the request alone (a model's name, a transform's output keys).
    - ``check(spec, env, run, client, **inputs)``: for ``deploy_endpoint``, the smoke test a
      new endpoint must pass (through a stock ``sagemaker-runtime`` client) before it serves.
    - ``optional``: the request may be ``None`` and downstream still runs, with a ``None``
      result (the champion's transform when no other model serves). A step that raises
      :class:`~gated_ml.errors.Skip` instead skips everything downstream of it.
    """

    verb: str
    request: Callable[..., dict | None]
    result: Callable[..., dict | None]
    check: Callable[..., object] | None = None
    optional: bool = False
