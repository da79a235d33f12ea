"""The local certificate authority of secure mode, and the stack's server certificate.

Everything lives in ``$MYSIMBDP_HOME/tls`` (mode 0700):

- ``ca.crt`` / ``ca.key``: a self-signed CA made on the first secure start and kept; clients trust
  ``ca.crt`` and nothing else.
- ``server.crt`` / ``server.key``: one certificate for Redis, Kafka and Cassandra, signed by the CA,
  whose subject alternative names are the stack's addresses plus ``localhost`` and ``127.0.0.1``.
  It is made again when the addresses change (another MYSIMBDP_*_HOSTS) or it nears its end.
- ``server.p12``: the same key and chain as the PKCS12 keystore the Java servers read, locked with
  the ``platform:keystore`` password of the secrets store.
- ``truststore.p12``: the CA alone, as a PKCS12 trust store (same password), for the servers that
  check each other's certificates: the nodes of a local cluster (Cassandra's internode encryption;
  Kafka reads ``ca.crt`` itself).

Keys are written mode 0600 and atomically (temporary file, then rename).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..core import procs
from . import secrets

KEYSTORE_PRINCIPAL = "platform:keystore"
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest lifetime clients such as browsers and Apple's TLS stack still accept
RENEW_BEFORE_DAYS = 30
SERVER_NAME = "mysimbdp-stack"


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA and the server's key material are, under ``$MYSIMBDP_HOME/tls``."""

    home: Path

    @property
    def folder(self) -> Path:
        return self.home / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def keystore(self) -> Path:
        return self.folder / "server.p12"

    @property
    def truststore(self) -> Path:
        return self.folder / "truststore.p12"

    def keystore_password(self) -> str:
        return secrets.password(self.home, KEYSTORE_PRINCIPAL)


def ensure(home: Path, hosts: Iterable[str]) -> TlsFiles:
    """Make the CA (once) and a server certificate valid for ``hosts``; return where they are."""
    files = TlsFiles(home)
    files.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(files.folder, 0o700)
    ca_key, ca_cert = _ca(files)
    names = sorted({*hosts, "localhost", "127.0.0.1"})
    if not _server_fits(files, ca_cert, names):
        _server(files, ca_key, ca_cert, names)
    if not _truststore_fits(files, ca_cert):
        _truststore(files, ca_cert)
    return files


def subject_names(cert: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses a certificate is valid for."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


# The CA -----------------------------------------------------------------------------------------


def _ca(files: TlsFiles) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    if files.ca_key.is_file() and files.ca_cert.is_file():
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{files.ca_key}: not the CA key this platform writes; move it away to make a new CA")
        return key, x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mysimbdp local CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    procs.write_atomic(files.ca_key, _key_pem(key), 0o600)
    procs.write_atomic(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, cert


# The server certificate --------------------------------------------------------------------------


def _server_fits(files: TlsFiles, ca_cert: x509.Certificate, names: list[str]) -> bool:
    if not (files.server_cert.is_file() and files.server_key.is_file() and files.keystore.is_file()):
        return False
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    fresh = cert.not_valid_after_utc - _now() > datetime.timedelta(days=RENEW_BEFORE_DAYS)
    return cert.issuer == ca_cert.subject and fresh and subject_names(cert) == set(names)


def _server(files: TlsFiles, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
            names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        # Server and client auth: Kafka's broker also presents it when it connects to its controller.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    store = pkcs12.serialize_key_and_certificates(
        SERVER_NAME.encode(), key, cert, [ca_cert],
        serialization.BestAvailableEncryption(files.keystore_password().encode()),
    )
    procs.write_atomic(files.server_key, _key_pem(key), 0o600)
    procs.write_atomic(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    procs.write_atomic(files.keystore, store, 0o600)


# The trust store ---------------------------------------------------------------------------------


def _truststore_fits(files: TlsFiles, ca_cert: x509.Certificate) -> bool:
    if not files.truststore.is_file():
        return False
    try:
        found = pkcs12.load_pkcs12(files.truststore.read_bytes(), files.keystore_password().encode())
    except ValueError:  # another password (a new secrets store) or not a PKCS12 file
        return False
    return [c.certificate for c in found.additional_certs] == [ca_cert]


def _truststore(files: TlsFiles, ca_cert: x509.Certificate) -> None:
    # A Java trust store: the CA as a trusted-certificate entry, which keytool would make.
    store = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(ca_cert, b"mysimbdp-ca")],
        serialization.BestAvailableEncryption(files.keystore_password().encode()),
    )
    procs.write_atomic(files.truststore, store, 0o600)


# Helpers ------------------------------------------------------------------------------------------


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted PKCS8: the file's mode protects it, and Redis reads it without a passphrase prompt.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
