//! The executor: does what the dispatcher decides. It journals a step's
//! start, spawns it (after the sync that covers the start), waits, retries,
//! times out and kills, and journals the end. Nothing here decides which
//! step runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::definition_hash;
use super::durability::Durability;
use crate::journal::{Event, Journal, now};
use crate::process::{self, Cancel, ProcEnd, ProcSpec};
use crate::render::{Action, RenderedStep};
use crate::reporter::Reporter;
use crate::secrets::Secrets;
use crate::status::Status;

/// How one step ended.
pub(super) struct StepOutcome {
    pub(super) status: Status,
    pub(super) exit_code: Option<i32>,
    signal: Option<String>,
    pub(super) message: Option<String>,
    pub(super) capture: Option<String>,
    pub(super) duration: Duration,
    pub(super) attempts: u32,
    /// Its `step-finished` record, which the scheduler writes together with
    /// the starts it releases (one write), before any of them runs.
    pub(super) record: Option<Event>,
}

/// What every step of a run shares: the journal, the reporter, the secrets to mask, the cancel level.
pub(super) struct Shared {
    /// Holds the journal.
    pub(super) durability: Arc<Durability>,
    pub(super) reporter: Arc<dyn Reporter>,
    pub(super) secrets: Arc<Secrets>,
    pub(super) grace: Duration,
    pub(super) yes: bool,
    pub(super) cancel: watch::Receiver<Cancel>,
    /// The run's id, in every step's marker.
    pub(super) run_id: String,
    /// Set when the journal could not be written.
    pub(super) failure: std::sync::Mutex<Option<String>>,
    /// Raises the cancel level (the loop in `execute` holds the receivers' other end).
    pub(super) stop: Arc<watch::Sender<Cancel>>,
    /// By step id: the drift a default review of the resumed run accepted.
    pub(super) reviewed: std::collections::HashMap<String, String>,
}

impl Shared {
    /// Appends and syncs at once (the run's last record).
    pub(super) fn write(&self, e: &Event) {
        self.journal_op(|j| j.append(e));
    }

    /// Appends; the syncer makes it durable beside the steps.
    pub(super) fn write_unsynced(&self, e: &Event) {
        self.journal_op(|j| j.append_unsynced(e));
    }

    /// Appends records in one write; the syncer makes them durable beside the steps.
    pub(super) fn write_all_unsynced(&self, es: &[Event]) {
        if !es.is_empty() {
            self.journal_op(|j| j.append_all_unsynced(es));
        }
    }

    fn journal_op(&self, f: impl FnOnce(&mut Journal) -> std::io::Result<()>) {
        let result =
            self.durability.journal.lock().map_err(|_| std::io::Error::other("journal lock poisoned")).and_then(
                |mut j| {
                    f(&mut j)?;
                    // The syncer makes it durable beside the steps.
                    self.durability.written(j.written());
                    Ok(())
                },
            );
        if let Err(err) = result {
            self.journal_failed(&err);
        }
    }

    /// A journal that cannot be written stops the run: nothing may run
    /// unrecorded. Said once, on stderr; running steps are stopped as on Ctrl-C.
    pub(super) fn journal_failed(&self, err: &std::io::Error) {
        let Ok(mut failure) = self.failure.lock() else { return };
        if failure.is_some() {
            return;
        }
        let message = format!("cannot write the journal: {err}");
        eprintln!("error: {message}; stopping the run (no new step starts, running steps are stopped)");
        *failure = Some(message);
        let _ = self.stop.send(Cancel::Graceful);
    }

    /// How a step's process starts: its process group, and what names the
    /// group's leader, are journaled as soon as it exists.
    pub(super) fn launch(sh: &Arc<Shared>, step: &str) -> process::Launch {
        let (sh, step) = (sh.clone(), step.to_owned());
        let on_spawn = move |pgid: i32, birth: process::Birth| {
            sh.write_unsynced(&Event::StepSpawned {
                step: step.clone(),
                pgid,
                start_time: birth.start_time,
                pidfs: birth.pidfs,
            });
        };
        process::Launch { spawned: Arc::new(on_spawn) }
    }

