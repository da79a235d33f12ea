#!/usr/bin/env bash
# The main job, end to end: local stack, tenants, platform, both tenants' producers, a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tools of the virtual environment `make install` made (compose/install.sh), if it is there.
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
export MYSIMBDP_HOME="${MYSIMBDP_HOME:-$PWD/.mysimbdp}"
DATA="${MYSIMBDP_SAMPLES:-$PWD/../shared/data/reddit}"
[ -d "$DATA" ] || { echo "error: no sample data in $DATA (set MYSIMBDP_SAMPLES)" >&2; exit 1; }

echo "== 1. local stack and tenants"
# A new home is secure (TLS, a login for every client, per-tenant rights); a home that already holds
# a plain stack stays plain. `stack up --plain` (or MYSIMBDP_SECURE=0) asks for a plain one.
mysimbdp stack up
mysimbdp tenants apply tenants/tenants.json

echo "== 2. platform processes"
mysimbdp up

echo "== 3. batch producers (tenants' client apps)"
python3 -m producers.batch --tenant tenant1 "$DATA"/1000rows*.json
python3 -m producers.batch --tenant tenant2 "$DATA"/1000rows*.csv "$DATA"/10000rows.csv

# One file a tenant did not pay for: tenant1 takes JSON only, so this CSV is refused with a receipt.
cp "$DATA/1000rows.csv" "$MYSIMBDP_HOME/staging/.tenant1-export.csv.part"
mv "$MYSIMBDP_HOME/staging/.tenant1-export.csv.part" "$MYSIMBDP_HOME/staging/tenant1-export.csv"

echo "== 4. stream producers (tenants' client apps)"
python3 -m producers.stream --tenant tenant1 "$DATA"/1000rows*.json
python3 -m producers.stream --tenant tenant2 "$DATA"/1000rows*.csv

# What a careless client sends: a CSV with a bad time and a row without its id, and three messages
# that are not JSON objects or lack a key column. Each is refused with its reason; the good row lands.
# The client sends as tenant2 itself: on a secure stack over TLS with tenant2's own login (the
# password file `mysimbdp tenants credentials tenant2` names), which may write only tenant2.ingest.
printf 'created_utc,subreddit,id,author,body\n1430458939,demo,ok1,alice,fine\nyesterday,demo,bad1,bob,late\n1430458939,demo,,carol,no id\n' \
    > "$MYSIMBDP_HOME/staging/.tenant2-careless.csv.part"
mv "$MYSIMBDP_HOME/staging/.tenant2-careless.csv.part" "$MYSIMBDP_HOME/staging/tenant2-careless.csv"
python3 - <<'PY'
import json
from kafka import KafkaProducer
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import tls

settings = Settings.from_env()
producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all",
                         **tls.kafka_options(settings, "tenant:tenant2"))
for value in (b'{"id": "cut short", "body": ', b"[1, 2]", json.dumps({"id": "x1", "author": "a", "body": "b"}).encode()):
    producer.send("tenant2.ingest", value)
producer.flush()
PY

echo "== 5. summary"
mysimbdp summary --wait 600
for t in tenant1 tenant2; do mysimbdp status --tenant "$t"; done

echo "== 6. reports (batch and stream together, with plots)"
# Every message is written once the summary is done; the stream workers publish their last metrics
# window within two windows (MYSIMBDP_REPORT_EVERY seconds each) of their last batch.
sleep "$(awk -v s="${MYSIMBDP_REPORT_EVERY:-5}" 'BEGIN { print 2 * s }')"
for t in tenant1 tenant2; do mysimbdp report --tenant "$t" --html "$MYSIMBDP_HOME/report-$t.html"; done
mysimbdp report --all --html "$MYSIMBDP_HOME/report-all.html" >/dev/null
echo
echo "Where to look:"
for t in tenant1 tenant2; do echo "  report of $t:   $MYSIMBDP_HOME/report-$t.html"; done
echo "  tenants side by side: $MYSIMBDP_HOME/report-all.html"
echo "  (again at any time: mysimbdp report --tenant tenant2 --since 1h --html FILE, or --json)"
read -r metrics_url flower_url < <(python3 -c 'from mysimbdp_tasks.core.settings import Settings
s = Settings.from_env(); print(s.metrics_url or "off", s.flower_url)')
python3 -c 'from mysimbdp_tasks.core.settings import Settings
s = Settings.from_env(); print("  this stack is", s.mode)
if s.secure: print("  what a tenant client logs in with: mysimbdp tenants credentials tenant2")'
echo "  Prometheus metrics of every platform process: $metrics_url"
echo "  Flower (queues, workers, tasks): run \`mysimbdp flower\` (or start the platform with"
echo "    \`mysimbdp up --flower\`), then open $flower_url"
echo
echo "The platform keeps running: drop more files into $MYSIMBDP_HOME/staging/."
echo "Stop it with: mysimbdp down && mysimbdp stack down"
