//! What a journal says about a run: its state and each step's, for `runs`, `status` and `--resume`.

use std::path::Path;

use indexmap::IndexMap;

use super::{Event, FileSum, read, runs_dir};
use crate::status::{RunStatus, Status};

/// What a journal says about one run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub plan: String,
    pub started: String,
    pub finished: Option<String>,
    pub status: Option<RunStatus>,
    pub pid: u32,
    pub pid_start: Option<u64>,
    pub values: IndexMap<String, String>,
    pub secrets: Vec<String>,
    pub files: Vec<FileSum>,
    pub steps: Vec<StepState>,
    /// The journal's first record (the run's start) does not read: the run
    /// is listed, but nothing in it can be trusted or resumed.
    pub damaged: bool,
    /// Why the run stopped, when not because of a step.
    pub reason: Option<String>,
    /// By step id: the drift a default review accepted.
    pub reviewed: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct StepState {
    pub id: String,
    pub status: Status,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub duration_ms: Option<u64>,
    pub log: Option<String>,
    pub message: Option<String>,
    pub definition: Option<String>,
    pub capture: Option<String>,
    /// The capture was made from a secret (journaled masked).
    pub secret_capture: bool,
    /// The process group of an attempt that has not finished, and what names its leader.
    pub process: Option<(i32, crate::process::Birth)>,
}

impl RunSummary {
    pub fn from_events(events: &[Event]) -> Option<RunSummary> {
        let Some(Event::RunStarted { run_id, plan, time, pid, pid_start, files, values, secrets, steps }) =
            events.first()
        else {
            return None;
        };
        let mut states: IndexMap<String, StepState> = steps.iter().map(|s| (s.clone(), blank(s))).collect();
        let mut summary = RunSummary {
            run_id: run_id.clone(),
            plan: plan.clone(),
            started: time.clone(),
            finished: None,
            status: None,
            pid: *pid,
            pid_start: *pid_start,
            values: values.clone(),
            secrets: secrets.clone(),
            files: files.clone(),
            steps: Vec::new(),
            damaged: false,
            reason: None,
            reviewed: Default::default(),
        };
        for e in &events[1..] {
            match e {
                Event::RunResumed { pid, pid_start, .. } => {
                    summary.pid = *pid;
                    summary.pid_start = *pid_start;
                    summary.finished = None;
                    summary.status = None;
                }
                Event::StepStarted { step, attempt, definition, log, .. } => {
                    let s = states.entry(step.clone()).or_insert_with(|| blank(step));
                    s.status = Status::Running;
                    s.attempts = *attempt;
                    s.definition = Some(definition.clone());
                    s.log = Some(log.clone());
                }
                Event::StepSpawned { step, pgid, start_time, pidfs } => {
                    let s = states.entry(step.clone()).or_insert_with(|| blank(step));
                    s.process = Some((*pgid, crate::process::Birth { start_time: *start_time, pidfs: *pidfs }));
                }
                Event::StepFinished {
                    step,
                    status,
                    exit_code,
                    signal,
                    duration_ms,
                    message,
                    capture,
                    secret_capture,
                    definition,
                    retrying,
                    ..
                } => {
                    let secret_capture = *secret_capture;
                    let s = states.entry(step.clone()).or_insert_with(|| blank(step));
                    s.process = None;
                    s.status = if *retrying { Status::Running } else { *status };
                    s.exit_code = *exit_code;
                    s.signal = signal.clone();
                    s.duration_ms = Some(*duration_ms);
                    s.message = message.clone();
                    s.capture = capture.clone();
                    s.secret_capture = secret_capture;
                    if definition.is_some() {
                        s.definition = definition.clone();
                    }
                }
                Event::RunFinished { time, status, reason } => {
                    summary.finished = Some(time.clone());
                    summary.status = Some(*status);
                    summary.reason = reason.clone();
                }
                Event::Reviewed { step, drift, .. } => {
                    summary.reviewed.insert(step.clone(), drift.clone());
                }
                Event::RunStarted { .. } => {}
            }
        }
        // A step still `running` in a finished (or dead) run was cut off.
        for s in states.values_mut() {
            if s.status == Status::Running && (summary.status.is_some() || !summary.plan_alive()) {
                s.status = Status::Interrupted;
            }
        }
        summary.steps = states.into_values().collect();
        Some(summary)
    }

    /// `succeeded`, `failed`, `interrupted`, `running`, or `crashed` (no end, and its process is gone).
    pub fn state(&self) -> &'static str {
        if self.damaged {
            return "damaged";
        }
        match self.status {
            Some(s) => s.as_str(),
            None if self.plan_alive() => "running",
            None => "crashed",
        }
    }
}

impl RunSummary {
    /// A run whose journal has no readable first record (torn while it was written).
    fn damaged(run_id: &str) -> RunSummary {
        RunSummary {
            run_id: run_id.to_owned(),
            plan: "?".to_owned(),
            // Run ids start with their start time.
            started: run_id.split('-').next().unwrap_or(run_id).to_owned(),
            finished: None,
            status: None,
            pid: 0,
            pid_start: None,
            values: IndexMap::new(),
            secrets: Vec::new(),
            files: Vec::new(),
            steps: Vec::new(),
            damaged: true,
            reason: None,
            reviewed: Default::default(),
        }
    }
}

fn blank(id: &str) -> StepState {
    StepState {
        id: id.to_owned(),
        status: Status::Pending,
        attempts: 0,
        exit_code: None,
        signal: None,
        duration_ms: None,
        log: None,
        message: None,
        definition: None,
        capture: None,
        secret_capture: false,
        process: None,
    }
}

impl RunSummary {
    /// Whether the `plan` process that runs it is still there: the same pid,
    /// started at the same time (a reused pid is another process), not a zombie.
    fn plan_alive(&self) -> bool {
        let pid = self.pid as i32;
        if pid == 0
            || self.pid == std::process::id()
            || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
        {
            return false;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) {
            return false;
        }
        match self.pid_start {
            Some(recorded) => crate::process::start_time(pid) == Some(recorded),
            None => true,
        }
    }
}

/// All runs in the state dir, oldest first.
pub fn list_runs(state: &Path) -> Vec<RunSummary> {
    let Ok(entries) = std::fs::read_dir(runs_dir(state)) else { return Vec::new() };
    let mut ids: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    ids.sort();
    let mut runs: Vec<RunSummary> = ids
        .iter()
        .filter_map(|id| {
            let events = read(state, id).ok()?;
            Some(RunSummary::from_events(&events).unwrap_or_else(|| RunSummary::damaged(id)))
        })
        .collect();
    // Ids sort by second; two runs in one second are ordered by their start time.
    runs.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.run_id.cmp(&b.run_id)));
    runs
}
