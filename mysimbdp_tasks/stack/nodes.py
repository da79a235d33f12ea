"""The nodes of a local cluster: ``stack up --nodes N`` runs N Cassandra and N Kafka nodes.

Node 1 is named after its service (``cassandra``, ``kafka``) and keeps the configured address; node
i is ``cassandra<i>`` / ``kafka<i>`` on the i-th loopback address from there (127.0.0.1 → .2, .3),
with the same ports, as Cassandra's ccm runs a ring on one machine. Each node has its own folders
under MYSIMBDP_HOME (``cassandra2/``, ``logs/cassandra2.log``, ``run/cassandra2.pid``). The node
count of a home is remembered in ``$MYSIMBDP_HOME/stack-nodes``, so ``status`` and ``down`` see
every node and ``stack up cassandra2`` knows its ring.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from ..core.errors import StackError

CLUSTERED = ("kafka", "cassandra")  # the services that run one process per node
MAX_NODES = 9
NODES_FILE = "stack-nodes"
_NAME = re.compile(r"^([a-z]+?)([2-9])?\Z")
# Murmur3's token range is [-2**63, 2**63 - 1]; the nodes own equal shares of it.
_RING = 2**64


def node_name(kind: str, node: int) -> str:
    return kind if node == 1 else f"{kind}{node}"


def parse(name: str) -> tuple[str, int]:
    """``cassandra2`` → ("cassandra", 2); ``redis`` → ("redis", 1)."""
    m = _NAME.match(name)
    if not m or (m.group(2) and m.group(1) not in CLUSTERED):
        return name, 1
    return m.group(1), int(m.group(2) or 1)


def node_host(first: str, node: int) -> str:
    """The address of node ``node`` when node 1 is on ``first``: the next addresses, in order."""
    if node == 1:
        return first
    try:
        address = ipaddress.IPv4Address("127.0.0.1" if first == "localhost" else first) + (node - 1)
    except (ValueError, ipaddress.AddressValueError) as exc:
        raise StackError(f"node {node}: cannot count on from {first!r} ({exc}); give node 1 a 127.x.y.z address") \
            from exc
    if not address.is_loopback:
        raise StackError(f"node {node}: {address} is past the loopback range; give node 1 a lower 127.x.y.z address")
    return str(address)


def cassandra_token(node: int, nodes: int) -> int:
    """Node ``node``'s one token: node 1 keeps token 0 (the single node's), the others split the ring."""
    token = (node - 1) * (_RING // nodes)
    return token - _RING if token >= 2**63 else token


def check_count(nodes: int) -> int:
    if not 1 <= nodes <= MAX_NODES:
        raise StackError(f"--nodes: expected 1 to {MAX_NODES}, got {nodes}")
    return nodes


def read_count(home: Path) -> int:
    """The node count `stack up --nodes N` last used on this home (1 if it was never given)."""
    try:
        text = (home / NODES_FILE).read_text().strip()
    except FileNotFoundError:
        return 1
    return check_count(int(text)) if text.isdigit() else 1


def write_count(home: Path, nodes: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / NODES_FILE).write_text(f"{check_count(nodes)}\n")
