"""Alerts: one message per final failure of a gate, the arrival sensor, the model gate or the deployment.

The notifiers are Airflow notifiers (:class:`airflow.sdk.BaseNotifier`) attached as
``on_failure_callback``: Airflow calls them in the task's own process once the task has
failed for good (a retried :class:`~gated_ml.errors.Fault` alerts once, when its last try
fails; retries call ``on_retry_callback``, which stays empty). Which one is configured
(:mod:`gated_ml.settings`):

- ``file`` (default): appends one JSON line per alert to ``[gated_ml] alert_file`` and logs it;
- ``smtp``: the SMTP provider's own :class:`~airflow.providers.smtp.notifications.smtp.SmtpNotifier`
  through the Airflow connection ``[gated_ml] smtp_conn_id`` (host, port, login, sender) to
  ``[gated_ml] alert_to``.

The factory wires them with :func:`on_failure` (``alerts.on_failure(spec, "gate_failed")``),
which refuses an unknown kind or notifier at parse time. An alert names the pipeline, the
kind, the task and the ds first; then the error's message (a gate's names the column, the
figure and the threshold) and the task's log URL. A task wired for one kind that fails for
another reason (a gate whose storage broke, retries exhausted) is reported as ``task_failed``
with that error, never as a refusal it was not.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from airflow.sdk import BaseNotifier

from gated_ml import settings

# kind -> (what it means, the error that makes a failure of that kind, by "module.Class"; None: any error)
KINDS = {
    "gate_failed": ("a gate refused the batch", "gated_ml.errors.GateFailed"),
    "arrival_missed": ("the batch did not arrive in time", "airflow.sdk.exceptions.AirflowSensorTimeout"),
    "model_rejected": ("the model gate rejected the model", "gated_ml.errors.ModelGateFailed"),
    "deployment_failed": ("registering or deploying the model failed", None),
}
OTHER = "task_failed"  # a wired task that failed for another reason than its kind's


@dataclass(frozen=True)
class Alert:
    """One failure, as every notifier reports it."""

    pipeline: str
    kind: str
    dag_id: str
    run_id: str
    ds: str
    task_id: str
    try_number: int
    error: str
    message: str
    log_url: str

    @property
    def subject(self) -> str:
        return f"[gated-ml] {self.pipeline}: {self.kind} at {self.task_id} for ds {self.ds}"

    def text(self) -> str:
        return f"{self.subject}\n\n{self.error}: {self.message}\n\nrun {self.run_id}, try {self.try_number}\nlog: {self.log_url}\n"

    def html(self) -> str:
        e = html.escape
        return (
            f"<p><b>{e(self.subject)}</b></p><pre>{e(self.error)}: {e(self.message)}</pre>"
            f'<p>run {e(self.run_id)}, try {self.try_number}<br>log: <a href="{e(self.log_url, quote=True)}">{e(self.log_url)}</a></p>'
        )


def _chain(error: BaseException | None):
    """The error and the ones it was raised from or while handling (``raise ... from None`` keeps the latter)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _origin(error: BaseException | None) -> BaseException | None:
    """The error behind Airflow's own (``airflow_outcome`` raises ``AirflowFailException`` from None over a Refusal)."""
    return next((link for link in _chain(error) if not type(link).__module__.startswith("airflow.")), error)


def _kind_of(kind: str, error: BaseException | None) -> tuple[str, BaseException | None]:
    """``kind`` and the error that makes it (the first in the chain of its class), or ``task_failed`` and the error behind the failure."""
    wanted = KINDS[kind][1]
    if wanted is None:
        return kind, _origin(error)
    for link in _chain(error):
        if any(f"{cls.__module__}.{cls.__name__}" == wanted for cls in type(link).__mro__):
            return kind, link
    return OTHER, _origin(error)


def alert_from(context, pipeline: str, kind: str) -> Alert:
    """The :class:`Alert` for a task failure, from the callback's Airflow context (``ti``, ``ds``, ``exception``)."""
    ti, error = context["ti"], context.get("exception")
    kind, cause = _kind_of(kind, error)
    return Alert(
        pipeline=pipeline,
        kind=kind,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        ds=context.get("ds", ""),
        task_id=ti.task_id,
        try_number=ti.try_number,
        error=type(cause).__name__ if cause is not None else "unknown error",
        message=str(error) if error is not None else "the task failed without an exception (see its log)",
        log_url=ti.log_url,
    )


class AlertNotifier(BaseNotifier):
    """Builds the :class:`Alert` of a failed task, logs it, and hands it to :meth:`deliver`."""

    def __init__(self, pipeline: str, kind: str):
        super().__init__()
        self.pipeline, self.kind = pipeline, kind

    def notify(self, context) -> None:
        alert = alert_from(context, self.pipeline, self.kind)
        self.log.error("ALERT %s", alert.text())
        self.deliver(alert, context)

    def deliver(self, alert: Alert, context) -> None:
        raise NotImplementedError


class FileNotifier(AlertNotifier):
    """Appends one JSON line per alert to ``path`` (one ``write`` in append mode: lines of parallel tasks never interleave)."""

    def __init__(self, pipeline: str, kind: str, path: str):
        super().__init__(pipeline, kind)
        self.path = path

    def deliver(self, alert: Alert, context) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(asdict(alert), ensure_ascii=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write, whatever the line's length (a buffered file may split a long one)
        finally:
            os.close(fd)


class EmailNotifier(AlertNotifier):
    """Sends the alert with the SMTP provider's ``SmtpNotifier`` through the Airflow connection ``smtp_conn_id``.

    A fresh ``SmtpNotifier`` per alert, its ``notify`` called directly: the subject and body are
    ours, already final (an error message is never rendered as a Jinja template), and no state
    is shared between the alerts of tasks run in one process.
    """

    def __init__(self, pipeline: str, kind: str, to: list[str], smtp_conn_id: str):
        super().__init__(pipeline, kind)
        self.to, self.smtp_conn_id = to, smtp_conn_id

    def deliver(self, alert: Alert, context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(to=self.to, subject=alert.subject, html_content=alert.html(), smtp_conn_id=self.smtp_conn_id).notify(context)


def notifier(pipeline: str, kind: str) -> AlertNotifier:
    """The configured notifier for ``kind`` failures of ``pipeline``; a bad kind or setting is refused here, at parse time."""
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}; use one of {tuple(KINDS)}")
    if settings.alert_notifier() == "smtp":
        return EmailNotifier(pipeline, kind, settings.alert_to(), settings.smtp_conn_id())
    return FileNotifier(pipeline, kind, settings.alert_file())


def on_failure(spec, kind: str) -> dict:
    """Task (or task-group ``default_args``) arguments that alert when the task finally fails: ``{"on_failure_callback": [...]}``."""
    return {"on_failure_callback": [notifier(spec.name, kind)]}
