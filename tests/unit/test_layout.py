"""The package's layering holds: intake processes load no worker stack, and imports run one way.

The import closures are measured in a fresh interpreter, so nothing this test run imported before
hides or adds a module. The static rules read every module's imports with ``ast``, including
imports inside functions: a lazy import still pulls its package into the process that runs it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "mysimbdp_tasks"
CLIENTS = ("redis", "kafka", "cassandra", "celery", "kombu")
PATHS = ("batch", "stream", "control", "reporting", "worker", "commands")


def _closure(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    return set(json.loads(out.stdout))


def _forbidden(modules: set[str], *prefixes: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_the_watcher_process_loads_neither_cassandra_nor_celery_nor_the_task_bodies() -> None:
    found = _closure("mysimbdp_tasks.batch.watcher")
    assert "mysimbdp_tasks.batch.watcher" in found  # the probe really imported it
    assert _forbidden(found, "cassandra", "celery", "mysimbdp_tasks.worker", "mysimbdp_tasks.batch.files") == []


def test_the_bridge_loads_neither_cassandra_nor_the_task_bodies() -> None:
    found = _closure("mysimbdp_tasks.stream.bridge")
    assert "mysimbdp_tasks.stream.bridge" in found
    assert _forbidden(found, "cassandra", "mysimbdp_tasks.worker.tasks", "mysimbdp_tasks.batch.files") == []


def _imports(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]  # the package a relative import starts from (for __init__ too)
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.append(target)
            # `from . import x` imports the submodule x
            names.extend(f"{target}.{a.name}" for a in node.names if not node.module)
    return names


def _modules(*subpackages: str) -> list[Path]:
    return sorted(p for sub in subpackages for p in (PACKAGE / sub).rglob("*.py"))


def test_imports_resolve_relative_names() -> None:
    # Guards the checks below: a resolver that found nothing would let every rule pass.
    found = _imports(PACKAGE / "services" / "quotas.py")
    assert "mysimbdp_tasks.core" in found and "mysimbdp_tasks.core.names" not in found
    assert "mysimbdp_tasks.core.tenants" in found and "redis" in found


def test_the_core_imports_no_client_library() -> None:
    bad = {f"{p.relative_to(PACKAGE)}: {m}" for p in _modules("core") for m in _imports(p)
           if m.split(".")[0] in CLIENTS}
    assert sorted(bad) == []


def test_only_the_cli_commands_import_the_dev_stack() -> None:
    allowed = ("stack", "commands")
    bad = {f"{p.relative_to(PACKAGE)}: {m}" for p in sorted(PACKAGE.rglob("*.py"))
           if p.relative_to(PACKAGE).parts[0] not in allowed
           for m in _imports(p) if m == "mysimbdp_tasks.stack" or m.startswith("mysimbdp_tasks.stack.")}
    assert sorted(bad) == []


def test_core_and_services_import_no_data_path_control_worker_or_command() -> None:
    upper = tuple(f"mysimbdp_tasks.{p}" for p in PATHS)
    bad = {f"{p.relative_to(PACKAGE)}: {m}" for p in _modules("core", "services") for m in _imports(p)
           if any(m == u or m.startswith(u + ".") for u in upper)}
    assert sorted(bad) == []


def _env_reads(tree: ast.AST) -> list[str]:
    """MYSIMBDP_* variables read from the environment (os.environ.get / os.getenv / os.environ[...])."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
                found.append(str(node.args[0].value))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and ast.unparse(node.value) in ("os.environ", "environ") and isinstance(node.slice, ast.Constant):
            found.append(str(node.slice.value))
    return [v for v in found if v.startswith("MYSIMBDP_")]


def test_only_the_settings_read_the_platforms_environment() -> None:
    assert _env_reads(ast.parse('x = os.environ.get("MYSIMBDP_A") or os.environ["MYSIMBDP_B"]')) == [
        "MYSIMBDP_A", "MYSIMBDP_B"]  # the probe sees both forms
    bad = {f"{p.relative_to(PACKAGE)}: {v}" for p in sorted(PACKAGE.rglob("*.py"))
           if p.relative_to(PACKAGE).parts[0] != "stack" and p != PACKAGE / "core" / "settings.py"
           for v in _env_reads(ast.parse(p.read_text(encoding="utf-8")))}
    assert sorted(bad) == []


MAX_MODULE_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in sorted(PACKAGE.rglob("*.py"))}
    assert sizes["core/settings.py"] > 0  # the walk found the package
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert too_long == {}


def test_no_two_test_modules_share_a_name() -> None:
    # pytest imports test modules by their base name (no __init__.py in tests/): two of one name in
    # different folders stop the whole collection with "import file mismatch".
    tests = Path(__file__).resolve().parents[1]
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {name: where for name, where in seen.items() if len(where) > 1} == {}
