"""Test tiers: tests under tests/unit are pure; tests under tests/integration need the real stack."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Run the fast pure tests before anything that needs services.
    items.sort(key=lambda item: 0 if "/tests/unit/" in str(item.fspath) else 1)
