"""`fourk mcp --emulator` driven over stdio by the official MCP Python SDK (`mcp` on PyPI).

Each test starts its own server in a fresh root folder with its own ledger, so the
assertions about what was (not) sent read a ledger nobody else wrote.
"""

import asyncio
import json
import pathlib
import sqlite3
import subprocess

import sys

import httpx2
import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from fourk_procs import emulator, fourk_binary, serving  # noqa: E402
TOOLS = [
    "check_size", "plan", "generate", "edit", "draft", "final", "deliver", "batch", "status",
    "upscale", "fit", "convert", "cutout", "sheet", "verify", "compare", "history", "cost",
]
READ_ONLY = {"check_size", "plan", "verify", "compare", "history", "cost", "status"}
SPENDING = {"generate", "edit", "draft", "final", "deliver", "batch"}


def fourk() -> str:
    return fourk_binary()


def server(root: pathlib.Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=fourk(),
        args=["-q", "--ledger", str(root / "ledger.db"), "mcp", "--root", str(root), *extra],
        cwd=str(root),
        env={"OPENAI_API_KEY": "", "FOURK_NO_PROGRESS": "1"},
    )


def attempts(root: pathlib.Path) -> int:
    db = root / "ledger.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as c:
        return c.execute("SELECT count(*) FROM attempts").fetchone()[0]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 300))


def text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def test_every_tool_is_listed_with_valid_schemas_and_annotations(tmp_path):
    async def go():
        async with Client(server(tmp_path, "--emulator")) as c:
            assert "check_size" in (c.instructions or "") and "draft" in c.instructions
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert list(tools) == TOOLS
            for name, t in tools.items():
                jsonschema.Draft202012Validator.check_schema(t.input_schema)
                assert t.input_schema["type"] == "object", name
                assert t.output_schema, name
                jsonschema.Draft202012Validator.check_schema(t.output_schema)
                assert t.annotations.read_only_hint is (name in READ_ONLY), name
                assert t.annotations.open_world_hint is (name in SPENDING), name
                if name in SPENDING:
                    assert "dry_run" in t.input_schema["properties"], name
            gen = tools["generate"].input_schema["properties"]
            for flag in ["size", "quality", "format", "background", "transparent", "n", "model", "out"]:
                assert flag in gen
            assert {"draft", "mode"} <= set(tools["final"].input_schema["properties"])
            assert {"max_cost_usd", "timeout_s"} <= set(tools["deliver"].input_schema["properties"])
            assert {"paths", "expect"} <= set(tools["verify"].input_schema["properties"])

    run(go())


def test_a_failed_size_check_is_a_result_and_a_broken_rule_is_a_tool_error_with_nothing_sent(tmp_path):
    async def go():
        async with Client(server(tmp_path, "--emulator")) as c:
            r = await c.call_tool("check_size", {"size": "3841x2160"})
            assert not r.is_error
            assert r.structured_content["valid"] is False
            assert {v["rule"] for v in r.structured_content["violations"]} >= {"max_edge", "multiple_of_16"}
            assert r.structured_content["suggestions"]
            r = await c.call_tool("generate", {"prompt": "a barn", "size": "3841x2160"})
            assert r.is_error
            err = r.structured_content["error"]
            assert "max_edge" in err["rules"] and err["suggestions"], err
            assert "nothing was sent" in text(r)
            r = await c.call_tool("generate", {"prompt": "a barn", "sise": "4k"})
            assert r.is_error and r.structured_content["error"]["rule"] == "unknown_argument"
        assert attempts(tmp_path) == 0

    run(go())


