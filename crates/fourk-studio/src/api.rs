//! What the pages' script calls. Work that spends or takes long runs as one of the core's
//! jobs on the server: the page that started it may reload or close, and the job's progress
//! and result are there when it comes back.
//!
//! - `GET /api/check`: the size verdict (rule ids, nearest valid sizes, the experimental
//!   flag) and the estimates (tokens, dollars, median time) of Generate and Draft.
//! - `POST /api/generate`, `/api/draft`, `/api/final`: start a job, answer its id.
//! - `GET /api/jobs`, `/api/jobs/{id}`: where jobs stand; `/api/jobs/{id}/events`: its
//!   progress as server-sent events, then its outcome; `POST /api/jobs/{id}/cancel`.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fourk_api::{OutputFormat, Quality, Size};
use fourk_core::jobs::{Job, JobObserver, State as JobState};
use fourk_core::send::Control;
use fourk_core::spec::{GenerateSpec, ImageOptions, StreamSpec};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Studio, THUMB_EDGE, lock};

/// One image a job made.
#[derive(Debug, Clone, Serialize)]
pub struct Made {
    /// Its ledger id, when recorded.
    pub id: Option<i64>,
    /// The file.
    pub path: PathBuf,
    /// Whether it verified.
    pub verified: bool,
    /// `image`, `draft`, `sheet`, `final`, `master`.
    pub role: &'static str,
}

/// What a job ended with, for the page.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Outcome {
    /// It finished and every image verified.
    pub ok: bool,
    /// One line for people: what was made and what it cost, or the error in the CLI's words.
    pub message: String,
    /// What it made.
    pub images: Vec<Made>,
    /// Dollars.
    pub usd: Option<f64>,
    /// `usd` is an estimate.
    pub estimate: bool,
    /// Where to look next (`/review/ID`, `/image/ID`).
    pub next: Option<String>,
    /// The operation's report (a comparison's detail ratio, PSNR and SSIM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
}

/// An error for the page: the CLI's message, and the HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    fn core(e: &anyhow::Error) -> Self {
        Self::usage(fourk_core::error_text(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"message": self.message}}))).into_response()
    }
}

pub(crate) fn routes() -> Router<Studio> {
    Router::new()
        .route("/api/check", get(check))
        .route("/api/generate", post(generate))
        .route("/api/draft", post(draft))
        .route("/api/final", post(finalize))
        .route("/api/local", post(local))
        .route("/api/batch", post(batch))
        .route("/api/batch/check", get(batch_check))
        // A painted mask at 4K travels as a PNG in the body.
        .route(
            "/api/edit",
            post(edit).layer(axum::extract::DefaultBodyLimit::max(MAX_EDIT_BODY)),
        )
        .route("/api/jobs", get(jobs))
        .route("/api/jobs/{id}", get(job))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/cancel", post(cancel))
}

/// The Make form's fields.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MakeForm {
    #[serde(default)]
    prompt: String,
    size: String,
    #[serde(default)]
    quality: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    model: Option<String>,
    /// Images (Generate) or drafts (Draft).
    #[serde(default)]
    n: Option<u32>,
}

const DEFAULT_MODEL: &str = fourk_api::DEFAULT_MODEL;
/// The largest Edit request: the mask PNG as base64 (a mask is at most 50 MB, as the API's).
const MAX_EDIT_BODY: usize = 72 * 1024 * 1024;
const DEFAULT_DRAFTS: u32 = 4;

fn model_of(f: &MakeForm) -> String {
    f.model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_MODEL)
        .to_owned()
}

fn parse_size(s: &str) -> Result<Size, ApiError> {
    s.trim()
        .parse::<Size>()
        .map_err(|e| ApiError::usage(format!("invalid size '{}': {e}", s.trim())))
}

fn parse_quality(q: Option<&str>) -> Result<Option<Quality>, ApiError> {
    match q.map(str::trim).filter(|q| !q.is_empty()) {
        None => Ok(None),
        Some(q) => serde_json::from_value(Value::String(q.to_owned()))
            .map(Some)
            .map_err(|_| ApiError::usage(format!("invalid quality '{q}': use low, medium, high or auto"))),
    }
}

