#!/usr/bin/env bash
# Local Spark (the Glue ETL on the `local` target) needs a Java 17 runtime.
set -euo pipefail
if command -v java >/dev/null 2>&1; then exit 0; fi
echo "Java not found: installing openjdk-17-jre-headless (Debian package) for local Spark" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless
