"""The driver's connection as the platform opens it: a sink batch leaves in one piece."""

from __future__ import annotations

import pytest
from cassandra.cluster import Cluster

from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services.sink import SinkOptions

pytestmark = pytest.mark.unit

FRAME_OVERHEAD = 4096  # a batch frame's header, statement ids and value lengths, generously


def test_a_full_sink_batch_fits_one_send() -> None:
    assert issubclass(db._Connection, Cluster.connection_class)  # noqa: SLF001 - the reactor the driver picked
    assert db._Connection.out_buffer_size >= SinkOptions().batch_max_bytes + FRAME_OVERHEAD  # noqa: SLF001
