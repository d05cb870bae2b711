#!/usr/bin/env bash
# The Debian packages the Python install needs, installed only when missing:
# - a Java 17 runtime for local Spark (the Glue ETL on the `local` target);
# - a C compiler for sagemaker-training, published as an sdist with a small C extension
#   (the SageMaker training toolkit, the contract of local training jobs).
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
