//! The one send path: every image request of generate, edit, `--transparent` and the
//! workflows leaves through [`send`], and every one is on record in the ledger before it
//! leaves.
//!
//! The order is what makes the money on record complete by construction:
//! 1. [`Recorder::sending`] writes the attempt (state `sent`, possibly billed) and its
//!    estimated usage in one transaction, before a byte is sent. A kill at any later moment
//!    leaves a row that `fourk cost` counts as ESTIMATED and `fourk history` lists as
//!    possibly billed.
//! 2. The answer arrives: [`Recorder::answered`] closes the attempt and replaces the estimate
//!    with the measured `usage`. Whatever happens to the image next (a corrupt body, a
//!    failed verify, a full disk) cannot make the request unbilled, and the measured cost stays.
//! 3. No answer: [`Recorder::failed`] keeps the estimate when the request may have been billed
//!    (timeout, reset, truncated stream) and removes it when it provably was not (connection
//!    refused, an API error status).
//! 4. Interrupted (Ctrl-C, SIGTERM): [`Recorder::interrupt`] marks every open attempt possibly
//!    billed, keeping its estimate.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use fourk_api::ProviderKind;
use fourk_api::{
    Cost, EditRequest, ImageEndpoint, ImageRequest, InputImage, ModelCaps, OutputFormat, Quality,
    ResponsesRequest, RouteLabel, Size, Usage,
};
use fourk_client::Client;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ledger::RunStatus;
use crate::ledger::{AttemptId, AttemptOutcome, ImageId, JobId, Ledger, RunId, UsageKey};
use crate::save::{self, Delivery, ImageSummary, Job};
use crate::sidecar::{ProviderRecord, SentRequest};

/// What the core reports while a request is under way. The CLI logs it, the MCP server turns
/// it into progress notifications, the studio into server-sent events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Progress {
    /// A request is about to leave; it is on record as `attempt`.
    Sending {
        /// `images.generate`, `images.edit` or `responses`.
        route: RouteLabel,
        /// Its ledger attempt, when the ledger is writable.
        attempt: Option<AttemptId>,
    },
    /// Its answer arrived.
    Answered {
        /// `x-request-id`.
        request_id: Option<String>,
    },
    /// An image was saved and checked.
    Saved {
        /// The file (a `.rejected.` name when it did not verify).
        path: PathBuf,
        /// Whether it verified.
        verified: bool,
    },
    /// A streamed partial image arrived (`index` from 0); `path` is where it was kept, when
    /// the caller asked to keep partials.
    Partial {
        /// Its index in the stream.
        index: u32,
        /// The saved file, when kept.
        path: Option<PathBuf>,
    },
    /// A workflow begins a step: `draft`, `native`, `master`, `upscale`, `sheet`.
    Step {
        /// The step's name, as in the workflow's report.
        step: &'static str,
    },
}

impl std::fmt::Display for Progress {
    /// The line every door shows for the event (a job's log, a progress notification).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sending { route, attempt } => {
                write!(f, "sending {}", route.as_str())?;
                if let Some(a) = attempt {
                    write!(f, " (ledger attempt {a})")?;
                }
                Ok(())
            }
            Self::Answered { request_id } => {
                f.write_str("answered")?;
                if let Some(r) = request_id {
                    write!(f, " (request {r})")?;
                }
                Ok(())
            }
            Self::Saved { path, verified } => write!(
                f,
                "saved {} ({})",
                path.display(),
                if *verified { "verified" } else { "NOT verified" }
            ),
            Self::Partial { index, path } => {
                write!(f, "partial image {index} received")?;
                if let Some(p) = path {
                    write!(f, "; kept as {}", p.display())?;
                }
                Ok(())
            }
            Self::Step { step } => write!(f, "step: {step}"),
        }
    }
}

/// Receives [`Progress`] events; implementations must be cheap (they run on the request's
/// task).
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// One event.
    fn progress(&self, event: &Progress);
}

