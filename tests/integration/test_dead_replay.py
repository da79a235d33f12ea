"""Dead-letter replay against the real Kafka, Redis and Cassandra: refused for the quota, replayed once
the quota is raised, landed, and never replayed twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from streamkit import dead as _dead
from streamkit import send as _send
from streamkit import wait_rows as _wait_rows

from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.registry import Registry

pytestmark = pytest.mark.integration


def wait_for(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout} s")
        time.sleep(0.5)


def cli(platform: Any, *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *args], env=platform.env, text=True,
                          capture_output=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_quota_refusals_land_after_the_quota_is_raised_and_a_second_replay_does_nothing(
        stream_tenant: Any, stream_platform: Any, settings: Settings, cassandra_session: Any,
        redis_client: Any) -> None:
    tenant = stream_tenant("tenant1", max_messages_per_day=4)
    base = {"tenant": tenant.name, "created_utc": 1430458939, "ups": 1, "subreddit": "s", "author": "a", "score": 1}
    payloads: list[tuple[bytes | None, bytes]] = [(f"k{i}".encode(), json.dumps({**base, "id": f"m{i}"}).encode())
                                                  for i in range(7)]
    payloads.append((b"bad", b'{"id": "broken", '))  # a different reason: not chosen by --reason
    platform = stream_platform(tenant)
    _send(settings, tenant, payloads)
    assert len(_wait_rows(cassandra_session, tenant, 4, platform)) == 4
    assert len(_dead(settings, tenant, 4)) == 4

    listed = cli(platform, "dead", "list", "--tenant", tenant.name, "--json")
    assert listed["by_reason"] == {"daily_messages_exceeded": 3, "bad_json": 1}
    quota = [x for x in listed["letters"] if x["reason"] == "daily_messages_exceeded"]
    shown = cli(platform, "dead", "show", "--tenant", tenant.name, quota[0]["ref"], "--json")
    assert json.loads(shown["value"])["tenant"] == tenant.name and shown["replay"] is None

    # Replayed while the quota is still spent: dry run first, which sends nothing.
    dry = cli(platform, "dead", "replay", "--tenant", tenant.name, "--reason", "daily_messages_exceeded",
              "--dry-run", "--json")
    assert (dry["chosen"], len(dry["sent"]), dry["dry_run"]) == (3, 3, True)
    assert cli(platform, "dead", "list", "--tenant", tenant.name, "--json")["total"] == 4  # nothing sent

    raw = {**dict(tenant.raw), "max_messages_per_day": 100}
    Registry(redis_client).save(tenants.parse({tenant.name: raw})[tenant.name])
    wait_for(lambda: "max_messages_per_day 4 -> 100" in platform.logs(200), "the bridge takes the new quota up")
    done = cli(platform, "dead", "replay", "--tenant", tenant.name, "--reason", "daily_messages_exceeded", "--json")
    assert (done["chosen"], len(done["sent"]), done["already_replayed"], done["failed"]) == (3, 3, [], [])

    rows = _wait_rows(cassandra_session, tenant, 7, platform)
    assert sorted(r.id for r in rows) == [f"m{i}" for i in range(7)]

    again = cli(platform, "dead", "replay", "--tenant", tenant.name, "--reason", "daily_messages_exceeded", "--json")
    assert (len(again["sent"]), sorted(again["already_replayed"])) == (0, sorted(x["ref"] for x in quota))
    after = cli(platform, "dead", "list", "--tenant", tenant.name, "--json")
    assert after["total"] == 4  # no new dead letter: the replayed messages were admitted this time
    assert {x["replay"] for x in after["letters"] if x["reason"] == "daily_messages_exceeded"} == {"sent"}
    assert len(_wait_rows(cassandra_session, tenant, 7, platform)) == 7


def test_replay_of_an_unknown_or_removed_tenant_is_refused_with_the_reason(stream_tenant: Any, stream_platform: Any,
                                                                          redis_client: Any) -> None:
    tenant = stream_tenant("tenant2")
    platform = stream_platform(tenant, worker=False)
    for name, why in (("nosuchtenant", "is not applied"), (tenant.name, "is removed")):
        if name == tenant.name:
            Registry(redis_client).deactivate(tenant.name)
        done = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "dead", "replay", "--tenant", name],
                              env=platform.env, text=True, capture_output=True, timeout=120, check=False)
        assert done.returncode == 1 and why in done.stderr, done.stderr


def test_a_letter_kept_cut_is_not_replayed_and_says_why(settings: Settings, redis_client: Any) -> None:
    from types import SimpleNamespace

    from mysimbdp_tasks.core import deadletters
    from mysimbdp_tasks.services.replay import replay

    cut = deadletters.letter(SimpleNamespace(
        partition=0, offset=5, timestamp=0, key=b"k", value=b'{"id": "xx',
        headers=[("reason", b"bad_json"), ("value_bytes", b"1048400"), ("value_sha256", b"ab")]))
    out = replay(settings, redis_client, f"t{time.monotonic_ns()}", [cut])
    assert out.sent == [] and out.already == []
    assert out.failed == [{"ref": "0:5", "error": "its message (1048400 bytes) was kept cut to fit the dead topic; "
                                                  "only the original can be sent again"}]
