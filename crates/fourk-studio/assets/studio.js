// fourk studio: the live parts of the pages. No framework, no network beyond this studio.
"use strict";

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const msg = (data.error && data.error.message) || `${r.status} ${r.statusText}`;
    throw new Error(msg);
  }
  return data;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

// ---- jobs: one card per job, live over server-sent events --------------------------------
const watched = new Map();

function jobCard(id) {
  let card = document.getElementById(`job-${id}`);
  if (card) return card;
  const list = document.getElementById("jobs");
  card = el("li", { class: "job", id: `job-${id}`, "aria-label": `Job ${id}` },
    el("div", { class: "head" },
      el("strong", {}, id), el("span", { class: "kind" }),
      el("span", { class: "state", role: "status" }),
      el("span", { class: "elapsed" }),
      el("button", { type: "button", class: "secondary cancel", hidden: true }, "Cancel")),
    el("div", { class: "partials" }),
    el("ol", { class: "log" }),
    el("p", { class: "message" }),
    el("div", { class: "made" }));
  card.querySelector(".cancel").addEventListener("click", async (ev) => {
    ev.target.disabled = true;
    try { await api(`/api/jobs/${id}/cancel`, {}); } catch (e) { showMessage(card, e.message, true); }
  });
  list.prepend(card);
  return card;
}

function showMessage(card, text, bad) {
  const m = card.querySelector(".message");
  m.textContent = text;
  m.classList.toggle("error", !!bad);
}

function addLine(card, line) {
  const log = card.querySelector(".log");
  log.append(el("li", {}, line));
  log.scrollTop = log.scrollHeight;
  const kept = /^partial image (\d+) received; kept as (.+)$/.exec(line);
  if (kept) {
    card.querySelector(".partials").append(
      el("img", { src: `/raw?path=${encodeURIComponent(kept[2])}`, alt: `Partial image ${kept[1]}` }));
  }
}

function render(view) {
  const s = view.status;
  const card = jobCard(s.id);
  card.querySelector(".kind").textContent = s.tool;
  const st = card.querySelector(".state");
  st.textContent = s.state;
  st.className = `state ${s.state}`;
  card.querySelector(".elapsed").textContent = `${s.elapsed_s.toFixed(1)} s`;
  card.querySelector(".cancel").hidden = s.state !== "running";
  const log = card.querySelector(".log");
  if (!log.children.length) for (const line of s.log) addLine(card, line);
  const o = view.outcome;
  if (o) {
    showMessage(card, o.message, s.state !== "done" || !o.ok);
    const made = card.querySelector(".made");
    made.replaceChildren();
    for (const m of o.images) {
      if (m.id !== null && m.id !== undefined) {
        made.append(el("a", { href: `/image/${m.id}` }, `${m.role} #${m.id}`));
      }
    }
    if (o.next) {
      const label = o.next.startsWith("/review/") ? "Review the drafts" : "Open the result";
      made.append(el("a", { href: o.next, class: "button next" }, label));
    }
  }
  return card;
}

function watch(id) {
  if (watched.has(id)) return;
  const src = new EventSource(`/api/jobs/${id}/events`);
  watched.set(id, src);
  src.addEventListener("status", (e) => render(JSON.parse(e.data)));
  src.addEventListener("tick", (e) => {
    const t = JSON.parse(e.data);
    addLine(jobCard(id), t.message);
  });
  src.addEventListener("done", (e) => {
    render(JSON.parse(e.data));
    src.close();
    watched.delete(id);
    document.dispatchEvent(new CustomEvent("fourk-job-done", { detail: id }));
  });
  src.onerror = () => { /* the browser reconnects; status comes again */ };
}

async function loadJobs(kinds) {
  const { jobs } = await api("/api/jobs");
  for (const view of jobs.slice().reverse()) {
    if (kinds && !kinds.includes(view.status.tool)) continue;
    render(view);
    if (view.status.state === "running") watch(view.status.id);
  }
}

