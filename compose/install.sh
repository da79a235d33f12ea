#!/usr/bin/env bash
# Installs what mysimbdp needs on a Debian machine: a virtual environment .venv with the package, its
# test and benchmark tools at the versions of compose/constraints.txt, Redis and Prometheus. Kafka and
# Cassandra jars come from Maven Central at `mysimbdp stack up`.
#
# Debian 12's Python refuses `pip install` outside a virtual environment (PEP 668,
# externally-managed-environment), so nothing is installed into the system interpreter.
#   PYTHON   the interpreter the environment is made from (default python3, e.g. /usr/bin/python3)
#   VENV     where the environment goes (default .venv in the repository)
#   EXTRAS   the package's extras to install (default dev: tests, benchmarks, lint); empty for none.
#            With the test tools (dev or test) come Debian's chromium and chromium-driver too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$PWD/.venv}"
EXTRAS="${EXTRAS-dev}"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
apt_install() {
    echo "installing $* (Debian packages)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

command -v redis-server >/dev/null 2>&1 || apt_install redis-server
# Optional at run time (`mysimbdp stack up --with-prometheus`), installed so its test runs.
command -v prometheus >/dev/null 2>&1 || apt_install --no-install-recommends prometheus
# The tests open Flower in a headless browser: Debian's chromium and its matching driver.
case "$EXTRAS" in
    *dev*|*test*)
        { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || apt_install chromium chromium-driver ;;
esac
for tool in java mvn; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is required (OpenJDK 17 and Maven)" >&2; exit 1; }
done

# A venv without a working pip (made before python3-venv was there) is made again.
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    # Debian ships venv's pip bootstrap (ensurepip) in python3-venv, not with python3 itself.
    "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 || apt_install python3-venv
    echo "creating the virtual environment $VENV from $("$PYTHON" -c 'import sys; print(sys.executable)')"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c compose/constraints.txt \
    -e ".${EXTRAS:+[$EXTRAS]}"
echo "installed: $("$VENV/bin/mysimbdp" --version) in $VENV (activate it with: . $VENV/bin/activate)"
