"""Finding a Java runtime the servers accept.

Kafka 4.x brokers run on Java 17 or 21; Cassandra 5.0 runs on Java 11 or 17 only (not 21+).
Java 17 satisfies both, so it is preferred wherever the search falls back to /usr/lib/jvm.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from ..core.errors import StackError

log = logging.getLogger(__name__)

JVM_ROOT = Path("/usr/lib/jvm")
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@functools.cache
def major_version(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    major = int(match.group(1))
    # "1.8.0_392" is Java 8.
    return int(match.group(2) or 0) if major == 1 else major


def _candidates() -> Iterator[str]:
    # JAVA_HOME is the JDK convention every Java tool honours, so it is read here rather than
    # being one more platform setting.
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        yield str(Path(java_home) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        yield on_path
    if JVM_ROOT.is_dir():
        homes = sorted(p for p in JVM_ROOT.iterdir() if (p / "bin" / "java").is_file())
        # JDK 17 first: the one release both servers accept.
        homes.sort(key=lambda p: 0 if "17" in p.name else 1)
        for home in homes:
            yield str(home / "bin" / "java")


def find_java(service: str, accepts: Callable[[int], bool], wanted: str) -> str:
    """The first Java runtime (JAVA_HOME, PATH, /usr/lib/jvm) whose major version ``accepts``."""
    seen: list[str] = []
    for java in dict.fromkeys(_candidates()):
        major = major_version(java)
        seen.append(f"{java} (Java {major or '?'})")
        if major is not None and accepts(major):
            log.debug("%s: using %s (Java %d)", service, java, major)
            return java
    found = "; found: " + ", ".join(seen) if seen else "; no Java runtime found at all"
    raise StackError(
        f"{service}: needs {wanted}{found}. Install one (Debian: apt-get install openjdk-17-jre-headless) "
        "or point JAVA_HOME at it."
    )
