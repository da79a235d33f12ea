"""Fixtures of the cluster tests (`stack up --nodes 3`, plain or `--secure`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core.settings import Settings

log = logging.getLogger(__name__)


@pytest.fixture
def node_back(stack: Settings) -> Iterator[list[str]]:
    """Nodes the test stopped or killed; each is started again at the end, whatever happens."""
    down: list[str] = []
    yield down
    if down:
        local_stack.up(stack, services=down, echo=log.info)
