#!/usr/bin/env bash
# Starts the local stack, runs the tests against it in stages, and stops what it started.
#   1. unit tests (pure core, no services) and integration tests against the real services;
#   2. chaos: tests that kill platform processes or stop services for a while (outages, kills).
# Each stage prints its duration. Arguments are passed to pytest in every stage.
set -uo pipefail
cd "$(dirname "$0")/.."
# The tools of the virtual environment `make install` made (compose/install.sh), if it is there.
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
export MYSIMBDP_HOME="${MYSIMBDP_HOME:-$PWD/.mysimbdp}"

cleanup() {
    mysimbdp down >/dev/null 2>&1 || true
    mysimbdp stack down || true
}
trap cleanup EXIT

stage() {
    local name=$1; shift
    local started=$SECONDS code=0
    echo "== stage: $name"
    python3 -m pytest -q "$@" || code=$?
    # pytest exits 5 when a stage selects no test; that is not a failure of the stage.
    [ "$code" = 5 ] && code=0
    echo "== stage: $name finished in $((SECONDS - started)) s (exit $code)"
    return "$code"
}

mysimbdp stack up || exit 1
failed=0
stage "unit + integration" -m "not chaos" "$@" || failed=1
# The chaos stage stops and restarts services; make sure they are all back before it.
mysimbdp stack up >/dev/null || exit 1
stage "chaos" -m chaos "$@" || failed=1
exit "$failed"
