"""Waiting for a run's batch: deferrable sensors that fail naming the key that stayed empty.

`aws` uses the provider's ``S3KeySensor`` (:class:`gated_ml.targets.aws_operators.S3BatchSensor`);
`local` uses :class:`LocalKeySensor`, the same
sensor logic over the lake's local mapping, deferring to :class:`LocalKeyTrigger` in the
triggerer. Both wait up to the spec's ``arrival.timeout_minutes``; on time-out the task fails
without retry (waiting again would not make the batch arrive) with the key in the message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent


class NamesTheMissingBatch:
    """On time-out, fail (no retry) saying which key stayed empty and for how long it was awaited."""

    def _missing(self) -> AirflowFailException:
        scoring = "/scoring/ds=" in self.batch_uri
        setting, replay = ("scoring.arrival.timeout_minutes", "make replay ZONE=scoring") if scoring else ("arrival.timeout_minutes", "make replay")
        return AirflowFailException(
            f"no batch arrived at {self.batch_uri} within {self.timeout / 60:g} minutes ({setting}): "
            f"the upstream system has not delivered it; land it (or `{replay}`) and clear this task"
        )

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            raise self._missing() from None

    def resume_execution(self, next_method, next_kwargs, context):
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout:
            raise self._missing() from None


class LocalKeyTrigger(BaseTrigger):
    """Fires once the file exists; polls every ``poke_seconds`` (the sensor's time-out cancels it)."""

    def __init__(self, path: str, poke_seconds: float):
        super().__init__()
        self.path, self.poke_seconds = path, poke_seconds

    def serialize(self):
        return ("gated_ml.targets.arrival.LocalKeyTrigger", {"path": self.path, "poke_seconds": self.poke_seconds})

    async def run(self):
        while not Path(self.path).is_file():
            await asyncio.sleep(self.poke_seconds)
        yield TriggerEvent({"status": "arrived", "path": self.path})


class LocalKeySensor(NamesTheMissingBatch, BaseSensorOperator):
    """Waits for ``batch_uri`` (an ``s3://`` URI of the lake) to exist locally; deferrable by default."""

    template_fields = ("batch_uri",)
    ui_color = "#e8eef7"

    def __init__(self, *, batch_uri: str, deferrable: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.batch_uri, self.deferrable = batch_uri, deferrable

    def _path(self) -> Path:
        from gated_ml.lake import local_path

        return local_path(self.batch_uri)

    def poke(self, context) -> bool:
        self.log.info("waiting for %s (%s)", self.batch_uri, self._path())
        return self._path().is_file()

    def execute(self, context):
        if not self.deferrable or self.poke(context):
            return super().execute(context)
        self.defer(trigger=LocalKeyTrigger(str(self._path()), self.poke_interval), method_name="execute_complete", timeout=dt.timedelta(seconds=self.timeout))

    def execute_complete(self, context, event):
        self.log.info("batch arrived: %s", event["path"])
