"""The loaders the anchors benchmark compares the pipeline with: cqlsh COPY FROM and dsbulk.

- cqlsh comes from PyPI (``cqlsh==6.2.2``), installed into a virtualenv of its own under the cache
  folder on first use, so its pinned driver never meets the platform's.
- dsbulk 1.10.0 (``dsbulk-runner`` and its load modules) is resolved from Maven Central with the pom
  in ``compose/maven/dsbulk``, the way the local stack resolves its servers (Maven caches the jars in
  ~/.m2), and run with ``java -cp``. 1.11.0 does not resolve from Maven Central.

Each tool gets its defaults and one tuned setting, the ones measured in the project's notes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mysimbdp_tasks.stack import jars, java

from .errors import BenchmarkError

CACHE = Path.home() / ".cache" / "mysimbdp" / "anchors"
CQLSH_VERSION = "6.2.2"
DSBULK_MAIN = "com.datastax.oss.dsbulk.runner.DataStaxBulkLoader"
INSTALL_TIMEOUT_S = 1800.0

CQLSH_TUNED = "NUMPROCESSES=2 AND MAXBATCHSIZE=100 AND MINBATCHSIZE=50 AND CHUNKSIZE=10000"
DSBULK_TUNED = ("--batch.mode", "REPLICA_SET", "--batch.maxBatchStatements", "100")
# What this data needs (epoch-second timestamps, long bodies, RFC 4180 doubled quotes).
DSBULK_TIMESTAMPS = ("--codec.timestamp", "UNITS_SINCE_EPOCH", "--codec.unit", "SECONDS")
DSBULK_FORMAT = (*DSBULK_TIMESTAMPS, "--connector.csv.maxCharsPerColumn", "-1", "--connector.csv.escape", '"\\""')
# JSON Lines: the json connector reads one document after another (its default mode).
DSBULK_JSON = ("-c", "json", *DSBULK_TIMESTAMPS)


@dataclass(frozen=True)
class Setting:
    """One way of running a loader: its name in the report and the options that make it."""

    tool: str  # "cqlsh" or "dsbulk"
    name: str  # "defaults" or "tuned"
    options: str  # shown in the report, as given to the tool

    @property
    def case(self) -> str:
        return f"{self.tool} {self.name}"


SETTINGS = {
    "cqlsh": (Setting("cqlsh", "defaults", ""), Setting("cqlsh", "tuned", CQLSH_TUNED)),
    "dsbulk": (Setting("dsbulk", "defaults", ""), Setting("dsbulk", "tuned", " ".join(DSBULK_TUNED))),
}


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"{what}: did not finish within {INSTALL_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise BenchmarkError(f"{what} failed (exit {done.returncode}):\n{tail}")


def ensure_cqlsh(cache: Path, echo: Callable[[str], None]) -> Path:
    """The ``cqlsh`` of a virtualenv of its own under ``cache``, created on first use."""
    venv = cache / "cqlsh-venv"
    cqlsh, stamp = venv / "bin" / "cqlsh", venv / ".cqlsh-version"
    if cqlsh.is_file() and stamp.is_file() and stamp.read_text().strip() == CQLSH_VERSION:
        return cqlsh
    echo(f"cqlsh: installing cqlsh=={CQLSH_VERSION} from PyPI into {venv} ...")
    cache.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], f"creating the virtualenv {venv}")
    _run([str(venv / "bin" / "pip"), "install", "-q", f"cqlsh=={CQLSH_VERSION}"], f"pip install cqlsh=={CQLSH_VERSION}")
    stamp.write_text(CQLSH_VERSION + "\n")
    return cqlsh


def ensure_dsbulk(cache: Path, echo: Callable[[str], None]) -> tuple[str, Path]:
    """A Java runtime and the folder of dsbulk's jars under ``cache``, resolved on first use."""
    runtime = java.find_java("dsbulk", lambda major: major >= 8, "Java 8 or newer")
    try:
        folder = jars.ensure_jars("dsbulk", cache / "dsbulk-jars", echo)
    except Exception as exc:  # StackError from Maven: said in the benchmark's words
        raise BenchmarkError(f"dsbulk: {exc}") from exc
    return runtime, folder


def cqlsh_argv(cqlsh: Path, host: str, port: int, table: str, path: Path, setting: Setting) -> list[str]:
    """``cqlsh HOST PORT -e "COPY ks.t (cols) FROM 'file' WITH HEADER=true [AND tuned]"``.

    The file name is a benchmark's own temporary path, never user input; cqlsh takes the statement
    as text, as a user would type it.
    """
    options = "HEADER=true" + (f" AND {setting.options}" if setting.options else "")
    statement = (f"COPY {table} (created_utc,subreddit,id,author,body) FROM '{path}' WITH {options}")
    return [str(cqlsh), host, str(port), "--request-timeout", "120", "-e", statement]


def dsbulk_argv(runtime: str, folder: Path, host: str, port: int, keyspace: str, table: str, path: Path,
                logs: Path, setting: Setting, fmt: str = "csv") -> list[str]:
    tuned = list(DSBULK_TUNED) if setting.name == "tuned" else []
    # The connector's short options (-url, -header) are the csv connector's: name json's in full.
    data = (["-url", str(path), "-header", "true", *DSBULK_FORMAT] if fmt == "csv"
            else [*DSBULK_JSON, "--connector.json.url", str(path)])
    return [runtime, "-cp", f"{folder}/*", DSBULK_MAIN, "load", "-h", host, "-port", str(port), "-k", keyspace,
            "-t", table, *data, *tuned, "--log.directory", str(logs)]


_CQLSH_DONE = re.compile(r"(-?[\d,]+) rows imported from \d+ files? in (.+?) \((\d+) skipped\)")
_CQLSH_SPAN = re.compile(r"([\d.]+) (day|hour|minute|second)s?")
_UNIT_S = {"day": 86400.0, "hour": 3600.0, "minute": 60.0, "second": 1.0}
_DSBULK_SUMMARY = re.compile(r"^\s*([\d,]+)\s*\|\s*([\d,]+)\s*\|\s*([\d,]+)\s*\|", re.MULTILINE)


@dataclass(frozen=True)
class ToolReport:
    """What a loader said about its own run."""

    rows: int  # rows it says it loaded
    failed: int  # rows it says it skipped or failed
    seconds: float | None  # its own measure of the load, start-up excluded


def parse_cqlsh(output: str) -> ToolReport:
    """``N rows imported from 1 files in S seconds (K skipped).``; past a minute the span reads
    ``0 day, 0 hour, 1 minutes, and 30.158 seconds``."""
    found = _CQLSH_DONE.search(output)
    if found is None:
        raise BenchmarkError(f"cqlsh did not report an import; its output ends:\n{output[-2000:]}")
    seconds = sum(float(n) * _UNIT_S[unit] for n, unit in _CQLSH_SPAN.findall(found.group(2)))
    return ToolReport(int(found.group(1).replace(",", "")), int(found.group(3)), seconds or None)


def parse_dsbulk(output: str) -> ToolReport:
    """dsbulk's summary line ``total | failed | rows/s | ...``; its seconds are rows / (rows/s)."""
    found = None
    for found in _DSBULK_SUMMARY.finditer(output):  # noqa: B007 - the last summary line is the final one
        continue
    if found is None:
        raise BenchmarkError(f"dsbulk did not report a summary; its output ends:\n{output[-2000:]}")
    total, failed, rate = (int(g.replace(",", "")) for g in found.groups())
    return ToolReport(total - failed, failed, total / rate if rate else None)
