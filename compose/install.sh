#!/usr/bin/env bash
# Installs what mysimbdp needs on a Debian machine: the Python package with its test and benchmark
# extras, and Redis. Kafka and Cassandra jars come from Maven Central at `mysimbdp stack up`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing redis-server (Debian package)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
for tool in java mvn; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is required (OpenJDK 17 and Maven)" >&2; exit 1; }
done
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
