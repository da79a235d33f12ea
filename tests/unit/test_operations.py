"""What an operator meets first: refusals of bad options, bad MYSIMBDP_* values and bad tenant files,
and the merge and diff that `tenants apply` (and its --dry-run) prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks import __version__
from mysimbdp_tasks.cli import build_parser, main
from mysimbdp_tasks.core import changes, tenants
from mysimbdp_tasks.core.errors import ConfigError, SettingsError
from mysimbdp_tasks.core.settings import Settings

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


# Command-line options ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["worker", "--tenant", "t", "--concurrency", "-3"],
    ["worker", "--tenant", "t", "--concurrency", "0"],
    ["worker", "--tenant", "t", "--concurrency", "two"],
    ["worker", "--tenant", "t", "--autoscale", "1,4"],  # MAX,MIN: the smaller one second
    ["up", "--concurrency", "0"],
    ["supervise", "--concurrency", "-1"],
    ["bridge", "--max-messages", "0"],
    ["bridge", "--max-wait-ms", "-5"],
    ["watch", "--stable-seconds", "0"],
    ["monitor", "--idle-after", "nan"],
    ["manager", "--cooldown", "-1"],
    ["flower", "--port", "70000"],
    ["status", "--latest", "0"],
    ["summary", "--wait", "-1"],
])
def test_non_positive_option_values_are_refused_with_exit_2(argv: list[str],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_summary_wait_0_means_do_not_wait() -> None:
    assert build_parser().parse_args(["summary", "--wait", "0"]).wait == 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == f"mysimbdp {__version__}"


def _options(parser: Any) -> list[tuple[str, Any]]:
    """(command path, action) of every option and argument of every sub-command.

    argparse has no public way to list a parser's options; its private ``_actions`` is the one.
    """
    import argparse

    found = []
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, child in action.choices.items():
                found += [(f"{name} {where}".strip(), a) for where, a in _options(child)]
        else:
            found.append(("", action))
    return found


def test_every_option_has_help_in_plain_words() -> None:
    options = _options(build_parser())
    assert len(options) > 40  # the walk really reached the sub-commands
    missing = [f"{where}: {'/'.join(a.option_strings) or a.dest}" for where, a in options if not a.help]
    assert missing == []
    jargon = ("streamingest", "coredms", "mysimbdp-", "clientbatchingestapp")
    assert [a.help for _, a in options if any(j in a.help.lower() for j in jargon)] == []


def test_commands_that_report_have_json() -> None:
    parser = build_parser()
    for argv in (["status"], ["summary"], ["up"], ["down"], ["stack", "status"], ["tenants", "list"],
                 ["tenants", "check", "f"], ["tenants", "apply", "f"], ["tenants", "remove", "t"]):
        assert parser.parse_args([*argv, "--json"]).json is True, argv


# MYSIMBDP_* variables ----------------------------------------------------------------------------


@pytest.mark.parametrize(("var", "value"), [
    ("MYSIMBDP_REPLICATION", "bogus"),
    ("MYSIMBDP_REPLICATION", "SimpleStrategy:0"),
    ("MYSIMBDP_REPLICATION", "NetworkTopologyStrategy:dc1=3,dc2=0"),
    ("MYSIMBDP_KAFKA_PARTITIONS", "0"),
    ("MYSIMBDP_TOPIC_REPLICATION", "-1"),
    ("MYSIMBDP_TOPIC_MIN_INSYNC", "two"),
    ("MYSIMBDP_MAX_RESENDS", "2.5"),
    ("MYSIMBDP_VISIBILITY_TIMEOUT", "0.5"),
    ("MYSIMBDP_STREAM_MAX_PENDING", "0"),
    ("MYSIMBDP_CHUNK_MB", "-8"),
    ("MYSIMBDP_FLAT_STAGING", "maybe"),
    ("MYSIMBDP_KAFKA_BOOTSTRAP", "host:port"),
    ("MYSIMBDP_REDIS_URL", "http://x"),
])
def test_a_bad_variable_is_refused_by_name(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env({var: value})


def test_min_insync_more_than_replicas_is_refused() -> None:
    with pytest.raises(SettingsError, match="MYSIMBDP_TOPIC_MIN_INSYNC"):
        Settings.from_env({"MYSIMBDP_TOPIC_REPLICATION": "3", "MYSIMBDP_TOPIC_MIN_INSYNC": "4"})
    ok = Settings.from_env({"MYSIMBDP_TOPIC_REPLICATION": "3", "MYSIMBDP_TOPIC_MIN_INSYNC": "2"})
    assert (ok.topic_replication, ok.topic_min_insync) == (3, 2)
    assert (Settings.from_env({}).topic_replication, Settings.from_env({}).topic_min_insync) == (1, 1)


def test_a_misspelt_variable_is_named_with_a_suggestion() -> None:
    from mysimbdp_tasks.core.settings import unknown_variables

    found = unknown_variables({"MYSIMBDP_REPLICATON": "SimpleStrategy:3", "MYSIMBDP_REPLICATION": "x", "HOME": "/"})
    assert found == [("MYSIMBDP_REPLICATON is not a mysimbdp setting and is ignored "
                      "(did you mean MYSIMBDP_REPLICATION?)")]
    assert unknown_variables({"MYSIMBDP_HOME": "/x", "MYSIMBDP_SAMPLES": "/y", "MYSIMBDP_TOPIC_MIN_INSYNC": "1"}) == []


def test_tenants_check_fails_on_a_bad_variable(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MYSIMBDP_REPLICATION", "bogus")
    assert main(["tenants", "check", str(ROOT / "tenants" / "tenants.json")]) == 2
    assert "MYSIMBDP_REPLICATION" in capsys.readouterr().err


# Tenant files ------------------------------------------------------------------------------------


def test_a_key_given_twice_is_refused_with_the_file_and_the_key(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "tenants" / "original-batch.json").read_text()
    text = text.replace('"max_file_size": 10,', '"max_file_size": 10, "max_file_size": 99,', 1)
    text = text.replace('"id": "text",', '"id": "text", "id": "int",', 1)
    bad = tmp_path / "dup.json"
    bad.write_text(text)
    with pytest.raises(ConfigError) as refused:
        tenants.load(bad)
    assert [p.path for p in refused.value.problems] == ["tenant1.max_file_size", "tenant1.schema.id"]
    assert main(["tenants", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "tenant1.max_file_size" in err and "more than once" in err


def test_a_tenant_given_twice_is_refused(tmp_path: Path) -> None:
    one = json.dumps(json.loads((ROOT / "tenants" / "original-batch.json").read_text())["tenant1"])
    (tmp_path / "t.json").write_text(f'{{"tenant1": {one}, "tenant1": {one}}}')
    with pytest.raises(ConfigError, match="tenant1: given more than once"):
        tenants.load(tmp_path / "t.json")


def test_ndjson_is_an_alias_of_jsonl(tmp_path: Path) -> None:
    data = json.loads((ROOT / "tenants" / "original-batch.json").read_text())
    data["tenant1"]["file_type"] = ".ndjson"
    data["tenant2"]["file_type"] = [".csv", "jsonl"]
    found = tenants.parse(data)
    assert found["tenant1"].batch and set(found["tenant1"].batch.file_types) == {".ndjson", ".jsonl"}
    assert found["tenant2"].batch and set(found["tenant2"].batch.file_types) == {".csv", ".jsonl", ".ndjson"}


# Merging batch and stream settings, and the diff --dry-run prints ----------------------------------


def _originals() -> tuple[dict[str, tenants.Tenant], dict[str, tenants.Tenant]]:
    return (tenants.load(ROOT / "tenants" / "original-batch.json"),
            tenants.load(ROOT / "tenants" / "original-stream.json"))


def test_batch_then_stream_files_merge_into_both_paths() -> None:
    batch, stream = _originals()
    merged = changes.merge(batch["tenant1"], stream["tenant1"])
    assert merged.batch == batch["tenant1"].batch and merged.stream == stream["tenant1"].stream
    assert changes.kept_paths(batch["tenant1"], stream["tenant1"], merged) == ["batch"]
    # and the other way round
    again = changes.merge(stream["tenant2"], batch["tenant2"])
    assert again.batch is not None and again.stream is not None


def test_a_path_the_file_gives_replaces_the_applied_one() -> None:
    batch, _ = _originals()
    bigger = tenants.parse({"tenant1": {**dict(batch["tenant1"].raw), "max_file_size": 20}})["tenant1"]
    merged = changes.merge(batch["tenant1"], bigger)
    assert merged.batch and merged.batch.max_file_size_bytes == 20 * tenants.MB
    assert changes.kept_paths(batch["tenant1"], bigger, merged) == []


def test_diff_names_each_changed_setting() -> None:
    batch, stream = _originals()
    merged = changes.merge(batch["tenant1"], stream["tenant1"])
    assert changes.diff(batch["tenant1"], merged) == ["max_messages_per_day: (not set) -> 100000"]
    assert changes.diff(merged, merged) == []
    assert changes.diff(None, merged) == ["new tenant"]
    wider = tenants.parse({"tenant1": {**dict(merged.raw), "partitions": 6,
                                       "schema": {**merged.raw["schema"], "flair": "text"}}})["tenant1"]
    assert changes.diff(merged, wider) == ["partitions: (not set) -> 6", 'schema.flair: (not set) -> "text"']


# Progress bars --------------------------------------------------------------------------------------


def test_progress_bars_stay_silent_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from mysimbdp_tasks.commands.queries import wait_quiet
    from mysimbdp_tasks.core import progress

    left = iter([2, 1, 0, 0, 0, 0, 0, 0])
    assert wait_quiet(lambda: next(left, 0), timeout=30, quiet=0.05, poll=0.01, what="files") is True
    show = progress.follow("t", 10, "msg")
    show(4, "note", False)
    show(10, "note", True)
    assert capsys.readouterr() == ("", "")  # scripts reading the output see what they saw before


def test_wait_quiet_gives_up_at_its_timeout() -> None:
    from mysimbdp_tasks.commands.queries import wait_quiet

    assert wait_quiet(lambda: 1, timeout=0.2, poll=0.01) is False


def test_up_fails_when_a_wanted_process_is_not_running() -> None:
    from mysimbdp_tasks.commands.platform import not_running

    children = {"watcher": {"status": "running", "pid": 10},
                "worker-t1": {"status": "restarting in 2 s", "pid": None, "last_exit": 1}}
    assert not_running({"watcher", "worker-t1", "bridge-t1"}, children) == ["bridge-t1", "worker-t1"]
    assert not_running({"watcher"}, children) == []


def test_a_command_that_cannot_reach_kafka_names_the_setting(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # A real Kafka client against a closed port: `dead list` ends with the setting to fix, not a traceback.
    from mysimbdp_tasks.commands import dead

    monkeypatch.setattr(dead, "tenant_of_registry", lambda settings, name, **kw: None)
    monkeypatch.setenv("MYSIMBDP_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert main(["dead", "list", "--tenant", "tenant1"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach Kafka at 127.0.0.1:1 (MYSIMBDP_KAFKA_BOOTSTRAP)" in err and "Traceback" not in err