def test_generate_returns_paths_links_a_preview_and_the_cost_under_100_kb_even_for_ten_images(tmp_path):
    async def go():
        ticks = []

        async def progress(p, total, message):
            ticks.append(message)

        async with Client(server(tmp_path, "--emulator")) as c:
            r = await c.call_tool(
                "generate",
                {"prompt": "ten lighthouses", "size": "1536x1024", "quality": "low", "n": 10},
                progress_callback=progress,
            )
            assert not r.is_error, text(r)
            s = r.structured_content
            assert len(s["images"]) == 10 and s["all_verified"]
            for img in s["images"]:
                p = pathlib.Path(img["path"])
                assert p.is_absolute() and p.exists() and p.is_relative_to(tmp_path / "fourk-out")
                assert (img["width"], img["height"], img["format"]) == (1536, 1024, "png")
                assert img["verified"] and img["sha256"] and img["bytes"] == p.stat().st_size
                assert pathlib.Path(img["sidecar"]).exists() and img["ledger_id"]
            assert s["cost_usd"] > 0 and s["usage"]["output_tokens"] > 0 and s["request_ids"]
            assert "procedural placeholder" in s["emulator_note"]
            links = [b for b in r.content if b.type == "resource_link"]
            assert len(links) == 10 and all(str(l.uri).startswith("file://") for l in links)
            images = [b for b in r.content if b.type == "image"]
            assert len(images) == 1 and images[0].mime_type == "image/jpeg"
            assert len(r.model_dump_json()) < 100_000
            assert str(s["images"][0]["path"]) in text(r) and "$" in text(r)
            assert any(m.startswith("sending") for m in ticks) and any(m.startswith("saved") for m in ticks)

            # The same call again: files are never replaced without force.
            out = s["images"][0]["path"]
            r = await c.call_tool("generate", {"prompt": "x", "size": "1024x1024", "out": out})
            assert r.is_error and "--force" in text(r)

            # The ledger's images as resources.
            res = await c.list_resources()
            uris = [str(x.uri) for x in res.resources]
            assert uris and uris[0].startswith("fourk://image/")
            templates = await c.list_resource_templates()
            assert templates.resource_templates[0].uri_template == "fourk://image/{id}"
            got = await c.read_resource(uris[0])
            meta = json.loads(got.contents[0].text)
            assert meta["verified"] and meta["exists"]
            assert got.contents[1].mime_type == "image/jpeg"

            h = await c.call_tool("history", {"limit": 4})
            assert len(h.structured_content["rows"]) == 4 and h.structured_content["next_offset"] == 4
            cost = await c.call_tool("cost", {"by": "size"})
            assert cost.structured_content["total_usd"] > 0

    run(go())


def test_streamed_partial_images_arrive_as_progress_on_both_routes(tmp_path):
    async def go():
        async with Client(server(tmp_path, "--emulator")) as c:
            for route in ["images", "responses"]:
                ticks = []

                async def progress(p, total, message):
                    ticks.append(message)

                r = await c.call_tool(
                    "generate",
                    {
                        "prompt": "a lighthouse at dusk", "size": "1024x1024", "quality": "low",
                        "stream": True, "partials": 2, "keep_partials": route == "images",
                        "route": route, "out": f"{route}.png",
                    },
                    progress_callback=progress,
                )
                assert not r.is_error, text(r)
                partial = [m for m in ticks if m.startswith("partial image")]
                assert [m.split()[2] for m in partial] == ["0", "1"], ticks
                if route == "images":
                    kept = [pathlib.Path(m.split("kept as ")[1]) for m in partial]
                    assert all(k.exists() and k.parent == tmp_path / "fourk-out" for k in kept), partial
                else:
                    assert all("kept as" not in m for m in partial), partial
                assert ticks.index(partial[-1]) < next(i for i, m in enumerate(ticks) if m.startswith("saved"))

    run(go())