/// The work was cancelled through its [`CancellationToken`].
#[derive(Debug, thiserror::Error)]
#[error("{}", if *.possibly_billed {
    "cancelled after the request was sent: possibly billed; its estimated cost is recorded (fourk cost, fourk history)"
} else {
    "cancelled with no request in flight (what was sent before is on record)"
})]
pub struct Cancelled {
    /// The request had left: it may be billed, and stays on record as such.
    pub possibly_billed: bool,
}

/// How a caller follows and stops long work: [`Progress`] events to an [`Observer`], and a
/// [`CancellationToken`]. `Control::default()` reports to no one and is never cancelled.
#[derive(Debug, Clone, Default)]
pub struct Control {
    observer: Option<Arc<dyn Observer>>,
    cancel: CancellationToken,
    thumbnails: Option<u32>,
}

impl Control {
    /// Stopped by `cancel`: before a send nothing happens; after it the request stays on
    /// record as possibly billed and the work returns [`Cancelled`].
    #[must_use]
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            observer: None,
            cancel,
            thumbnails: None,
        }
    }

    /// Report progress to `observer`.
    #[must_use]
    pub fn observed(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Make a thumbnail fitting `edge` of every image saved from an answer, from the pixels
    /// decoded to verify it ([`ImageSummary::thumbnail`]): no second decode.
    #[must_use]
    pub fn with_thumbnails(mut self, edge: u32) -> Self {
        self.thumbnails = Some(edge);
        self
    }

    /// The thumbnail edge asked for, if any ([`Self::with_thumbnails`]).
    #[must_use]
    pub fn thumbnails(&self) -> Option<u32> {
        self.thumbnails
    }

    /// The token that stops the work.
    #[must_use]
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Report `event`.
    pub fn emit(&self, event: &Progress) {
        if let Some(o) = &self.observer {
            o.progress(event);
        }
    }

    /// Between steps: stop here when cancelled (nothing is in flight).
    ///
    /// # Errors
    /// [`Cancelled`] when the token was cancelled.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.cancel.is_cancelled() {
            Err(Cancelled {
                possibly_billed: false,
            })
        } else {
            Ok(())
        }
    }
}

/// A request's predicted usage and dollars, written with the attempt before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// What it is about (model, quality, size, images).
    pub key: UsageKey,
    /// Predicted tokens.
    pub usage: Usage,
    /// Predicted dollars.
    pub cost: Cost,
}

impl Estimate {
    /// An answer's measured usage and dollars, recorded under `key` with `auto` replaced by
    /// the quality and size the answer says were used. `None` without usage or prices.
    #[must_use]
    pub fn measured(
        key: &UsageKey,
        usage: Option<Usage>,
        price: Option<fourk_api::Prices>,
        settings: &fourk_api::ImageSettings,
    ) -> Option<Self> {
        let (usage, price) = usage.zip(price)?;
        let mut key = key.clone();
        if key.quality == "auto"
            && let Some(q) = &settings.quality
        {
            key.quality.clone_from(q);
        }
        if key.size == "auto"
            && let Some(s) = &settings.size
        {
            key.size.clone_from(s);
        }
        Some(Self {
            key,
            usage,
            cost: Cost::from_usage(&usage, &price, true),
        })
    }
}

/// One request as it leaves.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// `POST /images/generations`.
    Generate(&'a ImageRequest),
    /// `POST /images/edits` (multipart).
    Edit {
        /// The fields.
        request: &'a EditRequest,
        /// The input images.
        images: &'a [InputImage],
        /// The mask.
        mask: Option<&'a InputImage>,
    },
    /// `POST /responses` with the `image_generation` tool.
    Responses(&'a ResponsesRequest),
}

impl Outgoing<'_> {
    /// The endpoint it goes to (and so the route label it is recorded under).
    #[must_use]
    pub const fn endpoint(&self) -> ImageEndpoint {
        match self {
            Self::Generate(_) => ImageEndpoint::Generations,
            Self::Edit { .. } => ImageEndpoint::Edits,
            Self::Responses(_) => ImageEndpoint::Responses,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    run: Option<RunId>,
    /// Attempts sent whose answer has not been read yet.
    open: Vec<AttemptId>,
    /// Attempts whose answer was read (their usage is measured).
    answered: Vec<AttemptId>,
}

/// The recorder's open ledger, held for one write.
struct LedgerGuard<'a>(std::sync::MutexGuard<'a, Option<Ledger>>);

impl std::ops::Deref for LedgerGuard<'_> {
    type Target = Ledger;

    fn deref(&self) -> &Ledger {
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("a guard is only made once the ledger is open"))
    }
}

