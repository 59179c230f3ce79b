//! A `review_defaults` step in a run: its commands start as a step's do
//! (own process group, the step's marker, timeout, Ctrl-C, the step's log),
//! its report goes to the terminal and the log with every secret masked,
//! and its decision is journaled.

use std::path::Path;
use std::sync::Arc;

use super::executor::{Shared, StepOutcome, outcome};
use crate::journal::{Event, now};
use crate::process::{self, Cancel, LogFile, ProcEnd, ProcSpec, Stream};
use crate::render::RenderedStep;
use crate::review::{self, Runner, Spec};
use crate::status::Status;

struct StepRunner<'a> {
    sh: &'a Arc<Shared>,
    r: &'a RenderedStep,
    log_path: &'a Path,
}

impl Runner for StepRunner<'_> {
    async fn run(&self, argv: Vec<String>, env: Vec<(String, String)>, capture: bool) -> Result<String, String> {
        let (sh, r) = (self.sh, self.r);
        let Some((program, args)) = argv.split_first() else { return Err("empty command".into()) };
        let shown = sh.secrets.mask(&argv.join(" "));
        let spec = ProcSpec {
            program: program.clone(),
            args: args.to_vec(),
            env: r
                .env
                .iter()
                .cloned()
                .chain(env)
                .chain([(process::STEP_MARKER.to_owned(), format!("{}/{}", sh.run_id, r.id))])
                .collect(),
            cwd: r.cwd.clone(),
            timeout: r.timeout,
            grace: sh.grace,
            capture,
            // The loaded configuration holds the site's passwords: never shown or logged.
            secret_stdout: capture,
            raw_stdout: capture,
        };
        let launch = Shared::launch(sh, &r.id);
        let res = process::run(
            spec,
            &r.id,
            self.log_path,
            sh.reporter.clone(),
            sh.secrets.clone(),
            sh.cancel.clone(),
            launch,
        )
        .await;
        match res.end {
            ProcEnd::Exited(0) => Ok(res.stdout.unwrap_or_default()),
            ProcEnd::Exited(c) => Err(format!("`{shown}` exited with status {c}")),
            ProcEnd::Signaled(s) => Err(format!("`{shown}` was killed by {s}")),
            ProcEnd::TimedOut(t) => Err(format!("`{shown}` timed out after {:.1}s", t.as_secs_f64())),
            ProcEnd::Interrupted => Err("interrupted".into()),
            ProcEnd::SpawnFailed(m) => Err(m),
        }
    }
}

/// Compares, shows the drift, asks when a behaviour default changes (unless
/// this run accepted the same drift before), keeps the chosen values.
pub(super) async fn review(sh: &Arc<Shared>, r: &RenderedStep, spec: &Spec, log_path: &Path) -> StepOutcome {
    let runner = StepRunner { sh, r, log_path };
    let stopped = || *sh.cancel.borrow() != Cancel::None;
    let found = match review::gather(&runner, spec).await {
        Ok(f) => f,
        Err(_) if stopped() => return outcome(Status::Interrupted, Some("interrupted".into())),
        Err(e) => return outcome(Status::Failed, Some(sh.secrets.mask(&e))),
    };
    let drift = &found.drift;
    for s in &drift.secrets {
        sh.secrets.add(s);
    }
    let log = LogFile::new(log_path);
    for line in drift.lines() {
        let line = sh.secrets.mask(&line);
        log.write_line(&line);
        sh.reporter.line(&r.id, Stream::Stdout, &line);
    }
    let digest = drift.digest();
    let decision = match drift.question(&spec.keep_hint()).map(|q| sh.secrets.mask(&q)) {
        None if drift.same() => "nothing to compare".to_owned(),
        None => "no default that changes what runs".to_owned(),
        Some(_) if sh.reviewed.get(&r.id) == Some(&digest) => {
            "accepted earlier in this run (the same drift)".to_owned()
        }
        Some(_) if sh.yes => "accepted by --yes".to_owned(),
        Some(q) if !crate::builtin::stdin_is_terminal() => {
            return outcome(
                Status::Failed,
                Some(format!(
                    "{q}\nThis needs a confirmation and there is no terminal; nothing was changed. Re-run with --yes to accept the new defaults, or keep the current values."
                )),
            );
        }
        Some(q) => {
            let reporter = sh.reporter.clone();
            if !tokio::task::spawn_blocking(move || reporter.confirm(&q)).await.unwrap_or(false) {
                return outcome(Status::Failed, Some("the new defaults were not accepted; nothing was changed".into()));
            }
            "accepted on the terminal".to_owned()
        }
    };
    if !found.keep_sets.is_empty() {
        let argv = review::keep_args(spec, &found.keep_sets);
        if let Err(e) = runner.run(argv, Vec::new(), false).await {
            let status = if stopped() { Status::Interrupted } else { Status::Failed };
            return outcome(status, Some(sh.secrets.mask(&format!("cannot keep the current values: {e}"))));
        }
    }
    sh.write_unsynced(&Event::Reviewed {
        step: r.id.clone(),
        time: now(),
        drift: digest,
        behaviour: drift.behaviour.iter().map(|c| c.key.clone()).collect(),
        kept: drift.kept.iter().map(|(k, _)| k.clone()).collect(),
        decision: decision.clone(),
    });
    outcome(Status::Succeeded, Some(decision))
}
