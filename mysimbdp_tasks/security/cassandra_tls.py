"""Cassandra's TLS in secure mode: the yaml of its client and internode encryption.

- ``client_encryption_options``: TLS required on the native port (``optional: false`` refuses a
  plaintext client); clients authenticate with a role's password, not a certificate.
- ``server_encryption_options`` (a ring of more than one node): every connection between nodes
  (gossip, writes, streaming, on the storage port) is TLS, and each side presents the stack's
  certificate, signed by the local CA (``require_client_auth``), and checks that the other's names
  its address (``require_endpoint_verification``). ``optional: false``: a node that speaks
  plaintext is refused, there is no second, unencrypted storage port.

The keystore (``tls/server.p12``) and the trust store (``tls/truststore.p12``, the CA alone) are the
ones ``security/ca.py`` makes; both are locked with the ``platform:keystore`` secret, which is why
the yaml is written mode 0600.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import ca

PROTOCOLS = "[TLSv1.2, TLSv1.3]"


def encryption_yaml(home: Path, internode: bool) -> str:
    """The encryption options of one node's cassandra.yaml; ``internode`` for a ring's nodes."""
    files = ca.TlsFiles(home)
    password = json.dumps(files.keystore_password())
    text = f"""
client_encryption_options:
  enabled: true
  optional: false
  keystore: {json.dumps(str(files.keystore))}
  keystore_password: {password}
  store_type: PKCS12
  require_client_auth: false
  accepted_protocols: {PROTOCOLS}
"""
    if internode:
        text += f"""
server_encryption_options:
  internode_encryption: all
  optional: false
  legacy_ssl_storage_port_enabled: false
  keystore: {json.dumps(str(files.keystore))}
  keystore_password: {password}
  truststore: {json.dumps(str(files.truststore))}
  truststore_password: {password}
  store_type: PKCS12
  require_client_auth: true
  require_endpoint_verification: true
  accepted_protocols: {PROTOCOLS}
"""
    return text
