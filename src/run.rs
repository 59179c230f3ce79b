//! `plan run`, `plan runs` and `plan status`: everything around the
//! scheduler (resume decisions, the lock, the journal's first lines, output).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bind::Inputs;
use crate::compile::Compiled;
use crate::diagnostic::did_you_mean;
use crate::error::Error;
use crate::journal::{self, Event, FileSum, Journal, Lock, RunSummary, now, sha256_hex};
use crate::prepare::{self, Prepared, Rendered};
use crate::render::{Action, render_step};
use crate::reporter::{Human, Json, Reporter};
use crate::scheduler::{self, Earlier, Options, definition_hash};
use crate::status::{RunStatus, Status};
use crate::template::Renderer;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
/// Stopped by a signal with no number known (exit 128 + N otherwise: 130 for SIGINT, 143 for SIGTERM).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Clone)]
pub struct RunRequest {
    pub plan: String,
    pub inputs: Inputs,
    pub plans_dirs: Vec<PathBuf>,
    pub jobs: Option<usize>,
    pub yes: bool,
    pub dry_run: bool,
    /// `Some(None)`: resume the newest unfinished or failed run of the plan.
    pub resume: Option<Option<String>>,
    pub force: bool,
    pub keep_going: bool,
    pub only: Vec<String>,
    pub skip: Vec<String>,
    pub state_dir: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
    pub grace: Duration,
}

const RUNS_HELP: &str = "`plan runs` lists the runs in this state dir";

fn fail(msg: &str, help: Option<&str>) -> Error {
    Error::usage(msg, help)
}

/// The run a `--resume` continues: the one named, or the newest of this plan that did not succeed.
fn find_resumable(state: &Path, plan: &str, id: Option<&str>) -> Result<RunSummary, Error> {
    let runs = journal::list_runs(state);
    match id {
        Some(id) => {
            let r = runs
                .into_iter()
                .find(|r| r.run_id == id)
                .ok_or_else(|| fail(&format!("no run `{id}` in {}", state.display()), Some(RUNS_HELP)))?;
            if r.damaged {
                return Err(fail(
                    &format!(
                        "run `{id}` cannot be resumed: its journal is damaged in its first record (the run's start)"
                    ),
                    Some(
                        "nothing in it can be trusted: start a new run (without --resume); its step logs are kept in the run's folder",
                    ),
                ));
            }
            if r.plan != plan {
                return Err(fail(&format!("run `{id}` is a run of `{}`, not `{plan}`", r.plan), Some(RUNS_HELP)));
            }
            if r.status == Some(RunStatus::Succeeded) {
                return Err(fail(&format!("run `{id}` succeeded; there is nothing to resume"), Some(RUNS_HELP)));
            }
            Ok(r)
        }
        None => runs
            .into_iter()
            .rev()
            .filter(|r| r.plan == plan)
            .find(|r| r.status != Some(RunStatus::Succeeded))
            .ok_or_else(|| {
                fail(&format!("no failed or interrupted run of `{plan}` in {}", state.display()), Some(RUNS_HELP))
            }),
    }
}

fn step_indices(c: &Compiled, ids: &[String], flag: &str) -> Result<HashSet<usize>, Error> {
    let mut out = HashSet::new();
    for id in ids {
        match c.graph.index.get(id) {
            Some(&i) => {
                out.insert(i);
            }
            None => {
                let help = did_you_mean(id, c.graph.index.keys().map(String::as_str));
                return Err(fail(&format!("{flag} `{id}`: no such step in this plan"), help.as_deref()));
            }
        }
    }
    Ok(out)
}