fn parse_format(f: Option<&str>) -> Result<Option<OutputFormat>, ApiError> {
    match f.map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(f) => serde_json::from_value(Value::String(f.to_owned()))
            .map(Some)
            .map_err(|_| ApiError::usage(format!("invalid format '{f}': use png, jpeg or webp"))),
    }
}

impl Studio {
    fn generate_spec(&self, f: &MakeForm) -> Result<GenerateSpec, ApiError> {
        if f.prompt.trim().is_empty() {
            return Err(ApiError::usage(
                "the prompt is empty: describe the image in Prompt",
            ));
        }
        let mut spec = GenerateSpec::new(
            &f.prompt,
            &model_of(f),
            parse_size(&f.size)?,
            self.inner.opts.endpoint.clone(),
        );
        spec.image = ImageOptions {
            quality: parse_quality(f.quality.as_deref())?,
            format: parse_format(f.format.as_deref())?,
            ..ImageOptions::default()
        };
        spec.n = f.n.filter(|n| *n > 1).map(|n| u8::try_from(n).unwrap_or(u8::MAX));
        spec.out = Some(self.inner.out_dir.clone());
        // Partial images show the render coming (kept as files, so the page can show them),
        // where the model streams.
        if self.inner.fk.caps.model(&spec.model).is_ok_and(|m| m.streaming) {
            spec.stream = StreamSpec {
                stream: true,
                partials: Some(2),
                keep_partials: true,
            };
        }
        Ok(spec)
    }

    fn draft_spec(&self, f: &MakeForm) -> Result<fourk_core::draft::DraftSpec, ApiError> {
        if f.prompt.trim().is_empty() {
            return Err(ApiError::usage(
                "the prompt is empty: describe the image in Prompt",
            ));
        }
        Ok(fourk_core::draft::DraftSpec {
            prompt: f.prompt.clone(),
            n: f.n.unwrap_or(DEFAULT_DRAFTS).max(1),
            size: parse_size(&f.size)?,
            quality: Quality::Low,
            model: model_of(f),
            format: parse_format(f.format.as_deref())?,
            out: Some(self.inner.out_dir.clone()),
            no_sheet: false,
            force: false,
            route: fourk_core::route::Route::Images,
            endpoint: self.inner.opts.endpoint.clone(),
        })
    }

    /// Reserve `estimate`, start `work` as a job of `kind` and answer its id. The job's
    /// images keep thumbnails for the gallery.
    fn launch<F, Fut>(
        &self,
        kind: &str,
        estimate: Option<f64>,
        work: F,
    ) -> Result<Arc<Job<Outcome>>, ApiError>
    where
        F: FnOnce(Arc<Job<Outcome>>, Control) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Outcome, anyhow::Error>> + Send + 'static,
    {
        let reserved = lock(&self.inner.budget)
            .reserve(estimate)
            .map_err(|r| ApiError::usage(format!("{r}\n\nhint: {}", r.fix("studio"))))?;
        let job = self.inner.jobs.create(kind, Some(THUMB_EDGE), None);
        let control = Control::new(job.token())
            .observed(Arc::new(JobObserver(job.clone())))
            .with_thumbnails(THUMB_EDGE);
        let studio = self.clone();
        let task_job = job.clone();
        tokio::spawn(async move {
            let outcome = work(task_job.clone(), control).await;
            lock(&studio.inner.budget).settle_job(
                reserved,
                outcome.as_ref().ok().map(|o| o.usd.unwrap_or(reserved)),
                outcome.is_err(),
                task_job.sent(),
            );
            match outcome {
                Ok(o) => task_job.finish(JobState::Done, o),
                Err(e) => {
                    let cancelled = e
                        .chain()
                        .any(|c| c.downcast_ref::<fourk_core::send::Cancelled>().is_some());
                    let o = Outcome {
                        message: fourk_core::error_text(&e),
                        ..Outcome::default()
                    };
                    task_job.finish(
                        if cancelled {
                            JobState::Cancelled
                        } else {
                            JobState::Failed
                        },
                        o,
                    );
                }
            }
        });
        Ok(job)
    }
}

