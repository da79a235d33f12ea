"""The secrets store: one random password per principal, in a file under ``$MYSIMBDP_HOME/secrets``.

Principals are ``tenant:<name>`` (a tenant's client and worker pool) or ``platform:<role>`` (the
platform's own processes, e.g. ``platform:admin``). A password is created on first use and kept:
``<home>/secrets/<principal>.password``, the folder mode 0700, the file mode 0600, written to a
temporary file and renamed, so a reader never sees half a password. Passwords only ever travel
through these files and the processes' memory: never argv, logs or receipts.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from ..core.errors import SettingsError

PRINCIPAL = re.compile(r"^(tenant|platform):[A-Za-z][A-Za-z0-9_]{0,47}$")
PASSWORD_BYTES = 24  # 32 URL-safe characters
PASSWORD = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def folder(home: Path) -> Path:
    return home / "secrets"


def path(home: Path, principal: str) -> Path:
    check_principal(principal)
    return folder(home) / f"{principal}.password"


def check_principal(principal: str) -> str:
    if not PRINCIPAL.match(principal):
        raise SettingsError(f"principal {principal!r}: expected tenant:<name> or platform:<role> (a letter, then "
                            "letters, digits or _; at most 48)")
    return principal


def password(home: Path, principal: str, *, rotate: bool = False) -> str:
    """The principal's password, created (or, with ``rotate``, replaced) with a fresh random one."""
    file = path(home, principal)
    if not rotate:
        try:
            text = file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = ""
        if text:
            if not PASSWORD.match(text):
                raise SettingsError(f"{file}: not a password this store wrote; delete it to make a new one")
            return text
    value = secrets.token_urlsafe(PASSWORD_BYTES)
    write(file, value)
    return value


def write(file: Path, value: str) -> None:
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(file.parent, 0o700)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (value + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, file)
