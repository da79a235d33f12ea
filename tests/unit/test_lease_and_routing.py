"""Pure rules of the lease (which messages a consumer holds) and of owned staging folders."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mysimbdp_tasks.batch.routing import owner_refusal
from mysimbdp_tasks.core.errors import SettingsError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.worker.lease import held_tags, index_key

pytestmark = pytest.mark.unit

ENV = {"MYSIMBDP_HOME": "/tmp/x"}


def _consumer(delivered: dict[str, object], dirty: set[str], prefix: str = "") -> SimpleNamespace:
    qos = SimpleNamespace(_delivered=delivered, _dirty=dirty)
    channel = SimpleNamespace(qos=qos, unacked_index_key="unacked_index", global_keyprefix=prefix)
    return SimpleNamespace(task_consumer=SimpleNamespace(channel=channel))


def test_the_lease_covers_held_messages_but_not_those_acknowledged_in_the_meantime() -> None:
    consumer = _consumer({"a": 1, "b": 2, "c": 3}, dirty={"b"})
    assert held_tags(consumer) == ["a", "c"]
    assert index_key(consumer) == "unacked_index"
    assert index_key(_consumer({}, set(), prefix="p:")) == "p:unacked_index"  # kombu's global_keyprefix


def test_a_consumer_between_connections_holds_nothing() -> None:
    bare = SimpleNamespace(task_consumer=None)
    assert held_tags(bare) == [] and index_key(bare) is None


def test_renewals_fit_several_times_in_the_visibility_timeout() -> None:
    default = Settings.from_env(ENV)
    assert default.visibility_timeout == 30 and default.lease_renew_seconds == 5.0
    short = Settings.from_env({**ENV, "MYSIMBDP_VISIBILITY_TIMEOUT": "2"})
    assert short.lease_renew_seconds < 2 / 3 and short.restore_every_seconds == 1


def test_owned_folders_take_only_the_configured_owner() -> None:
    settings = Settings.from_env({**ENV, "MYSIMBDP_STAGING_OWNERS": "t1=1001, t2=1002", "MYSIMBDP_FLAT_STAGING": "0"})
    assert owner_refusal(settings, "t1", "t1", 1001) is None
    wrong = owner_refusal(settings, "t1", "t1", 1002)
    assert wrong is not None and (wrong.reason, wrong.limit, wrong.usage) == ("wrong_owner", "uid 1001", "uid 1002")
    unknown = owner_refusal(settings, "t3", "t3", 1001)
    assert unknown is not None and unknown.reason == "owner_not_configured"
    flat = owner_refusal(settings, "t1", "", 1001)
    assert flat is not None and flat.reason == "flat_staging_disabled"


def test_by_default_staging_is_open_to_any_owner() -> None:
    assert owner_refusal(Settings.from_env(ENV), "t1", "", 4242) is None


@pytest.mark.parametrize("value", ["t1", "t1=abc", "=12", "t1=1,t2"])
def test_a_bad_owner_mapping_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="MYSIMBDP_STAGING_OWNERS"):
        Settings.from_env({**ENV, "MYSIMBDP_STAGING_OWNERS": value})


def test_a_renewal_while_redis_is_away_returns_nothing_renewed_and_never_raises() -> None:
    from mysimbdp_tasks.worker.lease import Lease

    # Nothing listens on port 1: the connection is refused, as when Redis is down.
    settings = Settings.from_env({**ENV, "MYSIMBDP_REDIS_URL": "redis://127.0.0.1:1/0"})
    consumer = _consumer({"a": 1}, set())
    consumer.app = SimpleNamespace(conf=SimpleNamespace(mysimbdp_settings=settings))
    lease = Lease(consumer)
    assert lease.renew(consumer) == 0 and lease.failing
    assert lease.renew(consumer) == 0  # and again, quietly, until Redis is back
