"""README's install on Debian's own Python: compose/install.sh makes a virtual environment from
/usr/bin/python3 and installs the package at the versions of compose/constraints.txt, with no pip
on PATH but the environment's own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kit import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

DEBIAN_PYTHON = Path("/usr/bin/python3")
# What install.sh runs besides the Python it is given (java and mvn are only looked for).
TOOLS = ("bash", "dirname", "id", "rm", "redis-server", "prometheus", "java", "mvn", "apt-get")


def _clean_copy(dest: Path) -> Path:
    """The repository's tracked and new files, as a fresh clone would have them (no .venv, no caches)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    for rel in listed:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _bare_path(where: Path) -> str:
    """A PATH with install.sh's tools and nothing else: no pip, no python3 of any kind."""
    where.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (where / tool).symlink_to(found)
    return str(where)


def _pins() -> dict[str, str]:
    lines = (ROOT / "compose" / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


@pytest.mark.skipif(not DEBIAN_PYTHON.exists(), reason="no /usr/bin/python3 (not a Debian machine)")
def test_install_sh_makes_a_venv_from_debian_python(tmp_path: Path) -> None:
    repo = _clean_copy(tmp_path / "clone")
    path = _bare_path(tmp_path / "bin")
    assert shutil.which("pip", path=path) is None and shutil.which("python3", path=path) is None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYENV"))}
    # Runtime dependencies only: the point is the environment and the pins, not downloading the
    # test tools twice (the extras install the same way).
    env.update(PATH=path, PYTHON=str(DEBIAN_PYTHON), EXTRAS="")
    done = subprocess.run(["bash", "compose/install.sh"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=1100)
    assert done.returncode == 0, done.stdout + done.stderr
    venv = repo / ".venv"
    assert "home = /usr/bin" in (venv / "pyvenv.cfg").read_text()
    version = subprocess.run([str(venv / "bin" / "mysimbdp"), "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.startswith("mysimbdp ")
    check = subprocess.run([str(venv / "bin" / "mysimbdp"), "tenants", "check", "tenants/tenants.json"], cwd=repo,
                           capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stderr
    pins = _pins()
    probe = "import importlib.metadata as m; print(m.version('kafka-python'), m.version('celery'))"
    installed = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                               check=True).stdout.split()
    assert installed == [pins["kafka-python"], pins["celery"]]