    /// Why the journal stopped the run, if it did.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}

/// A step's first `step-started`, written by the scheduler before it spawns the step.
pub(super) struct Started {
    definition: String,
    log_path: std::path::PathBuf,
}

/// A step's `step-started` record; the caller writes it before the step runs.
pub(super) fn start_record(sh: &Shared, r: &RenderedStep, attempt: u32) -> (Started, Event) {
    let definition = definition_hash(r, &sh.secrets.get());
    let log_path = sh.durability.journal.lock().map(|j| j.log_path(&r.id)).unwrap_or_default();
    let log = log_path.display().to_string();
    let e = Event::StepStarted { step: r.id.clone(), attempt, time: now(), definition: definition.clone(), log };
    (Started { definition, log_path }, e)
}

/// Says a step started (its record is written).
pub(super) fn report_start(sh: &Shared, r: &RenderedStep, attempt: u32) {
    sh.reporter.step_started(&r.id, attempt);
    tracing::debug!(step = %r.id, attempt, action = r.action.kind(), "step started");
}

/// Runs a step, its retries included. `tainted`: it reads a secret, so what
/// it captures is secret too: its stdout is kept from the terminal and the
/// log, the capture joins the masks, and the journal holds it masked.
pub(super) async fn run_step(sh: &Arc<Shared>, r: RenderedStep, first: Started, tainted: bool) -> StepOutcome {
    let Started { definition, log_path } = first;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt > 1 {
            sh.write_unsynced(&start_record(sh, &r, attempt).1);
            report_start(sh, &r, attempt);
        }
        let t = Instant::now();
        let mut out = if *sh.cancel.borrow() != Cancel::None {
            // A signal came between the scheduler starting this step's task
            // and the task's first turn: the step never ran.
            outcome(Status::Interrupted, Some("stopped before it started".into()))
        } else {
            attempt_once(sh, &r, &log_path, tainted).await
        };
        let secret_capture = tainted && out.capture.is_some();
        if let (true, Some(v)) = (secret_capture, &out.capture) {
            sh.secrets.add(v);
        }
        out.attempts = attempt;
        let will_retry = out.status == Status::Failed && attempt <= r.retries && *sh.cancel.borrow() == Cancel::None;
        if out.status == Status::Failed && r.continue_on_error && !will_retry {
            out.status = Status::FailedIgnored;
        }
        let record = Event::StepFinished {
            step: r.id.clone(),
            attempt,
            time: now(),
            status: out.status,
            exit_code: out.exit_code,
            signal: out.signal.clone(),
            duration_ms: t.elapsed().as_millis() as u64,
            message: out.message.clone(),
            capture: out.capture.as_deref().map(|v| sh.secrets.mask(v)),
            secret_capture,
            definition: Some(definition.clone()),
            retrying: will_retry,
        };
        if !will_retry {
            out.duration = started.elapsed();
            out.record = Some(record);
            return out;
        }
        sh.write_unsynced(&record);
        sh.reporter.note(&format!(
            "[{}] attempt {attempt} failed{}; retrying in {:.1}s",
            r.id,
            out.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(),
            r.retry_delay.as_secs_f64()
        ));
        let mut cancel = sh.cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep(r.retry_delay) => {}
            _ = cancel.changed() => {
                out.status = Status::Interrupted;
                out.duration = started.elapsed();
                return out;
            }
        }
    }
}

pub(super) fn outcome(status: Status, message: Option<String>) -> StepOutcome {
    StepOutcome {
        status,
        exit_code: None,
        signal: None,
        message,
        capture: None,
        duration: Duration::ZERO,
        attempts: 1,
        record: None,
    }
}