pub fn run(req: RunRequest) -> Result<u8, Error> {
    let renderer = Renderer::new();
    let state = journal::state_dir(req.state_dir.as_deref());
    let mut inputs = req.inputs.clone();
    let family = prepare::load(&req.plan, &req.plans_dirs)?;
    let earlier_run = match &req.resume {
        Some(resume_id) => {
            let r = find_resumable(&state, &family.base.plan.name.value, resume_id.as_deref())?;
            inputs.journal = r.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            inputs.resuming = Some(r.run_id.clone());
            Some(r)
        }
        None => None,
    };
    let p = prepare::prepare_family(family, &inputs, &renderer)?;
    p.notes.iter().for_each(|n| eprintln!("{n}"));
    let c = &p.compiled;
    let run_id = earlier_run.as_ref().map_or_else(journal::new_run_id, |r| r.run_id.clone());
    let only = if req.only.is_empty() { None } else { Some(step_indices(c, &req.only, "--only")?) };
    let skip = step_indices(c, &req.skip, "--skip")?;
    let mut earlier = match &earlier_run {
        Some(r) => still_done(&p, r, &run_id, &renderer, req.force)?,
        None => HashMap::new(),
    };
    if let Some(only) = &only {
        // Asked for by name: run them even if they succeeded before.
        earlier.retain(|i, _| !only.contains(i));
        check_only(c, only, &earlier)?;
    }
    if req.dry_run {
        return Ok(dry_run(&p, &earlier, &only, &skip, req.json));
    }
    let plan_name = c.base().name.value.clone();
    let _lock = Lock::acquire(&state, &plan_name, &run_id)
        .map_err(|e| fail(&e.to_string(), Some("wait for it to finish, or stop it (Ctrl-C) first")))?;
    if let Some(r) = &earlier_run {
        stop_leftovers(r, req.grace);
    }
    let journal = open_journal(&p, &state, &run_id, earlier_run.is_some())?;
    let journal_path = journal.dir.join("journal.jsonl").display().to_string();
    let reporter: Arc<dyn Reporter> = if req.json {
        Arc::new(Json::new())
    } else {
        Arc::new(Human::new(std::io::IsTerminal::is_terminal(&std::io::stderr()), req.quiet))
    };
    reporter.run_started(&run_id, &plan_name, c.steps.len(), earlier_run.is_some());
    for w in &p.warnings {
        tracing::info!("{}:{}:{}: {}", w.file, w.line, w.column, w.message);
    }
    let jobs = req.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let reviewed = earlier_run.as_ref().map(|r| r.reviewed.clone()).unwrap_or_default();
    let opts =
        Options { jobs, keep_going: req.keep_going, yes: req.yes, grace: req.grace, earlier, only, skip, reviewed };
    let release = c.base().release.as_ref().map(|r| r.value.as_str());
    let base_ctx = p.values.context(&plan_name, release, &run_id, &HashMap::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&format!("cannot start the runtime: {e}"), None))?;
    let started = Instant::now();
    let outcome = rt.block_on(async {
        let signals = scheduler::signal_stream();
        let secrets = Arc::new(crate::secrets::Secrets::new(p.values.secrets()));
        let run = scheduler::Run {
            base_ctx: &base_ctx,
            renderer: &renderer,
            journal,
            reporter: reporter.clone(),
            secrets,
            tainted: &p.tainted,
            run_id: &run_id,
        };
        scheduler::execute(c, run, opts, signals).await
    });
    reporter.run_finished(&run_id, outcome.status, started.elapsed(), &outcome.steps, &journal_path);
    Ok(match outcome.status {
        RunStatus::Succeeded => EXIT_OK,
        RunStatus::Failed => EXIT_FAILED,
        RunStatus::Interrupted => outcome.signal.map_or(EXIT_INTERRUPTED, |n| 128 + n as u8),
    })
}

/// The steps of the resumed run that succeeded and still mean the same
/// (rendered alike now); a succeeded step that changed is refused unless `--force`.
fn still_done(
    p: &Prepared,
    r: &RunSummary,
    run_id: &str,
    renderer: &Renderer,
    force: bool,
) -> Result<HashMap<usize, Earlier>, Error> {
    let c = &p.compiled;
    let captures: HashMap<String, String> = r
        .steps
        .iter()
        .filter_map(|s| {
            let i = *c.graph.index.get(&s.id)?;
            Some((c.steps[i].decl.capture.as_ref()?.value.clone(), s.capture.clone()?))
        })
        .collect();
    let release = c.base().release.as_ref().map(|r| r.value.as_str());
    let ctx = p.values.context(&c.base().name.value, release, run_id, &captures);
    let secrets = p.values.secrets();
    let mut earlier = HashMap::new();
    let mut changed = Vec::new();
    // A step whose capture was made from a secret runs again: its value was not kept.
    for s in r.steps.iter().filter(|s| s.status == Status::Succeeded && !s.secret_capture) {
        let Some(&i) = c.graph.index.get(&s.id) else { continue };
        // A default review runs again: it asks again only if the drift changed.
        if c.steps[i].decl.review_defaults.is_some() {
            continue;
        }
        let now_def = render_step(&c.steps[i], &ctx, renderer).ok().map(|rs| definition_hash(&rs, &secrets));
        if now_def.is_some() && now_def == s.definition {
            earlier.insert(i, Earlier { capture: s.capture.clone() });
        } else {
            changed.push(s.id.clone());
        }
    }
    if !changed.is_empty() && !force {
        return Err(fail(
            &format!(
                "cannot resume run {}: these steps succeeded but their definition changed since: {}",
                r.run_id,
                changed.join(", ")
            ),
            Some("check the plan and the values given; --force runs the changed steps again"),
        ));
    }
    Ok(earlier)
}

