"""Debian's Chromium for the studio's tests and scripts: where it is, the flags that keep it
off the network, and where screenshots go."""

import os
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHOTS = ROOT / "target" / "studio-screenshots"

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-proxy-server",
]


def chromium_path() -> str:
    explicit = os.environ.get("FOURK_CHROMIUM")
    for candidate in (explicit, shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and pathlib.Path(candidate).exists():
            return candidate
    raise RuntimeError("Chromium not found: `apt-get install chromium` (scripts/test does it) or set FOURK_CHROMIUM")


def shot(page, name: str):
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
