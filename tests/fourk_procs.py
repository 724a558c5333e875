"""What the Python test suites share: the fourk binary, and fourk servers started on a free
loopback port (the emulator, `fourk mcp --http`), stopped when the test is done."""

import contextlib
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def fourk_binary() -> str:
    explicit = os.environ.get("FOURK_BIN")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "fourk"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("fourk binary not found: run `cargo build` first or set FOURK_BIN")


@contextlib.contextmanager
def serving(args, lines=1, **popen):
    """Run `fourk ARGS`; yield the first `lines` lines of its stdout (where it says where it
    listens); terminate it afterwards."""
    proc = subprocess.Popen([fourk_binary(), *args], stdout=subprocess.PIPE, text=True, **popen)
    try:
        yield [proc.stdout.readline().strip() for _ in range(lines)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def emulator(*extra):
    """`fourk emulator` on a free port; yields its base URL (`http://127.0.0.1:PORT/v1`)."""
    with serving(["-q", "emulator", "--addr", "127.0.0.1:0", *extra]) as (first,):
        assert first.startswith("listening on http://127.0.0.1:"), first
        yield first.removeprefix("listening on ") + "/v1"
