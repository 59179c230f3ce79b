//! The scheduler: runs the compiled DAG on tokio. A step is ready when its
//! last need is done; at most `jobs` run at once; the first failure stops
//! new starts unless `keep_going`; a signal stops everything (SIGTERM to
//! every running group, SIGKILL after the grace period or a second signal).

mod dispatcher;
mod durability;
mod executor;
mod review;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::compile::Compiled;
use crate::journal::{Event, Journal, now, sha256_hex};
use crate::process::Cancel;
use crate::render::{RenderedStep, mask};
use crate::reporter::Reporter;
use crate::secrets::Secrets;
use crate::status::{RunStatus, Status};
use crate::template::Renderer;
use dispatcher::{Decision, Dispatcher};
use durability::Durability;
use executor::{Shared, StepOutcome, report_start, run_step, start_record};

/// What a resumed run already has for a step.
#[derive(Debug, Clone)]
pub struct Earlier {
    pub capture: Option<String>,
}

pub struct Options {
    pub jobs: usize,
    pub keep_going: bool,
    pub yes: bool,
    pub grace: Duration,
    /// Steps that succeeded in the run being resumed (and are unchanged).
    pub earlier: HashMap<usize, Earlier>,
    /// `--only`: run just these (their needs must be in `earlier`).
    pub only: Option<HashSet<usize>>,
    /// `--skip`: count these as skipped.
    pub skip: HashSet<usize>,
    /// By step id: the drift (its digest) a default review of the resumed run accepted.
    pub reviewed: HashMap<String, String>,
}

pub struct Outcome {
    pub status: RunStatus,
    pub steps: Vec<(String, Status, Option<Duration>)>,
    /// The signal that stopped the run, if one did.
    pub signal: Option<i32>,
}

/// Hash of a step as rendered, secrets masked: what `--resume` compares. It
/// hashes the step's JSON form, which stays the same across builds (a
/// `Debug` form may not).
pub fn definition_hash(r: &RenderedStep, secrets: &[String]) -> String {
    let stable = serde_json::to_string(r).unwrap_or_default();
    sha256_hex(mask(&stable, secrets).as_bytes())
}

/// A signal `plan` received: its name and number.
pub type Received = (&'static str, i32);

/// The signals a run reacts to. SIGINT and SIGTERM stop it, each one raising
/// the cancel level. SIGHUP (an SSH connection dropping in the middle of an
/// hour-long upgrade) does not: it is handled, so it cannot kill `plan`, and
/// the run goes on, its output into the step logs and the journal.
pub fn signal_stream() -> mpsc::UnboundedReceiver<Received> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = mpsc::unbounded_channel();
    for (kind, name) in [
        (SignalKind::interrupt(), ("SIGINT", 2)),
        (SignalKind::terminate(), ("SIGTERM", 15)),
        (SignalKind::hangup(), ("SIGHUP", 1)),
    ] {
        if let Ok(mut s) = signal(kind) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
        }
    }
    rx
}

/// What [`execute`] works with besides the plan: how to render, where to
/// journal, whom to tell, what to mask.
pub struct Run<'a> {
    pub base_ctx: &'a Value,
    pub renderer: &'a Renderer,
    pub journal: Journal,
    pub reporter: Arc<dyn Reporter>,
    pub secrets: Arc<Secrets>,
    /// By step index: the step reads a secret, so what it captures is secret.
    pub tainted: &'a [bool],
    pub run_id: &'a str,
}