/// `--only` runs a step only when each of its needs is also asked for or succeeded before.
fn check_only(c: &Compiled, only: &HashSet<usize>, earlier: &HashMap<usize, Earlier>) -> Result<(), Error> {
    for &i in only {
        for n in c.graph.needs(i) {
            if !only.contains(&n) && !earlier.contains_key(&n) {
                return Err(fail(
                    &format!(
                        "--only `{}`: its need `{}` has not succeeded in this run",
                        c.steps[i].decl.id.value, c.steps[n].decl.id.value
                    ),
                    Some("add the need to --only, or --resume a run in which it succeeded"),
                ));
            }
        }
    }
    Ok(())
}

/// A crashed run may have left a step's processes behind: never run a step
/// again while its previous attempt is still going.
fn stop_leftovers(r: &RunSummary, grace: Duration) {
    let mut cut_off: Vec<(String, i32, crate::process::Birth)> = r
        .steps
        .iter()
        .filter(|s| matches!(s.status, Status::Interrupted | Status::Running))
        .filter_map(|s| s.process.map(|(pgid, start)| (s.id.clone(), pgid, start)))
        .collect();
    // Processes carrying this run's marker: a step spawned just before
    // `plan` died (not journaled yet), or one that left its group (`setsid`).
    for (step, pgid) in crate::process::marked(&r.run_id) {
        if !cut_off.iter().any(|(_, g, _)| *g == pgid) {
            cut_off.push((step, pgid, crate::process::Birth::default()));
        }
    }
    let groups: Vec<(i32, crate::process::Birth)> = cut_off.iter().map(|(_, g, s)| (*g, *s)).collect();
    let stopped = crate::process::stop_leftover_groups(&groups, grace);
    for (id, pgid, _) in cut_off.iter().filter(|(_, g, _)| stopped.contains(g)) {
        eprintln!("stopped the processes step `{id}` left running in run {} (process group {pgid})", r.run_id);
    }
}

fn own_start_time() -> Option<u64> {
    crate::process::start_time(std::process::id() as i32)
}

/// The run's journal, new or reopened, with its first record written.
fn open_journal(p: &Prepared, state: &Path, run_id: &str, resuming: bool) -> Result<Journal, Error> {
    let c = &p.compiled;
    let journal = if resuming { Journal::reopen(state, run_id) } else { Journal::create(state, run_id) };
    let mut journal = journal.map_err(|e| {
        fail(&format!("cannot create the journal in {}: {e}", state.display()), Some("check --state-dir"))
    })?;
    let first = if resuming {
        Event::RunResumed { time: now(), pid: std::process::id(), pid_start: own_start_time() }
    } else {
        let values = &p.values.values;
        Event::RunStarted {
            run_id: run_id.to_owned(),
            plan: c.base().name.value.clone(),
            time: now(),
            pid: std::process::id(),
            pid_start: own_start_time(),
            files: c
                .files
                .iter()
                .map(|f| FileSum { path: f.origin.clone(), sha256: sha256_hex(f.source.text.as_bytes()) })
                .collect(),
            values: values.iter().filter(|(_, b)| !b.secret).map(|(k, b)| (k.clone(), b.value.clone())).collect(),
            secrets: values.iter().filter(|(_, b)| b.secret).map(|(k, _)| k.clone()).collect(),
            steps: c.graph.order.iter().map(|&i| c.steps[i].decl.id.value.clone()).collect(),
        }
    };
    journal.append(&first).map_err(|e| fail(&format!("cannot write the journal: {e}"), None))?;
    Ok(journal)
}

