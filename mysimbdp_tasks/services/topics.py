"""Kafka topics of the platform: ``<tenant>.ingest``, ``<tenant>.dead``, ``<tenant>.reports``,
``mysimbdp.reports`` and ``mysimbdp.control``."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from ..core import names, sinks
from ..core.errors import ServiceUnavailable
from ..core.settings import Settings
from ..core.tenants import Tenant
from ..security import kafka_access, tls

log = logging.getLogger(__name__)

REPORTS = names.REPORTS_TOPIC
CONTROL = names.CONTROL_TOPIC


def admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str, client_id="mysimbdp-admin",
                            request_timeout_ms=30000, **tls.command_kafka_options(settings))


@dataclass
class TopicPlan:
    """What applying tenants changes in Kafka; ``problems`` refuse the whole apply."""

    create: dict[str, int] = field(default_factory=dict)  # topic -> partitions
    grow: dict[str, tuple[int, int]] = field(default_factory=dict)  # topic -> (partitions now, wanted)
    problems: list[str] = field(default_factory=list)
    # topic -> (replicas, min.insync.replicas) of the topics to create; an existing topic's
    # min.insync.replicas is set in ``insync`` (its replica count changes only by reassignment).
    copies: dict[str, tuple[int, int]] = field(default_factory=dict)
    insync: dict[str, int] = field(default_factory=dict)

    def changes(self, topic_names: Iterable[str]) -> list[str]:
        """The changes to ``topic_names``, in words."""
        chosen = set(topic_names)
        out = [f"create topic {t} ({n} partitions)" for t, n in sorted(self.create.items()) if t in chosen]
        out += [f"topic {t}: min.insync.replicas {n}" for t, n in sorted(self.insync.items()) if t in chosen]
        return out + [f"topic {t}: {have} -> {want} partitions" for t, (have, want) in sorted(self.grow.items())
                      if t in chosen]


def tenant_topics(t: Tenant) -> dict[str, int]:
    """topic -> partition count of every topic one tenant owns (ingest, dead letters, reports, sink topics)."""
    return {t.ingest_topic: t.partitions, t.dead_topic: 1, names.reports_topic(t.name): 1,
            **{sinks.topic(t.name, s.name): s.partitions for s in t.sinks if s.kind == "kafka"}}


def wanted(tenants: Iterable[Tenant]) -> dict[str, int]:
    """topic -> partition count for the given tenants plus the platform topics."""
    topics = {REPORTS: 1, CONTROL: 1}
    for t in tenants:
        topics.update(tenant_topics(t))
    return topics


def copies(settings: Settings, tenants: Iterable[Tenant]) -> dict[str, tuple[int, int]]:
    """topic -> (replicas, min.insync.replicas): each tenant's own (core/replication.py), else the platform's,
    for exactly the topics :func:`wanted` names."""
    out = dict.fromkeys((REPORTS, CONTROL), (settings.topic_replication, settings.topic_min_insync))
    for t in tenants:
        pair = (t.replication.topic_replicas(settings.topic_replication),
                t.replication.topic_min_insync(settings.topic_min_insync))
        out.update(dict.fromkeys(tenant_topics(t), pair))
    return out


def unreachable(settings: Settings, exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"cannot reach Kafka at {settings.kafka_bootstrap_str} ({exc}); nothing was changed. "
                              "Start it (`mysimbdp stack up kafka`) or set MYSIMBDP_KAFKA_BOOTSTRAP")


def plan(settings: Settings, tenants: Iterable[Tenant]) -> TopicPlan:
    """Compare the topics wanted with Kafka's; raise ServiceUnavailable, changing nothing, if Kafka is away."""
    chosen = list(tenants)
    want, want_copies = wanted(chosen), copies(settings, chosen)
    try:
        client = admin(settings)
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc
    try:
        existing = set(client.list_topics())
        known = sorted(existing & set(want))
        # kafka-python 3 names a topic "name" (2.x said "topic")
        found = client.describe_topics(known) if known else []
        have = {d.get("name", d.get("topic")): len(d["partitions"]) for d in found}
        replicas = {d.get("name", d.get("topic")): len(d["partitions"][0]["replica_nodes"])
                    for d in found if d["partitions"]}
        insync = _min_insync(client, known)
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc
    finally:
        client.close()
    p = TopicPlan()
    for topic, n in want.items():
        rf, min_isr = want_copies[topic]
        if topic not in have:
            p.create[topic] = n
            p.copies[topic] = (rf, min_isr)
            continue
        if insync.get(topic) != min_isr:
            p.insync[topic] = min_isr
        if replicas.get(topic, rf) != rf:
            log.warning("topic %s has %s replicas and the config asks for %s; Kafka changes a topic's replicas only "
                        "by reassigning its partitions (kafka-reassign-partitions), so they are left as they are",
                        topic, replicas[topic], rf)

        elif have[topic] < n:
            p.grow[topic] = (have[topic], n)
        elif have[topic] > n:
            p.problems.append(f"topic {topic} has {have[topic]} partitions and the config asks for {n}; Kafka cannot "
                              f"take partitions away: set partitions to {have[topic]} or more")
    return p


