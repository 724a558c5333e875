"""`fourk studio --emulator` in headless Chromium, as a person uses it: the gallery, the Make
form (a bad size shows its rule and the nearest sizes before anything can be sent), drafts
reviewed and one made final by upscale, the image page at 100% zoom, the cost page; and the
local-server checks (token, Host, paths) from outside the browser."""

import http.client
import json
import os
import sqlite3
import subprocess
import urllib.parse

from chromium import shot

from fourk_procs import emulator, fourk_binary, serving

EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def request(studio, path, method="GET", host=None, headers=None, body=None, cookie=True):
    c = http.client.HTTPConnection("127.0.0.1", studio.port, timeout=30)
    h = {"Host": host or f"127.0.0.1:{studio.port}", **(headers or {})}
    if cookie:
        h["Cookie"] = studio.cookie
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def make(page, prompt, size="3840x2160", n=1, button="Generate"):
    """Fill the Make form, accept the estimate, press `button`, wait for the job's end."""
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/make")
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_label("Size").fill(size)
    page.get_by_label("Count").fill(str(n))
    page.locator("#check.valid").wait_for()
    page.get_by_label("I have read the estimate").check()
    return start_and_wait(page, lambda: page.get_by_role("button", name=button, exact=True).click())


def start_and_wait(page, click, timeout=180_000):
    """Click what starts a job; wait for that job's card to show its end."""
    with page.expect_response(lambda r: r.url.split("/api/")[-1] in ("generate", "draft", "final", "local", "edit", "batch")) as r:
        click()
    answer = r.value.json()
    assert "job" in answer, answer
    job = answer["job"]
    card = page.locator(f"#job-{job}")
    card.locator(".state.done, .state.failed, .state.cancelled").wait_for(timeout=timeout)
    return card


def test_the_token_becomes_a_cookie_and_leaves_the_address_bar(page, studio):
    assert page.url == studio.base + "/", page.url
    assert page.get_by_role("heading", name="Gallery").is_visible()
    assert "Offline emulator" in page.locator(".banner").inner_text()
    cookies = page.context.cookies()
    c = next(c for c in cookies if c["name"] == f"fourk_studio_{studio.port}")
    assert c["httpOnly"] and c["sameSite"] == "Strict"


def test_local_server_checks(studio, tmp_path):
    # No token: 401. A foreign Host (DNS rebinding): 403. Security headers on every answer.
    status, headers, _ = request(studio, "/", cookie=False)
    assert status == 401
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert request(studio, "/", host=f"evil.example:{studio.port}")[0] == 403
    assert request(studio, "/", host=f"localhost:{studio.port}")[0] == 200
    # A change without the page's own Origin: 403.
    body = json.dumps({"prompt": "x", "size": "1024x1024"})
    assert request(studio, "/api/generate", "POST", body=body,
                   headers={"Content-Type": "application/json"})[0] == 403
    assert request(studio, "/api/generate", "POST", body=body, headers={
        "Content-Type": "application/json", "Origin": "http://evil.example"})[0] == 403
    # Paths: outside the roots 403; inside but not an image 404.
    q = urllib.parse.quote("/etc/passwd")
    assert request(studio, f"/raw?path={q}")[0] == 403
    notes = studio.root / "notes.png"
    notes.write_text("not an image")
    assert request(studio, f"/raw?path={urllib.parse.quote(str(notes))}")[0] == 404
    # A ledger row that points outside the roots (a copied ledger) is listed, never served.
    outside = tmp_path / "elsewhere.png"
    subprocess.run([fourk_binary(), "-q", "--ledger", str(studio.ledger), "generate", "outside",
                    "--size", "1024x1024", "--emulator", "--out", str(outside)], check=True)
    image_id = sqlite3.connect(studio.ledger).execute(
        "SELECT id FROM images WHERE path = ?", (str(outside),)).fetchone()[0]
    for path in (f"/file/{image_id}", f"/thumb/{image_id}"):
        status, _, data = request(studio, path)
        assert status == 403, (path, status, data)
        assert b"--root" in data


