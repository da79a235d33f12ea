"""Resolving a server's jars from Maven Central with the small pom kept in ``compose/maven/``.

Each server gets its own folder: Kafka and Cassandra pin different Netty, Jackson and logging
versions, so their classpaths must never be mixed. A folder is reused while its pom is unchanged
(the pom's hash is stored next to the jars); Maven's own cache (~/.m2) makes a re-resolve quick.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..core.errors import StackError

log = logging.getLogger(__name__)

POM_ROOT = Path(__file__).resolve().parents[2] / "compose" / "maven"
STAMP = ".pom-sha256"
MAVEN_TIMEOUT_S = 1800.0
# Two Maven runs writing into one ~/.m2 at once can corrupt a half-downloaded artifact.
_maven_lock = threading.Lock()


def pom_path(service: str) -> Path:
    pom = POM_ROOT / service / "pom.xml"
    if not pom.is_file():
        raise StackError(f"{service}: {pom} is missing; the local stack runs from a source checkout of mysimbdp")
    return pom


def _digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_current(service: str, dest: Path) -> bool:
    stamp = dest / STAMP
    return (
        stamp.is_file()
        and stamp.read_text().strip() == _digest(pom_path(service))
        and any(dest.glob("*.jar"))
    )


def ensure_jars(service: str, dest: Path, echo: Callable[[str], None]) -> Path:
    """Fill ``dest`` with the jars of ``service`` unless it already holds them for the current pom."""
    if jars_current(service, dest):
        return dest
    pom = pom_path(service)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(f"{service}: Maven (mvn) is not on PATH; install it with `apt-get install maven`")
    with _maven_lock:
        # Resolve into a side folder and swap it in, so an interrupted run never leaves a
        # half-filled classpath that looks complete.
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        started = time.monotonic()
        echo(f"{service}: resolving jars from Maven Central into {dest} ...")
        cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={partial}"]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"{service}: Maven did not finish within {MAVEN_TIMEOUT_S:.0f} s") from exc
        if result.returncode != 0 or not any(partial.glob("*.jar")):
            output = (result.stdout + result.stderr).strip().splitlines()[-40:]
            raise StackError(
                f"{service}: Maven could not resolve {pom} (exit {result.returncode}):\n" + "\n".join(output)
            )
        (partial / STAMP).write_text(_digest(pom) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    count = sum(1 for _ in dest.glob("*.jar"))
    echo(f"{service}: {count} jars resolved in {time.monotonic() - started:.1f} s")
    return dest


def find_jar(jars: Path, prefix: str) -> Path:
    """The jar in ``jars`` whose name starts with ``prefix-`` followed by a version."""
    for jar in sorted(jars.glob(f"{prefix}-*.jar")):
        if jar.name[len(prefix) + 1 : len(prefix) + 2].isdigit():
            return jar
    raise StackError(f"no {prefix}-<version>.jar in {jars}; delete that folder to resolve the jars again")
