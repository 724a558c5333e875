//! Long work as jobs, for the doors that stay up (`fourk mcp`, `fourk studio`): each piece of
//! spending or pixel-heavy work runs on its own task, so a caller that goes away (a cancelled
//! tool call, a closed or reloaded page) does not stop a request already sent; progress goes
//! to the job's log, to one foreground listener and to any number of live watchers; a
//! cancellation never throws a sent request away; and a door-wide spending ceiling
//! ([`Budget`]) reserves each job's estimate while it runs.
//!
//! The result type `R` is the door's own (a tool result, a page's JSON).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::send::{Observer, Progress};

/// One progress line.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// Events so far.
    pub progress: f64,
    /// The total when known (batch jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// What happened.
    pub message: String,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Working.
    Running,
    /// Finished with a result (which may report unverified images).
    Done,
    /// Finished with an error.
    Failed,
    /// Stopped before its next request; what was sent before is saved and on record.
    Cancelled,
}

impl State {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One job.
#[derive(Debug)]
pub struct Job<R> {
    /// `job-N`.
    pub id: String,
    /// What it does (the tool or the page's action).
    pub kind: String,
    /// Images it saves keep a thumbnail fitting this edge (made from the pixels decoded to
    /// verify them), for a preview or a gallery.
    pub thumbnails: Option<u32>,
    started: Instant,
    state: Mutex<State>,
    log: Mutex<Vec<String>>,
    ticks: AtomicU64,
    total: Mutex<Option<f64>>,
    result: watch::Sender<Option<R>>,
    cancel: CancellationToken,
    in_flight: AtomicBool,
    sent: AtomicBool,
    cancel_after_save: AtomicBool,
    notify: Mutex<Option<mpsc::UnboundedSender<Tick>>>,
    watchers: broadcast::Sender<Tick>,
}

/// What a door shows about a job.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct JobStatus {
    /// The job id.
    pub id: String,
    /// What it does.
    #[serde(rename = "tool")]
    pub kind: String,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Seconds since it started.
    pub elapsed_s: f64,
    /// Progress events so far.
    pub progress: u64,
    /// The total, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// The last progress lines (at most 20).
    pub log: Vec<String>,
}

/// The most log lines a job keeps.
const LOG_LINES: usize = 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<R: Clone> Job<R> {
    /// Record a progress line and pass it to the foreground listener and the watchers.
    pub fn tick(&self, message: String, total: Option<f64>) {
        let n = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_some() {
            *lock(&self.total) = total;
        }
        let total = *lock(&self.total);
        {
            let mut log = lock(&self.log);
            log.push(message.clone());
            if log.len() > LOG_LINES {
                let cut = log.len() - LOG_LINES;
                log.drain(..cut);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let tick = Tick {
            progress: n as f64,
            total,
            message,
        };
        if let Some(tx) = lock(&self.notify).as_ref() {
            let _ = tx.send(tick.clone());
        }
        // No watcher is not an error.
        let _ = self.watchers.send(tick);
    }

    /// Stop sending progress to the foreground listener (it has its answer or went away).
    pub fn detach(&self) {
        *lock(&self.notify) = None;
    }

    /// Live progress from now on (a page's event stream). The log has what came before.
    #[must_use]
    pub fn watch(&self) -> broadcast::Receiver<Tick> {
        self.watchers.subscribe()
    }

    /// The token the core's work stops with.
    #[must_use]
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stop work that has not been sent. A request in flight is not thrown away: the job
    /// stops after its answer is saved, verified and recorded.
    pub fn cancel(&self) {
        if self.in_flight.load(Ordering::SeqCst) {
            self.cancel_after_save.store(true, Ordering::SeqCst);
            self.tick(
                "cancel asked while a request is in flight: it will be saved, verified and recorded, then the job stops".into(),
                None,
            );
        } else {
            self.cancel.cancel();
        }
    }

    /// Whether any request of the job left (it may be billed even when the job failed).
    #[must_use]
    pub fn sent(&self) -> bool {
        self.sent.load(Ordering::SeqCst)
    }

    /// Something billable left (a Batch API batch was created): a failure from here on may
    /// still cost money, so its estimate counts against the ceiling.
    pub fn mark_sent(&self) {
        self.sent.store(true, Ordering::SeqCst);
    }

    /// The job's state.
    #[must_use]
    pub fn state(&self) -> State {
        *lock(&self.state)
    }

    /// End the job with `state` and its result.
    pub fn finish(&self, state: State, result: R) {
        *lock(&self.state) = state;
        self.detach();
        self.result.send_replace(Some(result));
    }

    /// Wait for the result (`None` when the job's task ended without one).
    pub async fn wait(&self) -> Option<R> {
        let mut rx = self.result.subscribe();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return Some(r);
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The result, when done.
    #[must_use]
    pub fn result(&self) -> Option<R> {
        self.result.borrow().clone()
    }

    /// Seconds since it started.
    #[must_use]
    pub fn elapsed_s(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0
    }

    /// What a door shows.
    #[must_use]
    pub fn status(&self) -> JobStatus {
        JobStatus {
            id: self.id.clone(),
            kind: self.kind.clone(),
            state: self.state().as_str().to_owned(),
            elapsed_s: self.elapsed_s(),
            progress: self.ticks.load(Ordering::Relaxed),
            total: *lock(&self.total),
            log: lock(&self.log).clone(),
        }
    }
}

/// The core's progress events as job ticks; tracks whether a request is in flight so that a
/// cancellation never throws a sent request away.
#[derive(Debug)]
pub struct JobObserver<R>(pub Arc<Job<R>>);

impl<R: Clone + Send + Sync + fmt::Debug> Observer for JobObserver<R> {
    fn progress(&self, event: &Progress) {
        let job = &self.0;
        match event {
            Progress::Sending { .. } => {
                job.in_flight.store(true, Ordering::SeqCst);
                job.sent.store(true, Ordering::SeqCst);
            }
            Progress::Saved { .. } => {
                job.in_flight.store(false, Ordering::SeqCst);
                if job.cancel_after_save.load(Ordering::SeqCst) {
                    job.cancel.cancel();
                }
            }
            _ => {}
        }
        job.tick(event.to_string(), None);
    }
}

/// A local batch's progress as ticks of a job (the total known from the start).
#[derive(Debug)]
pub struct BatchTicks<R>(pub Arc<Job<R>>);

impl<R: Clone + Send + Sync> crate::batch::Reporter for BatchTicks<R> {
    fn start(&self, total: usize, done: usize, queued: usize, spent_usd: f64) {
        #[allow(clippy::cast_precision_loss)]
        self.0.tick(
            format!(
                "batch: {total} job(s), {done} already done, {queued} to run; ${spent_usd:.4} recorded so far"
            ),
            Some(total as f64),
        );
    }

    fn job(&self, job: &crate::batch::JobReport, spent_usd: f64) {
        self.0.tick(
            format!(
                "{} line {} {}; ${spent_usd:.4} spent",
                job.state.as_str(),
                job.line,
                job.outputs
                    .first()
                    .map_or_else(|| job.name.clone(), |p| p.display().to_string())
            ),
            None,
        );
    }

    fn finish(&self) {}
}

/// A door's jobs.
#[derive(Debug)]
pub struct Jobs<R> {
    map: Mutex<HashMap<String, Arc<Job<R>>>>,
    next: AtomicU64,
}

impl<R> Default for Jobs<R> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
            next: AtomicU64::new(0),
        }
    }
}

