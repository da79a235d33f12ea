"""Which mode `stack up` runs a home in (stack/mode.py): secure for a new home, the old mode for an
old one, what the operator asks for when asked. Pure, on temporary homes."""

from __future__ import annotations

import dataclasses
import socket
import threading
from pathlib import Path

import pytest

from mysimbdp_tasks.core.errors import SettingsError, StackError
from mysimbdp_tasks.core.settings import PLAIN_MARKER, SECURE_MARKER, Settings
from mysimbdp_tasks.stack import mode

pytestmark = pytest.mark.unit

NEW = mode.Facts(asked=None, env=None, recorded=None, running=False, has_data=False, joining=None)


def test_a_new_home_is_secure_and_remembers_it() -> None:
    choice = mode.choose(NEW)
    assert choice.secure and choice.record
    assert "--plain" in choice.reason and "MYSIMBDP_SECURE=0" in choice.reason  # says how to opt out


@pytest.mark.parametrize("facts", [dataclasses.replace(NEW, asked="plain"), dataclasses.replace(NEW, env=False)])
def test_the_operator_may_ask_a_new_home_to_be_plain(facts: mode.Facts) -> None:
    choice = mode.choose(facts)
    assert not choice.secure and choice.record


def test_a_home_holding_a_plain_stacks_data_stays_plain_and_says_how_to_switch() -> None:
    for facts in (dataclasses.replace(NEW, has_data=True), dataclasses.replace(NEW, running=True, has_data=True)):
        choice = mode.choose(facts)
        assert not choice.secure and choice.record
        assert "stack up --secure" in choice.reason


@pytest.mark.parametrize("recorded", [SECURE_MARKER, PLAIN_MARKER])
def test_a_recorded_mode_is_kept_whatever_the_home_holds(recorded: str) -> None:
    choice = mode.choose(dataclasses.replace(NEW, recorded=recorded, has_data=True, running=True))
    assert choice.secure == (recorded == SECURE_MARKER) and not choice.record


def test_the_environment_overrides_a_recorded_mode_for_one_command_without_changing_it() -> None:
    choice = mode.choose(dataclasses.replace(NEW, recorded=SECURE_MARKER, env=False, has_data=True))
    assert not choice.secure and not choice.record


def test_a_new_home_joining_running_services_follows_what_they_speak() -> None:
    assert mode.choose(dataclasses.replace(NEW, joining=True)).secure
    assert not mode.choose(dataclasses.replace(NEW, joining=False)).secure  # e.g. docker compose's plain services


def test_switching_a_running_stack_is_refused_with_what_to_do() -> None:
    with pytest.raises(StackError, match="stack down"):
        mode.choose(dataclasses.replace(NEW, asked="secure", running=True, has_data=True))
    with pytest.raises(StackError, match="stack down"):
        mode.choose(dataclasses.replace(NEW, asked="plain", recorded=SECURE_MARKER, running=True))
    # Asking for the mode it already runs in is fine.
    assert mode.choose(dataclasses.replace(NEW, asked="secure", recorded=SECURE_MARKER, running=True)).secure


def test_a_flag_and_the_environment_that_disagree_are_refused() -> None:
    with pytest.raises(SettingsError, match="MYSIMBDP_SECURE=0 and --secure"):
        mode.choose(dataclasses.replace(NEW, asked="secure", env=False))


def test_the_choice_is_recorded_in_the_home_for_later_commands(tmp_path: Path) -> None:
    env = {"MYSIMBDP_HOME": str(tmp_path)}
    fresh = Settings.from_env(env)
    assert not fresh.secure and fresh.secure_from == "default" and "no mode recorded" in fresh.mode
    mode.apply(fresh, mode.choose(NEW))
    later = Settings.from_env(env)
    assert later.secure and later.secure_from == "home" and later.redis_url.startswith("rediss://")
    assert later.mode.startswith("secure")
    # Made plain (after `stack down`): the secure marker goes, the plain one stays for later commands.
    plain = mode.apply(later, mode.choose(dataclasses.replace(NEW, asked="plain", recorded=SECURE_MARKER)))
    assert not plain.secure and plain.redis_url.startswith("redis://")
    assert not Settings.from_env(env).secure and (tmp_path / PLAIN_MARKER).exists()
    assert not (tmp_path / SECURE_MARKER).exists()


def test_the_facts_of_a_new_home_with_a_plaintext_server_on_its_redis_address(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer() -> None:  # a plaintext server: reads the handshake, answers garbage, closes
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"-ERR unknown command\r\n")

        threading.Thread(target=answer, daemon=True).start()
        settings = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        facts = mode.facts(settings, None)
    assert facts == dataclasses.replace(NEW, joining=False)
    assert not mode.choose(facts).secure


def test_nothing_listening_is_not_joining() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert mode.speaks_tls("127.0.0.1", port) is None