def test_a_bad_size_shows_its_rule_then_generate_makes_a_verified_image(page, studio):
    page.get_by_role("link", name="Make", exact=True).click()
    page.get_by_label("Prompt").fill("a lighthouse at dusk, studio test")
    page.get_by_label("Size").fill("4000x2000")
    check = page.locator("#check.invalid")
    check.wait_for()
    text = check.inner_text()
    assert "max_edge" in text and "3840" in text, text
    assert page.get_by_role("button", name="Generate", exact=True).is_disabled()
    shot(page, "make-bad-size")
    page.get_by_role("button", name="Use 3840x1920").click()
    page.locator("#check.valid").wait_for()
    assert page.get_by_label("Size").input_value() == "3840x1920"
    assert "experimental" in page.locator("#check").inner_text()
    assert "$" in page.locator("#check .estimate").first.inner_text()
    # Nothing can be sent before the estimate is accepted.
    assert page.get_by_role("button", name="Generate", exact=True).is_disabled()
    page.get_by_label("I have read the estimate").check()
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Generate", exact=True).click())
    assert card.locator(".state").inner_text() == "done"
    # Streamed partial images were shown as progress.
    assert card.locator(".partials img").count() >= 1
    assert "all verified" in card.locator(".message").inner_text()
    shot(page, "make-done")
    card.get_by_role("link", name="Open the result").click()
    assert page.get_by_role("heading", name="Image #").is_visible() or page.locator("h1").inner_text().startswith("Image #")
    assert "3840x1920" in page.locator(".facts").inner_text()
    assert page.locator(".facts .badge.ok").inner_text() == "verified"
    page.get_by_role("link", name="Gallery").click()
    first = page.locator("ul.grid li.card").first
    assert "3840x1920" in first.inner_text() and "verified" in first.inner_text()
    assert first.locator("img").get_attribute("alt") == "a lighthouse at dusk, studio test"


def test_a_prompt_carrying_a_script_stays_text(page, studio):
    card = make(page, EVIL, size="1024x1024")
    assert "all verified" in card.locator(".message").inner_text()
    page.goto(studio.base + "/")
    img = page.locator("ul.grid li.card img").first
    assert img.get_attribute("alt") == EVIL
    assert page.evaluate("window.__pwned") is None
    card.page.get_by_role("link", name="Make", exact=True).click()
    page.goto(studio.base + "/")
    page.locator("ul.grid li.card a").first.click()
    assert EVIL in page.locator(".prompt").inner_text()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("script").count() == 1  # the studio's own, nothing from the prompt


