"""Screenshots of the dashboard's pages on any store, for the README and docs/web.md.

Not a test (tests/web/test_web_browser.py checks the pages). Serves the store on a free loopback
port with a one-off admin token, logs in with Debian's Chromium through Playwright, and saves one
full-page PNG per page. The README's picture is of the demo::

    .venv/bin/fleetmedic demo --out /tmp/demo
    .venv/bin/python bench/web_screenshots.py --db /tmp/demo/fleetmedic.duckdb \\
        --control /tmp/demo/heal.sqlite --out docs/screenshots --prefix demo-
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PAGES = {
    "overview": "/",
    "failures": "/failures",
    "priorities": "/priorities",
    "nodes": "/nodes",
    "actions": "/actions",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--prefix", default="")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    token = secrets.token_urlsafe(24)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FLEETMEDIC_TOKENS": f"shots:viewer:{token}"}
    command = [
        sys.executable,
        "-m",
        "fleetmedic",
        "serve",
        "--db",
        str(args.db),
        "--control",
        str(args.control),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        shoot(base, token, args)
    finally:
        server.terminate()
        server.wait(timeout=30)


def shoot(base: str, token: str, args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium)
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.goto(f"{base}/login")
        page.fill("input[name=token]", token)
        page.click("form[action='/login'] button[type=submit]")
        for name, path in PAGES.items():
            page.goto(base + path)
            if page.locator("script[src^='/static/'][src$='.js']").count() > 1:
                page.wait_for_selector("body[data-ready]", timeout=300_000)
            target = args.out / f"{args.prefix}{name}.png"
            page.screenshot(path=str(target), full_page=True)
            print(target)
        browser.close()


if __name__ == "__main__":
    main()
