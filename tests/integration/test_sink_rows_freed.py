"""A chunk written through the real sink lands whole, and its rows are freed as their batches are
answered: a worker's memory follows the batches in flight, not the chunk."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from kit import table_rows

from mysimbdp_tasks.core.rows import ingest_chunk
from mysimbdp_tasks.services.sink import Sink

pytestmark = pytest.mark.integration

ROWS = 3000


def test_a_written_chunk_lands_whole_and_leaves_its_rows_to_no_collector(
        make_tenant: Any, cassandra_session: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    path = tmp_path / "c.csv"
    lines = ["created_utc,subreddit,id,author,body"]
    lines += [f'1430458939,s{i % 7},id{i},a{i % 5},"body ""{i}"", with, commas"' for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n")
    sink = Sink(cassandra_session, tenant)
    gc.collect()
    gc.disable()  # what the rows still held after the write is then left for gc.collect() below
    try:
        result = ingest_chunk(path, "csv", None, sink.encoder, sink.write)
        left = gc.collect()
    finally:
        gc.enable()
    assert (result.rows_ok, result.rows_refused) == (ROWS, 0)
    # A few containers per batch (the driver's future and its message) wait for the collector;
    # the rows (a list and a tuple or two each) must not: before, all of them did.
    assert left < ROWS
    got = {r.id: r.body for r in table_rows(cassandra_session, tenant)}
    assert len(got) == ROWS and got["id12"] == 'body "12", with, commas'
