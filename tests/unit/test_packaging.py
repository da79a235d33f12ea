"""Dependencies: every requirement is a range whose floor is the version the tests ran with, every
such version is pinned in compose/constraints.txt, and the install, the image and CI use the pins."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

ROOT = Path(__file__).resolve().parents[2]


def _requirements() -> list[Requirement]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in cfg["options.extras_require"].values():
        lines += extra.splitlines()
    return [Requirement(line) for line in (x.split("#")[0].strip() for x in lines) if line and "%(" not in line]


def _pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / "compose" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = Version(version)
    return found


def test_every_requirement_is_a_range_from_its_pinned_version() -> None:
    pins = _pins()
    reqs = _requirements()
    assert len(reqs) >= 10  # the parse really found them
    for req in reqs:
        ops = {spec.operator: Version(spec.version) for spec in req.specifier}
        assert set(ops) == {">=", "<"}, f"{req}: give a tested floor (>=) and a ceiling (<)"
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not pinned in compose/constraints.txt"
        assert pin in req.specifier, f"{req.name}: the pin {pin} is outside {req.specifier}"
        assert ops[">="].release == pin.release[:len(ops[">="].release)], \
            f"{req.name}: the floor {ops['>=']} is not the tested version {pin}"


def test_kafka_python_floor_runs_on_python_3_12() -> None:
    kafka = next(r for r in _requirements() if r.name == "kafka-python")
    assert Version("2.0.2") not in kafka.specifier and Version("3.0") <= min(
        Version(s.version) for s in kafka.specifier if s.operator == ">=")


@pytest.mark.parametrize("path", ["compose/install.sh", "compose/Dockerfile"])
def test_the_install_and_the_image_use_the_pins(path: str) -> None:
    assert "-c compose/constraints.txt" in (ROOT / path).read_text()


def test_make_installs_into_a_virtual_environment() -> None:
    make = (ROOT / "Makefile").read_text()
    install = (ROOT / "compose" / "install.sh").read_text()
    assert "VENV ?= $(CURDIR)/.venv" in make and "export PATH := $(VENV)/bin:$(PATH)" in make
    assert '"$PYTHON" -m venv "$VENV"' in install and '"$VENV/bin/python" -m pip install' in install
    assert "python3 -m pip install" not in install  # never the system interpreter
