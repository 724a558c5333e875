//! Long work as jobs: every spending or pixel-heavy call runs on its own task, so a call
//! that is cancelled or returns early (`job: true`) does not stop a request already sent;
//! progress goes to the job's log and, in the foreground, to the client's progress token;
//! the session's spending ceiling reserves each call's estimate while it runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use fourk_core::send::{Observer, Progress};
use rmcp::model::CallToolResult;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::ToolError;

/// One progress line, for the client's progress notifications and the job's log.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Events so far (the notification's `progress`).
    pub progress: f64,
    /// The total when known (batch jobs).
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
    /// Finished with an error result.
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
pub struct Job {
    /// `job-N`.
    pub id: String,
    /// The tool.
    pub tool: String,
    /// Its result shows a preview (so the core makes thumbnails while it verifies).
    pub preview: bool,
    started: Instant,
    state: Mutex<State>,
    log: Mutex<Vec<String>>,
    ticks: AtomicU64,
    total: Mutex<Option<f64>>,
    result: watch::Sender<Option<CallToolResult>>,
    cancel: CancellationToken,
    in_flight: AtomicBool,
    sent: AtomicBool,
    cancel_after_save: AtomicBool,
    notify: Mutex<Option<mpsc::UnboundedSender<Tick>>>,
}

/// What `status` says about a job.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobStatus {
    /// The job id.
    pub id: String,
    /// The tool.
    pub tool: String,
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

impl Job {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record a progress line and pass it to the foreground caller, if any.
    pub fn tick(&self, message: String, total: Option<f64>) {
        let n = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_some() {
            *Self::lock(&self.total) = total;
        }
        let total = *Self::lock(&self.total);
        {
            let mut log = Self::lock(&self.log);
            log.push(message.clone());
            if log.len() > LOG_LINES {
                let cut = log.len() - LOG_LINES;
                log.drain(..cut);
            }
        }
        if let Some(tx) = Self::lock(&self.notify).as_ref() {
            #[allow(clippy::cast_precision_loss)]
            let _ = tx.send(Tick {
                progress: n as f64,
                total,
                message,
            });
        }
    }

    /// Stop sending progress to the foreground caller (it has its answer or went away).
    pub fn detach(&self) {
        *Self::lock(&self.notify) = None;
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
        *Self::lock(&self.state)
    }

    fn finish(&self, state: State, result: CallToolResult) {
        *Self::lock(&self.state) = state;
        self.detach();
        self.result.send_replace(Some(result));
    }

    /// Wait for the result.
    pub async fn wait(&self) -> CallToolResult {
        let mut rx = self.result.subscribe();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return ToolError::internal("the job's task ended without a result").result();
            }
        }
    }

    /// The result, when done.
    #[must_use]
    pub fn result(&self) -> Option<CallToolResult> {
        self.result.borrow().clone()
    }

    /// What `status` shows.
    #[must_use]
    pub fn status(&self) -> JobStatus {
        JobStatus {
            id: self.id.clone(),
            tool: self.tool.clone(),
            state: self.state().as_str().to_owned(),
            elapsed_s: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            progress: self.ticks.load(Ordering::Relaxed),
            total: *Self::lock(&self.total),
            log: Self::lock(&self.log).clone(),
        }
    }
}

/// The core's progress events, as job ticks; tracks whether a request is in flight so that a
/// cancellation never throws a sent request away.
#[derive(Debug)]
pub struct JobObserver(pub Arc<Job>);

impl Observer for JobObserver {
    fn progress(&self, event: &Progress) {
        let job = &self.0;
        let line = match event {
            Progress::Sending { route, attempt } => {
                job.in_flight.store(true, Ordering::SeqCst);
                job.sent.store(true, Ordering::SeqCst);
                format!(
                    "sending {}{}",
                    route.as_str(),
                    attempt.map_or_else(String::new, |a| format!(" (ledger attempt {a})"))
                )
            }
            Progress::Answered { request_id } => format!(
                "answered{}",
                request_id
                    .as_deref()
                    .map_or_else(String::new, |r| format!(" (request {r})"))
            ),
            Progress::Saved { path, verified } => {
                job.in_flight.store(false, Ordering::SeqCst);
                if job.cancel_after_save.load(Ordering::SeqCst) {
                    job.cancel.cancel();
                }
                format!(
                    "saved {} ({})",
                    path.display(),
                    if *verified { "verified" } else { "NOT verified" }
                )
            }
            Progress::Partial { index, path } => format!(
                "partial image {index} received{}",
                path.as_ref()
                    .map_or_else(String::new, |p| format!("; kept as {}", p.display()))
            ),
            Progress::Step { step } => format!("step: {step}"),
            other => format!("{other:?}"),
        };
        job.tick(line, None);
    }
}

