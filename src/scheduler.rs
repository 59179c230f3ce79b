//! The scheduler: runs the compiled DAG on tokio. A step is ready when its
//! last need is done; at most `jobs` run at once; the first failure stops
//! new starts unless `keep_going`; a signal stops everything (SIGTERM to
//! every running group, SIGKILL after the grace period or a second signal).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::compile::Compiled;
use crate::journal::{Event, Journal, RunStatus, Status, now, sha256_hex};
use crate::process::{self, Cancel, ProcEnd, ProcSpec};
use crate::render::{Action, RenderedStep, mask, render_step};
use crate::reporter::Reporter;
use crate::template::Renderer;

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
}

pub struct Outcome {
    pub status: RunStatus,
    pub steps: Vec<(String, Status, Option<Duration>)>,
}

struct StepOutcome {
    status: Status,
    exit_code: Option<i32>,
    signal: Option<String>,
    message: Option<String>,
    capture: Option<String>,
    duration: Duration,
    attempts: u32,
}

/// Hash of a step as rendered, secrets masked: what `--resume` compares. It
/// hashes the step's JSON form, which stays the same across builds (a
/// `Debug` form may not).
pub fn definition_hash(r: &RenderedStep, secrets: &[String]) -> String {
    let stable = serde_json::to_string(r).unwrap_or_default();
    sha256_hex(mask(&stable, secrets).as_bytes())
}

struct Shared {
    /// Holds the journal.
    durability: Arc<Durability>,
    barrier: process::Barrier,
    reporter: Arc<dyn Reporter>,
    secrets: Arc<Vec<String>>,
    grace: Duration,
    yes: bool,
    cancel: watch::Receiver<Cancel>,
}

impl Shared {
    /// Appends and syncs.
    fn write(&self, e: &Event) {
        self.journal_op(|j| j.append(e));
    }

    /// Appends; durable at the next sync, which comes before any step starts.
    fn write_unsynced(&self, e: &Event) {
        self.journal_op(|j| j.append_unsynced(e));
    }

    fn journal_op(&self, f: impl FnOnce(&mut Journal) -> std::io::Result<()>) {
        let result = self
            .durability
            .journal
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))
            .and_then(|mut j| f(&mut j));
        if let Err(err) = result {
            // A journal that cannot be written is a broken promise: say so loudly.
            self.reporter.note(&format!("error: cannot write the journal: {err}"));
        }
    }

    /// Bytes written to the journal so far.
    fn written(&self) -> u64 {
        self.durability.journal.lock().map(|j| j.written()).unwrap_or(u64::MAX)
    }
}

/// The journal's group commit: a second handle that syncs while appends go on
/// through the first, and the offset known to be on disk. A sync covers
/// everything written before it began. Whoever needs an offset durable either
/// finds it already is, waits for the sync under way and looks again, or
/// leads the next sync, which then serves everyone who wrote before it: so
/// steps that end together share one sync instead of queueing one each.
struct Durability {
    journal: Arc<Mutex<Journal>>,
    file: Option<Arc<std::fs::File>>,
    state: Mutex<SyncState>,
    done: std::sync::Condvar,
    reporter: Arc<dyn Reporter>,
}

#[derive(Default)]
struct SyncState {
    synced: u64,
    in_flight: bool,
    /// Syncs made, for the trace at the end of a run.
    syncs: u64,
}

impl Durability {
    /// Takes over the journal; its second handle is opened here.
    fn new(journal: Journal, reporter: Arc<dyn Reporter>) -> Arc<Durability> {
        let file = journal.sync_handle().ok().map(Arc::new);
        Arc::new(Durability {
            journal: Arc::new(Mutex::new(journal)),
            file,
            state: Mutex::new(SyncState::default()),
            done: std::sync::Condvar::new(),
            reporter,
        })
    }

