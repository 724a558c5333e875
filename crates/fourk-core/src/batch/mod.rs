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
pub use runner::{BatchReport, Budget, JobReport, Plan, Reporter};