def test_dry_runs_send_nothing_and_budgets_refuse_before_sending(tmp_path):
    async def go():
        async with Client(server(tmp_path, "--emulator", "--max-cost", "0.02")) as c:
            for tool, args in [
                ("generate", {"prompt": "a barn", "size": "4k", "quality": "high"}),
                ("draft", {"prompt": "a barn", "n": 3}),
                ("deliver", {"prompt": "a barn"}),
            ]:
                r = await c.call_tool(tool, {**args, "dry_run": True})
                assert not r.is_error, (tool, text(r))
                assert r.structured_content["dry_run"] and r.structured_content["cost_usd"] > 0, tool
            r = await c.call_tool("generate", {"prompt": "a barn", "size": "4k", "quality": "high"})
            assert r.is_error and r.structured_content["error"]["rule"] == "max_cost"
            assert "$0.02" in text(r) and "nothing was sent" in text(r)
            r = await c.call_tool(
                "generate", {"prompt": "a barn", "size": "1024x1024", "quality": "low", "max_cost_usd": 0.0001}
            )
            assert r.is_error and "max_cost_usd" in text(r)
        assert attempts(tmp_path) == 0

    run(go())


def test_paths_outside_the_roots_are_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG")
    (root / "link.png").symlink_to(outside)

    async def go():
        async with Client(server(root, "--emulator")) as c:
            for args in [{"paths": [str(outside)]}, {"paths": ["link.png"]}, {"paths": ["../outside.png"]}]:
                r = await c.call_tool("verify", args)
                assert r.is_error and r.structured_content["error"]["rule"] == "path_outside_roots", args
            r = await c.call_tool("generate", {"prompt": "x", "size": "1024x1024", "out": str(tmp_path / "x.png")})
            assert r.is_error and r.structured_content["error"]["rule"] == "path_outside_roots"
            r = await c.call_tool("edit", {"images": [str(outside)], "prompt": "x"})
            assert r.is_error and r.structured_content["error"]["rule"] == "path_outside_roots"
        assert attempts(root) == 0

    run(go())


def test_client_roots_apply_when_no_root_flag_is_given(tmp_path):
    from mcp.types import ListRootsResult, Root

    allowed = tmp_path / "project"
    allowed.mkdir()
    other = tmp_path / "elsewhere.png"
    other.write_bytes(b"x")

    async def roots(ctx):
        return ListRootsResult(roots=[Root(uri=allowed.as_uri())])

    params = StdioServerParameters(
        command=fourk(),
        args=["-q", "--ledger", str(tmp_path / "ledger.db"), "mcp", "--emulator"],
        cwd=str(tmp_path),
    )

    async def go():
        async with Client(params, list_roots_callback=roots, mode="legacy") as c:
            r = await c.call_tool("verify", {"paths": [str(other)]})
            assert r.is_error and "client's MCP roots" in text(r)
            r = await c.call_tool("generate", {"prompt": "x", "size": "1024x1024", "quality": "low"})
            assert not r.is_error, text(r)
            assert pathlib.Path(r.structured_content["images"][0]["path"]).is_relative_to(allowed / "fourk-out")

    run(go())