def test_drafts_reviewed_and_one_made_final_by_upscale(page, studio):
    card = make(page, "a red fox in snow, drafts", size="3840x2160", n=3, button="Draft")
    assert "3 images, all verified" in card.locator(".message").inner_text()
    card.get_by_role("link", name="Review the drafts").click()
    assert page.locator("h1").inner_text() == "Review"
    picks = page.locator("input[name=draft]")
    assert picks.count() == 3
    page.locator("img.sheet").wait_for()
    assert page.locator("img.sheet").evaluate("i => i.complete && i.naturalWidth > 0")
    second = picks.nth(1)
    draft_id = int(second.get_attribute("value"))
    second.check()
    page.get_by_label("upscale", exact=False).first.check()
    shot(page, "review")
    job = start_and_wait(page, lambda: page.get_by_role("button", name="Make final").click())
    assert job.locator(".state").inner_text() == "done", job.inner_text()
    assert "all verified" in job.locator(".message").inner_text()
    job.get_by_role("link", name="Open the result").click()
    assert "3840x2160" in page.locator(".facts").inner_text()
    path = page.locator(".facts .path code").inner_text()
    out = subprocess.run([fourk_binary(), "verify", path, "--expect", "3840x2160"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # The final is linked to its draft, both ways.
    lineage = page.locator(".lineage").inner_text()
    assert "master->upscale" in lineage
    page.goto(f"{studio.base}/review/{draft_id}")
    final_links = page.locator("ul.drafts li").nth(1).locator("a.final")
    assert final_links.count() >= 2
    assert "3840x2160" in final_links.last.inner_text()


def test_work_survives_a_reload(page, studio):
    page.goto(studio.base + "/make")
    page.get_by_label("Prompt").fill("kept across reloads")
    page.get_by_label("Size").fill("1536x1024")
    page.get_by_label("Count").fill("2")
    page.locator("#check.valid").wait_for()
    page.get_by_label("I have read the estimate").check()
    with page.expect_response("**/api/draft") as r:
        page.get_by_role("button", name="Draft", exact=True).click()
    job_id = "job-" + r.value.json()["job"]
    page.reload()
    card = page.locator(f"#{job_id}")
    card.wait_for()
    card.locator(".state.done").wait_for(timeout=120_000)
    assert "2 images" in card.locator(".message").inner_text()


def test_full_size_is_one_image_pixel_per_device_pixel(browser, studio):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=2)
    page = ctx.new_page()
    page.goto(studio.url)
    page.goto(studio.base + "/?size=3840x2160")
    page.locator("ul.grid li.card a").first.click()
    img = page.locator("#full")
    img.evaluate("i => i.decode()")
    fitted = img.evaluate("i => i.getBoundingClientRect().width")
    page.get_by_role("button", name="100% zoom").click()
    assert page.get_by_role("button", name="100% zoom").get_attribute("aria-pressed") == "true"
    natural, shown, dpr = img.evaluate(
        "i => [i.naturalWidth, i.getBoundingClientRect().width, window.devicePixelRatio]")
    assert dpr == 2
    assert abs(shown * dpr - natural) < 1, (natural, shown, dpr)
    assert shown > fitted
    shot(page, "image-100")
    ctx.close()


def test_cost_page_charts_the_ledger(page, studio):
    page.get_by_role("link", name="Cost").click()
    assert page.get_by_role("img", name="By model").is_visible()
    assert "gpt-image-2" in page.locator("figure", has_text="By model").inner_text()
    assert page.get_by_role("img", name="By day").is_visible()
    shot(page, "cost")
    page.get_by_role("link", name="Gallery").click()
    page.locator("ul.grid li.card img").first.evaluate("i => i.decode()")
    shot(page, "gallery")
    # Filters narrow the gallery.
    page.get_by_label("Command").select_option("draft")
    page.get_by_role("button", name="Filter").click()
    cmds = page.locator("ul.grid .cmd").all_inner_texts()
    assert cmds and set(cmds) == {"draft"}, cmds


def open_image(page, studio, size):
    page.goto(f"{studio.base}/?size={size}")
    page.locator("ul.grid li.card a").first.click()
    page.locator("#actions").wait_for()


def test_image_actions_upscale_cutout_convert(page, studio):
    make(page, "a small master for actions", size="1536x864")
    open_image(page, studio, "1536x864")
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Upscale to 4K").click())
    assert "upscale: 3840x2160 png, verified" in card.locator(".message").inner_text()
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Cutout").click())
    assert "cutout:" in card.locator(".message").inner_text()
    page.get_by_label("Convert to").select_option("webp")
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Convert", exact=True).click())
    assert "convert: 1536x864 webp, verified" in card.locator(".message").inner_text()
    # Lossless WebP at cwebp -z 0's effort, and JPEG at a chosen quality: the sidecars say so.
    page.get_by_label("WebP effort").select_option("0")
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Convert", exact=True).click())
    assert "convert: 1536x864 webp, verified" in card.locator(".message").inner_text()
    page.get_by_label("WebP effort").select_option("")
    page.get_by_label("Convert to").select_option("jpeg")
    page.get_by_label("Quality").fill("80")
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Convert", exact=True).click())
    assert "convert: 1536x864 jpg, verified" in card.locator(".message").inner_text()
    shot(page, "image-actions")
    cars = [json.loads(c.read_text()) for c in (studio.root / "fourk-out").glob("*.json")]
    outputs = [c["output"] for c in cars if c.get("operation") == "convert"]
    assert {"format": "webp", "quality": None, "png_level": None, "lossless": True, "webp_effort": 0} in outputs, outputs
    assert {"format": "jpeg", "quality": 80, "png_level": None, "lossless": False} in outputs, outputs
    # A quality with a WebP effort means nothing: the core's rule, shown on the job's card.
    page.get_by_label("Convert to").select_option("webp")
    page.get_by_label("WebP effort").select_option("3")
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Convert", exact=True).click())
    assert "lossless WebP only" in card.inner_text(), card.inner_text()
    # The upscale is in the gallery, linked to its source, and verified on disk.
    card.page.goto(f"{studio.base}/?command=upscale")
    page.locator("ul.grid li.card a").first.click()
    assert "3840x2160" in page.locator(".facts").inner_text()
    assert "image->upscale" in page.locator(".lineage").inner_text()


def test_compare_shows_detail_ratio_and_psnr(page, studio):
    open_image(page, studio, "3840x2160")
    other = page.get_by_label("Compare with image #")
    if not other.input_value():
        other.fill("1")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.locator("#detail-ratio").wait_for(timeout=120_000)
    float(page.locator("#detail-ratio").inner_text())
    assert page.locator("#psnr").inner_text()
    assert page.locator(".side img").count() == 2
    shot(page, "compare")
    page.get_by_role("radio", name="Slider").check()
    assert page.locator("#slider").is_visible() and not page.locator("#side").is_visible()
    page.get_by_label("Slider position").fill("20")
    assert "20%" in page.locator("#over").evaluate("o => o.style.clipPath")


def test_edit_with_a_painted_mask(page, studio):
    make(page, "a room to edit", size="1536x1024")
    open_image(page, studio, "1536x1024")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Prompt").fill("add a window")
    page.locator("#base").evaluate("i => i.decode()")
    # Nothing painted: the mask marks nothing, refused by fourk edit --mask's rule, not sent.
    page.get_by_role("button", name="Edit", exact=True).click()
    err = page.locator("#jobs .error")
    err.wait_for()
    assert "mask_transparent" in err.inner_text(), err.inner_text()
    page.locator("#mask-canvas").scroll_into_view_if_needed()
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    shot(page, "edit-mask")
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Edit", exact=True).click())
    assert "1 image, all verified" in card.locator(".message").inner_text(), card.inner_text()
    card.get_by_role("link", name="Open the result").click()
    assert "1536x1024" in page.locator(".facts").inner_text()
    # The mask that was sent is a PNG the size of the image, transparent where painted.
    masks = sorted((studio.root / "fourk-out").glob("fourk-mask-*.png"))
    assert masks
    from PIL import Image  # noqa: PLC0415

    with Image.open(masks[-1]) as m:
        assert m.size == (1536, 1024) and m.mode == "RGBA"
        alpha = m.getchannel("A")
        assert alpha.getpixel((0, 1023)) == 255
        assert alpha.getpixel((768, 512)) == 0


def test_a_batch_from_the_cli_is_watched_live_to_its_end(page, studio, tmp_path):
    page.get_by_role("link", name="Batches").click()
    assert page.locator("h1").inner_text() == "Batches"
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("prompt,size,name\n" + "".join(
        f"batch item {i},1024x1024,item{i}\n" for i in range(3)))
    with emulator("--latency", "0.02") as url:
        env = {**os.environ, "OPENAI_API_KEY": "sk-studio-test", "FOURK_NO_PROGRESS": "1"}
        proc = subprocess.Popen(
            [fourk_binary(), "-q", "--ledger", str(studio.ledger), "batch", str(jobs), "--base-url", url,
             "--concurrency", "1", "--out", str(studio.root / "batch-out")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            row = page.locator("table.batches tr", has_text="jobs.csv")
            # Seen while it runs (the page was open before the batch started), then at its end.
            page.locator("table.batches tr[data-state=running]", has_text="jobs.csv").wait_for(timeout=30_000)
            shot(page, "batches-running")
            page.locator("table.batches tr[data-state=ok]", has_text="jobs.csv").wait_for(timeout=60_000)
        finally:
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
    text = row.inner_text()
    assert "3 / 3" in text and "$" in text, text
    shot(page, "batches")


UNNAMED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button, a[href], canvas')]
  .filter(e => e.type !== 'hidden' && !e.closest('[hidden]'))
  .filter(e => {
    const named = (e.labels && e.labels.length > 0) || e.getAttribute('aria-label')
      || e.getAttribute('aria-labelledby') || (e.textContent || '').trim() || e.getAttribute('title')
      || (e.querySelector && e.querySelector('img[alt]'));
    return !named;
  })
  .map(e => e.outerHTML.slice(0, 120))"""


def test_every_page_names_its_controls_and_fits_1280_and_a_4k_screen(browser, studio):
    subprocess.run([fourk_binary(), "-q", "--ledger", str(studio.ledger), "draft", "named controls",
                    "--n", "2", "--size", "4k", "--emulator", "--out", str(studio.root / "a11y")], check=True)
    ids = sqlite3.connect(studio.ledger).execute(
        "SELECT i.id FROM images i JOIN runs r ON r.id = i.run_id WHERE r.kind = 'draft' ORDER BY i.id DESC").fetchall()
    draft = ids[1][0]
    pages = ["/", "/make", f"/review/{draft}", f"/image/{draft}", f"/edit/{draft}",
             f"/compare?a={draft}&b={ids[1][0]}", "/batches", "/cost"]
    for width, height, dpr in ((1280, 800, 1), (1920, 1080, 2), (3840, 2160, 1)):
        ctx = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=dpr)
        page = ctx.new_page()
        page.goto(studio.url)
        for path in pages:
            page.goto(studio.base + path)
            page.wait_for_load_state("load")
            assert page.evaluate(UNNAMED_CONTROLS) == [], path
            overflow = page.evaluate("() => document.scrollingElement.scrollWidth - innerWidth")
            assert overflow <= 0, (path, width, overflow)
        if dpr == 2:
            page.goto(studio.base + "/")
            shot(page, "gallery-4k-screen")
        ctx.close()


def test_the_make_form_works_from_the_keyboard(page, studio):
    page.goto(studio.base + "/make")
    page.get_by_label("Prompt").focus()
    page.keyboard.type("made with the keyboard only")
    page.keyboard.press("Tab")  # Size
    page.keyboard.press("Control+A")
    page.keyboard.type("1536x1024")
    page.locator("#check.valid").wait_for()
    page.get_by_label("I have read the estimate").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    active = page.evaluate("document.activeElement.outerHTML.slice(0, 200)")
    assert 'id="generate"' in active, (active, page.locator("#check").inner_text())
    card = start_and_wait(page, lambda: page.keyboard.press("Enter"))
    assert "1 image, all verified" in card.locator(".message").inner_text()


def test_cancel_keeps_what_was_sent(browser, tmp_path):
    """A slow API: Cancel while the request is in flight; the answer is still saved, verified
    and recorded, and the job stops before its next step."""
    root = tmp_path / "slow"
    root.mkdir()
    with emulator("--latency", "0.05") as url:
        env = {**os.environ, "OPENAI_API_KEY": "sk-studio-test", "FOURK_NO_PROGRESS": "1"}
        args = ["-q", "--ledger", str(root / "ledger.db"), "studio", "--base-url", url, "--root", str(root)]
        with serving(args, cwd=str(root), env=env) as (first,):
            studio_url = first.removeprefix("studio on ")
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            page.goto(studio_url)
            page.get_by_role("link", name="Make", exact=True).click()
            assert page.locator(".banner").count() == 0, "no emulator banner on a real endpoint"
            page.get_by_label("Prompt").fill("cancel me")
            page.get_by_label("Size").fill("1536x1024")
            page.get_by_label("Count").fill("2")
            page.locator("#check.valid").wait_for()
            page.get_by_label("I have read the estimate").check()
            with page.expect_response("**/api/draft") as r:
                page.get_by_role("button", name="Draft", exact=True).click()
            card = page.locator(f"#job-{r.value.json()['job']}")
            card.locator(".log li", has_text="sending").wait_for()
            card.get_by_role("button", name="Cancel").click()
            card.locator(".log li", has_text="cancel asked while a request is in flight").wait_for()
            card.locator(".state.cancelled, .state.done, .state.failed").wait_for(timeout=60_000)
            state = card.locator(".state").inner_text()
            log = card.locator(".log").inner_text()
            assert "saved" in log and "(verified)" in log, log
            assert state == "cancelled", (state, log)
            assert "step: sheet" not in log, "stopped before its next step"
            ctx.close()
    saved = sqlite3.connect(root / "ledger.db").execute("SELECT COUNT(*) FROM images WHERE verified = 1").fetchone()[0]
    assert saved == 2


def test_a_non_loopback_address_is_refused_unless_allowed():
    out = subprocess.run([fourk_binary(), "studio", "--emulator", "--addr", "0.0.0.0:0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert "--allow-remote" in out.stderr and "127.0.0.1:0" in out.stderr, out.stderr
    assert out.stdout == ""


def test_download_is_an_attachment(studio):
    path = studio.root / "download me.png"
    subprocess.run([fourk_binary(), "-q", "--ledger", str(studio.ledger), "generate", "download",
                    "--size", "1024x1024", "--emulator", "--out", str(path)], check=True)
    image_id = sqlite3.connect(studio.ledger).execute(
        "SELECT id FROM images WHERE path = ?", (str(path),)).fetchone()[0]
    status, headers, data = request(studio, f"/file/{image_id}?download=1")
    assert status == 200
    assert headers["content-disposition"] == 'attachment; filename="download_me.png"'
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_batch_started_from_the_page(page, studio):
    (studio.root / "page-jobs.csv").write_text(
        "prompt,size,name\nfrom the page one,1024x1024,one\nfrom the page two,1024x1024,two\n")
    page.goto(studio.base + "/batches")
    page.get_by_label("Jobs file").fill("/etc/passwd")
    page.get_by_role("button", name="Check").click()
    page.locator("#batch-check.invalid").wait_for()
    assert "does not exist under the studio's roots" in page.locator("#batch-check").inner_text()
    assert page.get_by_role("button", name="Run batch").is_disabled()
    page.get_by_label("Jobs file").fill("page-jobs.csv")
    page.get_by_role("button", name="Check").click()
    page.locator("#batch-check.valid").wait_for()
    assert "2 job(s), 0 already done, 2 to send" in page.locator("#batch-check").inner_text()
    page.get_by_label("I have read the estimate").check()
    card = start_and_wait(page, lambda: page.get_by_role("button", name="Run batch").click())
    assert "2 succeeded, 0 failed" in card.locator(".message").inner_text(), card.inner_text()
    page.locator("table.batches tr[data-state=ok]", has_text="page-jobs.csv").wait_for()
    # Run again: nothing to send (resume without paying twice).
    page.get_by_role("button", name="Check").click()
    page.locator("#batch-check", has_text="2 already done, 0 to send").wait_for()
    assert page.get_by_role("button", name="Run batch").is_disabled()


def test_a_native_final_from_the_review_page(page, studio):
    card = make(page, "a windmill at noon, native", size="2560x1440", n=2, button="Draft")
    card.get_by_role("link", name="Review the drafts").click()
    page.get_by_label("native", exact=False).first.check()
    job = start_and_wait(page, lambda: page.get_by_role("button", name="Make final").click())
    assert job.locator(".state").inner_text() == "done", job.inner_text()
    assert "step: native" in job.locator(".log").inner_text()
    job.get_by_role("link", name="Open the result").click()
    assert "2560x1440" in page.locator(".facts").inner_text()
    assert page.locator(".facts .badge.ok").inner_text() == "verified"
    assert "draft->final" in page.locator(".lineage").inner_text()


def test_allow_remote_needs_one_named_address():
    out = subprocess.run([fourk_binary(), "studio", "--emulator", "--addr", "0.0.0.0:0", "--allow-remote"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert "name the one address" in out.stderr, out.stderr