/// The ledger record of one command's requests: a run, begun at the first send (so a
/// request refused by a local check leaves no row), or an existing run of a workflow.
/// A ledger that cannot be written is a warning: the work goes on.
#[derive(Debug)]
pub struct Recorder {
    ledger: Option<PathBuf>,
    conn: Mutex<Option<Ledger>>,
    kind: String,
    args: Value,
    state: Mutex<State>,
    control: Control,
}

impl Recorder {
    /// A recorder that begins a run of `kind` with `args` at the first send.
    #[must_use]
    pub fn new(ledger: &Path, kind: &str, args: Value) -> Self {
        Self {
            ledger: Some(ledger.to_path_buf()),
            kind: kind.to_owned(),
            args,
            conn: Mutex::new(None),
            state: Mutex::new(State::default()),
            control: Control::default(),
        }
    }

    /// Report progress to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.control.observer = Some(observer);
        self
    }

    /// Stop when `cancel` is cancelled: before the send nothing happens; after it the request
    /// stays on record as possibly billed and the work returns [`Cancelled`].
    #[must_use]
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.control.cancel = cancel;
        self
    }

    /// Report to and stop with `control`.
    #[must_use]
    pub fn with_control(mut self, control: Control) -> Self {
        self.control = control;
        self
    }

    /// The token that cancels this run's work.
    #[must_use]
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.control.cancel
    }

    /// How this run's work is followed and stopped.
    #[must_use]
    pub fn control(&self) -> &Control {
        &self.control
    }

    fn emit(&self, event: &Progress) {
        self.control.emit(event);
    }

    /// A recorder that adds to the existing `run` (a workflow's).
    #[must_use]
    pub fn for_run(ledger: &Path, run: RunId) -> Self {
        Self {
            ledger: Some(ledger.to_path_buf()),
            kind: String::new(),
            args: Value::Null,
            conn: Mutex::new(None),
            state: Mutex::new(State {
                run: Some(run),
                ..State::default()
            }),
            control: Control::default(),
        }
    }

    /// A recorder that records nothing (the ledger is unavailable; a warning was given).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            ledger: None,
            kind: String::new(),
            args: Value::Null,
            conn: Mutex::new(None),
            state: Mutex::new(State::default()),
            control: Control::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run, once one exists.
    #[must_use]
    pub fn run(&self) -> Option<RunId> {
        self.lock().run
    }

    /// The ledger's connection, opened at the first write and kept for the run's later
    /// ones (opening migrates and sets pragmas: once is enough).
    fn open(&self) -> Option<LedgerGuard<'_>> {
        let path = self.ledger.as_ref()?;
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.is_none() {
            match Ledger::open(path) {
                Ok(l) => *conn = Some(l),
                Err(e) => {
                    tracing::warn!("the ledger cannot be written, so this request is not on record: {e}");
                    return None;
                }
            }
        }
        Some(LedgerGuard(conn))
    }

    /// Before a request leaves: the attempt (its route and provider) and its estimate on
    /// record.
    pub fn sending(
        &self,
        route: &str,
        provider: ProviderKind,
        estimate: Option<&Estimate>,
    ) -> Option<AttemptId> {
        self.sending_for(None, route, provider, estimate)
    }

    /// Before a batch job's request leaves: the attempt, for `job`, and its estimate on
    /// record; the job becomes `running`.
    pub fn sending_job(
        &self,
        job: JobId,
        route: &str,
        provider: ProviderKind,
        estimate: Option<&Estimate>,
    ) -> Option<AttemptId> {
        self.sending_for(Some(job), route, provider, estimate)
    }

    fn sending_for(
        &self,
        job: Option<JobId>,
        route: &str,
        provider: ProviderKind,
        estimate: Option<&Estimate>,
    ) -> Option<AttemptId> {
        let ledger = self.open()?;
        let mut st = self.lock();
        let begin = (st.run.is_none()).then_some((self.kind.as_str(), &self.args));
        let est = estimate.map(|e| (&e.key, &e.usage, &e.cost));
        match ledger.attempt_sending(st.run, begin, job, route, provider.as_str(), est) {
            Ok((run, attempt)) => {
                st.run = Some(run);
                st.open.push(attempt);
                Some(attempt)
            }
            Err(e) => {
                tracing::warn!("the request could not be put on record before sending: {e}");
                None
            }
        }
    }

    /// The answer arrived: measured usage replaces the estimate.
    pub fn answered(
        &self,
        attempt: Option<AttemptId>,
        request_id: Option<&str>,
        measured: Option<&Estimate>,
    ) {
        let Some(attempt) = attempt else { return };
        let Some(ledger) = self.open() else { return };
        let mut st = self.lock();
        st.open.retain(|a| *a != attempt);
        st.answered.push(attempt);
        let Some(run) = st.run else { return };
        let m = measured.map(|e| (&e.key, &e.usage, &e.cost));
        if let Err(e) = ledger.attempt_answered(run, attempt, request_id, m) {
            tracing::warn!("the answer was not recorded in the ledger: {e}");
        }
    }

    /// The request (or what followed its answer) failed with `err`.
    pub fn failed(&self, attempt: Option<AttemptId>, err: &anyhow::Error) {
        self.close_failed(attempt, &format!("{err:#}"), || AttemptOutcome::from_error(err));
    }

    /// The call failed with the client's `err`; `retry` names why it is sent again (a new
    /// attempt follows).
    pub fn failed_call(
        &self,
        attempt: Option<AttemptId>,
        err: &fourk_client::ClientError,
        retry: Option<String>,
    ) {
        self.close_failed(attempt, &err.to_string(), || AttemptOutcome {
            retry_reason: retry,
            ..AttemptOutcome::from_client(err)
        });
    }

    /// An answered attempt keeps its outcome and gets a note; an open one is closed with
    /// `outcome` (its estimate kept only when it may have been billed).
    fn close_failed(&self, attempt: Option<AttemptId>, err: &str, outcome: impl FnOnce() -> AttemptOutcome) {
        let Some(attempt) = attempt else { return };
        let Some(ledger) = self.open() else { return };
        let mut st = self.lock();
        let answered = st.answered.contains(&attempt);
        st.open.retain(|a| *a != attempt);
        drop(st);
        let result = if answered {
            ledger.attempt_note(attempt, &format!("the answer arrived, then: {err}"))
        } else {
            ledger.attempt_failed(attempt, &outcome())
        };
        if let Err(e) = result {
            tracing::warn!("the failure was not recorded in the ledger: {e}");
        }
    }

    /// Image rows for the images saved from `attempt`; their ids (empty without a ledger).
    pub fn saved(&self, attempt: Option<AttemptId>, images: &[ImageSummary]) -> Vec<ImageId> {
        let Some(attempt) = attempt else {
            return Vec::new();
        };
        let Some(run) = self.run() else {
            return Vec::new();
        };
        let Some(ledger) = self.open() else {
            return Vec::new();
        };
        ledger
            .record_attempt_images(run, None, attempt, images)
            .unwrap_or_else(|e| {
                tracing::warn!("the images are saved, but the ledger was not updated: {e}");
                Vec::new()
            })
    }

    /// Record `img`, made locally from the recorded image `from` (a cutout of a key-colour
    /// render, an upscale of a master), as an image of the same request with a `kind` link;
    /// sets its ledger ids. Its cost is `from`'s request's, already on record.
    pub fn derived(&self, from: &ImageSummary, img: &mut ImageSummary, kind: crate::ledger::LinkKind) {
        let (Some(attempt), Some(from_id)) = (from.attempt_id, from.ledger_id) else {
            return;
        };
        let Some(ledger) = self.open() else { return };
        let Some(run) = self.run() else { return };
        let result = ledger
            .record_attempt_images(run, None, attempt, std::slice::from_ref(img))
            .and_then(|ids| {
                let id = ids.first().copied();
                if let Some(id) = id {
                    ledger.link(from_id, id, kind)?;
                }
                Ok(id)
            });
        match result {
            Ok(id) => {
                img.ledger_id = id;
                img.attempt_id = Some(attempt);
            }
            Err(e) => tracing::warn!("the image is saved, but the ledger was not updated: {e}"),
        }
    }

    /// Requests given up on while in flight (a workflow's own time limit): every attempt still
    /// open becomes `interrupted` and possibly billed, keeping its estimate. The run stays open.
    pub fn abandon(&self, why: &str) -> Vec<AttemptId> {
        let Some(run) = self.run() else {
            return Vec::new();
        };
        let Some(ledger) = self.open() else {
            return Vec::new();
        };
        let ids = ledger.interrupt_run_attempts(run, why).unwrap_or_else(|e| {
            tracing::warn!("the interrupted request was not recorded in the ledger: {e}");
            Vec::new()
        });
        self.lock().open.clear();
        ids
    }

    /// The work was interrupted (Ctrl-C, SIGTERM): every attempt still open becomes possibly
    /// billed (its estimate stays), and the run is closed as `interrupted`. Returns the
    /// attempts that were in flight.
    pub fn interrupt(&self, why: &str) -> Vec<AttemptId> {
        let ids = self.abandon(why);
        self.finish_as(RunStatus::Interrupted);
        ids
    }

    /// Close the run (when one was begun): `failed` when `result` is an error, else `ok`
    /// when every image verified and `check_failed` when one did not.
    pub fn finish<T>(&self, result: &anyhow::Result<(T, bool)>) {
        self.finish_as(match result {
            Err(_) => RunStatus::Failed,
            Ok((_, true)) => RunStatus::Ok,
            Ok((_, false)) => RunStatus::CheckFailed,
        });
    }

    /// Close the run (when one was begun) with `status`.
    pub fn finish_as(&self, status: RunStatus) {
        let Some(run) = self.run() else { return };
        let Some(ledger) = self.open() else { return };
        if let Err(e) = ledger.finish_run(run, status) {
            tracing::warn!("the ledger run was not closed: {e}");
        }
    }
}