async fn attempt_once(sh: &Arc<Shared>, r: &RenderedStep, log_path: &std::path::Path, tainted: bool) -> StepOutcome {
    let (program, args) = match &r.action {
        Action::Run(argv) => match argv.split_first() {
            Some((p, a)) => (p.clone(), a.to_vec()),
            None => return outcome(Status::Failed, Some("empty command".into())),
        },
        // The scheduler records a skipped step without running it; nothing to do here.
        Action::Skipped => return outcome(Status::Skipped, Some("`when` is false".into())),
        Action::Shell(script) => ("sh".to_owned(), vec!["-eu".into(), "-c".into(), script.clone()]),
        Action::Assert { condition, message } => {
            return if *condition {
                outcome(Status::Succeeded, None)
            } else {
                outcome(Status::Failed, Some(sh.secrets.mask(message)))
            };
        }
        Action::Confirm(message) => {
            let message = sh.secrets.mask(message);
            if sh.yes {
                return outcome(Status::Succeeded, Some(format!("confirmed by --yes: {message}")));
            }
            if !crate::builtin::stdin_is_terminal() {
                return outcome(
                    Status::Failed,
                    Some(format!(
                        "needs a confirmation and there is no terminal; re-run with --yes to confirm: {message}"
                    )),
                );
            }
            let reporter = sh.reporter.clone();
            let yes = tokio::task::spawn_blocking(move || reporter.confirm(&message)).await.unwrap_or(false);
            return if yes {
                outcome(Status::Succeeded, Some("confirmed".into()))
            } else {
                outcome(Status::Failed, Some("not confirmed".into()))
            };
        }
        Action::Review(spec) => return super::review::review(sh, r, spec, log_path).await,
        Action::Remove { path, within } => {
            let (path, within) = (path.clone(), within.clone());
            let res = tokio::task::spawn_blocking(move || crate::builtin::remove(&path, within.as_deref()))
                .await
                .unwrap_or_else(|e| Err(crate::builtin::RemoveError(e.to_string())));
            return match res {
                Ok(m) => outcome(Status::Succeeded, Some(sh.secrets.mask(&m))),
                Err(e) => outcome(Status::Failed, Some(sh.secrets.mask(&e.to_string()))),
            };
        }
    };
    let spec = ProcSpec {
        program,
        args,
        // The marker lets a resume find this step's processes even if `plan`
        // is killed before it records them, and those that left the group.
        env: r
            .env
            .iter()
            .cloned()
            .chain([(process::STEP_MARKER.to_owned(), format!("{}/{}", sh.run_id, r.id))])
            .collect(),
        cwd: r.cwd.clone(),
        timeout: r.timeout,
        grace: sh.grace,
        capture: r.capture.is_some(),
        secret_stdout: tainted && r.capture.is_some(),
        raw_stdout: false,
    };
    let launch = Shared::launch(sh, &r.id);
    let res =
        process::run(spec, &r.id, log_path, sh.reporter.clone(), sh.secrets.clone(), sh.cancel.clone(), launch).await;
    let capture = res.stdout.map(|s| s.trim().to_owned());
    let mut o = match res.end {
        ProcEnd::Exited(0) => StepOutcome { exit_code: Some(0), ..outcome(Status::Succeeded, None) },
        ProcEnd::Exited(code) => {
            StepOutcome { exit_code: Some(code), ..outcome(Status::Failed, Some(format!("exited with status {code}"))) }
        }
        ProcEnd::Signaled(sig) => {
            StepOutcome { signal: Some(sig.clone()), ..outcome(Status::Failed, Some(format!("killed by {sig}"))) }
        }
        ProcEnd::TimedOut(t) => outcome(
            Status::Failed,
            Some(format!("timed out after {:.1}s; its process group was killed", t.as_secs_f64())),
        ),
        ProcEnd::Interrupted => outcome(Status::Interrupted, Some("interrupted".into())),
        ProcEnd::SpawnFailed(m) => outcome(Status::Failed, Some(sh.secrets.mask(&m))),
    };
    if o.status == Status::Succeeded {
        o.capture = capture;
    }
    o
}
