#!/usr/bin/env bash
# Starts the local stack, runs the tests against it in stages, and stops what it started.
#   1. unit tests (pure core, no services) and integration tests against the real services;
#   2. chaos: tests that kill platform processes or stop services for a while (outages, kills);
#   3. cluster: the single-node stack stopped, a 3-node cluster (`stack up --nodes 3`, on its own
#      MYSIMBDP_HOME and 127.0.0.1-3) started, node-failure tests against it, the cluster's RSS shown;
#   4. secure cluster: that cluster stopped, a secure one (`stack up --secure --nodes 3`, TLS between
#      the nodes too) on another home and the same addresses, the secure cluster tests against it.
# Each stage prints its duration and its ten slowest tests. Arguments are passed to pytest in every stage.
set -uo pipefail
cd "$(dirname "$0")/.."
# The tools of the virtual environment `make install` made (compose/install.sh), if it is there.
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
export MYSIMBDP_HOME="${MYSIMBDP_HOME:-$PWD/.mysimbdp}"

# The stages run a plain stack: the secure tests start a secure one of their own on another address
# (SECURE_STACK_HOST). A home made secure (`make demo` on a new home is) is not turned plain under
# its data: its platform and stack are stopped, and the tests run on a home beside it.
if [ -e "$MYSIMBDP_HOME/secure" ]; then
    echo "== $MYSIMBDP_HOME is secure: stopping its platform and stack; the tests use $MYSIMBDP_HOME-plain"
    MYSIMBDP_SECURE=1 mysimbdp down >/dev/null 2>&1 || true
    MYSIMBDP_SECURE=1 mysimbdp stack down || true
    jars="$MYSIMBDP_HOME/jars"
    export MYSIMBDP_HOME="$MYSIMBDP_HOME-plain"
    mkdir -p "$MYSIMBDP_HOME"
    [ -d "$jars" ] && [ ! -e "$MYSIMBDP_HOME/jars" ] && ln -s "$jars" "$MYSIMBDP_HOME/jars"
fi
export MYSIMBDP_SECURE=0

CLUSTER_HOME="$MYSIMBDP_HOME-cluster"
SECURE_CLUSTER_HOME="$MYSIMBDP_HOME-cluster-secure"
cleanup() {
    mysimbdp down >/dev/null 2>&1 || true
    mysimbdp stack down || true
    [ -d "$CLUSTER_HOME" ] && MYSIMBDP_HOME="$CLUSTER_HOME" mysimbdp stack down || true
    [ -d "$SECURE_CLUSTER_HOME" ] && MYSIMBDP_HOME="$SECURE_CLUSTER_HOME" MYSIMBDP_SECURE=1 mysimbdp stack down || true
}
trap cleanup EXIT

stage() {
    local name=$1; shift
    local started=$SECONDS code=0
    echo "== stage: $name"
    # The ten slowest tests of each stage are listed, to keep the whole run well inside CI's limit.
    python3 -m pytest -q --durations=10 "$@" || code=$?
    # pytest exits 5 when a stage selects no test; that is not a failure of the stage.
    [ "$code" = 5 ] && code=0
    echo "== stage: $name finished in $((SECONDS - started)) s (exit $code)"
    return "$code"
}

mysimbdp stack up || exit 1
failed=0
stage "unit + integration" -m "not chaos and not cluster" "$@" || failed=1
# The chaos stage stops and restarts services; make sure they are all back before it.
mysimbdp stack up >/dev/null || exit 1
stage "chaos" -m "chaos and not cluster" "$@" || failed=1

# The cluster takes the ports of the single node: stop it, and run the cluster on its own home
# (jars shared) so the single-node data stays as it was. The plain cluster runs the cluster tests;
# then, once it is stopped, a secure one (`--secure`: TLS between the nodes too) runs the secure ones.
mysimbdp stack down >/dev/null || true
cluster() {
    local name=$1 home=$2 marks=$3; shift 3
    mkdir -p "$home"
    [ -e "$home/jars" ] || ln -s "$MYSIMBDP_HOME/jars" "$home/jars"
    local started=$SECONDS
    (
        export MYSIMBDP_HOME="$home" MYSIMBDP_SECURE="$SECURE"
        # host:port of the first endpoint, then the same port on the next two addresses (as the nodes run).
        three() {
            local first="${1%%,*}" port=$2
            [ "${first#*:}" != "$first" ] && port="${first##*:}"
            local host="${first%%:*}"
            local base="${host%.*}" last="${host##*.}"
            echo "$host:$port,$base.$((last + 1)):$port,$base.$((last + 2)):$port"
        }
        MYSIMBDP_CASSANDRA_HOSTS=$(three "${MYSIMBDP_CASSANDRA_HOSTS:-127.0.0.1:9042}" 9042)
        MYSIMBDP_KAFKA_BOOTSTRAP=$(three "${MYSIMBDP_KAFKA_BOOTSTRAP:-127.0.0.1:9092}" 9092)
        export MYSIMBDP_CASSANDRA_HOSTS MYSIMBDP_KAFKA_BOOTSTRAP
        mysimbdp stack up "${UP_FLAGS[@]}" --nodes 3 >/dev/null || exit 1
        echo "== $name: 3 nodes up in $((SECONDS - started)) s; RSS per node (MiB):"
        for pidfile in "$MYSIMBDP_HOME"/run/*.pid; do
            echo "   $(basename "$pidfile" .pid) $(($(ps -o rss= -p "$(cat "$pidfile")" || echo 0) / 1024))"
        done
        stage "$name" -m "$marks" "$@"
    )
}
UP_FLAGS=() SECURE=0
cluster "cluster" "$CLUSTER_HOME" "cluster and not secure" "$@" || failed=1
MYSIMBDP_HOME="$CLUSTER_HOME" mysimbdp stack down >/dev/null || true
UP_FLAGS=(--secure) SECURE=1
cluster "secure cluster" "$SECURE_CLUSTER_HOME" "cluster and secure" "$@" || failed=1
exit "$failed"
