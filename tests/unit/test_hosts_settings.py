"""Several hosts: the data folders shared (MYSIMBDP_DATA_DIR), the home and node name per host."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.core.errors import SettingsError
from mysimbdp_tasks.core.settings import Settings

pytestmark = pytest.mark.unit


def test_without_a_data_dir_the_data_folders_are_in_the_home(tmp_path: Path) -> None:
    s = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path / "h")})
    assert s.data == s.home == (tmp_path / "h").resolve()
    assert s.staging == s.home / "staging"


def test_a_data_dir_holds_the_data_folders_and_the_home_keeps_run_and_logs(tmp_path: Path) -> None:
    s = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path / "a"), "MYSIMBDP_DATA_DIR": str(tmp_path / "shared")})
    assert s.data == (tmp_path / "shared").resolve()
    assert s.staging == s.data / "staging"
    assert folders.Layout(s.data).folder(folders.DONE, "t1") == s.data / "done" / "t1"
    assert s.run == s.home / "run" and s.logs == s.home / "logs"  # never shared


def test_two_hosts_share_data_but_not_run_state(tmp_path: Path) -> None:
    a, b = (Settings.from_env({"MYSIMBDP_HOME": str(tmp_path / h), "MYSIMBDP_DATA_DIR": str(tmp_path / "shared"),
                               "MYSIMBDP_NODE_NAME": h}) for h in ("host-a", "host-b"))
    assert a.data == b.data
    assert a.run != b.run and a.logs != b.logs
    assert (a.node, b.node) == ("host-a", "host-b")


def test_the_node_name_defaults_to_the_host_name() -> None:
    assert Settings.from_env({}).node == socket.gethostname()


@pytest.mark.parametrize("bad", ["host a", "-a", "a/b", "a@b"])
def test_a_node_name_that_cannot_end_a_worker_name_is_refused(bad: str) -> None:
    with pytest.raises(SettingsError, match="MYSIMBDP_NODE_NAME"):
        Settings.from_env({"MYSIMBDP_NODE_NAME": bad})


def test_a_host_without_control_runs_its_watcher_pools_and_bridges_but_no_monitor_or_manager() -> None:
    from mysimbdp_tasks.control import processes
    from mysimbdp_tasks.core import tenants

    shipped = json.loads((Path(__file__).resolve().parents[2] / "tenants" / "tenants.json").read_text())
    t1 = tenants.parse({"t1": shipped["tenant1"]})["t1"]  # batch and stream
    assert not Settings.from_env({"MYSIMBDP_CONTROL": "0"}).control and Settings.from_env({}).control
    ingest_host = {p.name for p in processes.wanted([t1], control=False)}
    assert ingest_host == {"watcher", "worker-t1", "bridge-t1"}
    assert {"monitor", "manager"} <= {p.name for p in processes.wanted([t1])}
