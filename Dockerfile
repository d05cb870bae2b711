# Airflow image for a team deployment (docker-compose.yaml): the pinned project
# dependencies plus a Java runtime for the Glue script on local Spark.
FROM apache/airflow:3.3.0-python3.11
USER root
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY requirements.lock /requirements.lock
RUN pip install --no-cache-dir -r /requirements.lock
