"""Whether `stack up` runs a home secure or plain: secure by default for a new home.

As Elasticsearch 8 does on a node's first start, a home with no mode recorded and no data becomes
secure when `stack up` first starts its services (the CA, the certificates and the users are made
then), unless the operator says ``--plain`` or ``MYSIMBDP_SECURE=0``. A home that has a mode keeps
it, and a home holding data from before modes were recorded (a plain stack's) stays plain, so no
running stack changes under the people using it. The choice is recorded in the home
(``core/settings.py``'s marker files), so every later command on it (the platform, `tenants
apply`, the producers, the benchmarks) follows it. :func:`choose` is the rule, pure;
:func:`facts` reads what it needs from the home and the network.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from ..core.errors import SettingsError, StackError
from ..core.settings import SECURE_MARKER, Settings, home_mode, mark_plain, mark_secure
from . import lifecycle
from .service import ServicePaths

TLS_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Facts:
    """What decides a home's mode when `stack up` starts it."""

    asked: str | None  # "secure" or "plain" from the command line, None if neither flag was given
    env: bool | None  # MYSIMBDP_SECURE, when it is set
    recorded: str | None  # the mode recorded in the home (SECURE_MARKER / PLAIN_MARKER), None if none yet
    running: bool  # services started from this home run now
    has_data: bool  # a service of this home has data
    # Services already answer at the home's addresses, started some other way (docker compose,
    # another home): True if they speak TLS, False if plaintext; None if nothing answers there.
    joining: bool | None


@dataclass(frozen=True)
class Choice:
    secure: bool
    reason: str  # one line for the operator: why this mode
    record: bool  # write the mode into the home for later commands


def choose(f: Facts) -> Choice:
    """The mode of a `stack up`; raises SettingsError / StackError when the request cannot be met."""
    if f.asked and f.env is not None and f.env != (f.asked == "secure"):
        raise SettingsError(f"MYSIMBDP_SECURE={int(f.env)} and --{f.asked} disagree; drop one of them")
    recorded_secure = f.recorded == SECURE_MARKER
    if f.asked:
        wanted = f.asked == "secure"
        if f.running and wanted != recorded_secure:
            now = "secure" if recorded_secure else "plain"
            raise StackError(f"the stack of this home runs {now}, and running services keep the listeners "
                             "they started with: stop it first (`mysimbdp stack down`), then "
                             f"`mysimbdp stack up --{f.asked}`")
        return Choice(wanted, f"--{f.asked}", record=True)
    if f.env is not None:
        return Choice(f.env, f"MYSIMBDP_SECURE={int(f.env)}", record=f.recorded is None)
    if f.recorded:
        return Choice(recorded_secure, f"this home is {f.recorded} (recorded when its stack first started)",
                      record=False)
    if f.running or f.has_data:
        return Choice(False, "this home holds a plain stack's data, so it stays plain; to switch: "
                             "`mysimbdp stack down`, then `mysimbdp stack up --secure`", record=True)
    if f.joining is not None:
        how = "over TLS" if f.joining else "in plaintext"
        return Choice(f.joining, f"services not started from this home already answer at its addresses {how}: "
                                 "it follows them", record=True)
    return Choice(True, "a new home is secure by default (`stack up --plain` or MYSIMBDP_SECURE=0 for a plain one)",
                  record=True)


def facts(settings: Settings, asked: str | None) -> Facts:
    """The facts of ``settings``' home now; the network is probed only when nothing else decides."""
    env = settings.secure if settings.secure_from == "environment" else None
    recorded = home_mode(settings.home)
    running = bool(lifecycle.started_here(settings))
    has_data = any(_has_data(ServicePaths(settings.home, name)) for name in lifecycle.node_names(settings))
    undecided = asked is None and env is None and recorded is None and not running and not has_data
    joining = speaks_tls(settings.redis_host, settings.redis_port) if undecided else None
    return Facts(asked, env, recorded, running, has_data, joining)


def apply(settings: Settings, choice: Choice) -> Settings:
    """``settings`` in the chosen mode, recorded in the home if the choice says so."""
    if choice.record:
        return mark_secure(settings) if choice.secure else mark_plain(settings)
    return settings


def _has_data(paths: ServicePaths) -> bool:
    return paths.data.is_dir() and any(paths.data.iterdir())


def speaks_tls(host: str, port: int, timeout: float = TLS_PROBE_TIMEOUT_S) -> bool | None:
    """Whether the server at host:port completes a TLS handshake; None if nothing listens there.

    Only the protocol is learnt, so the server's certificate is not checked here: every client of a
    secure home verifies it against the home's CA when it connects for real.
    """
    try:
        sock = socket.create_connection((host, port), timeout)
    except OSError:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(sock, server_hostname=host):
            return True
    except (ssl.SSLError, OSError):  # a plaintext server answers the handshake with garbage or a close
        return False
    finally:
        sock.close()