/// Input tokens of reference images, counted at high fidelity (an upper bound): each image
/// scaled to fit 2048 on its long edge, then the output-token rule at high quality.
#[must_use]
pub fn reference_image_tokens(input_dims: &[(u32, u32)]) -> u64 {
    input_dims
        .iter()
        .map(|&(w, h)| {
            let long = w.max(h).max(1);
            let scale = (2048.0 / f64::from(long)).min(1.0);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let (w, h) = (
                ((f64::from(w) * scale).round() as u32).max(1),
                ((f64::from(h) * scale).round() as u32).max(1),
            );
            fourk_api::cost::gpt_image_2_output_tokens(w, h, Quality::High)
        })
        .sum()
}

/// Warn when `timeout` is shorter than the median time a request of this size and quality
/// takes (the model's latency figures): it will likely give up after the request was sent,
/// and such a request may still be billed. Allowed, since medians are only medians.
pub fn warn_short_timeout(
    model: &ModelCaps,
    width: u32,
    height: u32,
    quality: Option<Quality>,
    timeout: std::time::Duration,
) {
    let quality = quality
        .filter(|q| *q != Quality::Auto)
        .unwrap_or_else(|| model.highest_quality());
    let median = model
        .latency
        .clone()
        .unwrap_or_default()
        .seconds(width, height, quality);
    if timeout.as_secs_f64() < median {
        tracing::warn!(
            "--timeout {}s is shorter than the {median:.0}s a {width}x{height} {quality} request usually takes on {}: it will likely time out after it was sent, and may still be billed; consider --timeout {}",
            timeout.as_secs(),
            model.id,
            (median * 2.0).ceil()
        );
    }
}

