"""Validating one stream message against its tenant, as the bridge does before admitting it.

Payloads are parsed with orjson, several times faster than ``json``, and the verdict must stay the
one ``json`` gives. orjson is stricter (it refuses NaN, Infinity, 1e400 and lone surrogates, which
``json`` takes) and turns an integer beyond 64 bits into a float: so a payload orjson refuses, one
that may be nested deeply, or one whose parse holds a float that large (or a nested value) is
parsed by ``json``, which decides as before.

A payload orjson parsed is checked against the schema without converting its text columns
(:func:`_converts`): orjson gives only valid Unicode, so a text column of a string, a number or a
boolean always converts; its typed columns are converted and its key columns must have a value.
Anything that fails there gets the converter's own verdict, so the reason and detail stay the same.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import orjson

from ..core import sinks
from ..core.convert import CONVERTERS, RowConverter
from ..core.errors import RowError, UnknownSinkError
from ..core.tenants import Tenant

# orjson gives an integer beyond 64 bits (at or beyond 2**64, or below -2**63) as a float, json as
# an int: a float this large may be one, and its payload goes to json.
BIG = 2.0**63
# orjson 3.8 parses nesting recursively and crashes the process on objects nested some 100,000
# deep; a payload with more openers than this (so possibly nested that deep) goes to json, which
# refuses it with a RecursionError as before.
MAX_ORJSON_NESTING = 256


def validate(tenant: Tenant, converter: RowConverter, value: bytes | None) -> tuple[dict[str, Any] | None, str, str]:
    """(data, "", "") for a good message, or (None, reason, detail). Never raises for any payload."""
    try:
        return _validate(tenant, converter, value)
    except Exception as exc:  # noqa: BLE001 - whatever a payload triggers is that message's fault alone
        return None, "unusable_message", f"{type(exc).__name__}: {str(exc)[:200]}"


def _validate(tenant: Tenant, converter: RowConverter, value: bytes | None) -> tuple[dict[str, Any] | None, str, str]:
    if value is None:
        return None, "bad_json", "empty message"
    if value.count(b"{") + value.count(b"[") <= MAX_ORJSON_NESTING:
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            pass  # json decides below, and names the reason as it always did
        else:
            if _same_as_json(data):
                return check(tenant, converter, data, _converts(converter))
    return check_json(tenant, converter, value)


def loads(text: str) -> Any:
    """What ``json.loads(text)`` gives (and raises), by orjson when that is the same: how a worker
    parses a payload the bridge admitted."""
    if text.count("{") + text.count("[") <= MAX_ORJSON_NESTING:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # json decides, and raises what it always raised
        else:
            if _same_as_json(data):
                return data
    return json.loads(text)


def _same_as_json(data: Any) -> bool:
    """Whether ``json`` parses to this too: no float that may be an integer beyond 64 bits (orjson
    gives those as floats), no nested value that might hold one."""
    if type(data) is dict:
        for v in data.values():
            t = type(v)
            if (t is float and not -BIG < v < BIG) or t is dict or t is list:
                return False
        return True
    return type(data) is not float or -BIG < data < BIG


def check_json(tenant: Tenant, converter: RowConverter, value: bytes) -> tuple[dict[str, Any] | None, str, str]:
    """The verdict on a payload parsed by ``json`` (the reference orjson's verdicts must match)."""
    try:
        # UTF-8 only: json.loads would also take UTF-16 or UTF-32 bytes, which the worker, given
        # the text, could not dead-letter byte for byte.
        data = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, "bad_json", str(exc)[:200]
    except RecursionError:
        return None, "bad_json", "nested too deeply"
    except ValueError as exc:  # e.g. an integer of more digits than int() accepts
        return None, "bad_json", str(exc)[:200]
    return check(tenant, converter, data)


def check(tenant: Tenant, converter: RowConverter, data: Any,
          converts: Callable[[dict[str, Any]], bool] | None = None) -> tuple[dict[str, Any] | None, str, str]:
    """The verdict on a parsed payload: an object, of this tenant, that converts to its schema
    (``converts``: a quicker yes for a payload orjson parsed, see :func:`_converts`)."""
    if not isinstance(data, dict):
        return None, "not_an_object", f"expected a JSON object, got {type(data).__name__}"
    claimed = data.get("tenant")
    if claimed is not None and claimed != tenant.name:
        shown = repr(claimed)[:40] if isinstance(claimed, str) else type(claimed).__name__
        return None, "wrong_tenant", f"message names tenant {shown} on the topic of {tenant.name!r}"
    if converts is None or not converts(data):
        try:
            converter.convert(data)
        except RowError as exc:
            return None, exc.reason, exc.detail
    if sinks.FIELD in data:
        try:
            sinks.route(data, tenant.sinks)
        except UnknownSinkError as exc:
            return None, exc.reason, f"tenant {tenant.name}: {exc.detail}"
    return data, "", ""


TEXT = ("text", "varchar")


@functools.lru_cache(maxsize=64)  # one per converter: per tenant, and per re-applied configuration
def _converts(converter: RowConverter) -> Callable[[dict[str, Any]], bool]:
    """Whether a record orjson parsed (no nested value) converts: its typed columns converted, its
    key columns holding a value, as ``converter.convert`` decides; False sends it to the converter,
    which says why."""
    types = {name: cql_type.strip().lower() for name, cql_type in converter.types.items()}
    keys = set(converter.key_columns)
    typed = tuple((name, CONVERTERS[t], name in keys) for name, t in types.items() if t not in TEXT)
    text_keys = tuple(name for name in converter.key_columns if types[name] in TEXT)

    def converts(data: dict[str, Any]) -> bool:
        get = data.get
        try:
            for name, convert, is_key in typed:
                value = convert(get(name))
                if is_key and (value is None or value == ""):
                    return False
        except (ValueError, TypeError, ArithmeticError):
            return False
        for name in text_keys:
            value = get(name)
            if value is None or value == "":
                return False
        return True

    return converts