// ---- Make -----------------------------------------------------------------------------------
function initMake() {
  const form = document.getElementById("make-form");
  const check = document.getElementById("check");
  const confirm = document.getElementById("confirm");
  const gen = document.getElementById("generate");
  const draft = document.getElementById("draft");
  let valid = false;
  let seq = 0;
  let timer = null;

  const fields = () => {
    const f = new FormData(form);
    return {
      prompt: f.get("prompt") || "",
      size: (f.get("size") || "").trim(),
      quality: f.get("quality"),
      format: f.get("format"),
      model: (f.get("model") || "").trim(),
      n: Number(f.get("n") || 1),
    };
  };
  const buttons = () => {
    const ok = valid && confirm.checked && fields().prompt.trim() !== "";
    gen.disabled = !ok;
    draft.disabled = !ok;
  };

  async function runCheck() {
    const mine = ++seq;
    const f = fields();
    const q = new URLSearchParams({ size: f.size, model: f.model, quality: f.quality, format: f.format, n: String(f.n), prompt: f.prompt });
    let r;
    try { r = await api(`/api/check?${q}`); } catch (e) { check.textContent = e.message; return; }
    if (mine !== seq) return;
    const v = r.verdict;
    valid = v.valid && !(r.generate && r.generate.error);
    check.className = `check ${v.valid ? "valid" : "invalid"}`;
    check.replaceChildren();
    if (!v.valid) {
      check.append(el("p", {}, `${v.size} is not valid for ${v.model}:`));
      for (const x of v.violations) {
        check.append(el("div", {}, el("span", { class: "rule" }, x.rule), `: ${x.message}`));
      }
      if (v.suggestions.length) {
        const p = el("p", {}, "nearest valid sizes: ");
        for (const s of v.suggestions) {
          const b = el("button", { type: "button", class: "secondary suggest", "aria-label": `Use ${s}` }, s);
          b.addEventListener("click", () => { form.elements.size.value = s; changed(); });
          p.append(b);
        }
        check.append(p);
      }
    } else {
      check.append(el("p", {}, `${v.size} is valid for ${v.model} (${v.pixels.toLocaleString("en")} pixels)`));
      if (v.experimental) {
        check.append(el("p", { class: "experimental" }, "experimental: above 2560x1440 the model's output may vary; Draft, then a final by upscale, is the steadier path"));
      }
      const g = r.generate || {};
      if (g.error) check.append(el("p", { class: "error" }, g.error));
      else {
        const usd = g.usd == null ? "no price known" : `$${g.usd.toFixed(3)}`;
        const secs = g.median_s == null ? "" : `, median ${Math.round(g.median_s)} s`;
        check.append(el("p", { class: "estimate" },
          `Generate: ${f.n} image${f.n === 1 ? "" : "s"}, ~${g.tokens ?? "?"} output tokens each, ${usd}${secs}`));
      }
      const d = r.draft || {};
      if (!d.error) {
        const usd = d.usd == null ? "no price known" : `$${d.usd.toFixed(3)}`;
        check.append(el("p", { class: "estimate" }, `Draft: ${d.n} low-quality draft${d.n === 1 ? "" : "s"} at ${d.size}, ${usd} in all`));
      }
    }
    buttons();
  }
  function changed() {
    valid = false;
    confirm.checked = false;
    // The verdict shown is for the old values until the new check answers.
    check.className = "check pending";
    buttons();
    clearTimeout(timer);
    timer = setTimeout(runCheck, 150);
  }
  form.addEventListener("input", (e) => { if (e.target !== confirm) changed(); });
  form.addEventListener("submit", (e) => e.preventDefault());
  confirm.addEventListener("change", buttons);

  async function start(kind) {
    const f = fields();
    gen.disabled = draft.disabled = true;
    try {
      const r = await api(`/api/${kind}`, f);
      render({ status: r.status, outcome: null });
      watch(r.job);
    } catch (e) {
      check.append(el("p", { class: "error", role: "alert" }, e.message));
    }
    confirm.checked = false;
    buttons();
  }
  gen.addEventListener("click", () => start("generate"));
  draft.addEventListener("click", () => start("draft"));
  runCheck();
  loadJobs(["generate", "draft"]);
}

// ---- Review -------------------------------------------------------------------------------
function initReview() {
  const form = document.getElementById("review-form");
  const button = document.getElementById("make-final");
  button.addEventListener("click", async () => {
    const f = new FormData(form);
    button.disabled = true;
    try {
      const r = await api("/api/final", { draft: Number(f.get("draft")), mode: f.get("mode") });
      render({ status: r.status, outcome: null });
      watch(r.job);
    } catch (e) {
      const card = el("li", { class: "job" }, el("p", { class: "error", role: "alert" }, e.message));
      document.getElementById("jobs").prepend(card);
    }
    button.disabled = false;
  });
  loadJobs(["final"]);
}