/// Runs the plan: the dispatcher decides, the executor does, and the loop
/// here carries the events between them (step ended, signal received).
pub async fn execute(
    c: &Compiled,
    run: Run<'_>,
    opts: Options,
    mut signals: mpsc::UnboundedReceiver<Received>,
) -> Outcome {
    let Run { base_ctx, renderer, journal, reporter, secrets, tainted, run_id } = run;
    let (cancel_tx, cancel_rx) = watch::channel(Cancel::None);
    let cancel_tx = Arc::new(cancel_tx);
    let (durability, syncer) = Durability::start(journal, reporter.clone());
    let shared = Arc::new(Shared {
        durability,
        reporter: reporter.clone(),
        secrets: secrets.clone(),
        grace: opts.grace,
        yes: opts.yes,
        cancel: cancel_rx,
        run_id: run_id.to_owned(),
        failure: std::sync::Mutex::new(None),
        stop: cancel_tx.clone(),
        reviewed: opts.reviewed.clone(),
    });
    let mut dispatcher = Dispatcher::new(c, &opts);
    let mut running: JoinSet<(usize, StepOutcome)> = JoinSet::new();
    // Records made since the last write. They are written together (one
    // write), before any step starts and before the loop waits: a step's end,
    // what it blocked, and the starts it released.
    let mut records: Vec<Event> = Vec::new();
    let block = |records: &mut Vec<Event>, failed: usize, blocked: Vec<usize>| {
        for d in blocked {
            records.push(settled(c, d, Status::Blocked, format!("a need failed: {}", c.steps[failed].decl.id.value)));
        }
    };
    loop {
        if shared.failure().is_some() {
            dispatcher.halt();
        }
        let mut to_start: Vec<(usize, RenderedStep)> = Vec::new();
        while let Some(d) = dispatcher.next(running.len() + to_start.len(), base_ctx, renderer, &secrets.get()) {
            match d {
                Decision::Start(i, r) => to_start.push((i, r)),
                Decision::Settle { step, status, message } => {
                    records.push(settled(c, step, status, message.clone()));
                    reporter.step_finished(&c.steps[step].decl.id.value, status, Duration::ZERO, Some(&message));
                    let blocked = dispatcher.finish(step, status);
                    block(&mut records, step, blocked);
                }
            }
        }
        // Each start is written before its step runs; the syncer makes it durable beside the step.
        let starts: Vec<_> = to_start
            .into_iter()
            .map(|(i, r)| {
                let (st, record) = start_record(&shared, &r, 1);
                records.push(record);
                (i, r, st)
            })
            .collect();
        shared.write_all_unsynced(&records);
        records.clear();
        for (i, r, st) in starts {
            report_start(&shared, &r, 1);
            let sh = shared.clone();
            let taint = tainted[i];
            running.spawn(async move { (i, run_step(&sh, r, st, taint).await) });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let (i, mut out) = match joined {
                    Ok(x) => x,
                    Err(e) => {
                        reporter.note(&format!("error: a step task failed: {e}"));
                        continue;
                    }
                };
                let id = &c.steps[i].decl.id.value;
                records.extend(out.record.take());
                reporter.step_finished(id, out.status, out.duration, out.message.as_deref());
                tracing::debug!(step = %id, status = out.status.as_str(), attempts = out.attempts, exit_code = ?out.exit_code, "step finished");
                let blocked = dispatcher.ran(i, out.status, out.duration, out.capture.as_ref());
                block(&mut records, i, blocked);
            }
            sig = signals.recv() => {
                let Some((sig, number)) = sig else { continue };
                if number == 1 {
                    tracing::info!("SIGHUP: the terminal went away; the run goes on");
                    reporter.note("SIGHUP: the run goes on; its output is in the step logs (`plan logs --follow` shows it)");
                    continue;
                }
                dispatcher.interrupt(number);
                let level = if *cancel_tx.borrow() == Cancel::None { Cancel::Graceful } else { Cancel::Kill };
                let _ = cancel_tx.send(level);
                match level {
                    Cancel::Graceful => reporter.note(&format!("{sig}: stopping; no new step starts, running steps get SIGTERM (again to kill now)")),
                    _ => reporter.note(&format!("{sig}: killing running steps now")),
                }
            }
        }
    }
    let mut outcome = dispatcher.outcome();
    match shared.failure() {
        None => shared.write(&Event::RunFinished { time: now(), status: outcome.status, reason: None }),
        Some(reason) => {
            // The journal failed: the run failed, and its last record, in the space kept for it, says why.
            outcome.status = RunStatus::Failed;
            let last = Event::RunFinished { time: now(), status: RunStatus::Failed, reason: Some(reason) };
            if let Ok(mut j) = shared.durability.journal.lock() {
                let _ = j.append_last(&last);
            }
        }
    }
    syncer.finish();
    if let Ok(st) = shared.durability.state.lock() {
        tracing::debug!(syncs = st.syncs, steps = c.steps.len(), "journal syncs");
    }
    outcome
}

/// The journal record of a step that ended without running.
fn settled(c: &Compiled, step: usize, status: Status, message: String) -> Event {
    Event::StepFinished {
        step: c.steps[step].decl.id.value.clone(),
        attempt: 0,
        time: now(),
        status,
        exit_code: None,
        signal: None,
        duration_ms: 0,
        message: Some(message),
        capture: None,
        secret_capture: false,
        definition: None,
        retrying: false,
    }
}
