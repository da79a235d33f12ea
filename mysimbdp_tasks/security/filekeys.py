"""Tenants' file keys: the 32-byte key a tenant seals its files with (see :mod:`core.sealed`).

Kept like the passwords of :mod:`secrets`: ``<home>/secrets/tenant:<name>.filekey``, base64url,
folder mode 0700, file mode 0600, written to a temporary file and renamed. A key is created on first
use by :func:`key` (the producer, ``mysimbdp filekey``); the worker only :func:`load`\\ s it, so a
tenant without a key gets a refusal, never a fresh key that could not open its files. Rotating
replaces the key: files sealed with the old one are then refused with ``wrong_key``.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from ..core.errors import PermanentIngestError, SettingsError
from ..core.sealed import KEY_BYTES, key_id
from . import secrets

__all__ = ["key", "key_id", "load", "path"]


def path(home: Path, tenant: str) -> Path:
    principal = secrets.check_principal(f"tenant:{tenant}")
    return secrets.folder(home) / f"{principal}.filekey"


def load(home: Path, tenant: str) -> bytes:
    """The tenant's file key; a refusal (``wrong_key``) if the tenant has none."""
    file = path(home, tenant)
    try:
        text = file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise PermanentIngestError("wrong_key", f"tenant {tenant} has no file key ({file}); "
                                   f"`mysimbdp filekey {tenant}` creates one") from None
    try:
        value = base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        value = b""
    if len(value) != KEY_BYTES:
        raise SettingsError(f"{file}: not a file key this store wrote ({KEY_BYTES} bytes, base64url)")
    return value


def key(home: Path, tenant: str, *, rotate: bool = False) -> bytes:
    """The tenant's file key, created (or, with ``rotate``, replaced) with a fresh random one."""
    if not rotate:
        try:
            return load(home, tenant)
        except PermanentIngestError:
            pass
    value = os.urandom(KEY_BYTES)
    secrets.write(path(home, tenant), base64.urlsafe_b64encode(value).decode("ascii"))
    return value
