"""Start `fourk emulator` on a free loopback port for the SDK tests."""

import os
import subprocess
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def fourk_binary() -> str:
    explicit = os.environ.get("FOURK_BIN")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "fourk"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("fourk binary not found: run `cargo build` first or set FOURK_BIN")


@pytest.fixture(scope="session")
def emulator_url():
    proc = subprocess.Popen(
        [fourk_binary(), "-q", "emulator", "--addr", "127.0.0.1:0", "--require-key", "sk-sdk-test"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:"), first
        yield first.removeprefix("listening on ") + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
