"""The Cassandra configurations `mysimbdp bench cassandra` compares, each a change to the stack's defaults.

Every variant keeps writes durable: the commit log stays on, synced periodically or per group of
writes. None sets ``durable_writes: false`` or turns the sync off.
"""

from __future__ import annotations

from mysimbdp_tasks.stack.tuning import DEFAULTS, G1_OPTIONS, Tuning

SKIPLIST_MEMTABLE = ("\n  configurations:\n    skiplist:\n      class_name: SkipListMemtable\n"
                     "    default:\n      inherits: skiplist")
LZ4_COMMITLOG = "\n  - class_name: LZ4Compressor"
BTI = "\n  selected_format: bti"
UCS = "\n  class_name: UnifiedCompactionStrategy\n  parameters:\n    scaling_parameters: T4"

VARIANTS: tuple[Tuning, ...] = (
    DEFAULTS,
    Tuning("commitlog-lz4", {"commitlog_compression": LZ4_COMMITLOG},
           note="the commit log compressed with LZ4: fewer bytes written per row"),
    Tuning("commitlog-segment-64", {"commitlog_segment_size": "64MiB"}, note="fewer, larger commit log segments"),
    Tuning("sync-group-15ms", {"commitlog_sync": "group", "commitlog_sync_period": None,
                               "commitlog_sync_group_window": "15ms"},
           note="every write waits for the fsync of its group (15 ms window): no loss window at all"),
    Tuning("skiplist-heap", {"memtable": SKIPLIST_MEMTABLE, "memtable_allocation_type": "heap_buffers"},
           note="Cassandra's own defaults: the skip-list memtable, cells on the heap (the stack's before the trie)"),
    Tuning("trie-heap", {"memtable_allocation_type": "heap_buffers"}, note="the trie memtable, cells on the heap"),
    Tuning("skiplist-offheap-objects", {"memtable": SKIPLIST_MEMTABLE},
           note="the skip-list memtable, cells off the heap"),
    Tuning("trie-offheap-buffers", {"memtable_allocation_type": "offheap_buffers"},
           note="the trie memtable, cell values off the heap"),
    Tuning("memtables-256", {"memtable_heap_space": "256MiB", "memtable_offheap_space": "256MiB"},
           note="twice the memtable space: fewer flushes and compactions"),
    Tuning("writes-8", {"concurrent_writes": "8"}, note="half the write threads"),
    Tuning("writes-32", {"concurrent_writes": "32"}, note="twice the write threads"),
    Tuning("transport-threads-8", {"native_transport_max_threads": "8"}, note="fewer request threads"),
    Tuning("flush-writers-2", {"memtable_flush_writers": "2"}, note="two memtable flush threads"),
    Tuning("compaction-8mib", {"compaction_throughput": "8MiB/s"},
           note="compaction throttled during ingest (it catches up afterwards)"),
    Tuning("compaction-ucs", {"default_compaction": UCS},
           note="UnifiedCompactionStrategy (T4) as the default for new tables"),
    # Flush cost (benchmarks/README.md, "Cassandra"): what a memtable flush writes and how often.
    Tuning("flush-uncompressed", {"flush_compression": "none"},
           note="flushes write uncompressed SSTables (compaction compresses them later); default: fast (LZ4)"),
    Tuning("cleanup-0.75", {"memtable_cleanup_threshold": "0.75"},
           note="flush when memtables fill 75 % of their space instead of 1/(1+flush writers) = 50 %"),
    Tuning("memtables-64", {"memtable_heap_space": "64MiB", "memtable_offheap_space": "64MiB"},
           note="half the memtable space: flushes twice as often, each half as long"),
    Tuning("compat-none", {"storage_compatibility_mode": "NONE"},
           note="Cassandra 5's own storage format ('oa' SSTables) instead of the 4.x-compatible one"),
    Tuning("bti", {"storage_compatibility_mode": "NONE", "sstable": BTI},
           note="the trie-indexed SSTable format (as cassandra_latest.yaml): no partition summary, trie indexes"),
    Tuning("heap-2g", heap="2G", note="a 2 GiB heap instead of 1 GiB"),
    Tuning("g1-young-50", gc=(*G1_OPTIONS, "-XX:+UnlockExperimentalVMOptions", "-XX:G1NewSizePercent=50"),
           note="G1 with at least half the heap young: short-lived request objects die there"),
    Tuning("g1-pause-500", gc=tuple(o if not o.startswith("-XX:MaxGCPauseMillis") else "-XX:MaxGCPauseMillis=500"
                                    for o in G1_OPTIONS),
           note="G1 with a 500 ms pause target: fewer, larger collections"),
)

BY_NAME = {v.name: v for v in VARIANTS}


def combine(name: str, parts: list[Tuning]) -> Tuning:
    """One variant with the changes of ``parts`` (later ones win), e.g. the chosen settings together."""
    yaml: dict[str, str | None] = {}
    heap, gc = None, None
    for part in parts:
        yaml.update(part.yaml)
        heap = part.heap or heap
        gc = part.gc or gc
    return Tuning(name, yaml, heap, gc, note=" + ".join(p.name for p in parts))


def choose(names: list[str]) -> list[Tuning]:
    """The variants named (``a+b`` combines a and b); ValueError naming the unknown one and the known ones."""
    chosen = []
    for name in names:
        parts = name.split("+")
        unknown = [p for p in parts if p not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown variant {unknown[0]!r}; choose from {', '.join(BY_NAME)} (a+b combines them)")
        chosen.append(BY_NAME[name] if len(parts) == 1 else combine(name, [BY_NAME[p] for p in parts]))
    return chosen
