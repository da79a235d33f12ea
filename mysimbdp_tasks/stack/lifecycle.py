"""Bringing the local stack up and down, and reporting its state.

``up`` is idempotent and returns only once every service answers a real request; ``down`` stops
only what ``up`` started from this ``$MYSIMBDP_HOME``; ``status`` probes each service. With
``nodes`` > 1 (``stack up --nodes N``) Kafka and Cassandra run as N nodes each (stack/nodes.py), and
a single node (``cassandra2``, ``kafka3``) can be stopped and started by its name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..core import procs
from ..core.errors import StackCancelled, StackError
from ..core.settings import Settings
from ..security import ca, kafka_access, secrets
from . import nodes as nodes_mod
from . import ring_auth
from .cassandra import Cassandra
from .kafka import Kafka
from .prometheus import Prometheus
from .redis import Redis
from .service import Echo, Service

log = logging.getLogger(__name__)

SERVICES = ("redis", "kafka", "cassandra")
OPTIONAL = ("prometheus",)  # started only when asked for; stopped and shown once started
_CLASSES: dict[str, type[Service]] = {"redis": Redis, "kafka": Kafka, "cassandra": Cassandra, "prometheus": Prometheus}
PROBE_TIMEOUT_S = 5.0
STATUS_PROBE_TIMEOUT_S = 3.0
POLL_INTERVAL_S = 0.5
PROGRESS_EVERY_S = 30.0


@dataclass(frozen=True)
class ServiceState:
    name: str
    running: bool  # a process serves the endpoint (ours, or one started some other way)
    answering: bool  # it answered a real request just now
    endpoint: str
    pid: int | None  # only for a process started by `up`
    detail: str


def all_up(states: Sequence[ServiceState]) -> bool:
    return bool(states) and all(s.running and s.answering for s in states)


# up ---------------------------------------------------------------------------------------------


def up(settings: Settings, services: Sequence[str] | None = None, echo: Callable[[str], None] = print,
       nodes: int | None = None) -> None:
    """Start the chosen services (reusing running ones) and return once each answers.

    The services start concurrently: Cassandra alone takes tens of seconds, so Kafka and Redis come
    up while it does. A ring's other Cassandra nodes start once its seed (node 1) answers. ``nodes``
    (None: as last time on this home, 1 at first) is remembered for later commands. Raises
    StackError naming every service that failed, with its log tail.
    """
    if nodes is not None:
        nodes_mod.write_count(settings.home, nodes)
    chosen = _services(settings, services if services is not None else node_names(settings))
    say = _serialized(echo)
    started = time.monotonic()
    if settings.secure:
        # Before the threads start: every server reads the one certificate.
        files = ca.ensure(settings.home, stack_hosts(settings))
        # The platform's passwords too: the nodes of a cluster would each make them at once.
        for principal in kafka_access.platform_principals():
            secrets.password(settings.home, principal)
        say(f"stack: secure mode; clients trust the CA in {files.ca_cert}")
    seeds = [svc for svc in chosen if not (isinstance(svc, Cassandra) and svc.node > 1)]
    joining = [svc for svc in chosen if svc not in seeds]
    for wave in (seeds, joining):
        if wave:
            _up_wave(settings, wave, say)
    count = nodes_mod.read_count(settings.home)
    if settings.secure and count > 1 and any(isinstance(svc, Cassandra) for svc in chosen):
        ring_auth.secure_ring(settings, count, say)  # logins on the whole ring (stack/ring_auth.py)
    say(f"stack: {', '.join(svc.name for svc in chosen)} up in {time.monotonic() - started:.1f} s")


def node_names(settings: Settings) -> list[str]:
    """Every service of the stack, each node of a cluster by its name (kafka, kafka2, ...)."""
    count = nodes_mod.read_count(settings.home)
    return [nodes_mod.node_name(kind, node) for kind in SERVICES
            for node in range(1, (count if kind in nodes_mod.CLUSTERED else 1) + 1)]


def _up_wave(settings: Settings, chosen: list[Service], say: Echo) -> None:
    errors: list[str] = []
    # Set on Ctrl-C so the waiting threads give up at once; servers already launched keep
    # starting, and the next `up` waits for them.
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="stack-up")
    try:
        futures = [(svc, pool.submit(_bring_up, svc, say, cancel)) for svc in chosen]
        for svc, future in futures:
            try:
                future.result()
            except StackError as exc:
                errors.append(str(exc))
            except Exception as exc:  # any failure must still name its service
                log.exception("%s: unexpected failure while starting", svc.name)
                errors.append(_failure(svc, f"{type(exc).__name__}: {exc}", 0))
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if errors:
        raise StackError("\n\n".join(errors))


def stack_hosts(settings: Settings) -> list[str]:
    """Every address the stack's services are reached at: the names its certificate must carry,
    each node of a cluster's too (the nodes check each other's certificate by address)."""
    count = nodes_mod.read_count(settings.home)
    nodes = {nodes_mod.node_host(first, node) for first in (settings.kafka_bootstrap[0][0],
                                                             settings.cassandra_hosts[0][0])
             for node in range(1, count + 1)}
    return sorted({settings.redis_host, *(h for h, _ in settings.kafka_bootstrap), *settings.cassandra_contact_points,
                   *nodes})


def _bring_up(svc: Service, say: Echo, cancel: threading.Event) -> None:
    pid = svc.live_pid()
    if pid is not None:
        try:
            say(f"{svc.name}: already running (pid {pid}, {svc.probe(PROBE_TIMEOUT_S)})")
            svc.after_ready(say)
            return
        except Exception:  # noqa: BLE001 - not answering yet is what we wait for below
            say(f"{svc.name}: running (pid {pid}) but not answering yet; waiting ...")
        waited = time.monotonic()
        detail = _wait_ready(svc, pid, waited, 0, say, cancel)
        say(f"{svc.name}: ready after {time.monotonic() - waited:.1f} s more ({detail}) on {svc.endpoint}")
        svc.after_ready(say)
        return
    svc.paths.pidfile.unlink(missing_ok=True)  # stale: its process is gone
    if not procs.port_free(svc.bind_host, svc.port) and _answers(svc):
        # Started some other way (docker compose, another MYSIMBDP_HOME): use it, leave it be.
        say(f"{svc.name}: {svc.endpoint} already answers, not started from {svc.settings.home}; using it")
        return
    _check_ports(svc)
    offset = procs.open_log_section(svc.paths.log, f"starting {svc.name}")
    started = time.monotonic()
    try:
        svc.prepare(say)
        pid = svc.launch()
    except StackError as exc:
        raise StackError(_failure(svc, str(exc).removeprefix(f"{svc.name}: "), offset)) from exc
    say(f"{svc.name}: starting (pid {pid}) ...")
    try:
        detail = _wait_ready(svc, pid, started, offset, say, cancel)
    except StackError:
        # A half-started server would block the ports of the next attempt.
        procs.stop(pid, 10.0)
        svc.paths.pidfile.unlink(missing_ok=True)
        raise
    svc.after_ready(say)
    say(f"{svc.name}: ready in {time.monotonic() - started:.1f} s ({detail}) on {svc.endpoint}")


def _wait_ready(
    svc: Service, pid: int, started: float, offset: int | None, say: Echo, cancel: threading.Event
) -> str:
    """Probe until the server answers; fail early if it exits, late if it never answers."""
    deadline = started + svc.ready_timeout
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    last_error = "no answer yet"
    while True:
        if cancel.is_set():
            raise StackCancelled(svc.name)
        if not procs.is_alive(pid):
            code = procs.exit_code(pid)
            how = f" with code {code}" if code is not None else ""
            raise StackError(_failure(svc, f"the server (pid {pid}) exited{how} before answering", offset))
        remaining = deadline - time.monotonic()
        try:
            return svc.probe(max(1.0, min(PROBE_TIMEOUT_S, remaining)))
        except Exception as exc:  # noqa: BLE001 - any failed probe means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"[:300]
        now = time.monotonic()
        if now >= deadline:
            raise StackError(_failure(
                svc, f"no answer within {svc.ready_timeout:.0f} s (pid {pid}; last probe: {last_error})", offset
            ))
        if now >= next_progress:
            say(f"{svc.name}: still starting ({now - started:.0f} s) ...")
            next_progress = now + PROGRESS_EVERY_S
        cancel.wait(POLL_INTERVAL_S)


def _answers(svc: Service) -> bool:
    try:
        svc.probe(PROBE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - whatever holds the port, it is not a usable service
        return False
    return True


def _check_ports(svc: Service) -> None:
    for role, port in svc.ports().items():
        if not procs.port_free(svc.bind_host, port):
            raise StackError(_failure(
                svc,
                f"{role} port {svc.bind_host}:{port} is already in use by "
                f"{procs.port_holder(svc.bind_host, port)}; "
                f"stop that process{svc.port_advice(role)}",
                None,
            ))


def _failure(svc: Service, reason: str, offset: int | None) -> str:
    """A StackError message: the service, what went wrong, and the tail of its log.

    ``offset`` is where the log of the failed start begins; None when nothing was started, as
    an older run's log would only mislead.
    """
    if offset is None:
        return f"{svc.name} failed: {reason}\n(nothing was started; earlier runs log to {svc.paths.log})"
    tail = procs.log_tail(svc.paths.log, offset)
    if not tail:
        return f"{svc.name} failed: {reason}\n(nothing in {svc.paths.log} yet)"
    return (
        f"{svc.name} failed: {reason}\n"
        f"--- last {procs.TAIL_LINES} lines of {svc.paths.log} ---\n{tail}\n--- end of {svc.name} log ---"
    )


# down -------------------------------------------------------------------------------------------


def down(settings: Settings, wipe: bool = False, echo: Callable[[str], None] = print,
         services: Sequence[str] | None = None) -> None:
    """Stop the services ``up`` started (SIGTERM, then SIGKILL after a grace period).

    Processes not started by ``up`` from this MYSIMBDP_HOME are left alone. ``wipe`` also deletes
    their data (jars, configuration and logs are kept).
    """
    chosen = _services(settings, _with_started(settings, services))
    say = _serialized(echo)
    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="stack-down") as pool:
        for future in [pool.submit(_bring_down, svc, say) for svc in chosen]:
            future.result()
    if wipe:
        for svc in chosen:
            svc.wipe()
            say(f"{svc.name}: data deleted ({svc.paths.data})")


def _bring_down(svc: Service, say: Echo) -> None:
    pid = svc.live_pid()
    if pid is None:
        svc.paths.pidfile.unlink(missing_ok=True)
        note = ""
        if not procs.port_free(svc.bind_host, svc.port):
            holder = procs.port_holder(svc.bind_host, svc.port)
            note = f"; port {svc.bind_host}:{svc.port} is held by {holder}, not started here, left alone"
        say(f"{svc.name}: not running{note}")
        return
    say(f"{svc.name}: stopping (pid {pid}) ...")
    started = time.monotonic()
    outcome = procs.stop(pid, svc.stop_timeout)
    svc.paths.pidfile.unlink(missing_ok=True)
    how = f"killed after {svc.stop_timeout:.0f} s" if outcome == "killed" else "stopped"
    say(f"{svc.name}: {how} in {time.monotonic() - started:.1f} s")


def restart(svc: Service, echo: Callable[[str], None] = print) -> None:
    """Stop ``svc`` (if ``up`` started it) and start it again with its configuration as it is now.

    Returns once it answers; raises StackError, with its log tail, if it does not.
    """
    say = _serialized(echo)
    _bring_down(svc, say)
    _bring_up(svc, say, threading.Event())


# status -----------------------------------------------------------------------------------------


def status(settings: Settings) -> list[ServiceState]:
    """The state of every service, probing each with a real request (concurrently, a few s at most)."""
    chosen = _services(settings, _with_started(settings, None))
    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="stack-status") as pool:
        return list(pool.map(_state, chosen))


def _state(svc: Service) -> ServiceState:
    pid = svc.live_pid()
    try:
        detail, answering = svc.probe(STATUS_PROBE_TIMEOUT_S), True
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
        detail, answering = f"{type(exc).__name__}: {exc}"[:200], False
    running = pid is not None
    if pid is None:
        if answering:
            running = True
            detail += f"; not started from {svc.settings.home}"
        elif not procs.port_free(svc.bind_host, svc.port):
            detail = f"port held by {procs.port_holder(svc.bind_host, svc.port)}"
        else:
            detail = "not running"
    return ServiceState(svc.name, running, answering, svc.endpoint, pid, detail)


def started_here(settings: Settings) -> list[str]:
    """The services that run from this MYSIMBDP_HOME now (started by its `up`), without probing them."""
    return [svc.name for svc in _services(settings, _with_started(settings, None)) if svc.live_pid() is not None]


# helpers ----------------------------------------------------------------------------------------


def _with_started(settings: Settings, names: Sequence[str] | None) -> Sequence[str]:
    """``names``, or by default the services plus each optional one that was started here."""
    if names is not None:
        return names
    return (*node_names(settings), *(n for n in OPTIONAL if _CLASSES[n](settings).paths.pidfile.exists()))


def _services(settings: Settings, names: Sequence[str]) -> list[Service]:
    count = nodes_mod.read_count(settings.home)
    parsed = [(name, *nodes_mod.parse(name)) for name in dict.fromkeys(names)]
    unknown = [name for name, kind, node in parsed if kind not in _CLASSES or node > count]
    if unknown:
        raise StackError(f"unknown service(s) {', '.join(unknown)}; choose from "
                         f"{', '.join((*node_names(settings), *OPTIONAL))} (`stack up --nodes N` for more nodes)")
    return [_service(settings, kind, node, count) for _, kind, node in parsed]


def _service(settings: Settings, kind: str, node: int, nodes: int) -> Service:
    if kind == "cassandra":
        return Cassandra(settings, node=node, nodes=nodes)
    if kind == "kafka":
        return Kafka(settings, node=node, nodes=nodes)
    return _CLASSES[kind](settings)


def _serialized(echo: Callable[[str], None]) -> Echo:
    """``echo`` made safe to call from the per-service threads (whole lines, never interleaved)."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            echo(line)
        log.debug("%s", line)

    return say