impl<R: Clone> Jobs<R> {
    /// A new running job of `kind`, reporting ticks to `notify` while it is attached.
    pub fn create(
        &self,
        kind: &str,
        thumbnails: Option<u32>,
        notify: Option<mpsc::UnboundedSender<Tick>>,
    ) -> Arc<Job<R>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, _) = watch::channel(None);
        let (watchers, _) = broadcast::channel(64);
        let job = Arc::new(Job {
            id: format!("job-{n}"),
            kind: kind.to_owned(),
            thumbnails,
            started: Instant::now(),
            state: Mutex::new(State::Running),
            log: Mutex::new(Vec::new()),
            ticks: AtomicU64::new(0),
            total: Mutex::new(None),
            result: tx,
            cancel: CancellationToken::new(),
            in_flight: AtomicBool::new(false),
            sent: AtomicBool::new(false),
            cancel_after_save: AtomicBool::new(false),
            notify: Mutex::new(notify),
            watchers,
        });
        lock(&self.map).insert(job.id.clone(), job.clone());
        job
    }

    /// The job with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Arc<Job<R>>> {
        lock(&self.map).get(id).cloned()
    }

    /// Every job, oldest first.
    #[must_use]
    pub fn all(&self) -> Vec<Arc<Job<R>>> {
        let mut v: Vec<Arc<Job<R>>> = lock(&self.map).values().cloned().collect();
        v.sort_by_key(|j| j.id.trim_start_matches("job-").parse::<u64>().unwrap_or(0));
        v
    }

    /// Cancel every running job (the door is shutting down).
    pub fn cancel_all(&self) {
        for j in self.all() {
            if j.state() == State::Running {
                j.cancel();
            }
        }
    }
}

