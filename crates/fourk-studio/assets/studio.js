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
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "make") initMake();
  else if (page === "review") initReview();
  else if (page === "image") initImage();
});