def test_every_tool_works_from_draft_to_final_and_the_local_pipeline(tmp_path):
    async def go():
        async with Client(server(tmp_path, "--emulator")) as c:
            r = await c.call_tool("plan", {"size": "4k", "variants": 4})
            assert not r.is_error and r.structured_content["recommended"]
            d = await c.call_tool("draft", {"prompt": "a red barn", "n": 2, "size": "2k"})
            assert not d.is_error, text(d)
            drafts = [i for i in d.structured_content["images"] if i.get("role") == "draft"]
            assert len(drafts) == 2 and any(i.get("role") == "sheet" for i in d.structured_content["images"])
            f = await c.call_tool("final", {"draft": str(drafts[0]["ledger_id"]), "mode": "native", "quality": "low"})
            assert not f.is_error, text(f)
            final = f.structured_content["images"][0]
            assert (final["width"], final["height"], final["role"]) == (2560, 1440, "final")
            dl = await c.call_tool("deliver", {"prompt": "a red barn", "size": "1536x1024", "quality": "low"})
            assert not dl.is_error and dl.structured_content["all_verified"], text(dl)
            src = final["path"]
            up = await c.call_tool("upscale", {"input": src, "to": "4k", "out": "up.png"})
            assert not up.is_error and up.structured_content["images"][0]["width"] == 3840, text(up)
            fit = await c.call_tool("fit", {"input": src, "to": "1024x1024", "out": "fit.jpg"})
            assert not fit.is_error and fit.structured_content["images"][0]["format"] == "jpeg", text(fit)
            cv = await c.call_tool("convert", {"input": src, "out": "c.webp", "quality": 80})
            assert not cv.is_error and cv.structured_content["images"][0]["format"] == "webp", text(cv)
            # Lossless WebP at cwebp's -z 0 effort: the same rule as the CLI's --webp-effort.
            z0 = await c.call_tool("convert", {"input": src, "out": "z0.webp", "webp_effort": 0})
            assert not z0.is_error and z0.structured_content["images"][0]["verified"], text(z0)
            bad = await c.call_tool("convert", {"input": src, "out": "bad.webp", "quality": 80, "webp_effort": 0})
            assert bad.is_error and "lossless WebP only" in text(bad), text(bad)
            # Out of range: refused by the core, whichever door it came through.
            far = await c.call_tool("convert", {"input": src, "out": "far.jpg", "quality": 150})
            assert far.is_error and "outside 0-100" in text(far), text(far)
            far = await c.call_tool("convert", {"input": src, "out": "far.webp", "webp_effort": 12})
            assert far.is_error and "outside 0-9" in text(far), text(far)
            cut = await c.call_tool("cutout", {"input": src, "out": "cut.png"})
            assert cut.structured_content is not None
            sh = await c.call_tool("sheet", {"images": [i["path"] for i in drafts], "out": "s.png"})
            assert not sh.is_error, text(sh)
            cmp_ = await c.call_tool("compare", {"a": up.structured_content["images"][0]["path"], "b": src, "out": "cmp.png"})
            assert not cmp_.is_error and cmp_.structured_content["report"], text(cmp_)
            v = await c.call_tool("verify", {"paths": [src], "expect": "2560x1440", "format": "png"})
            assert not v.is_error and v.structured_content["all_ok"]
            e = await c.call_tool("edit", {"images": [src], "prompt": "make it night", "size": "1536x1024", "quality": "low"})
            assert not e.is_error, text(e)
            jobs = tmp_path / "jobs.jsonl"
            jobs.write_text('{"prompt": "one", "size": "1024x1024", "quality": "low"}\n{"prompt": "two", "size": "1024x1024", "quality": "low"}\n')
            b = await c.call_tool("batch", {"jobs": "jobs.jsonl", "concurrency": 2})
            assert not b.is_error and len(b.structured_content["images"]) == 2, text(b)
            st = await c.call_tool("status", {})
            assert len(st.structured_content["report"]["jobs"]) >= 8

    run(go())


def test_batch_through_the_batch_api_waits_or_returns_an_id_to_follow_and_collect(tmp_path):
    async def go():
        jobs = tmp_path / "jobs.jsonl"
        jobs.write_text(
            '{"prompt": "one", "name": "one", "size": "1024x1024", "quality": "low"}\n'
            '{"prompt": "two", "name": "two", "size": "1024x1024", "quality": "low"}\n'
        )
        async with Client(server(tmp_path, "--emulator")) as c:
            # Waited for: submitted, polled, collected, recorded.
            r = await c.call_tool("batch", {"jobs": "jobs.jsonl", "via": "batch-api", "out": "waited"})
            assert not r.is_error, text(r)
            s = r.structured_content
            assert len(s["images"]) == 2 and s["all_verified"] and s["report"]["prices"] == "Batch API"
            assert s["report"]["status"] == "completed" and s["cost_usd"] > 0

            # Not waited for: the id comes back at once; status follows it in later calls (the
            # server keeps one emulator, as OpenAI keeps the batch), collect saves it.
            r = await c.call_tool("batch", {"jobs": "jobs.jsonl", "via": "batch-api", "no_wait": True, "out": "later"})
            assert not r.is_error, text(r)
            batch_id = r.structured_content["report"]["batch_id"]
            assert batch_id.startswith("batch_") and "action status" in r.structured_content["next"]
            assert not r.structured_content["images"]
            for _ in range(100):
                st = await c.call_tool("batch", {"action": "status", "batch_id": batch_id})
                assert not st.is_error, text(st)
                if st.structured_content["report"]["status"] == "completed":
                    break
                await asyncio.sleep(0.1)
            assert st.structured_content["report"]["status"] == "completed"
            got = await c.call_tool("batch", {"action": "collect", "batch_id": batch_id, "out": "later"})
            assert not got.is_error, text(got)
            names = sorted(pathlib.Path(i["path"]).name for i in got.structured_content["images"])
            assert names == ["one.png", "two.png"], names
            assert all(pathlib.Path(i["path"]).parent == tmp_path / "fourk-out" / "later" for i in got.structured_content["images"])

            bad = await c.call_tool("batch", {"action": "collect"})
            assert bad.is_error and bad.structured_content["error"]["rule"] == "batch_id"
            bad = await c.call_tool("batch", {"jobs": "jobs.jsonl", "no_wait": True})
            assert bad.is_error and "batch-api" in text(bad)

    run(go())


