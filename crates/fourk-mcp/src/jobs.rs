//! Long work as jobs (the core's [`fourk_core::jobs`]) with tool results: every spending or
//! pixel-heavy call runs on its own task, so a call that is cancelled or returns early
//! (`job: true`) does not stop a request already sent; progress goes to the job's log and,
//! in the foreground, to the client's progress token; the session's spending ceiling
//! reserves each call's estimate while it runs.

use rmcp::model::CallToolResult;

pub use fourk_core::jobs::{Budget, JobStatus, State, Tick};

use crate::ToolError;

/// One job with a tool result.
pub type Job = fourk_core::jobs::Job<CallToolResult>;
/// This server's jobs.
pub type Jobs = fourk_core::jobs::Jobs<CallToolResult>;

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

/// Wait for the job's result.
pub async fn wait(job: &Job) -> CallToolResult {
    job.wait()
        .await
        .unwrap_or_else(|| ToolError::internal("the job's task ended without a result").result())
}

impl From<fourk_core::jobs::Refusal> for ToolError {
    fn from(r: fourk_core::jobs::Refusal) -> Self {
        Self::usage(r.rule(), r.to_string(), &r.fix("mcp"))
    }
}