    /// Returns once everything up to `through` is on disk (or a sync failed,
    /// which is reported). Blocks: call it on a blocking thread, or inline
    /// when nothing else needs this one.
    fn make_durable(&self, through: u64) {
        let Ok(mut st) = self.state.lock() else { return self.reporter.note("error: journal sync state poisoned") };
        loop {
            if st.synced >= through {
                return;
            }
            if st.in_flight {
                st = match self.done.wait(st) {
                    Ok(st) => st,
                    Err(_) => return,
                };
                continue;
            }
            st.in_flight = true;
            drop(st);
            let upto = self.journal.lock().map(|j| j.written()).unwrap_or(0);
            let result = match &self.file {
                Some(f) => f.sync_data(),
                None => self
                    .journal
                    .lock()
                    .map_err(|_| std::io::Error::other("journal lock poisoned"))
                    .and_then(|mut j| j.sync()),
            };
            if result.is_ok()
                && let Ok(mut j) = self.journal.lock()
            {
                j.mark_synced_through(upto);
            }
            st = match self.state.lock() {
                Ok(st) => st,
                Err(_) => return,
            };
            st.in_flight = false;
            st.syncs += 1;
            self.done.notify_all();
            match result {
                // Our sync began after our write: it covered it.
                Ok(()) => {
                    st.synced = st.synced.max(upto);
                    return;
                }
                Err(err) => {
                    drop(st);
                    return self.reporter.note(&format!("error: cannot write the journal: {err}"));
                }
            }
        }
    }

    /// For spawning a step: makes `through` durable first.
    fn barrier(self: &Arc<Self>) -> process::Barrier {
        let d = self.clone();
        Arc::new(move |through| d.make_durable(through))
    }
}

/// Makes everything written to the journal so far durable: inline for a step
/// that runs alone, else on a blocking thread, so the runtime goes on reaping
/// and draining the other steps.
async fn sync_journal(shared: &Shared, inline: bool) {
    let through = shared.written();
    if inline {
        return shared.durability.make_durable(through);
    }
    let d = shared.durability.clone();
    if tokio::task::spawn_blocking(move || d.make_durable(through)).await.is_err() {
        shared.durability.make_durable(through);
    }
}