fn dry_run(
    p: &Prepared,
    earlier: &HashMap<usize, Earlier>,
    only: &Option<HashSet<usize>>,
    skip: &HashSet<usize>,
    json: bool,
) -> u8 {
    let c = &p.compiled;
    let runs =
        |i: usize| !skip.contains(&i) && !earlier.contains_key(&i) && only.as_ref().is_none_or(|o| o.contains(&i));
    if json {
        let ids = |set: &mut dyn Iterator<Item = usize>| {
            let mut v: Vec<usize> = set.collect();
            v.sort();
            v.iter().map(|&i| c.steps[i].decl.id.value.clone()).collect::<Vec<_>>()
        };
        let mut out = crate::show::show_json(p);
        out["would_stop"] = crate::prepare::would_stop(p, runs)
            .map(|(i, m)| serde_json::json!({"step": c.steps[i].decl.id.value, "message": crate::render::mask(&m, &p.values.secrets())}))
            .unwrap_or_default();
        out["dry_run"] = serde_json::json!({
            "resume_would_skip": ids(&mut earlier.keys().copied()),
            "only": only.as_ref().map(|o| ids(&mut o.iter().copied())),
            "skip": ids(&mut skip.iter().copied()),
        });
        out["reviews"] = dry_reviews(p, &runs)
            .into_iter()
            .map(|d| serde_json::json!({"step": d.step, "report": d.report, "question": d.question, "keep": d.keep, "error": d.error}))
            .collect();
        let stops = !out["would_stop"].is_null();
        crate::outln!("{out}");
        return if stops { EXIT_FAILED } else { EXIT_OK };
    }
    crate::outp!("{}", crate::show::show(p));
    let names = |set: &mut dyn Iterator<Item = usize>| {
        let mut v: Vec<usize> = set.collect();
        v.sort();
        v.iter().map(|&i| c.steps[i].decl.id.value.clone()).collect::<Vec<_>>().join(", ")
    };
    if !earlier.is_empty() {
        crate::outln!("\nresume would skip (succeeded before, unchanged): {}", names(&mut earlier.keys().copied()));
    }
    if let Some(o) = only {
        crate::outln!("--only runs just: {}", names(&mut o.iter().copied()));
    }
    if !skip.is_empty() {
        crate::outln!("--skip counts as skipped: {}", names(&mut skip.iter().copied()));
    }
    for d in dry_reviews(p, &runs) {
        crate::outln!("\nreview_defaults `{}` (read-only; the run compares again before it asks):", d.step);
        d.report.iter().for_each(|l| crate::outln!("{l}"));
        if let Some(q) = &d.question {
            crate::outln!("the run would ask:\n{q}");
        }
        if !d.keep.is_empty() {
            crate::outln!("once accepted, the run keeps the installed value of: {}", d.keep.join(", "));
        }
        if let Some(e) = &d.error {
            crate::outln!("cannot compare here: {e}\n(the run would stop at `{}` unless it can)", d.step);
        }
    }
    if let Some(stop) = crate::show::would_stop(p, runs) {
        crate::outp!("\n{stop}");
        crate::outln!("dry run: nothing was run; the run would fail there");
        return EXIT_FAILED;
    }
    crate::outln!("\ndry run: nothing was run");
    EXIT_OK
}

/// What a dry run found for a default review.
struct DryReview {
    step: String,
    report: Vec<String>,
    question: Option<String>,
    keep: Vec<String>,
    error: Option<String>,
}

/// Each `review_defaults` step that would run, compared now (read-only),
/// with every secret masked.
fn dry_reviews(p: &Prepared, runs: &dyn Fn(usize) -> bool) -> Vec<DryReview> {
    let mut out = Vec::new();
    for &i in p.compiled.graph.order.iter().filter(|&&i| runs(i)) {
        let Rendered::Exact(r) = &p.rendered[i] else { continue };
        let Action::Review(spec) = &r.action else { continue };
        let mut d = DryReview { step: r.id.clone(), report: Vec::new(), question: None, keep: Vec::new(), error: None };
        let runner = crate::review::Plain { env: r.env.clone(), cwd: r.cwd.clone() };
        let found = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(crate::review::gather(&runner, spec)));
        let secrets = crate::secrets::Secrets::new(p.values.secrets());
        match found {
            Ok(f) => {
                f.drift.secrets.iter().for_each(|s| secrets.add(s));
                d.report = f.drift.lines().iter().map(|l| secrets.mask(l)).collect();
                d.question = f.drift.question(&spec.keep_hint()).map(|q| secrets.mask(&q));
                d.keep = f.keep_sets.iter().filter_map(|s| s.split_once('=')).map(|(k, _)| k.to_owned()).collect();
            }
            Err(e) => d.error = Some(secrets.mask(&e)),
        }
        out.push(d);
    }
    out
}

