# Airflow image for a team deployment (docker-compose.yaml): exactly the project's pinned
# dependencies and nothing else: requirements.lock synced into a virtualenv with uv, as
# `make install` does (every package is a wheel except pyspark, pure Python, and sagemaker-training,
# whose sdist builds one small C extension: hence gcc and libc6-dev), on the Python the lock is
# compiled for (3.11), plus a Java runtime for the Glue script on local Spark.
# tests/test_scheduler_harness.py checks this file against the lock and the test harness.
FROM python:3.11-slim-bookworm
ARG UV_VERSION=0.13.9
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless procps gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir uv==${UV_VERSION} \
 && useradd --uid 50000 --gid 0 --create-home airflow
COPY requirements.lock /requirements.lock
RUN uv venv --python /usr/local/bin/python3.11 /opt/venv \
 && uv pip sync --no-cache --python /opt/venv/bin/python /requirements.lock
ENV PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    PYTHONPATH=/opt/airflow/plugins
RUN mkdir -p /opt/airflow/lake /opt/airflow/logs && chown -R airflow:0 /opt/airflow
USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["airflow"]
