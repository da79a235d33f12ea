"""The features benchmark's pure parts: every variant is a valid tenant config, and it is a bench kind."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks import features
from mysimbdp_tasks.commands.reports import BENCHMARKS
from mysimbdp_tasks.core import tenants

pytestmark = pytest.mark.unit

SHIPPED = json.loads((Path(__file__).resolve().parents[2] / "tenants" / "tenants.json").read_text())


def test_each_variant_is_a_valid_tenant_config_with_a_label_of_its_own() -> None:
    labels = [v.label for v in features.VARIANTS]
    assert len(labels) == len(set(labels)) >= 2
    counts = []
    for variant in features.VARIANTS:
        raw = {**copy.deepcopy(SHIPPED["tenant1"]), **variant.overrides}
        counts.append(1 + len(tenants.parse({"tenant1": raw})["tenant1"].sinks))
    assert 1 in counts and 3 in counts  # one sink against three


def test_it_is_a_bench_kind_with_its_options() -> None:
    assert BENCHMARKS["features"] == "benchmarks.features"
    options = features.parse_options(["--mb", "2", "--json-out", "x.json"])
    assert (options.mb, options.json_out) == (2, Path("x.json"))
