"""The platform's configuration: one frozen object built from the environment at start-up.

Every endpoint defaults to the local stack (``mysimbdp stack up``), so the same code runs against an
existing cluster by setting ``MYSIMBDP_REDIS_URL``, ``MYSIMBDP_KAFKA_BOOTSTRAP`` and
``MYSIMBDP_CASSANDRA_HOSTS``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse

from . import flower
from .envvalues import (
    count as _count,
)
from .envvalues import (
    flag as _flag,
)
from .envvalues import (
    flower_auth as _flower_auth,
)
from .envvalues import (
    hostport as _hostport,
)
from .envvalues import (
    node_name as _node_name,
)
from .envvalues import (
    number as _number,
)
from .envvalues import (
    owners as _owners,
)
from .envvalues import (
    port as _port,
)
from .envvalues import (
    replication as _replication,
)
from .errors import SettingsError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_CASSANDRA_HOSTS = "127.0.0.1:9042"

# Defaults of the processes' command-line options. They live in the pure core so the CLI parser can
# show them without importing the parts they tune: `mysimbdp watch` must not load Kafka or the
# Cassandra driver just to parse its arguments.
DEFAULT_CONCURRENCY = 2  # processes per tenant worker pool
DEFAULT_STABLE_SECONDS = 2.0  # a staged file whose size holds this long is complete
DEFAULT_BATCH_MESSAGES = 2000  # the bridge's largest micro-batch (benchmarks/README.md, "Micro-batch size")
DEFAULT_BATCH_WAIT_MS = 60.0  # the bridge's longest wait to fill one (benchmarks/README.md, "Micro-batch size")
DEFAULT_IDLE_AFTER_S = 60.0  # the monitor counts a stream tenant idle after this long without messages
DEFAULT_COOLDOWN_S = 30.0  # the manager leaves a pool alone this long after a change
DEFAULT_BATCH_IDLE_AFTER_S = 30.0  # the monitor shrinks a pool once its batch queue is empty this long
DEFAULT_FLOWER_PORT = 5555
# Where the supervisor serves the platform's Prometheus metrics (port 0: not served).
DEFAULT_METRICS_ADDR = "127.0.0.1:9464"
# Seconds a delivered, unacknowledged task may go without its worker renewing its lease before any
# worker hands it out again (worker/lease.py): how long a killed worker's tasks wait.
DEFAULT_VISIBILITY_TIMEOUT = 30
DEFAULT_MAX_RESENDS = 3  # times the sweeper sends one lost task again before the file fails
# Times one task may come back after the worker running it died (OOM kill, native crash) before it
# is given up with reason worker_lost. High on purpose: under chaos a pool is killed every few
# seconds, and a task that was merely unlucky must not be given up.
DEFAULT_MAX_REDELIVERIES = 10
DEFAULT_SLOT_LEASE_SECONDS = 30.0  # a dead worker's batch slot is free again this long after its last renewal
# Kafka topics: replicas of each partition, and how many must have a write before it counts. One
# and one fit the local one-broker stack; a real cluster wants 3 and 2.
DEFAULT_TOPIC_REPLICATION = 1
DEFAULT_TOPIC_MIN_INSYNC = 1

# `mysimbdp stack up` leaves one of these files in MYSIMBDP_HOME, saying which mode it chose for the
# home (stack/mode.py): every later command on that home follows it unless MYSIMBDP_SECURE says otherwise.
SECURE_MARKER = "secure"
PLAIN_MARKER = "plain"

# Read outside the platform's processes: by the producers and the benchmarks, for their sample data.
OTHER_VARIABLES = ("MYSIMBDP_SAMPLES",)


def known_variables() -> set[str]:
    """Every MYSIMBDP_* variable some setting reads: the names this module spells out, plus the others."""
    try:
        source = "".join(Path(__file__).with_name(name).read_text(encoding="utf-8")
                         for name in ("settings.py", "envvalues.py"))
    except OSError:  # no source to read (a frozen build): nothing to compare with
        return set()
    return set(re.findall(r'"(MYSIMBDP_[A-Z0-9_]+)"', source)) | set(OTHER_VARIABLES)


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each MYSIMBDP_* variable no setting reads, e.g. a misspelt one, which would be ignored."""
    env = os.environ if env is None else env
    known = known_variables()
    if not known:
        return []
    return [f"{var} is not a mysimbdp setting and is ignored{_suggest(var, known)}"
            for var in sorted(env) if var.startswith("MYSIMBDP_") and var not in known]


