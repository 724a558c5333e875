//! `fourk batch JOBS`: many images from a JSONL or CSV file, with bounded adaptive
//! concurrency, a spending ceiling, resume after any crash, progress on stderr and a final
//! report. The work is in `fourk_core::batch`; this module parses flags, draws progress and
//! prints the report.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::batch_remote;
use crate::UsageError;
use crate::cli::ledger::{BatchAction, BatchArgs, Via};
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::batch::{self, BatchReport, JobReport, Reporter};
use fourk_core::ledger::JobState;
use fourk_core::session;

impl BatchArgs {
    /// The batch asked for (the jobs file given).
    fn spec(&self, jobs: &std::path::Path) -> batch::BatchSpec {
        batch::BatchSpec {
            jobs: jobs.to_path_buf(),
            out_dir: self.out.clone(),
            defaults: batch::Defaults {
                model: self.model.clone(),
                size: self.size,
                quality: self.quality,
                format: self.format,
            },
            concurrency: usize::from(self.concurrency),
            max_cost: self.max_cost,
            retry_ambiguous: self.endpoint.delivery.retry_ambiguous,
            policy: session::retry_policy(&self.endpoint.spec()),
            via: match self.via {
                Via::Local => "local",
                Via::BatchApi => "batch-api",
            },
            force: self.force,
        }
    }
}

/// Progress on stderr: bars on a terminal, one plain line per job otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    total: AtomicUsize,
    done: AtomicUsize,
    ok: AtomicUsize,
    failed: AtomicUsize,
    held: AtomicUsize,
}

impl Progress {
    fn new(bars: bool) -> Self {
        Self {
            bar: bars.then(|| ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())),
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            ok: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
        }
    }

    fn message(&self, spent: f64) -> String {
        format!(
            "ok {}  failed {}  held {}  ${spent:.3}",
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.held.load(Ordering::Relaxed)
        )
    }
}

impl Reporter for Progress {
    fn start(&self, total: usize, done: usize, queued: usize, spent_usd: f64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
        self.ok.store(done, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len}  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(self.message(spent_usd));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        tracing::info!(
            "batch: {total} job(s), {done} already done, {queued} to run; ${spent_usd:.4} recorded so far"
        );
    }

    fn job(&self, job: &JobReport, spent_usd: f64) {
        match job.state {
            JobState::Succeeded => &self.ok,
            JobState::PossiblyBilled => &self.held,
            _ => &self.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        let what = match &job.error {
            Some(e) if job.state != JobState::Succeeded => format!(" ({})", e.lines().next().unwrap_or(e)),
            _ => String::new(),
        };
        let line = format!(
            "[{n}/{total}] {} {} line {}{what}",
            job.state.as_str(),
            job.outputs
                .first()
                .map_or_else(|| job.name.clone(), |p| p.display().to_string()),
            job.line,
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(n as u64);
                bar.set_message(self.message(spent_usd));
                if job.state != JobState::Succeeded {
                    bar.println(line);
                }
            }
            None => tracing::info!("{line}; ${spent_usd:.4} spent"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn bars_wanted(args: &BatchArgs) -> bool {
    let off = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0");
    !args.no_progress && std::io::stderr().is_terminal() && !off("NO_COLOR") && !off("FOURK_NO_PROGRESS")
}

fn summary(r: &BatchReport) {
    tracing::info!(
        "batch done: {}/{} succeeded ({} earlier), {} failed, {} possibly billed (held), {} skipped; ${:.4} recorded for this batch (${:.4} estimated), ${:.4} this run; {} request(s), {} rate-limited; {:.1}s; ledger run {}",
        r.succeeded,
        r.total,
        r.already_done,
        r.failed,
        r.possibly_billed,
        r.skipped,
        r.spent_usd,
        r.estimated_usd,
        r.spent_this_run_usd,
        r.requests,
        r.rate_limited,
        r.elapsed_s,
        r.run_id,
    );
    if r.possibly_billed > 0 {
        tracing::warn!(
            "{} job(s) may have been billed without an answer; check the usage dashboard, then rerun with --retry-ambiguous to send them again",
            r.possibly_billed
        );
    }
    if r.skipped > 0 {
        tracing::warn!(
            "{} job(s) not started: --max-cost ${:.2} would have been passed; rerun with a higher --max-cost to finish",
            r.skipped,
            r.max_cost_usd.unwrap_or_default()
        );
    }
}

pub(super) async fn run(args: &BatchArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let caps = &fk.caps;
    if let Some(action) = &args.action {
        return match action {
            BatchAction::Status { id, json, endpoint } => batch_remote::status(fk, id, endpoint, *json).await,
            BatchAction::Collect {
                id,
                out,
                json,
                endpoint,
            } => batch_remote::collect(fk, id, out, endpoint, *json).await,
        };
    }
    let jobs_path = args
        .jobs
        .as_deref()
        .ok_or_else(|| UsageError("fourk batch needs a JOBS file".into()))?;
    let plan = batch::plan(&args.spec(jobs_path), caps)?;
    if args.via == Via::BatchApi {
        return batch_remote::submit_and_collect(
            fk,
            &plan,
            &args.endpoint,
            std::time::Duration::from_secs_f64(args.poll),
            args.no_wait,
            args.json,
        )
        .await;
    }
    if args.no_wait {
        return Err(UsageError("--no-wait is for --via batch-api; a local batch runs to the end (stop it any time and run the same command again to resume)".into()).into());
    }
    let progress: Arc<dyn Reporter> = Arc::new(Progress::new(bars_wanted(args)));
    let result = batch::run_local(
        plan,
        fk,
        &args.endpoint.spec(),
        progress,
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    let report = result?;
    summary(&report);
    let p = Printer;
    if args.json {
        p.json(&report);
    } else {
        for j in report.jobs.iter().filter(|j| j.state == JobState::Succeeded) {
            for o in &j.outputs {
                p.line(&o.display().to_string());
            }
        }
    }
    Ok(if report.all_succeeded() {
        Exit::Success
    } else {
        Exit::CheckFailed
    })
}