/// This server's jobs.
#[derive(Debug, Default)]
pub struct Jobs {
    map: Mutex<HashMap<String, Arc<Job>>>,
    next: AtomicU64,
}

impl Jobs {
    /// A new running job of `tool`, reporting ticks to `notify` while it is attached.
    pub fn create(&self, tool: &str, preview: bool, notify: Option<mpsc::UnboundedSender<Tick>>) -> Arc<Job> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, _) = watch::channel(None);
        let job = Arc::new(Job {
            id: format!("job-{n}"),
            tool: tool.to_owned(),
            preview,
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
        });
        Job::lock(&self.map).insert(job.id.clone(), job.clone());
        job
    }

    /// The job with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        Job::lock(&self.map).get(id).cloned()
    }

    /// Every job, oldest first.
    #[must_use]
    pub fn all(&self) -> Vec<Arc<Job>> {
        let mut v: Vec<Arc<Job>> = Job::lock(&self.map).values().cloned().collect();
        v.sort_by_key(|j| j.id.trim_start_matches("job-").parse::<u64>().unwrap_or(0));
        v
    }

    /// Cancel every running job (the server is shutting down).
    pub fn cancel_all(&self) {
        for j in self.all() {
            if j.state() == State::Running {
                j.cancel();
            }
        }
    }
}

/// Finish `job` with the outcome of its work: `Ok` done, an error result failed, a
/// cancellation cancelled.
pub fn finish(job: &Job, outcome: Result<CallToolResult, ToolError>) {
    match outcome {
        Ok(r) if r.is_error == Some(true) => job.finish(State::Failed, r),
        Ok(r) => job.finish(State::Done, r),
        Err(e) if e.rule == "cancelled" => job.finish(State::Cancelled, e.result()),
        Err(e) => job.finish(State::Failed, e.result()),
    }
}

/// The session's spending: what calls spent, and the estimates of calls in flight.
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

    /// Reserve `estimate` for a call, or refuse with the numbers.
    ///
    /// # Errors
    /// [`ToolError`] `max_cost` when the ceiling would be passed.
    pub fn reserve(&mut self, estimate: f64) -> Result<(), ToolError> {
        if let Some(c) = self.ceiling
            && self.spent + self.reserved + estimate > c + 1e-9
        {
            return Err(ToolError::usage(
                "max_cost",
                format!(
                    "the estimate ${estimate:.3} would pass this server's ceiling --max-cost ${c:.2} (${:.3} spent, ${:.3} reserved by calls in flight); nothing was sent",
                    self.spent, self.reserved
                ),
                "lower the size, quality or n, or restart `fourk mcp` with a higher --max-cost",
            ));
        }
        self.reserved += estimate;
        Ok(())
    }

    /// A call with `estimate` reserved ended having spent `spent`.
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
    fn the_ceiling_counts_spend_and_calls_in_flight() {
        let mut b = Budget::new(Some(1.0));
        b.reserve(0.4).unwrap();
        b.reserve(0.4).unwrap();
        let e = b.reserve(0.4).unwrap_err();
        assert_eq!(e.rule, "max_cost");
        assert!(
            e.message.contains("$0.400") && e.message.contains("$1.00"),
            "{}",
            e.message
        );
        b.settle(0.4, 0.1);
        b.reserve(0.4).unwrap();
        assert!((b.spent() - 0.1).abs() < 1e-9);
        let mut free = Budget::new(None);
        free.reserve(1e6).unwrap();
    }

    #[test]
    fn cancelling_in_flight_waits_for_the_save() {
        let jobs = Jobs::default();
        let job = jobs.create("generate", false, None);
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
        let idle = jobs.create("draft", false, None);
        idle.cancel();
        assert!(idle.token().is_cancelled());
        assert_eq!(jobs.all().len(), 2);
    }
}
