"""Flower's settings, checked: where it listens, its URL prefix and who may open it.

Pure parsing; :mod:`core.settings` reads the variables through these functions and
``mysimbdp flower`` its options. Passwords are handed to Flower in its own environment
(``FLOWER_BASIC_AUTH``), never on a command line, so ``ps`` does not show them, and no message here
ever repeats a password it refuses.
"""

from __future__ import annotations

import ipaddress
import re
import stat
from pathlib import Path

from .errors import SettingsError

DEFAULT_ADDRESS = "127.0.0.1"
AUTH_FILE = "flower-auth"  # under MYSIMBDP_HOME: one user:password a line, mode 0600
# Flower splits FLOWER_BASIC_AUTH on "," and each pair on its first ":".
_USER = re.compile(r"^[A-Za-z0-9._@+-]{1,64}\Z")
_PREFIX = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*\Z")
_HOST = re.compile(r"^[A-Za-z0-9.:-]{1,253}\Z")
# The columns of Flower's Tasks page: the worker (``<tenant>@host``), the routing key (the tenant's
# queue) and the arguments (``tenant=...`` first) each tell whose task it is; the long id comes last.
TASKS_COLUMNS = "name,state,args,routing_key,worker,received,runtime,uuid"


def address(text: str, source: str) -> str:
    """A host name or IP address to listen on (0.0.0.0: every interface)."""
    value = text.strip()
    if not _HOST.match(value):
        raise SettingsError(f"{source}: expected a host name or IP address to listen on, got {text!r}")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_prefix(text: str, source: str) -> str:
    """A path such as ``flower`` or ``ops/flower`` (slashes around it dropped); empty for none."""
    value = text.strip().strip("/")
    if value and not _PREFIX.match(value):
        raise SettingsError(f"{source}: expected a URL path such as 'flower' or 'ops/flower' "
                            f"(letters, digits, '.', '_', '~', '-' between slashes), got {text!r}")
    return value


def credentials(text: str, source: str) -> tuple[str, ...]:
    """``user:password`` pairs, separated by commas or new lines; ``#`` starts a comment line."""
    found = []
    for number, line in enumerate(re.split(r"[,\n]", text), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        where = f"{source} (entry {number})"
        if not sep or not _USER.match(user):
            raise SettingsError(f"{where}: expected user:password with a user name of letters, digits, "
                                "'.', '_', '@', '+' or '-'")
        if len(password) < 8:
            raise SettingsError(f"{where}: the password of {user!r} is shorter than 8 characters")
        found.append(f"{user}:{password}")
    if not found:
        raise SettingsError(f"{source}: no user:password in it")
    return tuple(found)


def credentials_file(path: Path, source: str) -> tuple[str, ...]:
    """The pairs in ``path``, which only its owner may read or write (mode 0600 or 0400)."""
    try:
        st = path.stat()
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise SettingsError(f"{source}: {path} has mode {stat.S_IMODE(st.st_mode):04o}, so other users can "
                                f"read its passwords; run `chmod 600 {path}`")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{source}: cannot read {path} ({exc.__class__.__name__}: "
                            f"{getattr(exc, 'strerror', None) or exc})") from None
    return credentials(text, f"{source} ({path})")


def environment(auth: tuple[str, ...]) -> dict[str, str]:
    """Flower's own variables for ``auth``: the one way its passwords reach it."""
    return {"FLOWER_BASIC_AUTH": ",".join(auth)} if auth else {}


def check_exposure(host: str, auth: tuple[str, ...], source: str) -> None:
    """Refuse to show every tenant's queues and tasks to the network without a password."""
    if not auth and not is_loopback(host):
        raise SettingsError(f"{source}: Flower on {host} is reachable from other machines; give it users "
                            f"(MYSIMBDP_FLOWER_AUTH, MYSIMBDP_FLOWER_AUTH_FILE or MYSIMBDP_HOME/{AUTH_FILE}) "
                            f"or listen on 127.0.0.1")


def url(host: str, port: int, prefix: str) -> str:
    """Where an operator opens it (an address that listens everywhere is opened on this machine)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/{prefix + '/' if prefix else ''}"