def _suggest(var: str, known: set[str]) -> str:
    close = difflib.get_close_matches(var, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def secure_redis_url(url: str, home: Path) -> str:
    """``url`` over TLS, verifying the local CA (``<home>/tls/ca.crt``) unless it names its own.

    The query parameters are read by redis-py's ``from_url``, kombu and Celery alike, so every Redis
    client of the platform takes TLS from this one URL.
    """
    parts = urlparse(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("ssl_cert_reqs", "required")
    query.setdefault("ssl_ca_certs", str(home / "tls" / "ca.crt"))
    return parts._replace(scheme="rediss", query=urlencode(query)).geturl()


def home_mode(home: Path) -> str | None:
    """The mode `stack up` recorded for ``home``: SECURE_MARKER, PLAIN_MARKER, or None (never decided)."""
    if (home / SECURE_MARKER).exists():
        return SECURE_MARKER
    return PLAIN_MARKER if (home / PLAIN_MARKER).exists() else None


def mark_secure(settings: Settings) -> Settings:
    """``settings`` in secure mode, remembered in its home (the marker file) for later commands."""
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / SECURE_MARKER).write_text("secure mode: see `mysimbdp stack up --secure`\n")
    (settings.home / PLAIN_MARKER).unlink(missing_ok=True)
    return dataclasses.replace(settings, secure=True, redis_url=secure_redis_url(settings.redis_url, settings.home))


def mark_plain(settings: Settings) -> Settings:
    """``settings`` in plain mode, remembered in its home (the marker file) for later commands."""
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / PLAIN_MARKER).write_text("plain mode: see `mysimbdp stack up --plain`\n")
    (settings.home / SECURE_MARKER).unlink(missing_ok=True)
    if not settings.secure:
        return settings
    # Built again rather than undoing secure_redis_url: the URL as the environment gives it.
    return Settings.from_env({**os.environ, "MYSIMBDP_HOME": str(settings.home), "MYSIMBDP_SECURE": "0"})