/// The size an `auto`-sized request is predicted at: the largest standard size.
pub const AUTO_SIZE_ESTIMATE: (u32, u32) = (1536, 1024);

/// Predict a request's usage and dollars from the token formula and the model's prices:
/// `auto` quality counts as the model's highest, `auto` size as [`AUTO_SIZE_ESTIMATE`], reference images at
/// high fidelity. `None` when the model has no prices or no token rule.
#[must_use]
pub fn predict(
    model: &ModelCaps,
    prompt: &str,
    size: Option<Size>,
    quality: Option<Quality>,
    n: u8,
    input_dims: &[(u32, u32)],
) -> Option<Estimate> {
    let prices = model.price?;
    let (w, h) = size.and_then(Size::dims).unwrap_or(AUTO_SIZE_ESTIMATE);
    let mut usage = fourk_api::cost::predict_usage(model, prompt, w, h, quality.unwrap_or(Quality::Auto), n)?;
    let image_in = reference_image_tokens(input_dims);
    if image_in > 0 {
        usage = Usage::new(usage.input_tokens, image_in, usage.output_tokens);
    }
    Some(Estimate {
        key: usage_key(
            &model.id,
            quality.map(Quality::as_str),
            size.map(|s| s.to_string()).as_deref(),
            u32::from(n.max(1)),
        ),
        cost: Cost::from_usage(&usage, &prices, false),
        usage,
    })
}

