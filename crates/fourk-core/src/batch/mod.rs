//! The local batch runner behind `fourk batch JOBS`: the checked plan and the output lock
//! (`plan`), the jobs file (`jobs`), output names that cannot leave the output folder
//! (`names`), the Batch API route of a plan with its budget and submission record (`remote`),
//! the dry run of a batch (`dry`: jobs, states, requests and estimates, nothing sent),
//! the send gate that adapts to rate limits
//! (`pace`) and the worker loop with budget, ledger and resume (`runner`). Drawing progress
//! is the CLI's job (`commands::batch`); this module only calls a [`Reporter`].

pub mod dry;
pub mod jobs;
pub mod names;
pub mod pace;
pub mod plan;
pub mod remote;
pub mod runner;

pub use dry::{BatchDryRun, PlannedJob, dry_run};
pub use jobs::{Defaults, Job, JobSpec};
pub use pace::Governor;
pub use plan::{BatchSpec, lock_output, plan};
pub use runner::{BatchReport, Budget, Clients, JobReport, Plan, Reporter};

/// Run a checked local batch to the end through `endpoint`: the output folder made and
/// locked, a client whose every retry decision the runner makes (so each attempt is on
/// record and a 429 slows every worker), progress to `reporter`, stopped by `cancel`.
///
/// # Errors
/// When the folder cannot be made or locked, the client cannot start, or the runner fails.
pub async fn run_local(
    plan: Plan,
    fk: &crate::Fourk,
    endpoint: &crate::session::Endpoint,
    reporter: std::sync::Arc<dyn Reporter>,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<BatchReport> {
    use anyhow::Context as _;
    std::fs::create_dir_all(&plan.out_dir)
        .with_context(|| format!("creating the output folder {}", plan.out_dir.display()))?;
    let _lock = lock_output(&plan.out_dir)?;
    // The providers jobs go to besides the batch's own, each with its client; with the
    // emulator, one emulator answers them all.
    let mut kinds: Vec<fourk_api::ProviderKind> = Vec::new();
    for k in plan.jobs.iter().filter_map(|j| runner::provider_of(&fk.caps, j)) {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let mut endpoint = endpoint.clone();
    if endpoint.emulator && endpoint.shared_emulator.is_none() && !kinds.is_empty() {
        endpoint.shared_emulator = Some(crate::session::SharedEmulator::start(&fk.caps).await?);
    }
    let no_retries = |s: &crate::session::Session| {
        s.client
            .clone()
            .with_retry_policy(fourk_client::RetryPolicy::none())
    };
    let session = crate::session::Session::connect(&endpoint, &fk.caps).await?;
    let mut clients = runner::Clients::from(no_retries(&session));
    let mut sessions = vec![session];
    for kind in kinds {
        let mut to = endpoint.clone();
        to.provider.kind = Some(kind);
        let session = crate::session::Session::connect(&to, &fk.caps).await?;
        clients = clients.with(kind, no_retries(&session));
        sessions.push(session);
    }
    let result = runner::run(plan, fk.caps.clone(), clients, fk.ledger_path(), reporter, cancel).await;
    for session in sessions {
        session.close().await;
    }
    result
}

impl Plan {
    /// The predicted dollars of every job in the plan (jobs already done on disk included;
    /// the runner skips them), from the token formula and the table's prices.
    #[must_use]
    pub fn estimate_usd(&self, caps: &fourk_api::Capabilities) -> f64 {
        self.jobs
            .iter()
            .filter_map(|j| runner::estimate(caps, j, &[]))
            .map(|e| e.usd)
            .sum()
    }
}
