"""Cassandra's ingest settings and the tuning benchmark's variants: what reaches cassandra.yaml and the JVM."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import cassandra_tuning
from benchmarks.cassandra_variants import BY_NAME, choose
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.stack.cassandra import Cassandra
from mysimbdp_tasks.stack.tuning import DEFAULTS, INGEST_YAML, Tuning

pytestmark = pytest.mark.unit


def node(tmp_path: Path, tuning: Tuning = DEFAULTS) -> Cassandra:
    settings = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_CASSANDRA_HOSTS": "127.0.0.9:9042"})
    return Cassandra(settings, tuning)


def top_level_keys(yaml_text: str) -> list[str]:
    return re.findall(r"^([a-z_]+):", yaml_text, flags=re.MULTILINE)


def test_the_stack_writes_every_ingest_setting_once_and_keeps_the_commit_log_synced(tmp_path: Path) -> None:
    text = node(tmp_path).cassandra_yaml()
    keys = top_level_keys(text)
    assert sorted(k for k in keys if keys.count(k) > 1) == []
    for key, value in INGEST_YAML.items():
        assert f"\n{key}: {value}\n" in text
    assert "durable_writes" not in text
    assert DEFAULTS.yaml_settings()["commitlog_sync"] in ("periodic", "group", "batch")


def test_a_variant_replaces_adds_and_removes_settings(tmp_path: Path) -> None:
    group = BY_NAME["sync-group-15ms"]
    text = node(tmp_path, group).cassandra_yaml()
    keys = top_level_keys(text)
    assert keys.count("commitlog_sync") == 1 and "\ncommitlog_sync: group\n" in text
    assert "commitlog_sync_period" not in keys
    assert "\ncommitlog_sync_group_window: 15ms\n" in text


def test_nested_values_are_indented_under_their_key(tmp_path: Path) -> None:
    text = node(tmp_path, BY_NAME["skiplist-heap"]).cassandra_yaml()
    assert "\nmemtable: \n  configurations:\n    skiplist:\n      class_name: SkipListMemtable\n" in text
    assert top_level_keys(text).count("memtable") == 1
    assert "\nmemtable_allocation_type: heap_buffers\n" in text


def test_heap_and_gc_flags_come_from_the_tuning() -> None:
    default = DEFAULTS.heap_options() + DEFAULTS.gc_options()
    assert "-XX:+UseG1GC" in default and any(o.startswith("-Xmx") for o in default)
    bigger = BY_NAME["heap-2g"].heap_options()
    assert bigger == ["-Xms2G", "-Xmx2G"]
    young = BY_NAME["g1-young-50"].gc_options()
    assert "-XX:G1NewSizePercent=50" in young and "-XX:+UseG1GC" in young


def test_variants_combine_with_a_plus() -> None:
    (both,) = choose(["commitlog-lz4+skiplist-heap"])
    assert set(both.yaml) == {"commitlog_compression", "memtable", "memtable_allocation_type"}
    assert both.name == "commitlog-lz4+skiplist-heap"


def test_an_unknown_variant_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown variant 'lz4'.*commitlog-lz4"):
        choose(["defaults", "lz4"])
    with pytest.raises(SystemExit):
        cassandra_tuning.parse_options(["--variants", "defaults,nope"])


def test_no_variant_turns_durability_off() -> None:
    for tuning in BY_NAME.values():
        settings = tuning.yaml_settings()
        assert settings.get("commitlog_sync") in ("periodic", "group"), tuning.name
        assert "durable_writes" not in settings, tuning.name


def test_the_trie_indexed_format_comes_with_cassandra_5_storage(tmp_path: Path) -> None:
    # As cassandra_latest.yaml pairs them: BTI SSTables with Cassandra 5's own storage format.
    text = node(tmp_path, BY_NAME["bti"]).cassandra_yaml()
    assert "\nsstable: \n  selected_format: bti\n" in text
    assert "\nstorage_compatibility_mode: NONE\n" in text
    assert top_level_keys(text).count("sstable") == 1


def test_flush_and_compaction_threads_are_told_from_the_rest_by_name() -> None:
    roles = {name: cassandra_tuning.thread_role(name) for name in (
        "PerDiskMemtable", "MemtableFlushWr", "MemtablePostFlu", "CompactionExecu", "Native-Transpor",
        "MutationStage", "C2 CompilerThre", "GC Thread#0")}
    assert roles == {"PerDiskMemtable": "flush", "MemtableFlushWr": "flush", "MemtablePostFlu": "flush",
                     "CompactionExecu": "compaction", "Native-Transpor": None, "MutationStage": None,
                     "C2 CompilerThre": None, "GC Thread#0": None}