/// `GET /api/check`: the verdict on the size, and what Generate and Draft would cost.
async fn check(State(studio): State<Studio>, Query(f): Query<MakeForm>) -> Result<Json<Value>, ApiError> {
    let caps = &studio.inner.fk.caps;
    let model = model_of(&f);
    let verdict = caps.verdict(f.size.trim(), &model);
    let mut out = json!({"verdict": verdict, "describe": verdict.describe()});
    if !verdict.valid {
        return Ok(Json(out));
    }
    let probe = MakeForm {
        prompt: if f.prompt.trim().is_empty() {
            "x".into()
        } else {
            f.prompt.clone()
        },
        ..f.clone()
    };
    match studio.generate_spec(&probe).and_then(|s| {
        fourk_core::generate::dry_run(&s, caps)
            .map(|d| (s, d))
            .map_err(|e| ApiError::core(&e))
    }) {
        Ok((spec, dry)) => {
            let seconds = caps.model(&model).ok().and_then(|m| {
                let (w, h) = (verdict.width?, verdict.height?);
                let q = spec.image.quality.unwrap_or_else(|| m.highest_quality());
                m.latency.as_ref().map(|l| l.seconds(w, h, q))
            });
            out["generate"] = json!({
                "tokens": dry.estimate.as_ref().map(|e| e.usage.output_tokens),
                "usd": dry.estimate.as_ref().map(|e| e.cost.usd),
                "median_s": seconds,
                "warnings": dry.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>(),
            });
        }
        Err(e) => out["generate"] = json!({"error": e.message}),
    }
    match studio
        .draft_spec(&probe)
        .and_then(|s| fourk_core::draft::dry_run(&s, &studio.inner.fk).map_err(|e| ApiError::core(&e)))
    {
        Ok(dry) => {
            let draft_size = dry.steps.first().map(|s| s.size.clone());
            out["draft"] = json!({
                "n": probe.n.unwrap_or(DEFAULT_DRAFTS).max(1),
                "size": draft_size,
                "usd": dry.total_usd,
                "notes": dry.notes,
            });
        }
        Err(e) => out["draft"] = json!({"error": e.message}),
    }
    Ok(Json(out))
}

fn started(job: &Job<Outcome>) -> Json<Value> {
    Json(json!({"job": job.id, "status": job.status()}))
}

/// `POST /api/generate`.
async fn generate(State(studio): State<Studio>, Json(f): Json<MakeForm>) -> Result<Json<Value>, ApiError> {
    let spec = studio.generate_spec(&f)?;
    let fk = studio.inner.fk.clone();
    let dry = fourk_core::generate::dry_run(&spec, &fk.caps).map_err(|e| ApiError::core(&e))?;
    let thumbs = studio.inner.thumbs.clone();
    let job = studio.launch(
        "generate",
        dry.estimate.map(|e| e.cost.usd),
        move |_, control| async move {
            let (images, all_ok) = fourk_core::generate::generate_recorded(&spec, &fk, control).await?;
            Ok(images_outcome(&images, all_ok, &thumbs))
        },
    )?;
    Ok(started(&job))
}