@dataclass(frozen=True)
class Settings:
    home: Path
    redis_url: str
    kafka_bootstrap: tuple[tuple[str, int], ...]
    cassandra_hosts: tuple[tuple[str, int], ...]
    replication: str  # e.g. "SimpleStrategy:1" or "NetworkTopologyStrategy:dc1=3"
    kafka_partitions: int
    # The data centre the sink prefers; "" = the one of the contact point the driver reaches first.
    cassandra_local_dc: str = ""
    topic_replication: int = DEFAULT_TOPIC_REPLICATION  # replicas of each partition of the platform's topics
    topic_min_insync: int = DEFAULT_TOPIC_MIN_INSYNC  # min.insync.replicas of those topics
    chunk_bytes: int = 8 * 1024 * 1024
    # CSV chunks read by column (core/csvcolumns.py) where that reads the same; False: row by row only.
    csv_by_column: bool = True
    # A gzip file may inflate to at most this many times its tenant's max_file_size (a bomb is refused).
    gzip_ratio: float = 20.0
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    stall_seconds: float = 60.0
    report_every: float = 5.0  # seconds per reporting window of the stream workers
    stream_stall_seconds: float = 10.0  # a micro-batch not written this long is looked for in the broker
    stream_max_pending: int = 40  # micro-batches in flight before a bridge pauses fetching
    stream_bridges: int = 1  # bridge processes per stream tenant, in its one consumer group
    max_resends: int = DEFAULT_MAX_RESENDS
    max_redeliveries: int = DEFAULT_MAX_REDELIVERIES
    # Batch slots (batch/slots.py): files running at once, platform-wide (0: no limit), and how long
    # a slot outlives the last renewal of its file's worker.
    batch_slots: int = 0
    slot_lease_seconds: float = DEFAULT_SLOT_LEASE_SECONDS
    # Per-tenant staging folders: tenant -> the uid that must own a file in staging/<tenant>/
    # (empty: no owner check); flat_staging False refuses files directly in staging/.
    staging_owners: tuple[tuple[str, int], ...] = ()
    flat_staging: bool = True
    metrics_addr: tuple[str, int] = ("127.0.0.1", 9464)  # the supervisor's /metrics (port 0: off)
    # Flower, the operators' web page of queues, workers and tasks; its users' passwords are never shown.
    flower_address: str = flower.DEFAULT_ADDRESS
    flower_port: int = DEFAULT_FLOWER_PORT
    flower_url_prefix: str = ""
    flower_auth: tuple[str, ...] = field(default=(), repr=False)
    flower_auth_problem: str = ""  # why the users could not be read: Flower is refused until it is fixed
    # Secure mode (`mysimbdp stack up --secure`, or MYSIMBDP_SECURE=1): the services authenticate
    # every client and authorize it per tenant. ``principal`` is who this process is towards them:
    # ``platform:admin`` for the platform's processes, ``tenant:<name>`` for a tenant's worker pool.
    secure: bool = False
    principal: str = "platform:admin"
    # What decided ``secure``: "environment" (MYSIMBDP_SECURE), "home" (the marker `stack up` left) or
    # "default" (neither: plain until `stack up` decides for the home, stack/mode.py).
    secure_from: str = "default"
    # Several hosts (docs/deploy.md): the data folders (staging, processing, done, failed, rejected)
    # live in ``data_dir``, a file system every host mounts at the same path; run state and logs stay
    # in ``home``, one per host. None: the data folders are in ``home`` (one host). ``node_name``
    # names this host's processes towards the others (worker pools are ``<tenant>@<node>``).
    data_dir: Path | None = None
    node_name: str = ""
    control: bool = True  # the supervisor runs the monitor and the manager (False: another host does)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("MYSIMBDP_HOME", ".mysimbdp")).expanduser().resolve()
        redis_url = env.get("MYSIMBDP_REDIS_URL", DEFAULT_REDIS_URL)
        parsed = urlparse(redis_url)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise SettingsError(f"MYSIMBDP_REDIS_URL: expected redis://host:port/db, got {redis_url!r}")
        kafka = tuple(
            _hostport(part, "MYSIMBDP_KAFKA_BOOTSTRAP", 9092)
            for part in env.get("MYSIMBDP_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP).split(",")
            if part.strip()
        )
        cassandra = tuple(
            _hostport(part, "MYSIMBDP_CASSANDRA_HOSTS", 9042)
            for part in env.get("MYSIMBDP_CASSANDRA_HOSTS", DEFAULT_CASSANDRA_HOSTS).split(",")
            if part.strip()
        )
        if not kafka or not cassandra:
            raise SettingsError("MYSIMBDP_KAFKA_BOOTSTRAP and MYSIMBDP_CASSANDRA_HOSTS must not be empty")
        replication = _replication(env)
        local_dc = env.get("MYSIMBDP_CASSANDRA_LOCAL_DC", "").strip()
        if local_dc and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", local_dc):
            raise SettingsError(f"MYSIMBDP_CASSANDRA_LOCAL_DC: expected a data-centre name (letters, digits, "
                                f"'_', '.', '-'), got {local_dc!r}")
        secure = _flag(env, "MYSIMBDP_SECURE", home_mode(home) == SECURE_MARKER)
        secure_from = "environment" if "MYSIMBDP_SECURE" in env else "home" if home_mode(home) else "default"
        if secure:
            redis_url = secure_redis_url(redis_url, home)
        partitions = _count(env, "MYSIMBDP_KAFKA_PARTITIONS", 3)
        topic_replication = _count(env, "MYSIMBDP_TOPIC_REPLICATION", DEFAULT_TOPIC_REPLICATION)
        topic_min_insync = _count(env, "MYSIMBDP_TOPIC_MIN_INSYNC", min(DEFAULT_TOPIC_MIN_INSYNC, topic_replication))
        if topic_min_insync > topic_replication:
            raise SettingsError(f"MYSIMBDP_TOPIC_MIN_INSYNC: {topic_min_insync} is more than "
                                f"MYSIMBDP_TOPIC_REPLICATION ({topic_replication}): no write could be acknowledged")
        chunk_mb = _number(env, "MYSIMBDP_CHUNK_MB", 8)
        gzip_ratio = _number(env, "MYSIMBDP_GZIP_RATIO", 20)
        visibility = _count(env, "MYSIMBDP_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT)  # whole seconds
        stall = _number(env, "MYSIMBDP_STALL_SECONDS", 60)
        report_every = _number(env, "MYSIMBDP_REPORT_EVERY", 5)
        stream_stall = _number(env, "MYSIMBDP_STREAM_STALL_SECONDS", 10)
        max_pending = _count(env, "MYSIMBDP_STREAM_MAX_PENDING", 40)
        bridges = _count(env, "MYSIMBDP_STREAM_BRIDGES", 1)
        resends = _count(env, "MYSIMBDP_MAX_RESENDS", DEFAULT_MAX_RESENDS)
        redeliveries = _count(env, "MYSIMBDP_MAX_REDELIVERIES", DEFAULT_MAX_REDELIVERIES)
        flower_auth, flower_auth_problem = _flower_auth(env, home)
        metrics_addr = _hostport(env.get("MYSIMBDP_METRICS_ADDR", DEFAULT_METRICS_ADDR), "MYSIMBDP_METRICS_ADDR", 9464)
        data_dir = env.get("MYSIMBDP_DATA_DIR", "").strip()
        return cls(
            data_dir=Path(data_dir).expanduser().resolve() if data_dir else None,
            node_name=_node_name(env),
            control=_flag(env, "MYSIMBDP_CONTROL", True),
            metrics_addr=metrics_addr,
            flower_address=flower.address(env.get("MYSIMBDP_FLOWER_ADDRESS", flower.DEFAULT_ADDRESS),
                                          "MYSIMBDP_FLOWER_ADDRESS"),
            flower_port=_port(env, "MYSIMBDP_FLOWER_PORT", DEFAULT_FLOWER_PORT),
            flower_url_prefix=flower.url_prefix(env.get("MYSIMBDP_FLOWER_URL_PREFIX", ""),
                                                "MYSIMBDP_FLOWER_URL_PREFIX"),
            flower_auth=flower_auth,
            flower_auth_problem=flower_auth_problem,
            stream_stall_seconds=stream_stall,
            stream_max_pending=max_pending,
            stream_bridges=bridges,
            max_resends=int(resends),
            max_redeliveries=int(redeliveries),
            batch_slots=_count(env, "MYSIMBDP_BATCH_SLOTS", 0) if env.get("MYSIMBDP_BATCH_SLOTS", "").strip() else 0,
            slot_lease_seconds=_number(env, "MYSIMBDP_SLOT_LEASE_SECONDS", DEFAULT_SLOT_LEASE_SECONDS),
            staging_owners=_owners(env.get("MYSIMBDP_STAGING_OWNERS", "")),
            flat_staging=_flag(env, "MYSIMBDP_FLAT_STAGING", True),
            csv_by_column=_flag(env, "MYSIMBDP_CSV_BY_COLUMN", True),
            secure=secure,
            secure_from=secure_from,
            stall_seconds=stall,
            report_every=report_every,
            chunk_bytes=int(chunk_mb * 1024 * 1024),
            gzip_ratio=gzip_ratio,
            visibility_timeout=visibility,
            home=home,
            redis_url=redis_url,
            kafka_bootstrap=kafka,
            cassandra_hosts=cassandra,
            replication=replication,
            cassandra_local_dc=local_dc,
            kafka_partitions=partitions,
            topic_replication=topic_replication,
            topic_min_insync=topic_min_insync,
        )

    @property
    def mode(self) -> str:
        """Secure or plain, and what decided it: one line for operators (`stack status`, `status`)."""
        what = ("secure (TLS on every listener, a login for every client)" if self.secure
                else "plain (no TLS, no logins)")
        marker = self.home / (SECURE_MARKER if self.secure else PLAIN_MARKER)
        how = {"environment": f"MYSIMBDP_SECURE={int(self.secure)}", "home": f"recorded in {marker}",
               "default": "no mode recorded for this home yet: `mysimbdp stack up` makes a new home secure"}
        return f"{what}; {how.get(self.secure_from, self.secure_from)}"

    # The lease of delivered tasks (worker/lease.py) ----------------------------------------------
    @property
    def lease_renew_seconds(self) -> float:
        """How often a worker renews its held tasks: six renewals fit in one visibility timeout."""
        return max(0.5, min(5.0, self.visibility_timeout / 6))

    @property
    def restore_every_seconds(self) -> int:
        """How often a worker scans for tasks whose lease ran out (kombu takes whole seconds)."""
        return max(1, min(5, self.visibility_timeout // 6))

    def staging_owner(self, tenant: str) -> int | None:
        return dict(self.staging_owners).get(tenant)

    # Folders: the data folders are shared by every host, the rest is this host's own ----------
    @property
    def data(self) -> Path:
        """The root of staging/, processing/, done/, failed/ and rejected/: MYSIMBDP_DATA_DIR, else the home."""
        return self.data_dir or self.home

    @property
    def node(self) -> str:
        """This host's name among the platform's hosts: MYSIMBDP_NODE_NAME, else the machine's host name."""
        return self.node_name or socket.gethostname()

    @property
    def staging(self) -> Path:
        return self.data / "staging"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def flower_url(self) -> str:
        """Where an operator opens Flower (as the settings give it; `mysimbdp flower` options may differ)."""
        return flower.url(self.flower_address, self.flower_port, self.flower_url_prefix)

    def flower_users(self) -> tuple[str, ...]:
        """Flower's users (user:password), or the problem with their setting, raised."""
        if self.flower_auth_problem:
            raise SettingsError(self.flower_auth_problem)
        return self.flower_auth

    # Endpoints in the forms the client libraries take ------------------------------------------
    @property
    def kafka_bootstrap_str(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.kafka_bootstrap)

    @property
    def cassandra_contact_points(self) -> list[str]:
        return [h for h, _ in self.cassandra_hosts]

    @property
    def cassandra_port(self) -> int:
        return self.cassandra_hosts[0][1]

    @property
    def redis_port(self) -> int:
        return urlparse(self.redis_url).port or 6379

    @property
    def metrics_url(self) -> str | None:
        """The platform's Prometheus endpoint, or None if it is turned off."""
        host, port = self.metrics_addr
        return f"http://{host}:{port}/metrics" if port else None

    @property
    def redis_host(self) -> str:
        return urlparse(self.redis_url).hostname or "127.0.0.1"
