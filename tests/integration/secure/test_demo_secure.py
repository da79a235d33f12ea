"""README's first command, the demo (compose/demo.sh), end to end on the secure stack.

The demo runs on a new home of its own that joins the running secure stack (its CA and secrets
linked, as a deployment mounts them) with MYSIMBDP_SECURE unset: `stack up` finds services that
speak TLS and makes the home secure, and every step after it (tenants apply, the platform, both
tenants' producers, the careless client, summary, reports) logs in over TLS. It lands what the demo
lands on a plain stack, refuses what it refuses there, and no password shows in its output or logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kit import DATA, ROOT

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import tls

pytestmark = [pytest.mark.integration, pytest.mark.secure, pytest.mark.slow, pytest.mark.timeout(1800)]

DEMO_TIMEOUT_S = 1500
# What the demo lands on the plain stack: tenant1's 1000-row JSON files less the rows its quality
# rule refuses, tenant2's CSV files plus the careless client's one good row of each kind.
ROWS = {"tenant1": 39, "tenant2": 13_001}
# Dead letters: tenant1's messages its quality rule refuses; the careless client's three messages.
DEAD_LETTERS = {"tenant1": Counter({"quality:popular": 2961}),
                "tenant2": Counter({"bad_json": 1, "not_an_object": 1, "missing_key_column": 1})}


def _demo_env(stack: Settings, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "MYSIMBDP_SECURE"}
    host = stack.redis_host
    return env | {
        "MYSIMBDP_HOME": str(home), "MYSIMBDP_SAMPLES": str(DATA),
        "MYSIMBDP_REDIS_URL": f"redis://{host}:{stack.redis_port}/0",
        "MYSIMBDP_KAFKA_BOOTSTRAP": stack.kafka_bootstrap_str,
        "MYSIMBDP_CASSANDRA_HOSTS": ",".join(f"{h}:{p}" for h, p in stack.cassandra_hosts),
        # The platform's metrics on the stack's own address, beside any other stack on this machine.
        "MYSIMBDP_METRICS_ADDR": f"{host}:9464",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def _summary(env: dict[str, str]) -> dict[str, Any]:
    out = _cli(env, "summary", "--json")
    assert out.returncode == 0, out.stderr
    return {row["tenant"]: row for row in json.loads(out.stdout)}


def _texts(home: Path) -> dict[str, bytes]:
    """Every file the demo wrote under its home (logs, receipts, reports), not the linked stores."""
    found = {}
    for path in home.rglob("*"):
        parts = set(path.relative_to(home).parts)
        if path.is_file() and not path.is_symlink() and not {"secrets", "tls", "jars"} & parts:
            found[str(path.relative_to(home))] = path.read_bytes()
    return found


def test_the_demo_runs_end_to_end_on_the_secure_stack(secure_stack: Settings, tmp_path: Path) -> None:
    if not DATA.is_dir():
        pytest.skip(f"no sample data in {DATA} (set MYSIMBDP_SAMPLES)")
    home = tmp_path / "home"
    home.mkdir()
    for folder in ("tls", "secrets"):
        (home / folder).symlink_to(secure_stack.home / folder)
    env = _demo_env(secure_stack, home)
    # Dead letters of earlier runs on this stack stay in the topics: count only the demo's.
    before = {t: _ends(secure_stack, f"{t}.dead") for t in DEAD_LETTERS}
    try:
        demo = subprocess.run(["bash", str(ROOT / "compose" / "demo.sh")], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=DEMO_TIMEOUT_S)
        output = demo.stdout + demo.stderr
        (tmp_path / "demo.out").write_text(output)
        assert demo.returncode == 0, output[-4000:]
        assert "stack: secure:" in demo.stdout and "this stack is secure" in demo.stdout, demo.stdout[:2000]
        assert (home / "secure").exists()  # later commands on the home are secure too

        summary = _summary(env)
        for tenant, rows in ROWS.items():
            assert summary[tenant]["rows_in_cassandra"] == rows, summary[tenant]
        # tenant1 takes JSON only: the CSV staged as tenant1 is refused with its receipt.
        assert summary["tenant1"]["rejected"] == 1 and summary["tenant1"]["refusal_reasons"] == {"wrong_file_type": 1}
        # The careless CSV: its good row lands, the bad time and the missing id are refused.
        careless = json.loads(next((home / "done" / "tenant2").glob("*careless*.receipt.json")).read_text())
        assert (careless["rows_ok"], careless["rows_refused"]) == (1, 2), careless
        # The careless client's three messages, sent with tenant2's own login, each dead-lettered.
        for tenant, dead in DEAD_LETTERS.items():
            assert _reasons_since(secure_stack, f"{tenant}.dead", before[tenant]) == dead, tenant

        passwords = {p.read_text().strip() for p in (secure_stack.home / "secrets").glob("*.password")}
        assert passwords
        written = {"demo output": output.encode(), **_texts(home)}
        shown = sorted(name for name, text in written.items() for pw in passwords if pw.encode() in text)
        assert shown == [], f"a password shows in {shown}"
    finally:
        _cli(env, "down")


def _consumer(stack: Settings) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap_str, enable_auto_commit=False,
                         **tls.kafka_options(stack, "platform:admin"))


def _ends(stack: Settings, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic`` now ({} if it does not exist yet)."""
    consumer = _consumer(stack)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def _reasons_since(stack: Settings, topic: str, start: dict[int, int]) -> Counter[str]:
    """The reasons of the dead letters written to ``topic`` after ``start``, read up to its end now."""
    consumer = _consumer(stack)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start.get(tp.partition, 0))
        reasons: Counter[str] = Counter()
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                reasons.update(dict(r.headers).get("reason", b"?").decode() for r in records if r.offset < ends[
                    TopicPartition(r.topic, r.partition)])
        return reasons
    finally:
        consumer.close()