/// `POST /api/draft`.
async fn draft(State(studio): State<Studio>, Json(f): Json<MakeForm>) -> Result<Json<Value>, ApiError> {
    let spec = studio.draft_spec(&f)?;
    let fk = studio.inner.fk.clone();
    let dry = fourk_core::draft::dry_run(&spec, &fk).map_err(|e| ApiError::core(&e))?;
    let thumbs = studio.inner.thumbs.clone();
    let job = studio.launch(
        "draft",
        dry.worst_usd.or(dry.total_usd),
        move |_, control| async move {
            let report = fourk_core::draft::draft(&spec, &fk, &control).await?;
            let mut o = Outcome {
                ok: report.all_verified,
                usd: Some(report.usd),
                estimate: report.estimate,
                ..Outcome::default()
            };
            for d in &report.drafts {
                if let Some(t) = &d.thumbnail
                    && let Err(e) = thumbs.store(&d.sha256, t)
                {
                    tracing::warn!("no thumbnail for {}: {e:#}", d.path.display());
                }
                o.images.push(Made {
                    id: d.id,
                    path: d.path.clone(),
                    verified: d.verified,
                    role: "draft",
                });
            }
            if let Some(s) = &report.sheet {
                o.images.push(Made {
                    id: None,
                    path: s.clone(),
                    verified: true,
                    role: "sheet",
                });
            }
            o.next = report
                .drafts
                .first()
                .and_then(|d| d.id)
                .map(|id| format!("/review/{id}"));
            o.message = made_line(&o);
            Ok(o)
        },
    )?;
    Ok(started(&job))
}

/// The Review page's choice.
#[derive(Debug, Deserialize)]
struct FinalForm {
    /// The approved draft's ledger id.
    draft: i64,
    /// `native` or `upscale`.
    mode: String,
}

/// `POST /api/final`.
async fn finalize(State(studio): State<Studio>, Json(f): Json<FinalForm>) -> Result<Json<Value>, ApiError> {
    let upscale = match f.mode.as_str() {
        "upscale" => true,
        "native" => false,
        m => {
            return Err(ApiError::usage(format!(
                "invalid mode '{m}': choose native or upscale"
            )));
        }
    };
    let spec = fourk_core::finalize::FinalSpec {
        draft: f.draft.to_string(),
        upscale,
        quality: Quality::High,
        size: None,
        prompt: None,
        out: Some(studio.inner.out_dir.clone()),
        force: false,
        endpoint: studio.inner.opts.endpoint.clone(),
    };
    let fk = studio.inner.fk.clone();
    let dry = fourk_core::finalize::dry_run(&spec, &fk).map_err(|e| ApiError::core(&e))?;
    let job = studio.launch(
        "final",
        dry.worst_usd.or(dry.total_usd),
        move |_, control| async move {
            let report = fourk_core::finalize::finalize(&spec, &fk, &control).await?;
            let mut o = Outcome {
                ok: report.verified,
                usd: Some(report.usd),
                estimate: report.estimate,
                ..Outcome::default()
            };
            for (role, s) in report.files() {
                if let Some(path) = &s.path {
                    o.images.push(Made {
                        id: s.id,
                        path: path.clone(),
                        verified: s.verified,
                        role,
                    });
                }
            }
            o.next = report.id.map(|id| format!("/image/{id}"));
            o.message = made_line(&o);
            Ok(o)
        },
    )?;
    Ok(started(&job))
}

/// "3 images, all verified, $0.011 (estimated)".
fn made_line(o: &Outcome) -> String {
    let n = o.images.iter().filter(|m| m.role != "sheet").count();
    let bad = o.images.iter().filter(|m| !m.verified).count();
    format!(
        "{n} image{}, {}{}",
        if n == 1 { "" } else { "s" },
        if bad == 0 {
            "all verified".to_owned()
        } else {
            format!("{bad} NOT verified")
        },
        o.usd.map_or_else(String::new, |u| format!(
            ", ${u:.3}{}",
            if o.estimate { " (estimated)" } else { "" }
        ))
    )
}

fn view(job: &Job<Outcome>) -> Value {
    json!({"status": job.status(), "outcome": job.result()})
}

/// `GET /api/jobs`: every job of this studio, newest first.
async fn jobs(State(studio): State<Studio>) -> Json<Value> {
    let mut all: Vec<Value> = studio.inner.jobs.all().iter().map(|j| view(j)).collect();
    all.reverse();
    Json(json!({"jobs": all}))
}

fn find(studio: &Studio, id: &str) -> Result<Arc<Job<Outcome>>, ApiError> {
    studio
        .inner
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("there is no job {id} in this studio (jobs live as long as the `fourk studio` process; the gallery has what was made)")))
}

