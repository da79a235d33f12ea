"""Secure mode without services: the local CA, the clients' TLS options, Kafka's grants, report senders."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from mysimbdp_tasks.control.monitor import sender_refusal
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.reports import Report
from mysimbdp_tasks.core.settings import SECURE_MARKER, Settings, secure_redis_url
from mysimbdp_tasks.security import ca, kafka_access, kafka_security, tls

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_signs_a_server_certificate_for_the_stacks_addresses(tmp_path: Path) -> None:
    files = ca.ensure(tmp_path, ["127.0.0.18"])
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    authority = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert.verify_directly_issued_by(authority)
    assert ca.subject_names(cert) == {"127.0.0.18", "127.0.0.1", "localhost"}
    assert _mode(files.folder) == 0o700
    assert {_mode(p) for p in (files.ca_key, files.server_key, files.keystore)} == {0o600}
    key, chain_cert, extra = pkcs12.load_key_and_certificates(files.keystore.read_bytes(),
                                                              files.keystore_password().encode())
    assert key is not None and chain_cert == cert and extra == [authority]


def test_the_certificate_is_kept_and_made_again_only_for_new_addresses(tmp_path: Path) -> None:
    files = ca.ensure(tmp_path, ["127.0.0.18"])
    first, authority = files.server_cert.read_bytes(), files.ca_cert.read_bytes()
    ca.ensure(tmp_path, ["127.0.0.18"])
    assert files.server_cert.read_bytes() == first
    ca.ensure(tmp_path, ["127.0.0.18", "127.0.0.19"])
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    assert "127.0.0.19" in ca.subject_names(cert)
    assert files.ca_cert.read_bytes() == authority  # clients keep trusting the same CA


def test_a_client_of_secure_settings_completes_a_verified_handshake(tmp_path: Path) -> None:
    files = ca.ensure(tmp_path, ["127.0.0.1"])
    settings = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_SECURE": "1"})
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(files.server_cert, files.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    context = tls.ssl_context(settings)
    assert context is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as client:
        assert client.recv(2) == b"ok"
    thread.join(timeout=10)
    listener.close()


def test_secure_mode_comes_from_the_variable_or_the_homes_marker(tmp_path: Path) -> None:
    env = {"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_REDIS_URL": "redis://127.0.0.18:6379/0"}
    plain = Settings.from_env(env)
    assert not plain.secure and plain.redis_url == "redis://127.0.0.18:6379/0"
    assert tls.kafka_options(plain, "tenant:t1") == {} and tls.ssl_context(plain) is None
    (tmp_path / SECURE_MARKER).touch()
    marked = Settings.from_env(env)
    assert marked.secure
    assert marked.redis_url.startswith("rediss://127.0.0.18:6379/0?ssl_cert_reqs=required&ssl_ca_certs=")
    assert not Settings.from_env({**env, "MYSIMBDP_SECURE": "0"}).secure


def test_a_redis_url_keeps_its_own_tls_parameters() -> None:
    url = secure_redis_url("rediss://h:1/2?ssl_ca_certs=%2Fmine.pem", Path("/home"))
    assert url == "rediss://h:1/2?ssl_ca_certs=%2Fmine.pem&ssl_cert_reqs=required"


def test_kafka_options_log_in_as_the_principal_with_its_stored_password(tmp_path: Path) -> None:
    settings = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_SECURE": "1"})
    options = tls.kafka_options(settings, "tenant:t1")
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "tenant_t1"
    stored = tmp_path / "secrets" / "tenant:t1.password"
    assert stored.read_text().strip() == options["sasl_plain_password"] and _mode(stored) == 0o600
    assert tls.kafka_options(settings, "tenant:t1")["sasl_plain_password"] == options["sasl_plain_password"]


def test_a_tenant_is_granted_its_own_topics_only() -> None:
    grants = kafka_access.tenant_plan("ta") + kafka_access.tenant_plan("tb") + kafka_access.platform_plan()
    mine = {(g.operation, g.name) for g in grants if g.user == "tenant_ta" and g.resource == "topic"}
    assert mine == {("WRITE", "ta.ingest"), ("WRITE", "ta.reports"), ("READ", "ta.dead"), ("READ", "ta.out.")}
    writers = {g.user for g in grants if g.operation == "WRITE" and g.name == names.CONTROL_TOPIC}
    assert writers == {"platform_monitor"}
    assert {g.user for g in grants if g.name == "ta.ingest" and g.operation == "READ"} == {"platform_bridge"}


def test_the_broker_has_no_plaintext_listener_and_two_super_users(tmp_path: Path) -> None:
    props = kafka_security.server_properties(tmp_path, "127.0.0.18", 9092, 9093, 9094)
    assert "PLAINTEXT" not in props["listener.security.protocol.map"].replace("SASL_SSL", "")
    assert props["super.users"] == "User:CN=mysimbdp-stack;User:platform_admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"


def _report(tenant: str, source: str = "client") -> Report:
    return Report(source=source, tenant=tenant, window_start=0.0, window_end=1.0, messages=1, bytes=1,
                  avg_ms=1.0, max_ms=1.0, errors=0)


def test_the_monitor_refuses_a_report_whose_tenant_is_not_its_sender() -> None:
    assert sender_refusal("ta.reports", _report("ta")) is None
    assert sender_refusal(names.REPORTS_TOPIC, _report("tb", "worker")) is None
    assert "sent by tenant 'ta'" in (sender_refusal("ta.reports", _report("tb")) or "")
    assert "client reports only" in (sender_refusal("ta.reports", _report("ta", "bridge")) or "")


def test_stack_up_secure_is_remembered_by_the_home(tmp_path: Path) -> None:
    env = {"MYSIMBDP_HOME": str(tmp_path / "home")}
    from mysimbdp_tasks.core.settings import mark_secure

    marked = mark_secure(Settings.from_env(env))
    assert marked.secure and marked.redis_url.startswith("rediss://")
    assert Settings.from_env(env).secure  # a later command on the same home
