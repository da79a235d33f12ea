"""CQL names: what a plain identifier is, reserved words, and quoting of *validated* identifiers.

Values never pass through here: they are always bound to prepared statements. Only identifiers
that came from a tenant configuration and passed :func:`identifier_problem` reach DDL or DML text.
"""

from __future__ import annotations

import re

# Unquoted CQL identifiers are case-insensitive (folded to lower case), so we accept lower case only:
# the name in the config is then exactly the name in Cassandra.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*\Z")
MAX_KEYSPACE_LENGTH = 48  # Cassandra's limit for keyspace and table names

# Reserved keywords of CQL 3 (Cassandra 5.0 documentation, "Appendix A: CQL Keywords", reserved ones).
RESERVED = frozenset(
    [
        "add", "allow", "alter", "and", "apply", "asc", "authorize", "batch", "begin", "by", "columnfamily",
        "create", "default", "delete", "desc", "describe", "drop", "entries", "execute", "from", "full",
        "grant", "if", "in", "index", "infinity", "insert", "into", "is", "keyspace", "limit", "materialized",
        "mbean", "mbeans", "modify", "nan", "norecursive", "not", "null", "of", "on", "or", "order", "primary",
        "rename", "replace", "revoke", "schema", "select", "set", "table", "to", "token", "truncate",
        "unlogged", "unset", "update", "use", "using", "view", "where", "with"
    ]
)

# CQL column types a tenant schema may use (lower case).
TYPES = frozenset(
    [
        "text", "varchar", "ascii", "int", "bigint", "smallint", "tinyint", "varint", "float", "double",
        "decimal", "boolean", "timestamp", "date", "time", "uuid", "timeuuid", "inet", "blob"
    ]
)

# Types Cassandra reports for aliases in system_schema.columns.
CANONICAL_TYPE = {"varchar": "text"}


def identifier_problem(name: object, max_length: int = MAX_KEYSPACE_LENGTH) -> str | None:
    """Return why ``name`` cannot be used as an unquoted CQL identifier, or None if it can."""
    if not isinstance(name, str):
        return f"expected a name (string), got {type(name).__name__}"
    if not IDENTIFIER.match(name):
        return (
            f"{name!r} is not a plain CQL identifier: use lower-case letters, digits and '_', "
            "starting with a letter"
        )
    if len(name) > max_length:
        return f"{name!r} is longer than {max_length} characters"
    if name in RESERVED:
        return f"{name!r} is a reserved CQL word; choose another name"
    return None


def ident(name: str) -> str:
    """Quote an identifier that already passed validation (quoting keeps it exact and inert)."""
    if identifier_problem(name, max_length=10_000) is not None:
        raise ValueError(f"refusing unvalidated identifier {name!r}")
    return f'"{name}"'
