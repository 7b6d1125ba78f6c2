"""The real servers a benchmark runs against: redis-server and uvicorn apps, in a scratch
folder, all stopped and removed on exit."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
UVICORN = ["-m", "uvicorn", "--loop", "uvloop", "--no-access-log",
           "--log-level", "warning", "--workers", "1", "--host", "127.0.0.1"]
# What `edgepick serve` and `edgepick api` run (httptools with request limits, default limits).
EDGEPICK_HTTP = "edge_functions.http_protocol:GuardedHttpProtocol"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class Processes:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="edgepick-bench-"))
        self._procs: list[subprocess.Popen[bytes]] = []

    def redis(self) -> str:
        """Start a throwaway redis-server on loopback; returns its URL."""
        port = free_port()
        self._procs.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL))
        time.sleep(0.3)
        return f"redis://127.0.0.1:{port}/0"

    def uvicorn(self, app: str, env: dict[str, str], factory: bool = False,
                port: int | None = None, ready_path: str = "/healthz",
                http: str = EDGEPICK_HTTP) -> str:
        """Start one uvicorn worker for `module:attr`; returns its base URL once it answers."""
        port = port or free_port()
        args = [sys.executable, *UVICORN, "--http", http, "--port", str(port),
                *(["--factory"] if factory else []), app]
        self._procs.append(subprocess.Popen(
            args, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT))
        base = f"http://127.0.0.1:{port}"
        wait_http(base + ready_path)
        return base

    def edgepick(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`python -m edgepick ARGS` (e.g. a worker) in the background, stopped on exit."""
        proc = subprocess.Popen([sys.executable, "-m", "edgepick", *args],
                                env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT)
        self._procs.append(proc)
        return proc

    def exited(self) -> list[list[str]]:
        """The command lines of the processes started so far that are no longer running."""
        return [list(map(str, proc.args)) for proc in self._procs  # type: ignore[arg-type]
                if proc.poll() is not None]

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        for proc in reversed(self._procs):
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(self.work, ignore_errors=True)