// ---- Image: 100% zoom is one image pixel per device pixel --------------------------------
function initImage() {
  const zoom = document.getElementById("zoom");
  const img = document.getElementById("full");
  const viewer = document.getElementById("viewer");
  if (!zoom || !img) return;
  const apply = () => {
    const on = zoom.getAttribute("aria-pressed") === "true";
    viewer.classList.toggle("actual", on);
    if (on) {
      const dpr = window.devicePixelRatio || 1;
      img.style.width = `${img.naturalWidth / dpr}px`;
      img.style.height = `${img.naturalHeight / dpr}px`;
    } else {
      img.style.width = "";
      img.style.height = "";
    }
  };
  zoom.addEventListener("click", () => {
    zoom.setAttribute("aria-pressed", zoom.getAttribute("aria-pressed") === "true" ? "false" : "true");
    apply();
  });
  matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener("change", apply);
  initActions();
}

function startJob(path, body) {
  return api(path, body).then((r) => {
    render({ status: r.status, outcome: null });
    watch(r.job);
    return r.job;
  }).catch((e) => {
    document.getElementById("jobs").prepend(el("li", { class: "job" }, el("p", { class: "error", role: "alert" }, e.message)));
  });
}

function initActions() {
  const form = document.getElementById("actions");
  if (!form) return;
  const id = Number(form.dataset.id);
  form.addEventListener("submit", (e) => e.preventDefault());
  for (const b of form.querySelectorAll("button[data-op]")) {
    b.addEventListener("click", () => {
      const body = { op: b.dataset.op, id };
      if (b.dataset.op === "convert") {
        body.format = form.elements.format.value;
        const { quality, webp_effort } = form.elements;
        if (quality.value !== "") body.quality = Number(quality.value);
        if (webp_effort.value !== "") body.webp_effort = Number(webp_effort.value);
      }
      startJob("/api/local", body);
    });
  }
  document.getElementById("compare").addEventListener("click", () => {
    const other = Number(form.elements.b.value);
    if (!other) { form.elements.b.focus(); return; }
    location.href = `/compare?a=${id}&b=${other}`;
  });
  loadJobs(["upscale", "cutout", "convert", "edit"]);
}

// ---- Compare: side by side at 100% (scrolls together) or a slider; numbers from the CLI's compare
function initCompare() {
  const measure = document.getElementById("measure");
  const dpr = window.devicePixelRatio || 1;
  const imgs = [...document.querySelectorAll("img.cmp")];
  for (const i of imgs) {
    const size = () => { i.style.width = `${i.naturalWidth / dpr}px`; i.style.height = `${i.naturalHeight / dpr}px`; };
    if (i.complete) size(); else i.addEventListener("load", size);
  }
  const views = [...document.querySelectorAll(".viewer.sync")];
  let syncing = false;
  for (const v of views) {
    v.addEventListener("scroll", () => {
      if (syncing) return;
      syncing = true;
      for (const o of views) if (o !== v) { o.scrollLeft = v.scrollLeft; o.scrollTop = v.scrollTop; }
      requestAnimationFrame(() => { syncing = false; });
    });
  }
  const side = document.getElementById("side");
  const slider = document.getElementById("slider");
  for (const r of document.querySelectorAll("input[name=view]")) {
    r.addEventListener("change", () => {
      side.hidden = r.value !== "side";
      slider.hidden = r.value !== "slider";
    });
  }
  const over = document.getElementById("over");
  const slide = document.getElementById("slide");
  const clip = () => { over.style.clipPath = `inset(0 0 0 ${slide.value}%)`; };
  slide.addEventListener("input", clip);
  clip();
  api("/api/local", { op: "compare", id: Number(measure.dataset.a), b: Number(measure.dataset.b) }).then((r) => {
    const src = new EventSource(`/api/jobs/${r.job}/events`);
    src.addEventListener("done", (e) => {
      src.close();
      const v = JSON.parse(e.data);
      const o = v.outcome || {};
      const rep = o.report;
      if (!rep) { measure.textContent = o.message || "the comparison failed"; measure.classList.add("error"); return; }
      const psnr = rep.psnr_db == null ? (rep.identical ? "identical" : "n/a") : `${rep.psnr_db.toFixed(2)} dB`;
      measure.replaceChildren(
        el("span", { class: "metric" }, "Detail ratio (B/A): ", el("strong", { id: "detail-ratio" }, rep.detail_ratio.toFixed(3))),
        el("span", { class: "metric" }, "PSNR: ", el("strong", { id: "psnr" }, psnr)),
        el("span", { class: "metric" }, "SSIM: ", el("strong", {}, rep.ssim == null ? "n/a" : rep.ssim.toFixed(4))),
        ...(rep.notes || []).map((n) => el("p", { class: "hint" }, n)));
    });
  }).catch((e) => { measure.textContent = e.message; measure.classList.add("error"); });
}

