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
    pub values: IndexMap<String, String>,
    pub secrets: Vec<String>,
    pub files: Vec<FileSum>,
    pub steps: Vec<StepState>,
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
    /// The process group of an attempt that has not finished, and its leader's start time.
    pub process: Option<(i32, Option<u64>)>,
}

impl RunSummary {
    pub fn from_events(events: &[Event]) -> Option<RunSummary> {
        let Some(Event::RunStarted { run_id, plan, time, pid, files, values, secrets, steps }) = events.first() else {
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
            values: values.clone(),
            secrets: secrets.clone(),
            files: files.clone(),
            steps: Vec::new(),
        };
        for e in &events[1..] {
            match e {
                Event::RunResumed { pid, .. } => {
                    summary.pid = *pid;
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
                Event::StepSpawned { step, pgid, start_time } => {
                    let s = states.entry(step.clone()).or_insert_with(|| blank(step));
                    s.process = Some((*pgid, *start_time));
                }
                Event::StepFinished {
                    step,
                    status,
                    exit_code,
                    signal,
                    duration_ms,
                    message,
                    capture,
                    definition,
                    retrying,
                    ..
                } => {
                    let s = states.entry(step.clone()).or_insert_with(|| blank(step));
                    s.process = None;
                    s.status = if *retrying { Status::Running } else { *status };
                    s.exit_code = *exit_code;
                    s.signal = signal.clone();
                    s.duration_ms = Some(*duration_ms);
                    s.message = message.clone();
                    s.capture = capture.clone();
                    if definition.is_some() {
                        s.definition = definition.clone();
                    }
                }
                Event::RunFinished { time, status } => {
                    summary.finished = Some(time.clone());
                    summary.status = Some(*status);
                }
                Event::RunStarted { .. } => {}
            }
        }
        // A step still `running` in a finished (or dead) run was cut off.
        for s in states.values_mut() {
            if s.status == Status::Running && (summary.status.is_some() || !pid_alive(summary.pid)) {
                s.status = Status::Interrupted;
            }
        }
        summary.steps = states.into_values().collect();
        Some(summary)
    }

    /// `succeeded`, `failed`, `interrupted`, `running`, or `crashed` (no end, and its process is gone).
    pub fn state(&self) -> &'static str {
        match self.status {
            Some(s) => s.as_str(),
            None if pid_alive(self.pid) => "running",
            None => "crashed",
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
        process: None,
    }
}

fn pid_alive(pid: u32) -> bool {
    pid != 0
        && pid != std::process::id()
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

/// All runs in the state dir, oldest first.
pub fn list_runs(state: &Path) -> Vec<RunSummary> {
    let Ok(entries) = std::fs::read_dir(runs_dir(state)) else { return Vec::new() };
    let mut ids: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    ids.sort();
    let mut runs: Vec<RunSummary> =
        ids.iter().filter_map(|id| read(state, id).ok().and_then(|ev| RunSummary::from_events(&ev))).collect();
    // Ids sort by second; two runs in one second are ordered by their start time.
    runs.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.run_id.cmp(&b.run_id)));
    runs
}
