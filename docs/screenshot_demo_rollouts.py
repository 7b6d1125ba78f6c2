"""The dashboard's experiments panel as `edgepick demo` leaves it: two real rollouts run by
the controller on the demo's synthetic population (one promoted, one rolled back), with the
figures the arm counters gathered from exposures the edge served and clicks the worker
applied. Runs the demo from this checkout, waits for the dashboard's address, signs in with
the printed token in headless chromium, photographs the panel, then stops the demo.

    python docs/screenshot_demo_rollouts.py [--out docs]

Writes dashboard-analysis.png. Needs chromium (Debian package); the demo starts its own
embedded Redis.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1280, "height": 900}
ADDRESS = re.compile(r"Operator dashboard: (\S+/dashboard) .*token generated for this run: "
                     r"(\S+?)\)")


def run_demo_until_serving(data_dir: Path, timeout_s: float = 900
                           ) -> tuple[subprocess.Popen[str], str, str]:
    """Start the demo on an empty data folder (its Redis, origin and registry: only this
    run's rollouts) and wait until it serves."""
    demo = subprocess.Popen([sys.executable, "-m", "edgepick", "demo"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "COLUMNS": "200",
                                 "EDGEPICK_DATA_DIR": str(data_dir)})
    assert demo.stdout is not None
    found: tuple[str, str] | None = None
    deadline = time.monotonic() + timeout_s
    for line in demo.stdout:
        print(line, end="")
        match = ADDRESS.search(line)
        if match:
            found = (match.group(1), match.group(2))
        if "Serving until Ctrl-C" in line and found:
            return demo, *found
        if time.monotonic() > deadline:
            break
    demo.kill()
    raise SystemExit("the demo never printed its dashboard and 'Serving until Ctrl-C'")


def photograph(url: str, token: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium")
                                             or "/usr/bin/chromium")
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.goto(url)
        page.fill("#token", token)
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("#panels:not([hidden])")
        page.wait_for_selector("#experiments .js-plotly-plot")
        page.wait_for_timeout(1500)  # plots settle
        page.locator("#experiments").screenshot(path=str(out / "dashboard-analysis.png"))
        browser.close()
    print(f"wrote {out / 'dashboard-analysis.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        demo, url, token = run_demo_until_serving(Path(data_dir))
        try:
            photograph(url, token, args.out)
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()


if __name__ == "__main__":
    main()