// ---- Edit: a mask painted on a canvas at the image's own size -------------------------------
function initEdit() {
  const form = document.getElementById("edit-form");
  const canvas = document.getElementById("mask-canvas");
  const ctx = canvas.getContext("2d");
  const brush = document.getElementById("brush");
  let painting = false;
  let last = null;
  const tool = () => form.elements.tool.value;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  const scale = () => canvas.width / canvas.getBoundingClientRect().width;
  function stroke(p) {
    ctx.globalCompositeOperation = tool() === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = "rgba(230, 40, 40, 1)";
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineWidth = Number(brush.value) * scale();
    ctx.beginPath();
    const from = last || p;
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(p[0] + 0.01, p[1]);
    ctx.stroke();
    last = p;
  }
  canvas.addEventListener("pointerdown", (e) => { painting = true; last = null; canvas.setPointerCapture(e.pointerId); stroke(at(e)); });
  canvas.addEventListener("pointermove", (e) => { if (painting) stroke(at(e)); });
  const end = () => { painting = false; last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  document.getElementById("mask-all").addEventListener("click", () => {
    ctx.globalCompositeOperation = "source-over";
    ctx.fillStyle = "rgba(230, 40, 40, 1)";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  });
  document.getElementById("mask-clear").addEventListener("click", () => ctx.clearRect(0, 0, canvas.width, canvas.height));
  form.addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("send-edit").addEventListener("click", () => {
    // The mask: opaque everywhere, transparent (alpha 0) where painted.
    const m = document.createElement("canvas");
    m.width = canvas.width;
    m.height = canvas.height;
    const mc = m.getContext("2d");
    mc.fillStyle = "#000";
    mc.fillRect(0, 0, m.width, m.height);
    mc.globalCompositeOperation = "destination-out";
    mc.drawImage(canvas, 0, 0);
    startJob("/api/edit", {
      id: Number(form.dataset.id),
      prompt: form.elements.prompt.value,
      mask: m.toDataURL("image/png"),
    });
  });
  loadJobs(["edit"]);
}

// ---- Batches: the table as the studio renders it (escaped there), replaced when it changes
function initBatches() {
  const form = document.getElementById("batch-form");
  const check = document.getElementById("batch-check");
  const confirm = document.getElementById("batch-confirm");
  const run = document.getElementById("run-batch");
  let ok = false;
  const fields = () => ({ jobs: form.elements.jobs.value.trim(), concurrency: Number(form.elements.concurrency.value || 4) });
  const buttons = () => { run.disabled = !(ok && confirm.checked); };
  form.addEventListener("submit", (e) => e.preventDefault());
  form.addEventListener("input", (e) => { if (e.target !== confirm) { ok = false; confirm.checked = false; check.className = "check pending"; buttons(); } });
  confirm.addEventListener("change", buttons);
  document.getElementById("batch-check-button").addEventListener("click", async () => {
    const f = fields();
    try {
      const d = await api(`/api/batch/check?${new URLSearchParams({ jobs: f.jobs, concurrency: String(f.concurrency) })}`);
      ok = d.to_send > 0;
      check.className = `check ${ok ? "valid" : "invalid"}`;
      const usd = d.estimate_usd == null ? "no price known" : `$${d.estimate_usd.toFixed(3)}`;
      check.replaceChildren(el("p", { class: "estimate" },
        `${d.total} job(s), ${d.already_done} already done, ${d.to_send} to send, estimated ${usd}; images go to ${d.out_dir}`),
        ...d.notes.map((n) => el("p", { class: "hint" }, n)));
    } catch (e) {
      ok = false;
      check.className = "check invalid";
      check.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
    }
    buttons();
  });
  run.addEventListener("click", async () => {
    run.disabled = true;
    await startJob("/api/batch", fields());
    confirm.checked = false;
    buttons();
  });
  loadJobs(["batch"]);
  const box = document.getElementById("batches");
  const src = new EventSource("/api/batches/events");
  src.addEventListener("batches", (e) => {
    const t = document.createElement("template");
    t.innerHTML = e.data;
    box.replaceChildren(t.content);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "make") initMake();
  else if (page === "review") initReview();
  else if (page === "image") initImage();
  else if (page === "compare") initCompare();
  else if (page === "edit") initEdit();
  else if (page === "batches") initBatches();
});
