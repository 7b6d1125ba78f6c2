#!/usr/bin/env python3
"""Render edgepick.conf.template for a prefix folder, ports, origin folder and app address.

    python infra/nginx/render_config.py --prefix /tmp/ep-nginx --origin-root .edgepick/origin \
        --edge-port 8080 --origin-port 8081 --app 127.0.0.1:8000
    nginx -p /tmp/ep-nginx -c /tmp/ep-nginx/nginx.conf

Standard library only, so the tests and a bare machine can both run it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("edgepick.conf.template")


def render(prefix: Path, origin_root: Path, edge_port: int, origin_port: int, app: str) -> Path:
    """Write `<prefix>/nginx.conf` (and the folders nginx needs); return its path."""
    prefix = prefix.resolve()
    for sub in ("cache", "client_body", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.read_text()
    for name, value in {"PREFIX": str(prefix), "ORIGIN_ROOT": str(origin_root.resolve()),
                        "EDGE_PORT": str(edge_port), "ORIGIN_PORT": str(origin_port),
                        "APP": app, "USER": getpass.getuser()}.items():
        text = text.replace(f"@@{name}@@", value)
    if "@@" in text:
        raise ValueError("a placeholder in the template was left unrendered")
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, required=True)
    parser.add_argument("--origin-root", type=Path, default=Path(".edgepick/origin"))
    parser.add_argument("--edge-port", type=int, default=8080)
    parser.add_argument("--origin-port", type=int, default=8081)
    parser.add_argument("--app", default="127.0.0.1:8000", help="host:port of edgepick serve")
    args = parser.parse_args()
    print(render(args.prefix, args.origin_root, args.edge_port, args.origin_port, args.app))
    return 0


if __name__ == "__main__":
    sys.exit(main())
