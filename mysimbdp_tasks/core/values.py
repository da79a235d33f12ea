"""The shared pieces of every converter, and the converters of text, booleans, identifiers and bytes.

A converter takes one raw value (see :mod:`convert`) and returns the value the driver binds, or
raises the ``ValueError`` that ``bad`` builds (``expected int, got 'abc'``), which keeps the raw
value short, since a body can be megabytes. The numeric converters are in
:mod:`numeric`, the time ones in :mod:`timestamps`.

- **Text** is kept exactly as given: no strip, no Unicode normalisation. A JSON number in a text
  column becomes its JSON spelling (``str(3)`` = ``"3"``, ``true`` → ``"true"``); a JSON object or
  array is refused rather than silently serialised, since the tenant's schema asked for text.
  Strings with lone surrogates (possible through ``\\ud800`` escapes in JSON) are refused because
  they cannot be encoded as UTF-8. ``ascii`` additionally refuses any non-ASCII character.
- **Booleans** accept JSON ``true``/``false``, JSON ``0``/``1`` and the text ``true, false, 1, 0,
  yes, no`` in any case.
- **uuid** / **timeuuid** are any form ``uuid.UUID`` reads (timeuuid must be version 1);
  **inet** is an IPv4/IPv6 address, returned in canonical text form; **blob** is hexadecimal
  text with an optional ``0x`` prefix.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from typing import Any

__all__ = [
    "Converter",
    "bad",
    "match_text",
    "text_or_none",
    "to_ascii",
    "to_blob",
    "to_boolean",
    "to_inet",
    "to_text",
    "to_timeuuid",
    "to_uuid",
]

#: A raw value in, the bound value out; raises ``ValueError`` for a value of the wrong kind.
Converter = Callable[[Any], Any]

_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]*)")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _show(value: Any) -> str:
    """A short description of a raw value for an error message (bodies can be megabytes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:40]) + "..."
    return repr(value)


def bad(cql_type: str, value: Any, why: str = "") -> ValueError:
    """The error a converter raises: what it expected, what it got, and why if that is not plain."""
    suffix = f" ({why})" if why else ""
    return ValueError(f"expected {cql_type}, got {_show(value)}{suffix}")


def text_or_none(cql_type: str, value: Any) -> str | None:
    """The stripped text of a value that must be text, or None for a null."""
    if type(value) is str:
        return value.strip() or None
    if value is None:
        return None
    raise bad(cql_type, value)


def match_text(cql_type: str, value: Any, pattern: re.Pattern[str], hint: str) -> re.Match[str] | None:
    """The match of a value that must be text of ``pattern``'s form, or None for a null.

    Any other value is refused, with ``hint`` saying what the form is.
    """
    text = text_or_none(cql_type, value)
    if text is None:
        return None
    match = pattern.fullmatch(text)
    if match is None:
        raise bad(cql_type, value, hint)
    return match


# --- text ---------------------------------------------------------------------------------------


def to_text(value: Any) -> str | None:
    if type(value) is str:
        # isascii() is O(1) for str; only non-ASCII text can hold a lone surrogate.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad("text", value, "not valid Unicode: lone surrogate") from None
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise bad("text", value)


def to_ascii(value: Any) -> str | None:
    if type(value) is str and value.isascii():
        return value
    text = to_text(value)
    if text is not None and not text.isascii():
        raise bad("ascii", value, "non-ASCII character")
    return text


def to_boolean(value: Any) -> bool | None:
    kind = type(value)
    if kind is bool:
        return bool(value)
    if kind is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if not text:
            return None
    elif kind is int and value in (0, 1):
        return value == 1
    elif value is None:
        return None
    raise bad("boolean", value, "use true/false, 1/0 or yes/no")


# --- identifiers and bytes ----------------------------------------------------------------------


def to_uuid(value: Any) -> uuid.UUID | None:
    text = text_or_none("uuid", value)
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise bad("uuid", value) from None


def to_timeuuid(value: Any) -> uuid.UUID | None:
    try:
        result = to_uuid(value)
    except ValueError:
        raise bad("timeuuid", value) from None
    if result is not None and result.version != 1:
        raise bad("timeuuid", value, "not a version 1 (time-based) UUID")
    return result


def to_inet(value: Any) -> str | None:
    text = text_or_none("inet", value)
    if text is None:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise bad("inet", value) from None
    # The driver packs addresses with inet_pton, which refuses a zone such as "%eth0".
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise bad("inet", value, "zone identifiers are not stored")
    return str(address)


def to_blob(value: Any) -> bytes | None:
    hint = "use hexadecimal digits, optionally after 0x"
    match = match_text("blob", value, _HEX, hint)
    if match is None:
        return None
    if len(match.group(1)) % 2:
        raise bad("blob", value, hint)
    return bytes.fromhex(match.group(1))
