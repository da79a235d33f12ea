"""Logins read the secrets store at every connect, and a rotation keeps its new password aside until
the services have it: pure, on a temporary MYSIMBDP_HOME, no service."""

from __future__ import annotations

from pathlib import Path

import pytest
from cassandra.auth import PlainTextAuthenticator

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import identities, logins, secrets
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = pytest.mark.unit


def _settings(home: Path, secure: bool) -> Settings:
    return Settings.from_env({"MYSIMBDP_HOME": str(home), "MYSIMBDP_REDIS_URL": "redis://127.0.0.9:6390/0",
                              "MYSIMBDP_SECURE": "1" if secure else "0"})


def _rotate_store(home: Path, principal: str) -> str:
    new = secrets.pending(home, principal)
    secrets.promote(home, principal)
    return new


def test_a_rotation_keeps_its_password_aside_until_promoted_and_reuses_it_if_cut_short(tmp_path: Path) -> None:
    old = secrets.password(tmp_path, "tenant:t1")
    new = secrets.pending(tmp_path, "tenant:t1")
    assert new != old and secrets.PASSWORD.match(new)
    assert secrets.password(tmp_path, "tenant:t1") == old  # logins still read the old one
    assert secrets.pending(tmp_path, "tenant:t1") == new  # a rotation run again sets the same one
    secrets.promote(tmp_path, "tenant:t1")
    assert secrets.password(tmp_path, "tenant:t1") == new
    assert not secrets.next_path(tmp_path, "tenant:t1").exists()
    assert secrets.pending(tmp_path, "tenant:t1") not in (old, new)  # the next rotation: a fresh one


def test_redis_credentials_are_read_from_the_store_at_each_login(tmp_path: Path) -> None:
    pool = identities.as_tenant(_settings(tmp_path, secure=True), "t1")
    provider = logins.redis_credentials(pool)
    assert provider is not None
    assert provider.get_credentials() == ("tenant_t1", secrets.password(tmp_path, "tenant:t1"))
    new = _rotate_store(tmp_path, "tenant:t1")
    assert provider.get_credentials() == ("tenant_t1", new)  # the same client, a new password
    assert new not in repr(provider)


def test_a_redis_client_holds_a_provider_not_a_password(tmp_path: Path) -> None:
    pool = identities.as_tenant(_settings(tmp_path, secure=True), "t1")
    kwargs = logins.redis_client(pool).connection_pool.connection_kwargs
    assert kwargs.get("password") is None and kwargs.get("username") is None
    assert kwargs["credential_provider"].get_credentials()[0] == "tenant_t1"
    plain = logins.redis_client(_settings(tmp_path, secure=False)).connection_pool.connection_kwargs
    assert "credential_provider" not in plain


def test_cassandra_logins_take_the_stores_password_of_the_moment(tmp_path: Path) -> None:
    pool = identities.as_tenant(_settings(tmp_path, secure=True), "t1")
    auth = logins.cassandra_auth(pool)
    assert auth is not None and logins.cassandra_auth(_settings(tmp_path, secure=False)) is None
    before = auth.new_authenticator("127.0.0.9")
    new = _rotate_store(tmp_path, "tenant:t1")
    after = auth.new_authenticator("127.0.0.9")
    assert isinstance(after, PlainTextAuthenticator)
    assert (after.username, after.password) == ("tenant_t1", new)
    assert before.password != new  # a connection made before keeps what it logged in with


def test_the_broker_url_names_the_account_and_the_broker_logs_in_through_the_store(tmp_path: Path) -> None:
    pool = identities.as_tenant(_settings(tmp_path, secure=True), "t1")
    password = secrets.password(tmp_path, "tenant:t1")
    app = make_app(pool)
    assert password not in app.conf.broker_url
    assert app.conf.broker_url.startswith("rediss://tenant_t1@127.0.0.9:6390/0?ssl_cert_reqs=required")
    with app.connection_for_write() as conn:
        assert password not in conn.as_uri(include_password=True)
        assert conn.credential_provider.get_credentials() == ("tenant_t1", password)
        with conn.clone() as again:  # kombu's reconnects and pools work on clones
            new = _rotate_store(tmp_path, "tenant:t1")
            assert again.credential_provider.get_credentials() == ("tenant_t1", new)
    plain = make_app(_settings(tmp_path, secure=False))
    assert plain.conf.broker_url == "redis://127.0.0.9:6390/0"
    with plain.connection_for_write() as conn:
        assert conn.credential_provider is None