/// Signals that stop a run; each one received raises the cancel level.
pub fn signal_stream() -> mpsc::UnboundedReceiver<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = mpsc::unbounded_channel();
    for (kind, name) in
        [(SignalKind::interrupt(), "SIGINT"), (SignalKind::terminate(), "SIGTERM"), (SignalKind::hangup(), "SIGHUP")]
    {
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

#[allow(clippy::too_many_arguments)]
pub async fn execute(
    c: &Compiled,
    base_ctx: &Value,
    renderer: &Renderer,
    journal: Journal,
    reporter: Arc<dyn Reporter>,
    secrets: Arc<Vec<String>>,
    opts: Options,
    mut signals: mpsc::UnboundedReceiver<&'static str>,
) -> Outcome {
    let n = c.steps.len();
    let (cancel_tx, cancel_rx) = watch::channel(Cancel::None);
    let durability = Durability::new(journal, reporter.clone());
    let shared = Arc::new(Shared {
        barrier: durability.barrier(),
        durability,
        reporter: reporter.clone(),
        secrets: secrets.clone(),
        grace: opts.grace,
        yes: opts.yes,
        cancel: cancel_rx,
    });
    let mut indeg: Vec<usize> = (0..n).map(|i| c.graph.needs(i).count()).collect();
    let mut status: Vec<Option<Status>> = vec![None; n];
    let mut durations: Vec<Option<Duration>> = vec![None; n];
    let mut captures: HashMap<String, String> = HashMap::new();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    let mut running: JoinSet<(usize, StepOutcome)> = JoinSet::new();
    let mut stop_new = false;
    let mut interrupted = false;
    let mut failed = false;

    // Marks a finished step and makes its dependents ready, or blocks them.
    macro_rules! finish {
        ($i:expr, $st:expr) => {{
            let i: usize = $i;
            let st: Status = $st;
            status[i] = Some(st);
            if st.releases_dependents() {
                for d in c.graph.dependents(i) {
                    indeg[d] -= 1;
                    if indeg[d] == 0 {
                        ready.push(Reverse(d));
                    }
                }
            } else if st == Status::Failed {
                failed = true;
                if !opts.keep_going {
                    stop_new = true;
                }
                let mut stack: Vec<usize> = c.graph.dependents(i).collect();
                while let Some(d) = stack.pop() {
                    if status[d].is_none() {
                        status[d] = Some(Status::Blocked);
                        let id = &c.steps[d].decl.id.value;
                        shared.write_unsynced(&Event::StepFinished {
                            step: id.clone(),
                            attempt: 0,
                            time: now(),
                            status: Status::Blocked,
                            exit_code: None,
                            signal: None,
                            duration_ms: 0,
                            message: Some(format!("a need failed: {}", c.steps[i].decl.id.value)),
                            capture: None,
                            definition: None,
                            retrying: false,
                        });
                        stack.extend(c.graph.dependents(d));
                    }
                }
            }
        }};
    }

    loop {
        let mut to_start: Vec<(usize, RenderedStep)> = Vec::new();
        while !stop_new && running.len() + to_start.len() < opts.jobs.max(1) {
            let Some(Reverse(i)) = ready.pop() else { break };
            if status[i].is_some() {
                continue;
            }
            let decl = &c.steps[i].decl;
            let id = decl.id.value.clone();
            if let Some(e) = opts.earlier.get(&i) {
                if let (Some(cap), Some(v)) = (&decl.capture, &e.capture) {
                    captures.insert(cap.value.clone(), v.clone());
                }
                finish!(i, Status::Succeeded);
                continue;
            }
            if opts.only.as_ref().is_some_and(|o| !o.contains(&i)) {
                status[i] = Some(Status::Pending);
                continue;
            }
            let ctx_owned;
            let ctx = if captures.is_empty() {
                base_ctx
            } else {
                let mut v = base_ctx.clone();
                if let Value::Object(m) = &mut v {
                    for (k, val) in &captures {
                        m.insert(k.clone(), Value::String(val.clone()));
                    }
                }
                ctx_owned = v;
                &ctx_owned
            };
            let quick = |st: Status, message: Option<String>| Event::StepFinished {
                step: id.clone(),
                attempt: 0,
                time: now(),
                status: st,
                exit_code: None,
                signal: None,
                duration_ms: 0,
                message,
                capture: None,
                definition: None,
                retrying: false,
            };
            if opts.skip.contains(&i) {
                shared.write_unsynced(&quick(Status::Skipped, Some("--skip".into())));
                reporter.step_finished(&id, Status::Skipped, Duration::ZERO, Some("--skip"));
                finish!(i, Status::Skipped);
                continue;
            }
            let rendered = match render_step(&c.steps[i], ctx, renderer) {
                Ok(r) => r,
                Err(e) => {
                    // Never run a half-rendered command: the step fails before it starts.
                    let msg = mask(&format!("cannot render: {e}"), &secrets);
                    shared.write_unsynced(&quick(Status::Failed, Some(msg.clone())));
                    reporter.step_finished(&id, Status::Failed, Duration::ZERO, Some(&msg));
                    finish!(i, Status::Failed);
                    continue;
                }
            };
            if rendered.when == Some(false) {
                shared.write_unsynced(&quick(Status::Skipped, Some("`when` is false".into())));
                reporter.step_finished(&id, Status::Skipped, Duration::ZERO, Some("`when` is false"));
                finish!(i, Status::Skipped);
                continue;
            }
            to_start.push((i, rendered));
        }
        // One sync makes the previous ends and these starts durable before any of them runs.
        let started: Vec<(usize, RenderedStep, Started)> = to_start
            .into_iter()
            .map(|(i, r)| {
                let st = journal_start(&shared, &r, 1);
                (i, r, st)
            })
            .collect();
        // Each step starts after the sync that covers its start (and every
        // end before it); the scheduler goes on meanwhile, so a step that ends
        // during a sync has its successor's start in the next one. A lone step
        // syncs and spawns on this thread: there is nothing else to serve.
        let alone = running.is_empty() && started.len() == 1;
        let any_started = !started.is_empty();
        for (i, r, st) in started {
            let sh = shared.clone();
            running.spawn(async move {
                let out = run_step(&sh, r, st, alone).await;
                (i, out)
            });
        }
        if running.is_empty() {
            break;
        }
        if !any_started {
            // Ends with no start after them are made durable now, not at the next start.
            let sh = shared.clone();
            tokio::spawn(async move { sync_journal(&sh, false).await });
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let (i, out) = match joined {
                    Ok(x) => x,
                    Err(e) => {
                        reporter.note(&format!("error: a step task failed: {e}"));
                        continue;
                    }
                };
                let id = &c.steps[i].decl.id.value;
                durations[i] = Some(out.duration);
                if let (Some(cap), Some(v)) = (&c.steps[i].decl.capture, &out.capture) {
                    captures.insert(cap.value.clone(), v.clone());
                }
                if out.status == Status::Interrupted {
                    interrupted = true;
                }
                reporter.step_finished(id, out.status, out.duration, out.message.as_deref());
                tracing::debug!(step = %id, status = out.status.as_str(), attempts = out.attempts, exit_code = ?out.exit_code, "step finished");
                finish!(i, out.status);
            }
            sig = signals.recv() => {
                let Some(sig) = sig else { continue };
                interrupted = true;
                stop_new = true;
                let level = if *cancel_tx.borrow() == Cancel::None { Cancel::Graceful } else { Cancel::Kill };
                let _ = cancel_tx.send(level);
                match level {
                    Cancel::Graceful => reporter.note(&format!("{sig}: stopping; no new step starts, running steps get SIGTERM (again to kill now)")),
                    _ => reporter.note(&format!("{sig}: killing running steps now")),
                }
            }
        }
    }

    let steps: Vec<(String, Status, Option<Duration>)> = c
        .graph
        .order
        .iter()
        .map(|&i| (c.steps[i].decl.id.value.clone(), status[i].unwrap_or(Status::Pending), durations[i]))
        .collect();
    let run_status = if interrupted {
        RunStatus::Interrupted
    } else if failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    let pending = steps.iter().any(|s| s.1 == Status::Pending) && opts.only.is_none();
    let run_status = if run_status == RunStatus::Succeeded && pending { RunStatus::Failed } else { run_status };
    shared.write(&Event::RunFinished { time: now(), status: run_status });
    if let Ok(st) = shared.durability.state.lock() {
        tracing::debug!(syncs = st.syncs, steps = n, "journal group commit");
    }
    Outcome { status: run_status, steps }
}

