"""Fault injection: make the next call of an action fail, a given number of times, then answer normally again.

Armed through the emulator's control API (``POST /_emulator/faults``, see :mod:`.app`) or
in-process with :meth:`Faults.arm`. Two kinds:

- ``reject``: the API call itself is answered with an AWS error (``code``, HTTP ``status``);
  nothing is created. The default, ``ResourceLimitExceeded`` (400), is an error botocore
  does not retry, so the task sees it, as it would see a real quota refusal.
- ``fail_job`` (``CreateTrainingJob``, ``CreateTransformJob``, ``CreateHyperParameterTuningJob``,
  ``StartJobRun``, ``CreateEndpoint``, ``UpdateEndpoint``): the call succeeds, and the job (or
  endpoint) it started ends ``Failed`` with ``message`` as its ``FailureReason``, without running.

Each armed fault fires exactly ``times`` times; :meth:`Faults.report` lists what is still armed
and what fired.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

from gated_ml.errors import RequestValidationError

KINDS = ("reject", "fail_job")
JOB_ACTIONS = ("CreateTrainingJob", "CreateTransformJob", "CreateHyperParameterTuningJob", "StartJobRun", "CreateEndpoint", "UpdateEndpoint")
DEFAULT_CODES = {"InvokeEndpoint": ("ModelError", 424)}  # the runtime's answer when the model container fails


@dataclass
class Fault:
    action: str
    kind: str = "reject"
    code: str = "ResourceLimitExceeded"
    status: int = 400
    message: str = "injected fault"
    times: int = 1
    fired: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RequestValidationError(f"fault kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "fail_job" and self.action not in JOB_ACTIONS:
            raise RequestValidationError(f"fault kind fail_job needs an action that starts a job, one of {JOB_ACTIONS}; got {self.action!r}")
        if self.times < 1:
            raise RequestValidationError(f"fault times must be at least 1, got {self.times}")


@dataclass
class Faults:
    """The armed faults of one emulator process (thread-safe: the server answers requests in threads)."""

    armed: list[Fault] = field(default_factory=list)
    fired: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arm(self, action: str, **kwargs) -> Fault:
        if action in DEFAULT_CODES and "code" not in kwargs:
            code, status = DEFAULT_CODES[action]
            kwargs = {"code": code, "status": status, **kwargs}
        fault = Fault(action=action, **kwargs)
        with self._lock:
            self.armed.append(fault)
        return fault

    def take(self, action: str, kind: str) -> Fault | None:
        """The fault armed for this call, if any, counted as fired (the first armed first)."""
        with self._lock:
            fault = next((f for f in self.armed if f.action == action and f.kind == kind), None)
            if fault is None:
                return None
            fault.fired += 1
            if fault.fired >= fault.times:
                self.armed.remove(fault)
            self.fired.append(Fault(**{**asdict(fault), "times": 1, "fired": 1}))
            return fault

    def clear(self) -> None:
        with self._lock:
            self.armed.clear()
            self.fired.clear()

    def report(self) -> dict:
        with self._lock:
            return {"armed": [asdict(f) for f in self.armed], "fired": [asdict(f) for f in self.fired]}