def test_background_jobs_report_through_status_with_the_same_result(tmp_path):
    async def go():
        async with Client(server(tmp_path, "--emulator")) as c:
            r = await c.call_tool("generate", {"prompt": "a barn", "size": "1024x1024", "quality": "low", "job": True})
            assert not r.is_error
            job = r.structured_content["job"]["id"]
            for _ in range(200):
                s = await c.call_tool("status", {"job": job})
                if s.structured_content["job"]["state"] != "running":
                    break
                await asyncio.sleep(0.05)
            assert s.structured_content["job"]["state"] == "done"
            assert s.structured_content["images"][0]["verified"]
            assert any(b.type == "resource_link" for b in s.content)
            r = await c.call_tool("draft", {"prompt": "a barn", "n": 1, "size": "1024x1024", "background": True})
            assert r.structured_content["job"]["state"] == "running"

    run(go())


@pytest.fixture()
def slow_emulator():
    with emulator("--latency", "0.15") as url:
        yield url


def test_a_cancelled_call_keeps_the_sent_request_and_sends_nothing_more(tmp_path, slow_emulator):
    params = server(tmp_path, "--base-url", slow_emulator)
    params.env = {"OPENAI_API_KEY": "sk-test", "FOURK_NO_PROGRESS": "1"}

    async def go():
        async with Client(params) as c:
            sent = asyncio.Event()

            async def progress(p, total, message):
                if message.startswith("sending"):
                    sent.set()

            call = asyncio.create_task(
                c.call_tool(
                    "draft",
                    {"prompt": "three barns", "n": 3, "size": "1024x1024", "route": "responses"},
                    progress_callback=progress,
                )
            )
            await asyncio.wait_for(sent.wait(), 60)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            for _ in range(600):
                s = await c.call_tool("status", {})
                jobs = s.structured_content["report"]["jobs"]
                if jobs and jobs[0]["state"] != "running":
                    break
                await asyncio.sleep(0.1)
            assert jobs[0]["state"] == "cancelled", jobs
            h = await c.call_tool("history", {})
            rows = [r for r in h.structured_content["rows"] if r["entry"] == "image"]
            assert len(rows) == 1 and rows[0]["verified"], rows
        # The one request that had left was answered and recorded; the other two never left.
        assert attempts(tmp_path) == 1

    run(go())


@pytest.fixture()
def http_server(tmp_path):
    args = ["-q", "--ledger", str(tmp_path / "ledger.db"), "mcp", "--emulator",
            "--root", str(tmp_path), "--http", "127.0.0.1:0"]
    env = {"OPENAI_API_KEY": "", "FOURK_NO_PROGRESS": "1"}
    with serving(args, lines=2, cwd=tmp_path, env=env) as (first, auth):
        assert first.startswith("mcp on http://127.0.0.1:") and first.endswith("/mcp"), first
        assert auth.startswith("Authorization: Bearer "), auth
        yield first.removeprefix("mcp on "), auth.removeprefix("Authorization: Bearer ")


