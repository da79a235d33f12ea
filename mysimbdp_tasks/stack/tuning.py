"""Cassandra's ingest settings: the stack's defaults, and variants of them for the tuning benchmark.

The settings here are the ones that change Cassandra's CPU per written row (commit log, memtables,
write concurrency, compaction, heap and GC). Every default keeps writes durable: the commit log is
always on (no ``durable_writes: false``) and synced at least every ``commitlog_sync_period``. The
numbers behind each choice come from ``mysimbdp bench cassandra`` (benchmarks/cassandra_tuning.py);
benchmarks/README.md has the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Every memtable is a trie memtable (the shape of Cassandra 5's cassandra_latest.yaml).
TRIE_MEMTABLE = "\n  configurations:\n    trie:\n      class_name: TrieMemtable\n    default:\n      inherits: trie"

# cassandra.yaml key -> its value as YAML text (a nested value starts with a newline and is indented).
INGEST_YAML: Mapping[str, str] = MappingProxyType({
    # Periodic sync: a write is acknowledged once it is in the commit log's buffer, and the log is
    # synced to disk every commitlog_sync_period (a write can wait if the sync falls behind by half a
    # period). A crash of the process or of the machine loses at most the writes of the last period;
    # group or batch sync would make every write wait for an fsync instead.
    "commitlog_sync": "periodic",
    "commitlog_sync_period": "10000ms",
    "commitlog_segment_size": "32MiB",
    # Sized for 2 cores and a 1 GiB heap: few threads, small memtables.
    "concurrent_writes": "16",
    "concurrent_compactors": "1",
    "memtable_flush_writers": "1",
    "memtable_heap_space": "128MiB",
    "memtable_offheap_space": "128MiB",
    # Cassandra 5's trie memtable with its cells off the heap. `mysimbdp bench cassandra`, one run,
    # 20 MB CSV (94,637 rows) loaded after a warm-up: Cassandra's CPU per row 50.0 us against 69.0 us
    # with the skip-list memtable on heap (Cassandra's defaults), 4.8 us against 22.0 us in the 10 s
    # after the load, 79 us against 169 us on the cold first load, peak RSS 1,298 against 1,306 MB.
    # Each alone did less: trie on heap 71.4 us, skip-list off heap 62.2 us. A second run on a
    # quieter machine: 44.4 against 46.8 us during the load, 5.1 against 11.7 us after it (-15 %).
    "memtable": TRIE_MEMTABLE,
    "memtable_allocation_type": "offheap_objects",
    "native_transport_max_threads": "32",
    "compaction_throughput": "32MiB/s",
})

HEAP = "1G"
# G1 as in Cassandra's jvm17-server.options; the pause target stays well below the request timeouts.
G1_OPTIONS: tuple[str, ...] = (
    "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1",
    "-XX:G1RSetUpdatingPauseTimePercent=5", "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
)


@dataclass(frozen=True)
class Tuning:
    """Changes to the ingest defaults: cassandra.yaml values (None removes a key), heap and GC flags."""

    name: str = "defaults"
    yaml: Mapping[str, str | None] = field(default_factory=dict)
    heap: str | None = None  # -Xms/-Xmx, e.g. "2G"; None: HEAP
    gc: tuple[str, ...] | None = None  # replaces G1_OPTIONS when given
    note: str = ""

    def yaml_settings(self) -> dict[str, str]:
        merged: dict[str, str | None] = {**INGEST_YAML, **self.yaml}
        return {key: value for key, value in merged.items() if value is not None}

    def yaml_text(self) -> str:
        """The settings as cassandra.yaml lines."""
        return "".join(f"{key}: {value}\n" for key, value in self.yaml_settings().items())

    def heap_options(self) -> list[str]:
        size = self.heap or HEAP
        return [f"-Xms{size}", f"-Xmx{size}"]

    def gc_options(self) -> list[str]:
        return list(G1_OPTIONS if self.gc is None else self.gc)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "yaml": dict(self.yaml), "heap": self.heap or HEAP,
                "gc": self.gc_options(), "note": self.note}


DEFAULTS = Tuning()