/// The usage key of a request's sidecar fields.
#[must_use]
pub fn usage_key(model: &str, quality: Option<&str>, size: Option<&str>, images: u32) -> UsageKey {
    UsageKey {
        model: model.to_owned(),
        quality: quality.unwrap_or("auto").to_owned(),
        size: size.unwrap_or("auto").to_owned(),
        images,
    }
}

/// Send one request, read its answer (whole or streamed), save and verify every image,
/// write the sidecars and record it all. `job` describes the request; its route, endpoint
/// and sent body are filled in here from `out`. Partial images of a stream are saved beside
/// the output when `keep` names it.
///
/// # Errors
/// Client errors (with "possibly billed" where it applies), a failed Responses call, and IO
/// errors while saving. Each is on record before it is returned.
pub async fn send(
    client: &Client,
    rec: &Recorder,
    job: Job,
    out: Outgoing<'_>,
    key: &UsageKey,
    estimate: Option<&Estimate>,
    keep: Option<(&Path, OutputFormat)>,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let mut job = Job {
        route: out.endpoint().label(),
        endpoint: fourk_client::redact_url(&client.config().endpoint_for(out.endpoint().path(), &job.model)),
        provider: ProviderRecord::of(client.config()),
        ..job
    };
    if let Outgoing::Responses(rr) = out {
        job.request = SentRequest::Responses(Box::new(crate::route::summarised(rr)));
    }
    let (route, provider) = (job.route.clone(), job.provider.name);
    on_record(rec, &route, provider, estimate, |attempt| {
        receive_and_save(client, rec, attempt, &job, out, key, keep)
    })
    .await
}

