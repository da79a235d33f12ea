"""The secrets store and the names of identities: pure, on a temporary MYSIMBDP_HOME."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import quote

import pytest

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.errors import SettingsError
from mysimbdp_tasks.core.settings import SECURE_MARKER, Settings
from mysimbdp_tasks.security import identities, redis_acl, secrets

pytestmark = pytest.mark.unit


def test_a_password_is_created_once_kept_private_and_rotated_on_demand(tmp_path: Path) -> None:
    first = secrets.password(tmp_path, "tenant:t1")
    assert secrets.password(tmp_path, "tenant:t1") == first
    file = secrets.path(tmp_path, "tenant:t1")
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert secrets.PASSWORD.match(first)
    rotated = secrets.password(tmp_path, "tenant:t1", rotate=True)
    assert rotated != first and secrets.password(tmp_path, "tenant:t1") == rotated
    assert secrets.password(tmp_path, "platform:admin") not in (first, rotated)
    assert sorted(p.name for p in file.parent.iterdir()) == ["platform:admin.password", "tenant:t1.password"]


@pytest.mark.parametrize("principal", ["t1", "tenant:", "tenant:../x", "user:t1", "tenant:t 1", "platform:a/b"])
def test_principals_must_be_safe_file_names(tmp_path: Path, principal: str) -> None:
    with pytest.raises(SettingsError, match="tenant:<name> or platform:<role>"):
        secrets.password(tmp_path, principal)


def test_a_store_file_that_is_not_a_password_is_refused(tmp_path: Path) -> None:
    file = secrets.path(tmp_path, "tenant:t1")
    file.parent.mkdir()
    file.write_text("x' OR '1'='1\n")
    with pytest.raises(SettingsError, match="not a password this store wrote"):
        secrets.password(tmp_path, "tenant:t1")


def test_secure_mode_comes_from_the_home_mark_unless_the_environment_says(tmp_path: Path) -> None:
    env = {"MYSIMBDP_HOME": str(tmp_path)}
    assert not Settings.from_env(env).secure
    (tmp_path / SECURE_MARKER).write_text("")
    assert Settings.from_env(env).secure
    assert not Settings.from_env(env | {"MYSIMBDP_SECURE": "0"}).secure


def test_urls_carry_the_process_principal_only_in_secure_mode(tmp_path: Path) -> None:
    env = {"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_REDIS_URL": "redis://127.0.0.9:6390/0"}
    assert identities.redis_url(Settings.from_env(env)) == "redis://127.0.0.9:6390/0"
    secure = Settings.from_env(env | {"MYSIMBDP_SECURE": "1"})
    pool = identities.as_tenant(secure, "t1")
    password = secrets.password(tmp_path, "tenant:t1")
    # Over TLS, trusting the home's CA: the query string the TLS options live in is kept.
    ca = quote(str(tmp_path / "tls" / "ca.crt"), safe="")
    assert identities.redis_url(pool) == (f"rediss://tenant_t1:{password}@127.0.0.9:6390/0"
                                          f"?ssl_cert_reqs=required&ssl_ca_certs={ca}")
    assert identities.redis_url(secure).startswith("rediss://platform_admin:")


def test_a_secure_pool_keeps_its_unacknowledged_messages_under_its_own_names(tmp_path: Path) -> None:
    env = {"MYSIMBDP_HOME": str(tmp_path)}
    plain, secure = Settings.from_env(env), Settings.from_env(env | {"MYSIMBDP_SECURE": "1"})
    assert identities.pool_tenant(identities.as_tenant(plain, "t1")) is None
    assert identities.pool_tenant(secure) is None  # the platform's own processes
    assert identities.pool_tenant(identities.as_tenant(secure, "t1")) == "t1"
    assert names.unacked_keys(None) == ("unacked", "unacked_index", "unacked_mutex")
    assert names.unacked_keys("t1") == ("unacked:t1", "unacked_index:t1", "unacked_mutex:t1")
    assert names.queue_tenant(names.stream_queue("t1")) == "t1"


def test_a_pool_user_may_touch_its_own_keys_only() -> None:
    rules = redis_acl.tenant_rules("t1")
    keys = [r for r in rules if "~" in r]
    assert "~mysimbdp:usage:t1:*" in keys and "~t1.batch*" in keys and "~t1.stream*" in keys
    assert not any("t2" in r for r in keys)
    assert "~unacked:t1" in keys and "~unacked" not in keys
    assert "~*" not in keys and "%R~mysimbdp:tenants" in keys and "~mysimbdp:tenants" not in keys
    assert "-@dangerous" in rules and "-@admin" in rules
