"""One `fourk studio --emulator` and one headless Chromium for the whole studio suite.

The studio runs in a fresh root folder with its own ledger; Chromium is Debian's (`chromium`,
installed by scripts/test when missing), driven by Playwright with `executable_path`, with the
flags that keep it off the network. Screenshots go to target/studio-screenshots/.
"""

import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from fourk_procs import serving  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from chromium import CHROMIUM_FLAGS, SHOTS, chromium_path  # noqa: E402




class Studio:
    def __init__(self, url: str, root: pathlib.Path, ledger: pathlib.Path):
        self.url = url
        self.base = url.split("/?token=")[0]
        self.token = url.split("token=")[1]
        self.port = int(self.base.rsplit(":", 1)[1])
        self.root = root
        self.ledger = ledger

    @property
    def cookie(self) -> str:
        return f"fourk_studio_{self.port}={self.token}"


@pytest.fixture(scope="session")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio-root")
    ledger = root / "ledger.db"
    env = {**os.environ, "OPENAI_API_KEY": "", "FOURK_NO_PROGRESS": "1"}
    args = ["-q", "--ledger", str(ledger), "studio", "--emulator", "--root", str(root)]
    with serving(args, cwd=str(root), env=env) as (first,):
        assert first.startswith("studio on http://127.0.0.1:"), first
        yield Studio(first.removeprefix("studio on "), root, ledger)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser, studio):
    """A signed-in page at 1280x800: the token URL was visited, so the cookie is set."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(studio.url)
    yield pg
    ctx.close()
    assert not errors, f"script errors on the page: {errors}"
