"""Prometheus metrics: bounded labels, multiprocess files merged into one endpoint, and the compose
files (Prometheus, Grafana) valid and naming only metrics the platform exposes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import values
from prometheus_client.metrics import MetricWrapperBase

from mysimbdp_tasks.services import telemetry
from mysimbdp_tasks.stack.prometheus import config

pytestmark = pytest.mark.unit

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def exposed() -> set[str]:
    """Every series name the platform's endpoint can show."""
    names: set[str] = set()
    families = [f for m in vars(telemetry).values() if isinstance(m, MetricWrapperBase)
                for f in m.describe()] + telemetry.families({})
    for f in families:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(f.type, [""])
        names.update(f.name + s for s in suffixes)
    return names


def test_labels_take_no_raw_input() -> None:
    assert telemetry.tenant_label("tenant1") == "tenant1"
    for raw in ("../etc", "Tenant1", "t" * 40, "a b", "", None, "x\n"):
        assert telemetry.tenant_label(raw) == "_unknown"
    assert telemetry.reason_label("bad_value") == "bad_value"
    assert telemetry.reason_label("bad value: 'x' is not an int") == "other"


@pytest.mark.parametrize("reason", ["bad_csv", "too_many_fields", "bad_encoding", "bad_json", "not_an_object",
                                    "record_too_large"])
def test_each_reason_a_reader_refuses_a_record_for_is_counted_under_its_name(reason: str) -> None:
    assert telemetry.reason_label(reason) == reason