/// Why a [`Budget`] refused a job; nothing was sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The estimate would pass the ceiling.
    OverCeiling {
        /// The job's estimate.
        estimate: f64,
        /// `--max-cost`.
        ceiling: f64,
        /// Spent so far.
        spent: f64,
        /// Reserved by jobs in flight.
        reserved: f64,
    },
    /// A ceiling is set and the job has no estimate (no prices for the model).
    NoEstimate,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OverCeiling {
                estimate,
                ceiling,
                spent,
                reserved,
            } => write!(
                f,
                "the estimate ${estimate:.3} would pass this server's ceiling --max-cost ${ceiling:.2} (${spent:.3} spent, ${reserved:.3} reserved by work in flight); nothing was sent"
            ),
            Self::NoEstimate => f.write_str(
                "a spending ceiling is set, and this request has no estimate (the model has no prices in the capability table); nothing was sent",
            ),
        }
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// The stable rule id.
    #[must_use]
    pub const fn rule(&self) -> &'static str {
        "max_cost"
    }

    /// How to get past it, for the door `door` (`mcp`, `studio`).
    #[must_use]
    pub fn fix(&self, door: &str) -> String {
        match self {
            Self::OverCeiling { .. } => {
                format!("lower the size, quality or n, or restart `fourk {door}` with a higher --max-cost")
            }
            Self::NoEstimate => {
                "add the model's prices in a models file (FOURK_MODELS), or drop the ceiling".to_owned()
            }
        }
    }
}

/// A door's spending: what its jobs spent, and the estimates of jobs in flight.
#[derive(Debug, Default)]
pub struct Budget {
    /// The ceiling (`--max-cost`).
    pub ceiling: Option<f64>,
    spent: f64,
    reserved: f64,
}

impl Budget {
    /// A budget with this ceiling.
    #[must_use]
    pub const fn new(ceiling: Option<f64>) -> Self {
        Self {
            ceiling,
            spent: 0.0,
            reserved: 0.0,
        }
    }

    /// Reserve `estimate` (none: the model has no prices) for a job, or refuse with the
    /// numbers. Returns what was reserved.
    ///
    /// # Errors
    /// [`Refusal`] when the ceiling would be passed, or a ceiling is set and there is no
    /// estimate.
    pub fn reserve(&mut self, estimate: Option<f64>) -> Result<f64, Refusal> {
        let Some(estimate) = estimate else {
            return if self.ceiling.is_some() {
                Err(Refusal::NoEstimate)
            } else {
                Ok(0.0)
            };
        };
        if let Some(c) = self.ceiling
            && self.spent + self.reserved + estimate > c + 1e-9
        {
            return Err(Refusal::OverCeiling {
                estimate,
                ceiling: c,
                spent: self.spent,
                reserved: self.reserved,
            });
        }
        self.reserved += estimate;
        Ok(estimate)
    }

    /// A job with `reserved` ended: what it measured when it finished, else (it failed) its
    /// reservation when a request had left, since that may be billed, else nothing.
    pub fn settle_job(&mut self, reserved: f64, measured: Option<f64>, failed: bool, sent: bool) {
        let spent = measured.unwrap_or(if failed && !sent { 0.0 } else { reserved });
        self.settle(reserved, spent);
    }

    /// A job with `estimate` reserved ended having spent `spent`.
    pub fn settle(&mut self, estimate: f64, spent: f64) {
        self.reserved = (self.reserved - estimate).max(0.0);
        self.spent += spent;
    }

    /// Spent so far.
    #[must_use]
    pub const fn spent(&self) -> f64 {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_counts_spend_and_work_in_flight() {
        let mut b = Budget::new(Some(1.0));
        b.reserve(Some(0.4)).unwrap();
        b.reserve(Some(0.4)).unwrap();
        let e = b.reserve(Some(0.4)).unwrap_err();
        assert_eq!(e.rule(), "max_cost");
        let m = e.to_string();
        assert!(m.contains("$0.400") && m.contains("$1.00"), "{m}");
        assert!(e.fix("studio").contains("fourk studio"));
        b.settle(0.4, 0.1);
        b.reserve(Some(0.4)).unwrap();
        assert!((b.spent() - 0.1).abs() < 1e-9);
        assert_eq!(b.reserve(None), Err(Refusal::NoEstimate));
        let mut free = Budget::new(None);
        free.reserve(Some(1e6)).unwrap();
        assert_eq!(free.reserve(None), Ok(0.0));
    }

    #[test]
    fn cancelling_in_flight_waits_for_the_save() {
        let jobs: Jobs<u8> = Jobs::default();
        let job = jobs.create("generate", None, None);
        let mut live = job.watch();
        let obs = JobObserver(job.clone());
        obs.progress(&Progress::Sending {
            route: fourk_api::RouteLabel::ImagesGenerate,
            attempt: Some(1),
        });
        job.cancel();
        assert!(!job.token().is_cancelled(), "a sent request is not thrown away");
        obs.progress(&Progress::Saved {
            path: "x.png".into(),
            verified: true,
        });
        assert!(job.token().is_cancelled(), "the job stops after the save");
        assert_eq!(
            live.try_recv().unwrap().message,
            "sending images.generate (ledger attempt 1)"
        );
        let idle = jobs.create("draft", None, None);
        idle.cancel();
        assert!(idle.token().is_cancelled());
        assert_eq!(jobs.all().len(), 2);
        assert_eq!(job.status().log.len(), 3);
        job.finish(State::Done, 7);
        assert_eq!(job.result(), Some(7));
    }
}
