//! The pages, rendered on the server with maud (every value from the ledger, a sidecar or a
//! request is escaped by the template; a prompt carrying markup shows as text). The one
//! script (`/assets/studio.js`) adds the live parts; each page names itself in
//! `body[data-page]`.

use std::path::Path;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fourk_core::ledger::{CostBy, GalleryFilter, GalleryRow, ImageRecord, LinkKind};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::Studio;

/// The most images a gallery page shows.
const GALLERY_LIMIT: u32 = 500;

pub(crate) fn routes() -> Router<Studio> {
    Router::new()
        .route("/", get(gallery))
        .route("/make", get(make))
        .route("/review/{id}", get(review))
        .route("/image/{id}", get(image))
        .route("/cost", get(cost))
        .route("/compare", get(compare))
        .route("/edit/{id}", get(edit))
        .route("/batches", get(batches))
        .route("/api/batches/events", get(batch_events))
}

fn layout(studio: &Studio, title: &str, page: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fourk studio" }
                link rel="stylesheet" href="/assets/studio.css";
                script src="/assets/studio.js" defer {}
            }
            body data-page=(page) {
                header.top {
                    a.brand href="/" { "fourk studio" }
                    nav aria-label="Pages" {
                        a href="/" aria-current=[(page == "gallery").then_some("page")] { "Gallery" }
                        a href="/make" aria-current=[(page == "make").then_some("page")] { "Make" }
                        a href="/batches" aria-current=[(page == "batches").then_some("page")] { "Batches" }
                        a href="/cost" aria-current=[(page == "cost").then_some("page")] { "Cost" }
                    }
                    @if studio.emulated() {
                        p.banner role="note" {
                            "Offline emulator: images are rendered procedurally, not by OpenAI; costs are what the real API would charge."
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn not_found(studio: &Studio, message: &str) -> Response {
    let body = html! { h1 { "Not found" } p.error { (message) } p { a href="/" { "Back to the gallery" } } };
    (StatusCode::NOT_FOUND, layout(studio, "Not found", "error", &body)).into_response()
}

fn dollars(usd: Option<f64>, estimate: bool) -> String {
    usd.map_or_else(
        || "no cost".to_owned(),
        |u| format!("${u:.3}{}", if estimate { " est." } else { "" }),
    )
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// `alt` text: the prompt, or the file name for local work.
fn alt_of(rec: &ImageRecord) -> String {
    rec.prompt
        .clone()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| file_name(&rec.path))
}

/// The thumbnail's box in CSS pixels, fitting 192 px, so the grid does not move as they load.
fn thumb_box(rec: &ImageRecord) -> (u32, u32) {
    const EDGE: f64 = 192.0;
    let (w, h) = (rec.width.unwrap_or(1).max(1), rec.height.unwrap_or(1).max(1));
    let s = EDGE / f64::from(w.max(h));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let fit = |v: u32| ((f64::from(v) * s).round() as u32).max(1);
    (fit(w), fit(h))
}

fn verified_badge(ok: bool) -> Markup {
    html! {
        @if ok { span.badge.ok { "verified" } } @else { span.badge.bad { "NOT verified" } }
    }
}

fn card(row: &GalleryRow, served: bool) -> Markup {
    let rec = &row.image;
    let (w, h) = thumb_box(rec);
    let dims = rec.width.zip(rec.height).map(|(w, h)| format!("{w}x{h}"));
    html! {
        li.card {
            a href={ "/image/" (rec.id) } {
                @if served {
                    img src={ "/thumb/" (rec.id) } alt=(alt_of(rec)) width=(w) height=(h) loading="lazy" decoding="async";
                } @else {
                    span.unserved title=(alt_of(rec)) { "not under --root: " (file_name(&rec.path)) }
                }
            }
            div.meta {
                span.size { (dims.as_deref().unwrap_or("?")) }
                " " span.format { (rec.format.as_deref().unwrap_or("?")) }
                " " span.cost { (dollars(row.usd, row.estimate)) }
                " " (verified_badge(rec.verified))
            }
            div.sub { span.cmd { (row.command) } " · #" (rec.id) " · " time datetime=(rec.created_at) { (rec.created_at.get(..16).unwrap_or(&rec.created_at).replace('T', " ")) } }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
struct GalleryQuery {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    since: Option<String>,
}

fn nonempty(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

async fn gallery(State(studio): State<Studio>, Query(q): Query<GalleryQuery>) -> Response {
    let mut error = None;
    let since = match nonempty(q.since.as_ref()).map(|s| fourk_core::ledger::parse_since(&s)) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            error = Some(e);
            None
        }
        None => None,
    };
    let filter = GalleryFilter {
        command: nonempty(q.command.as_ref()),
        size: nonempty(q.size.as_ref()),
        since,
    };
    let (rows, facets) = studio.ledger().map_or_else(
        || (Vec::new(), fourk_core::ledger::GalleryFacets::default()),
        |l| {
            (
                l.gallery(&filter, GALLERY_LIMIT).unwrap_or_default(),
                l.gallery_facets().unwrap_or_default(),
            )
        },
    );
    let body = html! {
        h1 { "Gallery" }
        form.filters method="get" action="/" aria-label="Filter the gallery" {
            label { "Command " select name="command" {
                option value="" { "any" }
                @for c in &facets.commands { option value=(c) selected[filter.command.as_deref() == Some(c.as_str())] { (c) } }
            } }
            label { "Size " select name="size" {
                option value="" { "any" }
                @for s in &facets.sizes { option value=(s) selected[filter.size.as_deref() == Some(s.as_str())] { (s) } }
            } }
            label { "Since " input type="date" name="since" value=(q.since.as_deref().unwrap_or("")); }
            button type="submit" { "Filter" }
            @if filter != GalleryFilter::default() { a href="/" { "Clear" } }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if rows.is_empty() {
            p.empty { "No images on record" @if filter != GalleryFilter::default() { " that pass these filters" } ". " a href="/make" { "Make one" } "." }
        } @else {
            p.count {
                (rows.len()) " image" @if rows.len() != 1 { "s" } ", newest first"
                @if rows.len() == GALLERY_LIMIT as usize { " (the newest " (GALLERY_LIMIT) " only: filter by command, size or date for older ones)" }
            }
            ul.grid { @for r in &rows { (card(r, studio.inside(&r.image.path).is_some())) } }
        }
    };
    layout(&studio, "Gallery", "gallery", &body).into_response()
}

async fn make(State(studio): State<Studio>) -> Response {
    let presets = [
        "3840x2160",
        "2160x3840",
        "2560x1440",
        "2048x2048",
        "1536x1024",
        "1024x1024",
        "1024x1536",
    ];
    let body = html! {
        h1 { "Make" }
        form #make-form.make aria-describedby="check" {
            label.wide { "Prompt" textarea name="prompt" rows="4" required {} }
            div.row {
                label { "Size" input name="size" value="3840x2160" list="sizes" autocomplete="off" spellcheck="false" aria-describedby="check"; }
                datalist #sizes { @for p in presets { option value=(p) {} } }
                label { "Quality" select name="quality" {
                    option value="auto" { "auto" } option value="low" { "low" } option value="medium" { "medium" }
                    option value="high" selected { "high" }
                } }
                label { "Format" select name="format" {
                    option value="png" selected { "png" } option value="jpeg" { "jpeg" } option value="webp" { "webp" }
                } }
                label { "Model" input name="model" value="gpt-image-2" autocomplete="off" spellcheck="false"; }
                label { "Count" input name="n" type="number" min="1" max="10" value="1"; }
            }
            div #check.check aria-live="polite" { "Checking the size…" }
            label.confirm { input #confirm type="checkbox" name="confirm"; " I have read the estimate; spend it" }
            div.buttons {
                button #generate type="button" disabled { "Generate" }
                button #draft type="button" disabled { "Draft" }
            }
            p.hint { "Generate renders Count images at Size. Draft renders Count cheap low-quality drafts with Size's ratio and a contact sheet, to approve one on the Review page before paying for the final." }
        }
        section aria-labelledby="work-h" {
            h2 #work-h { "Work" }
            p.hint { "Work runs in the studio, not in this page: reload or close it and come back." }
            ol #jobs.jobs aria-live="polite" {}
        }
    };
    layout(&studio, "Make", "make", &body).into_response()
}

/// The images `id` leads to through draft->final and master->upscale links (its finals).
fn finals_of(ledger: &fourk_core::ledger::Ledger, id: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next: Vec<i64> = vec![id];
    while let Some(i) = next.pop() {
        for (to, kind) in ledger.links_from(i).unwrap_or_default() {
            match kind {
                LinkKind::DraftToFinal | LinkKind::MasterToUpscale | LinkKind::Fallback
                    if !out.contains(&to) && out.len() < 64 =>
                {
                    out.push(to);
                    next.push(to);
                }
                _ => {}
            }
        }
    }
    out
}

async fn review(State(studio): State<Studio>, UrlPath(id): UrlPath<i64>) -> Response {
    let Some(ledger) = studio.ledger() else {
        return not_found(&studio, "nothing is on record yet");
    };
    let Some(first) = ledger.find_image(id).ok().flatten() else {
        return not_found(&studio, &format!("no image {id} in the ledger"));
    };
    let drafts: Vec<ImageRecord> = ledger.images_of_run(first.run_id).unwrap_or_default();
    let sheet = drafts
        .first()
        .and_then(|d| fourk_core::draft::sheet_of(&d.path))
        .and_then(|s| studio.inside(&s));
    let finals: Vec<(i64, Vec<ImageRecord>)> = drafts
        .iter()
        .map(|d| {
            let f = finals_of(&ledger, d.id)
                .into_iter()
                .filter_map(|i| ledger.find_image(i).ok().flatten())
                .collect();
            (d.id, f)
        })
        .collect();
    let prompt = first.prompt.clone().unwrap_or_default();
    let body = html! {
        h1 { "Review" }
        p.prompt { "Prompt: " q { (prompt) } }
        form #review-form.review aria-label="Choose a draft and make the final" {
            fieldset {
                legend { "Drafts of run " (first.run_id) }
                ul.drafts {
                    @for d in &drafts {
                        li {
                            label.pick {
                                input type="radio" name="draft" value=(d.id) checked[d.id == id];
                                img src={ "/thumb/" (d.id) } alt=(alt_of(d)) width=(thumb_box(d).0) height=(thumb_box(d).1);
                                span { "Draft #" (d.id) " · " (d.width.zip(d.height).map(|(w, h)| format!("{w}x{h}")).unwrap_or_default()) " " (verified_badge(d.verified)) }
                            }
                            a href={ "/image/" (d.id) } { "Open draft #" (d.id) }
                            @for (did, fs) in &finals { @if *did == d.id { @for f in fs {
                                " · " a.final href={ "/image/" (f.id) } { (f.route.as_deref().unwrap_or("final")) " #" (f.id) " " (f.width.zip(f.height).map(|(w, h)| format!("{w}x{h}")).unwrap_or_default()) }
                            } } }
                        }
                    }
                }
            }
            fieldset.modes {
                legend { "Final" }
                label { input type="radio" name="mode" value="upscale" checked; " upscale: a 2K master, upscaled here to the exact size (cheaper, steadier)" }
                label { input type="radio" name="mode" value="native"; " native: rendered at the full size (experimental above 2560x1440)" }
            }
            button #make-final type="button" { "Make final" }
        }
        ol #jobs.jobs aria-live="polite" {}
        @if let Some(s) = sheet {
            h2 { "Contact sheet" }
            img.sheet src={ "/raw?" (serde_urlencoded::to_string([("path", s.display().to_string())]).unwrap_or_default()) } alt={ "Contact sheet of run " (first.run_id) };
        }
    };
    layout(&studio, "Review", "review", &body).into_response()
}

/// A sidecar's JSON as nested definition lists (escaped by the template).
fn json_view(v: &Value) -> Markup {
    match v {
        Value::Object(m) => html! {
            dl { @for (k, v) in m { dt { (k) } dd { (json_view(v)) } } }
        },
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => html! {
            (a.iter().map(scalar).collect::<Vec<_>>().join(", "))
        },
        Value::Array(a) => html! { ol { @for x in a { li { (json_view(x)) } } } },
        other => html! { (scalar(other)) },
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

async fn image(State(studio): State<Studio>, UrlPath(id): UrlPath<i64>) -> Response {
    let Some(ledger) = studio.ledger() else {
        return not_found(&studio, "nothing is on record yet");
    };
    let Some(rec) = ledger.find_image(id).ok().flatten() else {
        return not_found(&studio, &format!("no image {id} in the ledger"));
    };
    let served = studio.inside(&rec.path).is_some();
    // The sidecar is read only when it, too, is under a root, and shown only when it is JSON.
    let sidecar: Option<Value> = rec
        .sidecar
        .as_deref()
        .and_then(|p| studio.inside(p))
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(Value::is_object);
    let from = ledger.links_to(id).unwrap_or_default();
    let into = ledger.links_from(id).unwrap_or_default();
    let dims = rec.width.zip(rec.height).map(|(w, h)| format!("{w}x{h}"));
    // Compare with what it was made from, else with what was made from it.
    let compare_default = from.first().or_else(|| into.first()).map(|(i, _)| *i);
    let section = |key: &str| sidecar.as_ref().and_then(|s| s.get(key)).cloned();
    let body = html! {
        h1 { "Image #" (rec.id) }
        p.prompt { @if let Some(p) = &rec.prompt { "Prompt: " q { (p) } } @else { (file_name(&rec.path)) } }
        div.facts {
            span.size { (dims.as_deref().unwrap_or("?")) } " "
            span.format { (rec.format.as_deref().unwrap_or("?")) } " "
            (verified_badge(rec.verified)) " "
            span.path { code { (rec.path.display()) } }
        }
        @if served {
            div.toolbar role="group" aria-label="View" {
                button #zoom type="button" aria-pressed="false" { "100% zoom" }
                a.button href={ "/file/" (rec.id) "?download=1" } download { "Download" }
            }
            form #actions.actions data-id=(rec.id) aria-label="Actions on this image" {
                button type="button" data-op="upscale" { "Upscale to 4K" }
                button type="button" data-op="cutout" { "Cutout" }
                span.group {
                    label { "Convert to" select name="format" {
                        option value="jpeg" { "jpeg" } option value="webp" { "webp" } option value="png" { "png" }
                    } }
                    label title="JPEG or lossy WebP quality, 0-100; empty: JPEG 90, WebP lossless" {
                        "Quality" input name="quality" type="number" min="0" max="100" placeholder="default";
                    }
                    label title="Lossless WebP effort, 0 (fastest) to 9 (smallest), as cwebp -z" {
                        "WebP effort" select name="webp_effort" {
                            option value="" { "default" }
                            @for e in 0..=9u8 { option value=(e) { (e) } }
                        }
                    }
                    button type="button" data-op="convert" { "Convert" }
                }
                span.group {
                    label { "Compare with image #" input name="b" type="number" min="1" value=[compare_default]; }
                    button #compare type="button" { "Compare" }
                }
                a.button href={ "/edit/" (rec.id) } { "Edit" }
            }
            ol #jobs.jobs aria-live="polite" {}
            div #viewer.viewer {
                img #full src={ "/file/" (rec.id) } alt=(alt_of(&rec)) width=[rec.width] height=[rec.height];
            }
        } @else {
            p.error { "This file is not under the studio's roots (or is gone), so it is not shown. Start `fourk studio` with --root FOLDER to show it." }
        }
        @if !from.is_empty() || !into.is_empty() {
            h2 { "Lineage" }
            ul.lineage {
                @for (i, k) in &from { li { "made from " a href={ "/image/" (i) } { "#" (i) } " (" (k.as_str()) ")" } }
                @for (i, k) in &into { li { "made into " a href={ "/image/" (i) } { "#" (i) } " (" (k.as_str()) ")" } }
            }
        }
        h2 { "Record" }
        dl.record {
            dt { "Route" } dd { (rec.route.as_deref().unwrap_or("—")) }
            dt { "Model" } dd { (rec.model.as_deref().unwrap_or("—")) }
            dt { "Quality" } dd { (rec.quality.as_deref().unwrap_or("—")) }
            dt { "Size asked" } dd { (rec.size.as_deref().unwrap_or("—")) }
            dt { "Request id" } dd { (rec.request_id.as_deref().unwrap_or("—")) }
            dt { "SHA-256" } dd { code { (rec.sha256) } }
            dt { "Recorded" } dd { (rec.created_at) }
        }
        @if let Some(s) = &sidecar {
            @for key in ["request", "usage", "cost", "checks", "response"] {
                @if let Some(v) = section(key) { h3 { (key) } div.json { (json_view(&v)) } }
            }
            details { summary { "Whole sidecar" } pre { (serde_json::to_string_pretty(s).unwrap_or_default()) } }
        } @else {
            p { "No sidecar under the studio's roots." }
        }
    };
    layout(&studio, &format!("Image #{id}"), "image", &body).into_response()
}

/// One bar chart as SVG: a row per group, bars to scale, dollars written beside.
fn bars(title: &str, rows: &[fourk_core::ledger::CostRow]) -> Markup {
    let max = rows.iter().map(|r| r.usd).fold(0.0_f64, f64::max).max(1e-9);
    let row_h = 26;
    let height = rows.len() * row_h + 8;
    html! {
        figure.chart {
            figcaption { (title) }
            @if rows.is_empty() { p.empty { "Nothing spent yet." } } @else {
                svg width="720" height=(height) viewBox={ "0 0 720 " (height) } role="img" aria-label=(title) {
                    @for (i, r) in rows.iter().enumerate() {
                        @let y = i * row_h + 4;
                        @let w = (r.usd / max * 420.0).max(1.0);
                        text x="0" y=(y + 17) class="label" { (r.key) }
                        rect x="170" y=(y + 3) width=(format!("{w:.1}")) height="18" class=(if r.estimated_usd > 0.0 { "bar est" } else { "bar" }) {}
                        text x=(format!("{:.1}", 176.0 + w)) y=(y + 17) class="value" {
                            (format!("${:.3}", r.usd)) " · " (r.images) " img"
                            @if r.estimated_usd > 0.0 { (format!(" · ${:.3} est.", r.estimated_usd)) }
                        }
                    }
                }
            }
        }
    }
}

async fn cost(State(studio): State<Studio>) -> Response {
    let by = |b: CostBy| {
        studio
            .ledger()
            .and_then(|l| l.cost(None, Some(b)).ok())
            .unwrap_or_default()
    };
    let total: f64 = by(CostBy::Model).iter().map(|r| r.usd).sum();
    let body = html! {
        h1 { "Cost" }
        p.total { "Spent in all: " strong { (format!("${total:.3}")) } " (from the usage each answer reported; estimates where a request may have been billed with no answer)" }
        (bars("By day", &by(CostBy::Day)))
        (bars("By model", &by(CostBy::Model)))
        (bars("By size", &by(CostBy::Size)))
        p.hint { "The same numbers as " code { "fourk cost --by day|model|size" } "." }
    };
    layout(&studio, "Cost", "cost", &body).into_response()
}

#[derive(Debug, Deserialize)]
struct CompareQuery {
    a: i64,
    b: i64,
}

async fn compare(State(studio): State<Studio>, Query(q): Query<CompareQuery>) -> Response {
    let Some(ledger) = studio.ledger() else {
        return not_found(&studio, "nothing is on record yet");
    };
    let (Some(a), Some(b)) = (
        ledger.find_image(q.a).ok().flatten(),
        ledger.find_image(q.b).ok().flatten(),
    ) else {
        return not_found(&studio, &format!("image {} or {} is not in the ledger", q.a, q.b));
    };
    let dims = |r: &ImageRecord| {
        r.width
            .zip(r.height)
            .map(|(w, h)| format!("{w}x{h}"))
            .unwrap_or_default()
    };
    let body = html! {
        h1 { "Compare #" (a.id) " and #" (b.id) }
        div #measure.measure data-a=(a.id) data-b=(b.id) aria-live="polite" { "Measuring detail and PSNR…" }
        fieldset.modes {
            legend { "View" }
            label { input type="radio" name="view" value="side" checked; " Side by side at 100%" }
            label { input type="radio" name="view" value="slider"; " Slider" }
        }
        div #side.side {
            @for r in [&a, &b] {
                figure {
                    figcaption { a href={ "/image/" (r.id) } { "#" (r.id) } " " (dims(r)) " " (r.route.as_deref().unwrap_or("")) }
                    div.viewer.actual.sync { img.cmp src={ "/file/" (r.id) } alt=(alt_of(r)) width=[r.width] height=[r.height]; }
                }
            }
        }
        div #slider.slider hidden {
            div.stack {
                img src={ "/file/" (a.id) } alt={ "A: #" (a.id) };
                div #over.over { img src={ "/file/" (b.id) } alt={ "B: #" (b.id) }; }
            }
            label { "Slider position" input #slide type="range" min="0" max="100" value="50"; }
        }
    };
    layout(&studio, "Compare", "compare", &body).into_response()
}

async fn edit(State(studio): State<Studio>, UrlPath(id): UrlPath<i64>) -> Response {
    let Some(rec) = studio.ledger().and_then(|l| l.find_image(id).ok().flatten()) else {
        return not_found(&studio, &format!("no image {id} in the ledger"));
    };
    let body = html! {
        h1 { "Edit image #" (rec.id) }
        form #edit-form.make data-id=(rec.id) data-width=[rec.width] data-height=[rec.height] {
            label.wide { "Prompt" textarea name="prompt" rows="3" required { } }
            div.row role="group" aria-label="Mask tools" {
                fieldset.modes.inline {
                    legend { "Tool" }
                    label { input type="radio" name="tool" value="brush" checked; " Brush" }
                    label { input type="radio" name="tool" value="eraser"; " Eraser" }
                }
                label { "Brush size" input #brush type="range" min="8" max="400" value="96"; }
                button #mask-all type="button" class="secondary" { "Mask everything" }
                button #mask-clear type="button" class="secondary" { "Clear mask" }
            }
            p.hint { "Paint over what should change: the painted area becomes transparent in the mask (alpha 0), as the API expects. The mask is checked by the same rules as " code { "fourk edit --mask" } " before anything is sent." }
            div.paint {
                img #base src={ "/file/" (rec.id) } alt=(alt_of(&rec)) width=[rec.width] height=[rec.height];
                canvas #mask-canvas width=[rec.width] height=[rec.height] aria-label="Mask: paint with the pointer over the area to change" {}
            }
            div.buttons { button #send-edit type="button" { "Edit" } }
        }
        ol #jobs.jobs aria-live="polite" {}
    };
    layout(&studio, &format!("Edit #{id}"), "edit", &body).into_response()
}

/// "1 m 05 s".
fn duration(s: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = s.max(0.0).round() as u64;
    if s >= 60 {
        format!("{} m {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The batches table: every batch on record (also those run from the CLI), newest change first.
pub(crate) fn batch_table(studio: &Studio) -> Markup {
    let rows = studio
        .ledger()
        .and_then(|l| l.batches(100).ok())
        .unwrap_or_default();
    html! {
        @if rows.is_empty() {
            p.empty { "No batches on record. Run one with " code { "fourk batch JOBS.csv" } " (with the same --ledger); it shows here as it runs." }
        } @else {
            table.batches {
                caption { (rows.len()) " batch" @if rows.len() != 1 { "es" } ", newest change first" }
                thead { tr {
                    th scope="col" { "Jobs file" } th scope="col" { "State" } th scope="col" { "Progress" }
                    th scope="col" { "Succeeded" } th scope="col" { "Failed" } th scope="col" { "Possibly billed" }
                    th scope="col" { "Spend" } th scope="col" { "ETA" } th scope="col" { "Started" }
                } }
                tbody {
                    @for b in &rows {
                        @let name = b.jobs_file.as_deref().map_or_else(|| b.batch_key.get(..12).unwrap_or("").to_owned(), |f| file_name(Path::new(f)));
                        tr data-batch=(b.batch_key) data-state=(b.run_status) {
                            th scope="row" title=[b.jobs_file.as_deref()] { (name) }
                            td.state { (b.run_status) }
                            td { progress value=(b.done()) max=(b.total.max(1)) aria-label={ (name) " progress" } {} " " span.count { (b.done()) " / " (b.total) } }
                            td { (b.succeeded) } td { (b.failed) } td { (b.possibly_billed) }
                            td { (dollars(Some(b.usd), b.estimate)) }
                            td { (b.eta_s().map_or_else(|| "—".to_owned(), duration)) }
                            td { time datetime=(b.run_started_at) { (b.run_started_at.get(..19).unwrap_or(&b.run_started_at).replace('T', " ")) } " (" (duration(b.run_elapsed_s)) ")" }
                        }
                    }
                }
            }
        }
    }
}

async fn batches(State(studio): State<Studio>) -> Response {
    let body = html! {
        h1 { "Batches" }
        p.hint { "Batches run by " code { "fourk batch" } " on this ledger, from any terminal or from here, updated live." }
        form #batch-form.make aria-label="Run a batch" {
            div.row {
                label { "Jobs file" input name="jobs" placeholder="jobs.csv (under the root)" autocomplete="off" spellcheck="false" aria-describedby="batch-check"; }
                label { "Concurrency" input name="concurrency" type="number" min="1" max="64" value="4"; }
                button #batch-check-button type="button" class="secondary" { "Check" }
            }
            div #batch-check.check aria-live="polite" { "A JSONL or CSV jobs file, as " code { "fourk batch" } " takes; Check shows its jobs and estimate." }
            label.confirm { input #batch-confirm type="checkbox"; " I have read the estimate; spend it" }
            div.buttons { button #run-batch type="button" disabled { "Run batch" } }
        }
        ol #jobs.jobs aria-live="polite" {}
        div #batches aria-live="polite" { (batch_table(&studio)) }
    };
    layout(&studio, "Batches", "batches", &body).into_response()
}

/// `GET /api/batches/events`: the batches table (escaped HTML) each time it changes; the
/// ledger is read once a second.
async fn batch_events(
    State(studio): State<Studio>,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let stream = futures_util::stream::unfold((studio, String::new()), |(studio, last)| async move {
        loop {
            let s = studio.clone();
            let table = tokio::task::spawn_blocking(move || batch_table(&s).into_string())
                .await
                .unwrap_or_default();
            if table != last {
                let e = Event::default().event("batches").data(table.clone());
                return Some((Ok(e), (studio, table)));
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
