"""Reading one environment variable: a number, a count, a port, a flag, host:port, and the
structured ones (replication, node name, staging owners, Flower's users).

Each function refuses a bad value with a :class:`SettingsError` naming the variable and what it
expected; :mod:`settings` builds the frozen ``Settings`` from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from . import flower
from .errors import SettingsError

# Keyspace replication: ``SimpleStrategy:RF`` or ``NetworkTopologyStrategy:dc1=RF,dc2=RF``.
REPLICATION = re.compile(r"^(SimpleStrategy):(\d+)\Z|^(NetworkTopologyStrategy):((?:[A-Za-z0-9_.-]+=\d+,?)+)\Z")


def hostport(text: str, var: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    if not host or not port.isdigit():
        raise SettingsError(f"{var}: expected host:port, got {text!r}")
    return host, int(port)


def number(env: Mapping[str, str], var: str, default: float) -> float:
    text = env.get(var)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise SettingsError(f"{var}: expected a positive number, got {text!r}")
    return value


def count(env: Mapping[str, str], var: str, default: int) -> int:
    """A whole number of at least 1 (a count of things, not a duration)."""
    text = env.get(var)
    if text is None:
        return default
    if not text.strip().isdigit() or int(text) < 1:
        raise SettingsError(f"{var}: expected a whole number of at least 1, got {text!r}")
    return int(text)


def replication(env: Mapping[str, str]) -> str:
    text = env.get("MYSIMBDP_REPLICATION", "SimpleStrategy:1").strip()
    m = REPLICATION.match(text)
    if not m or any(int(rf) < 1 for rf in re.findall(r"[:=](\d+)", text)):
        raise SettingsError(f"MYSIMBDP_REPLICATION: expected 'SimpleStrategy:RF' or "
                            f"'NetworkTopologyStrategy:dc1=RF,dc2=RF' with RF at least 1, got {text!r}")
    return text


def node_name(env: Mapping[str, str]) -> str:
    """MYSIMBDP_NODE_NAME: letters, digits, '.', '_' and '-' (it ends Celery node names and log lines)."""
    text = env.get("MYSIMBDP_NODE_NAME", "").strip()
    if text and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text):
        raise SettingsError(f"MYSIMBDP_NODE_NAME: expected letters, digits, '.', '_' or '-', got {text!r}")
    return text


def port(env: Mapping[str, str], var: str, default: int) -> int:
    value = count(env, var, default)
    if value > 65535:
        raise SettingsError(f"{var}: expected a port from 1 to 65535, got {env.get(var)!r}")
    return value


def flower_auth(env: Mapping[str, str], home: Path) -> tuple[tuple[str, ...], str]:
    """Flower's users and the problem that kept them from being read ("" if none).

    The users come from MYSIMBDP_FLOWER_AUTH, else the file MYSIMBDP_FLOWER_AUTH_FILE names, else
    MYSIMBDP_HOME/flower-auth if it exists; none: Flower asks for no password. Empty is unset. A
    problem (a file others can read, a short password) refuses to start Flower, and only Flower: an
    operator can still stop the stack or look at a tenant while fixing it.
    """
    try:
        return flower_users(env, home), ""
    except SettingsError as exc:
        return (), str(exc)


def flower_users(env: Mapping[str, str], home: Path) -> tuple[str, ...]:
    if env.get("MYSIMBDP_FLOWER_AUTH", "").strip():
        return flower.credentials(env["MYSIMBDP_FLOWER_AUTH"], "MYSIMBDP_FLOWER_AUTH")
    if "MYSIMBDP_FLOWER_AUTH_FILE" in env:
        return flower.credentials_file(Path(env["MYSIMBDP_FLOWER_AUTH_FILE"]).expanduser(),
                                       "MYSIMBDP_FLOWER_AUTH_FILE")
    default = home / flower.AUTH_FILE
    if default.exists():
        return flower.credentials_file(default, f"MYSIMBDP_HOME/{flower.AUTH_FILE}")
    return ()


def flag(env: Mapping[str, str], var: str, default: bool) -> bool:
    text = env.get(var)
    if text is None:
        return default
    if text.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if text.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{var}: expected 1 or 0 (true/false), got {text!r}")


def owners(text: str) -> tuple[tuple[str, int], ...]:
    """``tenant1=1001,tenant2=1002`` -> ((tenant1, 1001), (tenant2, 1002))."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        tenant, sep, uid = part.partition("=")
        if not sep or not tenant.strip() or not uid.strip().isdigit():
            raise SettingsError(f"MYSIMBDP_STAGING_OWNERS: expected tenant=uid[,tenant=uid...], got {part!r}")
        found.append((tenant.strip(), int(uid)))
    return tuple(found)