/// The record around one request, for every route and provider: nothing leaves once `rec`
/// is cancelled; the attempt and its estimate are on record before `work` sends; a
/// cancellation after that abandons the attempt as possibly billed; each saved image is
/// reported, or the failure is put on record.
///
/// # Errors
/// [`Cancelled`], and whatever `work` returns.
pub async fn on_record<F>(
    rec: &Recorder,
    route: &fourk_api::RouteLabel,
    provider: ProviderKind,
    estimate: Option<&Estimate>,
    work: impl FnOnce(Option<AttemptId>) -> F,
) -> anyhow::Result<(Vec<ImageSummary>, bool)>
where
    F: std::future::Future<Output = anyhow::Result<(Vec<ImageSummary>, bool)>>,
{
    if rec.control.cancel.is_cancelled() {
        return Err(Cancelled {
            possibly_billed: false,
        }
        .into());
    }
    let attempt = rec.sending(route.as_str(), provider, estimate);
    rec.emit(&Progress::Sending {
        route: route.clone(),
        attempt,
    });
    let result = tokio::select! {
        r = work(attempt) => r,
        () = rec.control.cancel.cancelled() => {
            rec.abandon("cancelled after the request was sent");
            return Err(Cancelled { possibly_billed: true }.into());
        }
    };
    match &result {
        Ok((images, _)) => {
            for img in images {
                rec.emit(&Progress::Saved {
                    path: img.path.clone(),
                    verified: img.verified,
                });
            }
        }
        Err(e) => rec.failed(attempt, e),
    }
    result
}

/// Reports each streamed partial image as [`Progress::Partial`].
fn partial_seen(rec: &Recorder) -> impl Fn(u32, Option<&Path>) + Sync + '_ {
    move |index, path| {
        rec.emit(&Progress::Partial {
            index,
            path: path.map(Path::to_path_buf),
        });
    }
}

async fn receive_and_save(
    client: &Client,
    rec: &Recorder,
    attempt: Option<AttemptId>,
    job: &Job,
    out: Outgoing<'_>,
    key: &UsageKey,
    keep: Option<(&Path, OutputFormat)>,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let finish = |got: &Delivery, images: &[&str]| {
        let measured = Estimate::measured(key, got.usage, job.price, &got.meta.settings);
        rec.answered(attempt, got.meta.request_id.as_deref(), measured.as_ref());
        rec.emit(&Progress::Answered {
            request_id: got.meta.request_id.clone(),
        });
        let (mut saved, all_ok) = save::save_all(job, got, images, rec.control.thumbnails)?;
        let ids = rec.saved(attempt, &saved);
        for (img, id) in saved.iter_mut().zip(ids) {
            img.ledger_id = Some(id);
            img.attempt_id = attempt;
        }
        Ok((saved, all_ok))
    };
    match out {
        Outgoing::Generate(req) if job.stream => {
            let events = client.generate_stream(req).await?;
            let (got, images) = save::from_image_stream(events, keep, &partial_seen(rec)).await?;
            finish(&got, &as_strs(&images))
        }
        Outgoing::Generate(req) => {
            let resp = client.generate(req).await?;
            let (got, images) = save::from_images(&resp)?;
            finish(&got, &cow_strs(&images))
        }
        Outgoing::Edit {
            request,
            images,
            mask,
        } if job.stream => {
            let events = client.edit_stream(request, images, mask).await?;
            let (got, images) = save::from_image_stream(events, keep, &partial_seen(rec)).await?;
            finish(&got, &as_strs(&images))
        }
        Outgoing::Edit {
            request,
            images,
            mask,
        } => {
            let resp = client.edit(request, images, mask).await?;
            let (got, images) = save::from_images(&resp)?;
            finish(&got, &cow_strs(&images))
        }
        Outgoing::Responses(rr) => {
            let previous = rr.previous_response_id.as_deref();
            let (got, b64) = if job.stream {
                let events = client.responses_stream(rr).await?;
                save::from_responses_stream(events, keep, previous, &rr.model, &partial_seen(rec)).await?
            } else {
                let resp = client.responses(rr).await?;
                save::from_responses(&resp, previous, &rr.model)?
            };
            finish(&got, &[b64.as_str()])
        }
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn cow_strs<'a>(v: &'a [Cow<'_, str>]) -> Vec<&'a str> {
    v.iter().map(AsRef::as_ref).collect()
}