/// `GET /api/jobs/{id}`.
async fn job(State(studio): State<Studio>, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let job = find(&studio, &id)?;
    Ok(Json(view(&job)))
}

/// `POST /api/jobs/{id}/cancel`.
async fn cancel(State(studio): State<Studio>, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let job = find(&studio, &id)?;
    job.cancel();
    Ok(Json(view(&job)))
}

/// `GET /api/jobs/{id}/events`: `status` (the job so far), a `tick` per progress line, then
/// `done` with the outcome.
async fn events(
    State(studio): State<Studio>,
    UrlPath(id): UrlPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job = find(&studio, &id)?;
    let rx = job.watch();
    let first = Event::default().event("status").json_data(view(&job)).ok();
    let stream =
        futures_util::stream::unfold((job, rx, first, false), |(job, mut rx, first, over)| async move {
            if let Some(e) = first {
                return Some((Ok(e), (job, rx, None, false)));
            }
            if over {
                return None;
            }
            let event = tokio::select! {
                biased;
                t = rx.recv() => match t {
                    Ok(tick) => Event::default().event("tick").json_data(&tick).ok(),
                    // Lagged: the log has the lines; closed: the job is over.
                    Err(_) => None,
                },
                _ = job.wait() => None,
            };
            match event {
                Some(e) => Some((Ok(e), (job, rx, None, false))),
                None if job.state() != JobState::Running => {
                    let done = Event::default()
                        .event("done")
                        .json_data(view(&job))
                        .unwrap_or_default();
                    Some((Ok(done), (job, rx, None, true)))
                }
                None => Some((Ok(Event::default().comment("lagged")), (job, rx, None, false))),
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

impl Studio {
    /// The file of ledger image `id`, resolved inside the roots, or a usage error.
    fn input_of(&self, id: i64) -> Result<(fourk_core::ledger::ImageRecord, PathBuf), ApiError> {
        let rec = self
            .ledger()
            .and_then(|l| l.find_image(id).ok().flatten())
            .ok_or_else(|| ApiError::not_found(format!("no image {id} in the ledger")))?;
        let path = self.inside(&rec.path).ok_or_else(|| {
            ApiError::usage(format!(
                "image {id} ({}) is not under the studio's roots (or is gone); nothing was read\n\nhint: start `fourk studio` with --root FOLDER",
                rec.path.display()
            ))
        })?;
        Ok((rec, path))
    }
}

/// An Image page action that runs here, sends nothing and costs nothing.
#[derive(Debug, Deserialize)]
struct LocalForm {
    /// `upscale` (to the 4K frame of the image's orientation), `cutout`, `convert`, `compare`.
    op: String,
    /// The image (A of a comparison).
    id: i64,
    /// B of a comparison.
    #[serde(default)]
    b: Option<i64>,
    /// `convert`: png, jpeg or webp.
    #[serde(default)]
    format: Option<String>,
    /// `convert`: JPEG or lossy WebP quality, 0-100.
    #[serde(default)]
    quality: Option<u8>,
    /// `convert`: lossless WebP effort, 0-9.
    #[serde(default)]
    webp_effort: Option<u8>,
}

/// The largest size with the image's ratio that fits the 4K UHD frame of its orientation
/// (3840x2160 or 2160x3840): 3840x2160 for 16:9, 3240x2160 for 3:2, 2160x2160 for a square.
fn four_k(w: u32, h: u32) -> Size {
    let (w, h) = (w.max(1), h.max(1));
    let (fw, fh) = if w >= h {
        (3840.0, 2160.0)
    } else {
        (2160.0, 3840.0)
    };
    let scale = f64::min(fw / f64::from(w), fh / f64::from(h));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let edge = |v: u32, max: f64| (f64::from(v) * scale).round().clamp(1.0, max) as u32;
    Size::new(edge(w, fw), edge(h, fh))
}

/// `POST /api/local`: Upscale to 4K, Cutout, Convert, Compare, as the CLI's commands.
async fn local(State(studio): State<Studio>, Json(f): Json<LocalForm>) -> Result<Json<Value>, ApiError> {
    use fourk_core::pipeline::{self as pl, Encode, Operation};
    let (rec, input) = studio.input_of(f.id)?;
    let out = studio.inner.out_dir.clone();
    let (kind, op) = match f.op.as_str() {
        "upscale" => {
            let (w, h) = rec
                .width
                .zip(rec.height)
                .ok_or_else(|| ApiError::usage(format!("image {} has no recorded size", f.id)))?;
            (
                "upscale",
                Operation::Upscale(pl::UpscaleSpec {
                    input,
                    to: four_k(w, h),
                    out,
                    filter: fourk_imaging::Filter::default(),
                    sharpen: None,
                    stretch: false,
                    encode: Encode::default(),
                }),
            )
        }
        "cutout" => (
            "cutout",
            Operation::Cutout(pl::CutoutSpec {
                input,
                method: pl::CutoutMethod::Key {
                    key: fourk_imaging::KeySpec::Auto,
                    tolerance: fourk_imaging::DEFAULT_TOLERANCE,
                    feather: fourk_imaging::DEFAULT_FEATHER,
                },
                out,
                encode: Encode {
                    format: Some(OutputFormat::Png),
                    ..Encode::default()
                },
            }),
        ),
        "convert" => (
            "convert",
            Operation::Convert(pl::ConvertSpec {
                input,
                out,
                encode: Encode {
                    format: Some(parse_format(f.format.as_deref())?.ok_or_else(|| {
                        ApiError::usage("choose the format to convert to: png, jpeg or webp")
                    })?),
                    quality: f.quality,
                    webp_effort: f.webp_effort,
                    ..Encode::default()
                },
            }),
        ),
        "compare" => {
            let b = f
                .b
                .ok_or_else(|| ApiError::usage("choose the image to compare with (its # in the gallery)"))?;
            let (_, b) = studio.input_of(b)?;
            (
                "compare",
                Operation::Compare(pl::CompareSpec {
                    a: input,
                    b,
                    crop: None,
                    out,
                    encode: Encode::default(),
                }),
            )
        }
        other => {
            return Err(ApiError::usage(format!(
                "unknown action '{other}': upscale, cutout, convert or compare"
            )));
        }
    };
    let ledger = studio.inner.fk.ledger_path().to_path_buf();
    let job = studio.launch(kind, Some(0.0), move |job, _| async move {
        let token = job.token();
        job.tick(format!("{kind}: working"), None);
        let on = ledger.clone();
        let summary = tokio::task::spawn_blocking(move || op.run(&on, &token)).await??;
        let id = fourk_core::ledger::Ledger::open_read_only(&ledger)
            .ok()
            .and_then(|l| l.find_image_by_path(&summary.path).ok().flatten())
            .map(|i| i.id);
        let mut o = Outcome {
            ok: summary.verified && summary.inputs_ok,
            images: vec![Made {
                id,
                path: summary.path.clone(),
                verified: summary.verified,
                role: kind,
            }],
            report: summary.report.clone(),
            next: id.map(|i| format!("/image/{i}")),
            ..Outcome::default()
        };
        o.message = format!(
            "{kind}: {}x{} {}, {}",
            summary.width,
            summary.height,
            summary.format.extension(),
            if summary.verified {
                "verified"
            } else {
                "NOT verified"
            }
        );
        Ok(o)
    })?;
    Ok(started(&job))
}

/// The Edit page's request: the image, the prompt, and the painted mask as a PNG data URL.
#[derive(Debug, Deserialize)]
struct EditForm {
    id: i64,
    prompt: String,
    /// `data:image/png;base64,...`: transparent where the image is to change.
    #[serde(default)]
    mask: Option<String>,
    #[serde(default)]
    quality: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

/// `POST /api/edit`: the mask is written beside the outputs, then checked by the same rules
/// as `fourk edit --mask` before anything is sent.
async fn edit(State(studio): State<Studio>, Json(f): Json<EditForm>) -> Result<Json<Value>, ApiError> {
    use base64::Engine as _;
    if f.prompt.trim().is_empty() {
        return Err(ApiError::usage(
            "the prompt is empty: say what to change in Prompt",
        ));
    }
    let (rec, input) = studio.input_of(f.id)?;
    let model = f
        .model
        .clone()
        .filter(|m| !m.trim().is_empty())
        .or_else(|| rec.model.clone())
        .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    let mut spec =
        fourk_core::spec::EditSpec::new(vec![input], &f.prompt, &model, studio.inner.opts.endpoint.clone());
    if let Some(data) = f.mask.as_deref().filter(|m| !m.is_empty()) {
        let b64 = data.strip_prefix("data:image/png;base64,").ok_or_else(|| {
            ApiError::usage("mask_format: the mask must be a PNG (data:image/png;base64,...)")
        })?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ApiError::usage(format!("mask_format: the mask is not base64: {e}")))?;
        let path = fourk_core::outputs::resolve(
            Some(&studio.inner.out_dir),
            &format!("fourk-mask-{}", f.id),
            OutputFormat::Png,
            |p| vec![p.to_path_buf()],
        )
        .map_err(|e| ApiError::core(&e))?;
        fourk_imaging::save_atomic(&path, &png)
            .map_err(|e| ApiError::usage(format!("cannot write the mask {}: {e}", path.display())))?;
        spec.mask = Some(path);
    }
    if let (Some(w), Some(h)) = (rec.width, rec.height)
        && studio.inner.fk.caps.verdict(&format!("{w}x{h}"), &model).valid
    {
        spec.size = Size::Exact { width: w, height: h };
    }
    spec.image.quality = parse_quality(f.quality.as_deref())?;
    spec.out = Some(studio.inner.out_dir.clone());
    let fk = studio.inner.fk.clone();
    let dry = fourk_core::edit::dry_run(&spec, &fk.caps).map_err(|e| ApiError::core(&e))?;
    let thumbs = studio.inner.thumbs.clone();
    let job = studio.launch(
        "edit",
        dry.estimate.map(|e| e.cost.usd),
        move |_, control| async move {
            let (images, all_ok) = fourk_core::edit::edit_recorded(&spec, &fk, control).await?;
            Ok(images_outcome(&images, all_ok, &thumbs))
        },
    )?;
    Ok(started(&job))
}

/// The outcome of a request's saved images; their thumbnails (made from the pixels decoded to
/// verify them) go to the cache.
fn images_outcome(
    images: &[fourk_core::save::ImageSummary],
    all_ok: bool,
    thumbs: &fourk_core::thumbs::ThumbCache,
) -> Outcome {
    let mut o = Outcome {
        ok: all_ok,
        ..Outcome::default()
    };
    let mut seen = std::collections::HashSet::new();
    for s in images {
        if let Some(t) = &s.thumbnail
            && let Err(e) = thumbs.store(&s.sha256, t)
        {
            tracing::warn!("no thumbnail for {}: {e:#}", s.path.display());
        }
        if let Some(c) = &s.cost
            && seen.insert(s.attempt_id)
        {
            *o.usd.get_or_insert(0.0) += c.usd;
            o.estimate |= c.estimate;
        }
        o.images.push(Made {
            id: s.ledger_id,
            path: s.path.clone(),
            verified: s.verified,
            role: "image",
        });
    }
    o.next = o
        .images
        .first()
        .and_then(|m| m.id)
        .map(|id| format!("/image/{id}"));
    o.message = made_line(&o);
    o
}

/// The Batches page's form: a jobs file under a root (JSONL or CSV, as `fourk batch` takes).
#[derive(Debug, Clone, Deserialize)]
struct BatchForm {
    jobs: String,
    #[serde(default)]
    concurrency: Option<usize>,
}

impl Studio {
    fn batch_spec(&self, f: &BatchForm) -> Result<fourk_core::batch::BatchSpec, ApiError> {
        let given = f.jobs.trim();
        if given.is_empty() {
            return Err(ApiError::usage(
                "name the jobs file (JSONL or CSV, as `fourk batch` takes) in Jobs file",
            ));
        }
        let jobs = self.inside(std::path::Path::new(given)).ok_or_else(|| {
            ApiError::usage(format!(
                "the jobs file {given} does not exist under the studio's roots ({}); nothing was read\n\nhint: put it under a root, or start `fourk studio` with --root FOLDER",
                self.inner.roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let stem = jobs
            .file_stem()
            .map_or_else(|| "batch".to_owned(), |s| s.to_string_lossy().into_owned());
        let endpoint = &self.inner.opts.endpoint;
        Ok(fourk_core::batch::BatchSpec {
            out_dir: self.inner.out_dir.join(format!("batch-{stem}")),
            jobs,
            // As `fourk batch` without flags: jobs that do not say are gpt-image-2 at 4k.
            defaults: fourk_core::batch::Defaults {
                model: fourk_api::DEFAULT_MODEL.to_owned(),
                size: Size::new(3840, 2160),
                quality: None,
                format: OutputFormat::Png,
            },
            concurrency: f.concurrency.unwrap_or(4).clamp(1, 64),
            max_cost: None,
            retry_ambiguous: endpoint.retry_ambiguous,
            policy: fourk_core::session::retry_policy(endpoint),
            via: "local",
            force: false,
        })
    }
}

/// `GET /api/batch/check`: the batch's dry run (jobs, what is done, the estimate).
async fn batch_check(
    State(studio): State<Studio>,
    Query(f): Query<BatchForm>,
) -> Result<Json<Value>, ApiError> {
    let spec = studio.batch_spec(&f)?;
    let d = fourk_core::batch::dry_run(&spec, &studio.inner.fk).map_err(|e| ApiError::core(&e))?;
    Ok(Json(json!({
        "total": d.total,
        "already_done": d.already_done,
        "to_send": d.to_send,
        "estimate_usd": d.estimate_usd,
        "out_dir": d.out_dir,
        "notes": d.notes,
    })))
}

/// `POST /api/batch`: run the batch as `fourk batch` does (resumable; a failed job does not
/// stop the rest); it shows in the batches table as it runs.
async fn batch(State(studio): State<Studio>, Json(f): Json<BatchForm>) -> Result<Json<Value>, ApiError> {
    let spec = studio.batch_spec(&f)?;
    let fk = studio.inner.fk.clone();
    let plan = fourk_core::batch::plan(&spec, &fk.caps).map_err(|e| ApiError::core(&e))?;
    let estimate = plan.estimate_usd(&fk.caps);
    let endpoint = studio.inner.opts.endpoint.clone();
    let job = studio.launch("batch", Some(estimate), move |job, _| async move {
        let reporter: Arc<dyn fourk_core::batch::Reporter> =
            Arc::new(fourk_core::jobs::BatchTicks(job.clone()));
        let report = fourk_core::batch::run_local(plan, &fk, &endpoint, reporter, job.token()).await?;
        Ok(Outcome {
            ok: report.all_succeeded(),
            message: format!(
                "batch: {} succeeded, {} failed, {} possibly billed, {} skipped of {}; ${:.3} this run",
                report.succeeded,
                report.failed,
                report.possibly_billed,
                report.skipped,
                report.total,
                report.spent_this_run_usd
            ),
            usd: Some(report.spent_this_run_usd),
            next: Some("/batches".to_owned()),
            ..Outcome::default()
        })
    })?;
    Ok(started(&job))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_k_fits_the_uhd_frame_with_the_images_ratio() {
        assert_eq!(four_k(2560, 1440), Size::new(3840, 2160));
        assert_eq!(four_k(1536, 864), Size::new(3840, 2160));
        assert_eq!(four_k(1536, 1024), Size::new(3240, 2160));
        assert_eq!(four_k(1024, 1024), Size::new(2160, 2160));
        assert_eq!(four_k(1024, 1536), Size::new(2160, 3240));
        assert_eq!(four_k(3072, 1024), Size::new(3840, 1280));
    }
}