def test_the_http_transport_needs_the_token_a_loopback_host_and_no_browser_origin(tmp_path, http_server):
    url, token = http_server
    assert len(token) == 64
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with httpx2.Client() as h:
        r = h.post(url, json=init, headers=accept)
        assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"], r.text
        r = h.post(url, json=init, headers={**accept, "Authorization": "Bearer " + "0" * 64})
        assert r.status_code == 401
        good = {**accept, "Authorization": f"Bearer {token}"}
        r = h.post(url, json=init, headers={**good, "Host": "evil.example"})
        assert r.status_code == 403, (r.status_code, r.text)
        r = h.post(url, json=init, headers={**good, "Origin": "http://evil.example"})
        assert r.status_code == 403, (r.status_code, r.text)

    async def go():
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            async with Client(streamable_http_client(url, http_client=http)) as c:
                tools = await c.list_tools()
                assert [t.name for t in tools.tools][:2] == ["check_size", "plan"]
                r = await c.call_tool("check_size", {"size": "3840x2160"})
                assert r.structured_content["valid"] is True
                ticks = []

                async def progress(p, total, message):
                    ticks.append(message)

                r = await c.call_tool(
                    "generate", {"prompt": "a barn", "size": "1024x1024", "quality": "low"},
                    progress_callback=progress,
                )
                assert not r.is_error, text(r)
                img = r.structured_content["images"][0]
                assert img["verified"] and pathlib.Path(img["path"]).is_relative_to(tmp_path / "fourk-out")
                assert any(m.startswith("saved") for m in ticks), ticks
                r = await c.call_tool("verify", {"paths": ["/etc/hostname"]})
                assert r.is_error and r.structured_content["error"]["rule"] == "path_outside_roots"

    run(go())
    assert attempts(tmp_path) == 1


def test_http_refuses_an_address_that_is_not_loopback(tmp_path):
    r = subprocess.run(
        [fourk(), "-q", "mcp", "--emulator", "--http", "0.0.0.0:0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert r.returncode == 2 and "not a loopback address" in r.stderr and "127.0.0.1:0" in r.stderr, r.stderr


def test_gemini_models_work_through_the_same_tools(tmp_path):
    """Nano Banana through `generate` and `edit`: the exact size from its tier, both files
    verified and returned as paths, the native one second."""

    async def go():
        async with Client(server(tmp_path, "--emulator")) as c:
            r = await c.call_tool(
                "generate",
                {"prompt": "a lighthouse", "model": "gemini-3-pro-image", "size": "1024x576"},
            )
            assert not r.is_error, text(r)
            s = r.structured_content
            fitted, native = s["images"]
            assert (fitted["width"], fitted["height"], fitted["verified"]) == (1024, 576, True)
            assert (native["width"], native["height"], native["verified"]) == (1376, 768, True)
            assert native["path"].endswith(".native.png")
            assert s["cost_usd"] > 0
            assert len(r.model_dump_json()) < 100_000

            e = await c.call_tool(
                "edit",
                {"images": [fitted["path"]], "prompt": "the same at night", "model": "gemini-3.1-flash-image"},
            )
            assert not e.is_error, text(e)
            out = e.structured_content["images"][0]
            assert (out["width"], out["height"], out["verified"]) == (1024, 576, True)

            bad = await c.call_tool(
                "generate",
                {"prompt": "x", "model": "gemini-3-pro-image", "size": "1024x576", "n": 2},
            )
            assert bad.is_error and "Gemini answers one image" in text(bad)
        with sqlite3.connect(tmp_path / "ledger.db") as db:
            rows = db.execute("SELECT DISTINCT provider FROM attempts WHERE provider != 'local'").fetchall()
        assert rows == [("gemini",)]

    run(go())
