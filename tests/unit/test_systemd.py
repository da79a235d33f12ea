"""The systemd unit of compose/systemd runs commands the CLI takes, with an environment Settings takes."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from mysimbdp_tasks.cli import build_parser
from mysimbdp_tasks.core.settings import Settings

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

UNITS = Path(__file__).resolve().parents[2] / "compose" / "systemd"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(UNITS / "mysimbdp@.service")
    return unit


def test_the_unit_runs_the_supervisor_and_stops_with_down() -> None:
    service = _unit()["Service"]
    start, stop = shlex.split(service["ExecStart"]), shlex.split(service["ExecStop"])
    assert start[0] == stop[0] == "/opt/mysimbdp/.venv/bin/mysimbdp"
    assert build_parser().parse_args(start[1:]).handler.__name__ == "supervise"
    assert build_parser().parse_args(stop[1:]).handler.__name__ == "platform_down"
    assert service["EnvironmentFile"] == "/etc/mysimbdp/%i.env"
    assert service["RestartPreventExitStatus"] == "2"  # a bad setting: restarting does not help
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


def test_the_example_environment_is_valid() -> None:
    lines = (UNITS / "mysimbdp.env.example").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    settings = Settings.from_env(env)
    assert (settings.topic_replication, settings.topic_min_insync) == (3, 2)
    assert len(settings.kafka_bootstrap) == 3 and len(settings.cassandra_hosts) == 3