pub fn runs(state_dir: Option<&Path>, json: bool) -> u8 {
    let state = journal::state_dir(state_dir);
    let runs = journal::list_runs(&state);
    if json {
        let list: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run_id": r.run_id, "plan": r.plan, "status": r.state(), "started": r.started,
                    "finished": r.finished, "steps": r.steps.len(),
                    "done": r.steps.iter().filter(|s| matches!(s.status, Status::Succeeded | Status::Skipped | Status::FailedIgnored)).count(),
                })
            })
            .collect();
        crate::outln!("{}", serde_json::Value::from(list));
        return EXIT_OK;
    }
    if runs.is_empty() {
        crate::outln!("no runs in {}", state.display());
        return EXIT_OK;
    }
    let w = runs.iter().map(|r| r.plan.len()).max().unwrap_or(4).max(4);
    crate::outln!("{:<22}  {:<w$}  {:<11}  {:<24}  STEPS", "RUN", "PLAN", "STATUS", "STARTED");
    for r in &runs {
        let ok = r
            .steps
            .iter()
            .filter(|s| matches!(s.status, Status::Succeeded | Status::Skipped | Status::FailedIgnored))
            .count();
        crate::outln!(
            "{:<22}  {:<w$}  {:<11}  {:<24}  {ok}/{} done",
            r.run_id,
            r.plan,
            r.state(),
            r.started,
            r.steps.len()
        );
    }
    EXIT_OK
}

pub fn status(state_dir: Option<&Path>, run_id: Option<&str>, json: bool) -> Result<u8, Error> {
    let state = journal::state_dir(state_dir);
    let runs = journal::list_runs(&state);
    let r = match run_id {
        Some(id) => runs.into_iter().find(|r| r.run_id == id),
        None => runs.into_iter().last(),
    };
    let Some(r) = r else {
        return Err(fail(
            &match run_id {
                Some(id) => format!("no run `{id}` in {}", state.display()),
                None => format!("no runs in {}", state.display()),
            },
            Some("`plan runs` lists the runs; --state-dir chooses the folder"),
        ));
    };
    let log_of = |id: &str| {
        let log = journal::runs_dir(&state).join(&r.run_id).join("logs").join(format!("{id}.log"));
        log.is_file().then(|| log.display().to_string())
    };
    if json {
        let steps: Vec<serde_json::Value> = r
            .steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "status": s.status.as_str(), "attempts": s.attempts, "exit_code": s.exit_code,
                    "signal": s.signal, "duration_ms": s.duration_ms, "log": log_of(&s.id), "message": s.message,
                })
            })
            .collect();
        crate::outln!(
            "{}",
            serde_json::json!({
                "run_id": r.run_id, "plan": r.plan, "status": r.state(), "started": r.started,
                "finished": r.finished, "reason": r.reason, "steps": steps,
            })
        );
        return Ok(EXIT_OK);
    }
    crate::outln!("run {} of {}: {}", r.run_id, r.plan, r.state());
    if let Some(reason) = &r.reason {
        crate::outln!("stopped because: {reason}");
    }
    crate::outln!(
        "started {}{}",
        r.started,
        r.finished.as_ref().map(|f| format!(", finished {f}")).unwrap_or_default()
    );
    let w = r.steps.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
    crate::outln!("{:<w$}  {:<14}  {:<6}  {:<9}  LOG", "STEP", "STATUS", "EXIT", "DURATION");
    for s in &r.steps {
        let exit = match (&s.exit_code, &s.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(sig)) => sig.clone(),
            _ => "-".into(),
        };
        let dur = s.duration_ms.map_or("-".into(), |d| format!("{:.1}s", d as f64 / 1000.0));
        // Only a log that exists: a step that printed nothing (an assert, a confirm) has none.
        let log = log_of(&s.id).unwrap_or_else(|| "-".to_owned());
        crate::outln!("{:<w$}  {:<14}  {exit:<6}  {dur:<9}  {log}", s.id, s.status.as_str());
        if let Some(m) = &s.message
            && matches!(s.status, Status::Failed | Status::Blocked | Status::Interrupted | Status::FailedIgnored)
        {
            crate::outln!("{:<w$}  └ {m}", "");
        }
    }
    Ok(EXIT_OK)
}
