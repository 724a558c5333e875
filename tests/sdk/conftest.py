"""Start `fourk emulator` on a free loopback port for the SDK tests."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from fourk_procs import emulator  # noqa: E402


@pytest.fixture(scope="session")
def emulator_url():
    with emulator("--require-key", "sk-sdk-test") as url:
        yield url
