"""The secrets store: one random password per principal, in a file under ``$MYSIMBDP_HOME/secrets``.

Principals are ``tenant:<name>`` (a tenant's client and worker pool) or ``platform:<role>`` (the
platform's own processes, e.g. ``platform:admin``). A password is created on first use and kept:
``<home>/secrets/<principal>.password``, the folder mode 0700, the file mode 0600, written to a
temporary file and renamed, so a reader never sees half a password. Passwords only ever travel
through these files and the processes' memory: never argv, logs or receipts.

A rotation (``security/access.py``) first keeps the new password aside, ``<principal>.password.next``,
while the services learn it, then :func:`promote` renames it over the current one: processes read
the store at every login, so every login after the rename uses the new password. A rotation cut
short leaves the next file, and the next rotation finishes with that same password.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import SettingsError

PRINCIPAL = re.compile(r"^(tenant|platform):[A-Za-z][A-Za-z0-9_]{0,47}\Z")
PASSWORD_BYTES = 24  # 32 URL-safe characters
PASSWORD = re.compile(r"^[A-Za-z0-9_-]{16,128}\Z")


def folder(home: Path) -> Path:
    return home / "secrets"


def path(home: Path, principal: str) -> Path:
    check_principal(principal)
    return folder(home) / f"{principal}.password"


def next_path(home: Path, principal: str) -> Path:
    return path(home, principal).with_name(f"{principal}.password.next")


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


def pending(home: Path, principal: str) -> str:
    """The password a rotation of ``principal`` is setting: the one kept aside, or a fresh one."""
    file = next_path(home, principal)
    try:
        text = file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    if PASSWORD.match(text):
        return text
    value = secrets.token_urlsafe(PASSWORD_BYTES)
    write(file, value)
    return value


def promote(home: Path, principal: str) -> None:
    """The password kept aside becomes ``principal``'s password (one rename: a reader sees either)."""
    os.replace(next_path(home, principal), path(home, principal))


@contextlib.contextmanager
def rotating(home: Path, principal: str) -> Iterator[None]:
    """Held while ``principal``'s password is rotated: a second rotation waits for the first."""
    file = path(home, principal).with_name(f"{principal}.rotating")
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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