/// A step's first `step-started`, written by the scheduler before it spawns the step.
struct Started {
    definition: String,
    log_path: std::path::PathBuf,
}

fn journal_start(sh: &Shared, r: &RenderedStep, attempt: u32) -> Started {
    let definition = definition_hash(r, &sh.secrets);
    let log_path = sh.durability.journal.lock().map(|j| j.log_path(&r.id)).unwrap_or_default();
    let log = log_path.display().to_string();
    sh.write_unsynced(&Event::StepStarted {
        step: r.id.clone(),
        attempt,
        time: now(),
        definition: definition.clone(),
        log,
    });
    sh.reporter.step_started(&r.id, attempt);
    tracing::debug!(step = %r.id, attempt, action = r.action.kind(), "step started");
    Started { definition, log_path }
}

async fn run_step(sh: &Arc<Shared>, r: RenderedStep, first: Started, alone: bool) -> StepOutcome {
    let Started { definition, log_path } = first;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt > 1 {
            journal_start(sh, &r, attempt);
        }
        let t = Instant::now();
        let mut out = if *sh.cancel.borrow() != Cancel::None {
            // A signal came between the scheduler starting this step's task
            // and the task's first turn: the step never ran.
            outcome(Status::Interrupted, Some("stopped before it started".into()))
        } else {
            attempt_once(sh, &r, &log_path, alone).await
        };
        out.attempts = attempt;
        let will_retry = out.status == Status::Failed && attempt <= r.retries && *sh.cancel.borrow() == Cancel::None;
        if out.status == Status::Failed && r.continue_on_error && !will_retry {
            out.status = Status::FailedIgnored;
        }
        sh.write_unsynced(&Event::StepFinished {
            step: r.id.clone(),
            attempt,
            time: now(),
            status: out.status,
            exit_code: out.exit_code,
            signal: out.signal.clone(),
            duration_ms: t.elapsed().as_millis() as u64,
            message: out.message.clone(),
            capture: out.capture.clone(),
            definition: Some(definition.clone()),
            retrying: will_retry,
        });
        if !will_retry {
            out.duration = started.elapsed();
            return out;
        }
        sync_journal(sh, alone).await;
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

fn outcome(status: Status, message: Option<String>) -> StepOutcome {
    StepOutcome { status, exit_code: None, signal: None, message, capture: None, duration: Duration::ZERO, attempts: 1 }
}

async fn attempt_once(sh: &Arc<Shared>, r: &RenderedStep, log_path: &std::path::Path, alone: bool) -> StepOutcome {
    if !matches!(r.action, Action::Run(_) | Action::Shell(_)) {
        // A built-in acts here and now: its start must be durable first.
        // A process step is spawned right after its sync (`process::Launch`).
        sync_journal(sh, alone).await;
    }
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
                outcome(Status::Failed, Some(mask(message, &sh.secrets)))
            };
        }
        Action::Confirm(message) => {
            let message = mask(message, &sh.secrets);
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
        Action::Remove { path, within } => {
            let (path, within) = (path.clone(), within.clone());
            let res = tokio::task::spawn_blocking(move || crate::builtin::remove(&path, within.as_deref()))
                .await
                .unwrap_or_else(|e| Err(crate::builtin::RemoveError(e.to_string())));
            return match res {
                Ok(m) => outcome(Status::Succeeded, Some(mask(&m, &sh.secrets))),
                Err(e) => outcome(Status::Failed, Some(mask(&e.to_string(), &sh.secrets))),
            };
        }
    };
    let spec = ProcSpec {
        program,
        args,
        env: r.env.clone(),
        cwd: r.cwd.clone(),
        timeout: r.timeout,
        grace: sh.grace,
        capture: r.capture.is_some(),
    };
    let on_spawn = {
        let (sh, id) = (sh.clone(), r.id.clone());
        move |pgid: i32| {
            sh.write_unsynced(&Event::StepSpawned { step: id.clone(), pgid, start_time: process::start_time(pgid) });
        }
    };
    let launch =
        process::Launch { barrier: &sh.barrier, through: sh.written(), inline: alone, spawned: Arc::new(on_spawn) };
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
        ProcEnd::SpawnFailed(m) => outcome(Status::Failed, Some(mask(&m, &sh.secrets))),
    };
    if o.status == Status::Succeeded {
        o.capture = capture;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many threads that each append and then need their event durable: every
    /// one returns only once the sync watermark covers it, none hangs, and
    /// the syncs made are at most one per caller.
    #[test]
    fn group_commit_covers_every_caller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "r1").expect("journal");
        let d = Durability::new(journal, Arc::new(crate::reporter::Json::new()));
        let journal = d.journal.clone();
        let callers = 16;
        std::thread::scope(|s| {
            for k in 0..callers {
                let (d, journal) = (d.clone(), journal.clone());
                s.spawn(move || {
                    for round in 0..5 {
                        let through = {
                            let mut j = journal.lock().expect("journal");
                            let e = Event::RunResumed { time: format!("{k}-{round}"), pid: k };
                            j.append_unsynced(&e).expect("append");
                            j.written()
                        };
                        d.make_durable(through);
                        assert!(d.state.lock().expect("state").synced >= through);
                    }
                });
            }
        });
        let st = d.state.lock().expect("state");
        let written = journal.lock().expect("journal").written();
        assert_eq!(st.synced, written);
        assert!(!st.in_flight);
        assert!((1..=callers as u64 * 5).contains(&st.syncs), "{} syncs", st.syncs);
        assert!(!journal.lock().expect("journal").is_dirty());
    }
}