@pytest.fixture
def metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process writes its metrics as a platform process does; restored afterwards."""
    monkeypatch.delenv(telemetry.ENV, raising=False)
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    run = tmp_path / "run"
    telemetry.configure(run, "worker-unit")
    monkeypatch.setenv(telemetry.ENV, os.environ[telemetry.ENV])  # undone at teardown
    return run


def collected(run: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in telemetry.FolderCollector(telemetry.folder(run)).collect() for s in f.samples}


def test_a_finished_file_counts_rows_by_reason_across_its_chunks(metrics_dir: Path) -> None:
    results: list[dict[str, Any]] = [
        {"rows_ok": 10, "rows_refused": 3, "reasons": {"bad_value": 2, "missing_key_column": 1}},
        {"rows_ok": 5, "rows_refused": 1, "reasons": {"a reason from nowhere": 1}},
        {"rows_ok": 0, "rows_refused": 2},  # stored before reasons were tallied
    ]
    telemetry.file_finished("tunit", "done", results, admitted_at=100.0, finished_at=103.0)
    got = collected(metrics_dir)
    assert got[("mysimbdp_rows_ingested_total", (("path", "batch"), ("tenant", "tunit")))] == 15
    refused = {dict(k)["reason"]: v for (n, k), v in got.items()
               if n == "mysimbdp_discarded_rows_total" and dict(k)["tenant"] == "tunit"}
    assert refused == {"bad_value": 2, "missing_key_column": 1, "other": 3}
    assert got[("mysimbdp_files_finished_total", (("status", "done"), ("tenant", "tunit")))] == 1
    assert got[("mysimbdp_end_to_end_latency_seconds_count", (("path", "batch"), ("tenant", "tunit")))] == 1


def test_a_dead_bridge_lag_goes_with_it_and_counters_stay(metrics_dir: Path) -> None:
    telemetry.messages_decided("tunit", 7, ["bad_json", "bad_json", "wrong_tenant"])
    telemetry.bridge_lag("tunit", {0: 5, 1: 0})
    lag = ("mysimbdp_bridge_lag_messages", (("partition", "0"), ("tenant", "tunit")))
    assert collected(metrics_dir)[lag] == 5
    telemetry.process_exited(metrics_dir, "worker-unit", os.getpid())
    got = collected(metrics_dir)
    assert lag not in got
    assert got[("mysimbdp_messages_accepted_total", (("tenant", "tunit"),))] == 7
    assert got[("mysimbdp_discarded_messages_total", (("reason", "bad_json"), ("tenant", "tunit")))] == 2


def test_many_latencies_land_in_the_buckets_one_observe_each_would() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    amounts = [0.0, 0.001, 0.0049, 0.005, 0.0051, 0.25, 0.25, 1.0, 7.5, 1e9]
    bounds = (0.005, 0.025, 0.25, 1.0, 10.0)

    def samples(fill: Any) -> dict[str, float]:
        registry = CollectorRegistry()
        child = Histogram("lat", "d", ["tenant"], buckets=bounds, registry=registry).labels("t")
        fill(child)
        return {f"{s.name}{s.labels.get('le', '')}": s.value for f in registry.collect() for s in f.samples
                if not s.name.endswith("_created")}

    one_by_one = samples(lambda child: [child.observe(a) for a in amounts])
    together = samples(lambda child: telemetry.observe_all(child, amounts))
    assert together.keys() == one_by_one.keys()
    for name, value in one_by_one.items():
        assert together[name] == pytest.approx(value), name
    assert together["lat_bucket0.005"] == 4  # a bound holds the values equal to it


def test_stream_latencies_count_once_per_message(metrics_dir: Path) -> None:
    telemetry.messages_written("tunit", 3, [120.0, 4000.0, -5.0], ["bad_value"])
    got = collected(metrics_dir)
    key = (("path", "stream"), ("tenant", "tunit"))
    assert got[("mysimbdp_end_to_end_latency_seconds_count", key)] == 3
    assert got[("mysimbdp_end_to_end_latency_seconds_sum", key)] == pytest.approx(4.12)
    assert got[("mysimbdp_rows_ingested_total", key)] == 3


def test_scrape_time_families() -> None:
    fams = {f.name: f for f in telemetry.families({
        "quota": [("t1", "files", 3, 500)], "queues": [("t1", "batch", 4)],
        "processes": [("worker-t1", "t1", True, 2), ("watcher", "", False, 0)]})}
    assert fams["mysimbdp_quota_used"].samples[0].value == 3
    assert fams["mysimbdp_quota_limit"].samples[0].value == 500
    assert fams["mysimbdp_queue_depth"].samples[0].labels == {"tenant": "t1", "queue": "batch"}
    assert [s.value for s in fams["mysimbdp_process_up"].samples] == [1, 0]
    assert fams["mysimbdp_process_restarts"].samples[0].name == "mysimbdp_process_restarts_total"


def test_compose_file_runs_prometheus_grafana_and_the_endpoint() -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"prometheus", "grafana", "metrics"} <= set(services)
    assert services["metrics"]["command"] == ["metrics"]
    mounted = {v.split(":")[0] for v in services["prometheus"]["volumes"] + services["grafana"]["volumes"]}
    for path in mounted:
        if path.startswith("./"):
            assert (COMPOSE / path).exists(), path
    scrape = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    port = services["metrics"]["environment"]["MYSIMBDP_METRICS_ADDR"].rsplit(":", 1)[1]
    assert targets == [f"metrics:{port}"]
    local = yaml.safe_load(config("127.0.0.14", 9464))
    assert local["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.14:9464"]


def test_grafana_provisioning_and_dashboard() -> None:
    provisioning = COMPOSE / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "mysimbdp.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard: dict[str, Any] = json.loads((COMPOSE / "grafana" / "dashboards" / "mysimbdp.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["tenant"]["includeAll"] and variables["tenant"]["multi"]
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert [r.get("repeat") for r in rows] == ["tenant"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert all('tenant="$tenant"' in e for e in exprs)
    assert all(t["datasource"]["uid"] == source["uid"] for p in dashboard["panels"] for t in p.get("targets", []))
    named = {n for e in exprs for n in re.findall(r"\bmysimbdp_[a-z_]+", e)}
    named |= set(re.findall(r"\bmysimbdp_[a-z_]+", variables["tenant"]["definition"]))
    assert named and named <= exposed(), named - exposed()
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("throughput", "refusals", "quota", "lag", "latency", "pool"):
        assert topic in titles


def test_readme_lists_every_metric_with_its_labels() -> None:
    readme = (COMPOSE.parent / "README.md").read_text()
    section = readme.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    rows = {cells[1].strip(" `"): {label.strip() for label in re.sub(r"\(.*?\)", "", cells[3]).split(",")}
            for cells in (line.split("|") for line in section.splitlines() if line.startswith("| `mysimbdp_"))}
    for metric in (m for m in vars(telemetry).values() if isinstance(m, MetricWrapperBase)):
        family = next(iter(metric.describe()))
        name = family.name + ("_total" if family.type == "counter" else "")
        assert name in rows, f"{name} is not in README's Metrics table"
        metric.labels(**dict.fromkeys(rows[name], "x"))  # raises ValueError unless the labels are exactly these
    scraped = telemetry.families({"quota": [("t", "files", 0, 1)], "queues": [("t", "batch", 0)],
                                  "processes": [("watcher", "", True, 0)]})
    for family in scraped:
        sample = family.samples[0]
        assert set(sample.labels) == rows[sample.name], sample.name


def test_every_platform_container_runs_a_command_the_cli_takes() -> None:
    from mysimbdp_tasks.cli import build_parser

    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    platform = [(name, s["command"]) for name, s in compose["services"].items()
                if s.get("entrypoint") == ["mysimbdp"] or s.get("build")]
    assert len(platform) >= 4
    for name, command in platform:
        try:
            build_parser().parse_args(command)
        except SystemExit as exc:  # argparse refuses an unknown option with exit 2
            raise AssertionError(f"service {name}: `mysimbdp {' '.join(command)}` is refused") from exc
