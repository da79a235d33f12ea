"""Flower's settings: where it listens, its prefix and its users, refused with a reason that names
the variable or option and never repeats a password; the queues the app declares; what the Tasks
page shows of a task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.control.flower import FlowerPlan, registry_queues
from mysimbdp_tasks.core.errors import SettingsError
from mysimbdp_tasks.core.settings import Settings, unknown_variables
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = pytest.mark.unit

SECRET = "s3cret-pass"


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"MYSIMBDP_HOME": str(tmp_path), **env})


def test_defaults_listen_on_this_machine_only_without_a_password(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert (s.flower_address, s.flower_port, s.flower_url_prefix, s.flower_auth) == ("127.0.0.1", 5555, "", ())


def test_variables_set_address_port_prefix_and_users(tmp_path: Path) -> None:
    s = _settings(tmp_path, MYSIMBDP_FLOWER_ADDRESS="0.0.0.0", MYSIMBDP_FLOWER_PORT="8555",
                  MYSIMBDP_FLOWER_URL_PREFIX="/ops/flower/", MYSIMBDP_FLOWER_AUTH=f"ann:{SECRET},bob:{SECRET}")
    assert (s.flower_address, s.flower_port, s.flower_url_prefix) == ("0.0.0.0", 8555, "ops/flower")
    assert s.flower_auth == (f"ann:{SECRET}", f"bob:{SECRET}")
    assert SECRET not in repr(s)


def test_flower_variables_are_known_settings() -> None:
    names = ("MYSIMBDP_FLOWER_ADDRESS", "MYSIMBDP_FLOWER_PORT", "MYSIMBDP_FLOWER_URL_PREFIX", "MYSIMBDP_FLOWER_AUTH",
             "MYSIMBDP_FLOWER_AUTH_FILE")
    assert unknown_variables(dict.fromkeys(names, "x")) == []


@pytest.mark.parametrize(("var", "value", "says"), [
    ("MYSIMBDP_FLOWER_PORT", "70000", "port from 1 to 65535"),
    ("MYSIMBDP_FLOWER_PORT", "-1", "whole number"),
    ("MYSIMBDP_FLOWER_ADDRESS", "my host", "host name or IP address"),
    ("MYSIMBDP_FLOWER_URL_PREFIX", "a?b=1", "URL path"),
    ("MYSIMBDP_FLOWER_AUTH", "ann", "expected user:password"),
    ("MYSIMBDP_FLOWER_AUTH", "ann:short", "shorter than 8"),
])
def test_bad_values_are_refused_naming_the_variable(tmp_path: Path, var: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=var) as err:
        _settings(tmp_path, **{var: value}).flower_users()  # a bad user list refuses Flower alone
    assert says in str(err.value)
    assert "short" not in str(err.value).replace("shorter", "")  # a refused password is not repeated


def test_users_come_from_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    auth = tmp_path / "flower-auth"
    auth.write_text(f"# operators\nann:{SECRET}\n\n")
    auth.chmod(0o644)
    loose = _settings(tmp_path)  # every other command still works while the operator fixes it
    assert loose.flower_auth == ()
    with pytest.raises(SettingsError, match=r"MYSIMBDP_HOME/flower-auth.*mode 0644.*chmod 600"):
        loose.flower_users()  # but Flower is refused: it would otherwise start without a password
    auth.chmod(0o600)
    assert _settings(tmp_path).flower_auth == (f"ann:{SECRET}",)
    other = tmp_path / "elsewhere"
    other.write_text(f"bob:{SECRET}\n")
    other.chmod(0o400)
    assert _settings(tmp_path, MYSIMBDP_FLOWER_AUTH_FILE=str(other)).flower_auth == (f"bob:{SECRET}",)
    with pytest.raises(SettingsError, match="MYSIMBDP_FLOWER_AUTH_FILE: cannot read"):
        _settings(tmp_path, MYSIMBDP_FLOWER_AUTH_FILE=str(tmp_path / "missing")).flower_users()


def test_the_password_goes_in_flowers_environment_not_on_its_command_line() -> None:
    plan = FlowerPlan(address="0.0.0.0", port=8555, url_prefix="ops/flower", auth=(f"ann:{SECRET}",))
    assert SECRET not in " ".join(plan.argv()) and SECRET not in repr(plan)
    assert plan.environment() == {"FLOWER_BASIC_AUTH": f"ann:{SECRET}"}
    assert "--url_prefix=ops/flower" in plan.argv() and "--address=0.0.0.0" in plan.argv()
    assert plan.url == "http://127.0.0.1:8555/ops/flower/"


def test_flower_on_the_network_without_users_is_refused(tmp_path: Path) -> None:
    env = {"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_FLOWER_ADDRESS": "0.0.0.0", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "flower"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "MYSIMBDP_FLOWER_ADDRESS: Flower on 0.0.0.0 is reachable from other machines" in done.stderr


def test_the_app_declares_each_tenants_queues(tmp_path: Path) -> None:
    app = make_app(_settings(tmp_path), ["t2", "t1"])
    declared = {q.name: q.routing_key for q in app.conf.task_queues}
    assert declared == {"t1.batch": "t1.batch", "t1.stream": "t1.stream", "t2.batch": "t2.batch",
                        "t2.stream": "t2.stream"}
    assert make_app(_settings(tmp_path)).conf.task_queues is None  # a worker's app: its -Q picks its own


def test_the_queue_list_follows_the_registry_and_keeps_the_last_while_it_is_away() -> None:
    answers: list[Any] = [["t1", "t2"], ConnectionError("down")]

    def read() -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    current = registry_queues(read, ["t1"])
    assert current() == {"t1.batch", "t1.stream", "t2.batch", "t2.stream"}
    assert current() == {"t1.batch", "t1.stream", "t2.batch", "t2.stream"}


class _Sent:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, args: tuple[Any, ...] = (), *, queue: str = "", task_id: str | None = None,
                  **options: Any) -> None:
        self.sent.append({"name": name, "queue": queue, **options})


def test_flower_shows_each_task_with_its_tenant_first() -> None:
    sent = _Sent()
    dispatch = Dispatch(sent)
    job = {"tenant": "t1", "ingest_id": "abc", "file": "t1-x.csv", "path": "/p"}
    dispatch.send_file(job)
    dispatch.send_chunk(job, {"index": 3})
    dispatch.send_messages("t2", {"messages": []}, "t2-stream-0.1.5")
    assert [(s["queue"], s["argsrepr"]) for s in sent.sent] == [
        ("t1.batch", "tenant='t1' file='t1-x.csv' ingest-id='abc'"),
        ("t1.batch", "tenant='t1' file='t1-x.csv' chunk=3"),
        ("t2.stream", "tenant='t2' micro-batch='t2-stream-0.1.5'"),
    ]
