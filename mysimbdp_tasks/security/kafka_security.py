"""The Kafka broker's listeners in secure mode.

- ``SASL_SSL`` on the client port: TLS with the stack's certificate, then a SCRAM-SHA-512 login.
  Every tenant and platform process connects here as its own principal.
- ``CONTROLLER`` (port + 1) and ``INTERNAL`` (port + 2): TLS where the client must present a
  certificate signed by the local CA (mutual TLS). Only the broker itself and ``mysimbdp stack``
  hold one (``tls/server.key``, mode 0600), and its principal ``User:CN=mysimbdp-stack`` is a super
  user. The stack creates the platform's SCRAM users through INTERNAL: no password of the platform's
  admin ever has to be put on a command line (``kafka-storage format --add-scram`` would).

On a cluster (``stack up --secure --nodes N``) these two listeners carry all the traffic between
nodes: controllers vote and replicate the metadata log over CONTROLLER, brokers replicate partitions
over INTERNAL. Each node presents the stack's certificate, whose names include every node's address,
and checks the other's (Kafka's default ``ssl.endpoint.identification.algorithm=https``); every node
is therefore the super user ``User:CN=mysimbdp-stack``, which the StandardAuthorizer requires for
the controller and replication requests (CLUSTER_ACTION).

``StandardAuthorizer`` (KRaft's) decides every request; without an ACL nothing is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import ca

STACK_PRINCIPAL = f"User:CN={ca.SERVER_NAME}"
ADMIN_USER = "platform_admin"  # the platform's admin principal (platform:admin) as a Kafka user
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def server_properties(home: Path, host: str, port: int, controller_port: int, internal_port: int) -> dict[str, str]:
    """The properties that turn a node's listeners to TLS, SCRAM and ACLs (one node or a cluster's)."""
    files = ca.TlsFiles(home)
    password = files.keystore_password()
    return {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port},INTERNAL://{host}:{internal_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port},INTERNAL://{host}:{internal_port}",
        "listener.security.protocol.map": "CONTROLLER:SSL,INTERNAL:SSL,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name": "INTERNAL",
        "listener.name.controller.ssl.client.auth": "required",
        "listener.name.internal.ssl.client.auth": "required",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": SCRAM_LOGIN,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(files.keystore),
        "ssl.keystore.password": password,
        "ssl.key.password": password,
        # Kafka reads PEM trust stores since 2.7 (KIP-651): the CA's own file, nothing to convert.
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca_cert),
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"{STACK_PRINCIPAL};User:{ADMIN_USER}",
    }


def stack_client_options(home: Path) -> dict[str, Any]:
    """kafka-python options of the stack's own client on the INTERNAL listener (mutual TLS)."""
    files = ca.TlsFiles(home)
    return {
        "security_protocol": "SSL",
        "ssl_cafile": str(files.ca_cert),
        "ssl_certfile": str(files.server_cert),
        "ssl_keyfile": str(files.server_key),
        "ssl_check_hostname": True,
    }