def _min_insync(client: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """topic -> its min.insync.replicas as Kafka has it (set on the topic, or the broker's default)."""
    if not topics:
        return {}
    wanted = [ConfigResource(ConfigResourceType.TOPIC, t, {"min.insync.replicas": None}) for t in topics]
    found = client.describe_configs(wanted, config_filter="all")
    by_topic: dict[str, dict[str, Any]] = next(iter(found.values()), {}) if isinstance(found, dict) else {}
    return {topic: int(configs["min.insync.replicas"]["value"]) for topic, configs in by_topic.items()
            if "min.insync.replicas" in configs}


def execute(settings: Settings, p: TopicPlan) -> list[str]:
    """Create and grow topics as planned; return the topics created.

    Growing a topic sends new keys' messages to the new partitions; one key's order holds from then
    on. Consumers (the bridge) take the new partitions at their next metadata refresh.
    """
    client = admin(settings)
    created = []
    try:
        for name, partitions in p.create.items():
            rf, min_isr = p.copies.get(name, (settings.topic_replication, settings.topic_min_insync))
            try:
                client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf,
                                               topic_configs={"min.insync.replicas": str(min_isr)})])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        if p.insync:
            client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": str(n)})
                                  for topic, n in p.insync.items()], incremental=True)
        if p.grow:
            client.create_partitions({name: NewPartitions(total_count=want) for name, (_, want) in p.grow.items()})
    finally:
        client.close()
    if created or p.grow:
        _wait_for_leaders(settings, {**{t: p.create[t] for t in created}, **{t: n for t, (_, n) in p.grow.items()}})
    return created


def ensure(settings: Settings, tenants: Iterable[Tenant]) -> list[str]:
    """Create missing topics and grow the ones with fewer partitions than wanted; return the names created.

    In secure mode the tenants' Kafka users and ACLs are made too (security/kafka_access.py).
    """
    chosen = list(tenants)
    p = plan(settings, chosen)
    if p.problems:
        log.warning("topics left as they are: %s", "; ".join(p.problems))
    created = execute(settings, p)
    kafka_access.grant(settings, [t.name for t in chosen])
    return created


def ensure_platform(settings: Settings) -> list[str]:
    """Create the platform's own topics (reports, control) if missing; idempotent, safe to race.

    The local Kafka creates no topic by itself, so the monitor and the manager call this when they
    start. Kafka away raises ``KafkaConnectionError``, which a :class:`~.outages.Waiter` waits out.
    """
    try:
        return ensure(settings, [])
    except (ServiceUnavailable, KafkaError) as exc:
        raise KafkaConnectionError(f"cannot create the platform topics: {exc}") from exc


def _wait_for_leaders(settings: Settings, wanted_n: dict[str, int], timeout: float = 30.0) -> None:
    """Return once the topics (name -> partitions) have all their partitions, so clients can use them at once."""
    names = list(wanted_n)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, **tls.command_kafka_options(settings))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            topics = consumer.topics()  # refreshes metadata
            if all(n in topics and len(consumer.partitions_for_topic(n) or ()) >= wanted_n.get(n, 1)
                   for n in names):
                return
            time.sleep(0.2)
        log.warning("topics %s have no leader after %.0f s", ", ".join(names), timeout)
    finally:
        consumer.close()


def lag(consumer: KafkaConsumer, topic: str) -> int:
    """Messages of ``topic`` not yet committed by ``consumer``'s group, over all its partitions.

    Counted from the group's committed offsets, not from this consumer's positions: a bridge that
    holds no partition (stalled, or between rebalances) must not report zero lag, and a consumer
    that never subscribes can read a group's lag without joining it.
    """
    return sum(partition_lags(consumer, topic).values())


def partition_lags(consumer: KafkaConsumer, topic: str) -> dict[int, int]:
    """partition -> messages not yet committed by ``consumer``'s group (see :func:`lag`)."""
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not tps:
        return {}
    ends = consumer.end_offsets(tps)
    return {tp.partition: max(0, ends[tp] - (consumer.committed(tp) or 0)) for tp in tps}


def delete_tenant_topics(settings: Settings, tenant: Tenant) -> None:
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        mine = (tenant.ingest_topic, tenant.dead_topic, names.reports_topic(tenant.name),
                *(sinks.topic(tenant.name, s.name) for s in tenant.sinks if s.kind == "kafka"))
        found = [n for n in mine if n in existing]
        if found:
            with contextlib.suppress(UnknownTopicOrPartitionError):  # deleted meanwhile: the outcome wanted
                client.delete_topics(found)
    finally:
        client.close()
