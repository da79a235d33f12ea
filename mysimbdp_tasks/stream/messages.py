"""Validating one stream message against its tenant, as the bridge does before admitting it."""

from __future__ import annotations

import json
from typing import Any

from ..core.convert import RowConverter
from ..core.errors import RowError
from ..core.tenants import Tenant


def validate(tenant: Tenant, converter: RowConverter, value: bytes | None) -> tuple[dict[str, Any] | None, str, str]:
    """(data, "", "") for a good message, or (None, reason, detail). Never raises for any payload."""
    try:
        return _validate(tenant, converter, value)
    except Exception as exc:  # noqa: BLE001 - whatever a payload triggers is that message's fault alone
        return None, "unusable_message", f"{type(exc).__name__}: {str(exc)[:200]}"


def _validate(tenant: Tenant, converter: RowConverter, value: bytes | None) -> tuple[dict[str, Any] | None, str, str]:
    if value is None:
        return None, "bad_json", "empty message"
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
    if not isinstance(data, dict):
        return None, "not_an_object", f"expected a JSON object, got {type(data).__name__}"
    claimed = data.get("tenant")
    if claimed is not None and claimed != tenant.name:
        shown = repr(claimed)[:40] if isinstance(claimed, str) else type(claimed).__name__
        return None, "wrong_tenant", f"message names tenant {shown} on the topic of {tenant.name!r}"
    try:
        converter.convert(data)
    except RowError as exc:
        return None, exc.reason, exc.detail
    return data, "", ""
