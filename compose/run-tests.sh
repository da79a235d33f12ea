#!/usr/bin/env bash
# Starts the local stack, runs unit and integration tests against it, and stops what it started.
set -uo pipefail
cd "$(dirname "$0")/.."
export MYSIMBDP_HOME="${MYSIMBDP_HOME:-$PWD/.mysimbdp}"

cleanup() {
    mysimbdp down >/dev/null 2>&1 || true
    mysimbdp stack down || true
}
trap cleanup EXIT

mysimbdp stack up || exit 1
# Unit tests first (tests/unit), then integration tests against the real services.
python3 -m pytest -q "$@"
