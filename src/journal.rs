//! The journal: one folder per run under the state dir, an append-only
//! JSON-lines file flushed to disk (fsync) before every step starts and after
//! it ends, and one log per step. Secrets never reach either: callers mask
//! every text before it gets here.
//!
//! A run killed at any instant leaves a journal whose complete lines parse;
//! a torn last line (power loss mid-write) is ignored on reading.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// `--state-dir`, else `$XDG_STATE_HOME/plan`, else `~/.local/state/plan`.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("plan");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/plan")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        run_id: String,
        plan: String,
        time: String,
        pid: u32,
        /// Every plan file that went into the graph, with its SHA-256.
        files: Vec<FileSum>,
        /// Non-secret values of vars and facts; secrets are listed by name only.
        values: IndexMap<String, String>,
        secrets: Vec<String>,
        /// Step ids in execution order.
        steps: Vec<String>,
    },
    RunResumed {
        time: String,
        pid: u32,
    },
    StepStarted {
        step: String,
        attempt: u32,
        time: String,
        /// SHA-256 of the step as rendered (secrets masked); `--resume` compares it.
        definition: String,
        log: String,
    },
    /// The step's process group, so a resume after a crash can stop what is left of it.
    StepSpawned {
        step: String,
        pgid: i32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        start_time: Option<u64>,
    },
    StepFinished {
        step: String,
        attempt: u32,
        time: String,
        status: Status,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        signal: Option<String>,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        message: Option<String>,
        /// The captured value (masked), kept so a resumed run can give it to descendants.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        capture: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        definition: Option<String>,
        /// A failed attempt that will be retried.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        retrying: bool,
    },
    RunFinished {
        time: String,
        status: RunStatus,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileSum {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Succeeded,
    Failed,
    FailedIgnored,
    Skipped,
    Blocked,
    Interrupted,
    Pending,
    Running,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::FailedIgnored => "failed-ignored",
            Status::Skipped => "skipped",
            Status::Blocked => "blocked",
            Status::Interrupted => "interrupted",
            Status::Pending => "pending",
            Status::Running => "running",
        }
    }
    /// Counts as done for the step's dependents.
    pub fn releases_dependents(self) -> bool {
        matches!(self, Status::Succeeded | Status::Skipped | Status::FailedIgnored)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// RFC 3339 UTC with milliseconds, from the system clock.
pub fn now() -> String {
    format_time(SystemTime::now())
}

pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, d.subsec_millis())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A new run id: sortable by start time, unique by a random suffix.
pub fn new_run_id() -> String {
    let t = now();
    let compact: String = t[..19].chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let mut seed = [0u8; 2];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut seed);
    }
    format!("{compact}Z-{:04x}", u16::from_le_bytes(seed) ^ (std::process::id() as u16))
}

pub fn runs_dir(state: &Path) -> PathBuf {
    state.join("runs")
}

/// An open journal, appended to and synced.
///
/// The file is preallocated with zeros in [`PREALLOC`] chunks and written in
/// place, so a sync writes only the new data: the file's size (metadata)
/// does not change on every event, which halves the cost of each fsync. The
/// zeros are cut off when the run ends; a reader skips them after a crash.
pub struct Journal {
    file: File,
    /// Where the next event goes; everything after it is zeros.
    offset: u64,
    /// The file's preallocated length.
    capacity: u64,
    dirty: bool,
    pub dir: PathBuf,
    pub run_id: String,
}

pub const PREALLOC: u64 = 1 << 20;

impl Journal {
    pub fn create(state: &Path, run_id: &str) -> std::io::Result<Journal> {
        let dir = runs_dir(state).join(run_id);
        std::fs::create_dir_all(dir.join("logs"))?;
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(dir.join("journal.jsonl"))?;
        let mut j = Journal { file, offset: 0, capacity: 0, dirty: false, dir, run_id: run_id.to_owned() };
        j.grow(0)?;
        // The new folder's entry must survive a crash too.
        sync_dir(&runs_dir(state));
        Ok(j)
    }

    pub fn reopen(state: &Path, run_id: &str) -> std::io::Result<Journal> {
        let dir = runs_dir(state).join(run_id);
        let file = OpenOptions::new().read(true).write(true).open(dir.join("journal.jsonl"))?;
        let text = std::fs::read(dir.join("journal.jsonl"))?;
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let capacity = text.len() as u64;
        let mut j = Journal { file, offset: end as u64, capacity, dirty: false, dir, run_id: run_id.to_owned() };
        // A torn last line from a crash: end it, so the next event starts on a line of its own.
        if end > 0 && text[end - 1] != b'\n' {
            j.write_raw(b"\n")?;
        }
        Ok(j)
    }

    pub fn log_path(&self, step: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{step}.log"))
    }

    /// Appends one event and waits until it (and all before it) is on disk.
    pub fn append(&mut self, e: &Event) -> std::io::Result<()> {
        self.append_unsynced(e)?;
        self.sync()
    }

    /// Appends one event; the next [`Journal::sync`] makes it durable. The
    /// scheduler syncs before any step starts and before it waits, so a step's
    /// end is on disk before anything that follows it happens.
    pub fn append_unsynced(&mut self, e: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.write_raw(&line)
    }

    fn write_raw(&mut self, data: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if self.offset + data.len() as u64 > self.capacity {
            self.grow(data.len() as u64)?;
        }
        self.file.write_all_at(data, self.offset)?;
        self.offset += data.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Extends the zeroed area by at least `need` bytes, durably (size and blocks).
    fn grow(&mut self, need: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let add = need.div_ceil(PREALLOC).max(1) * PREALLOC;
        let zeros = vec![0u8; add as usize];
        self.file.write_all_at(&zeros, self.capacity)?;
        self.capacity += add;
        self.file.sync_all()
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// How many bytes have been written: a sync that starts after this call
    /// makes all of them durable.
    pub fn written(&self) -> u64 {
        self.offset
    }

    /// A second handle on the journal file, to sync it while the first goes on
    /// taking appends (group commit: one sync covers whatever came before it).
    pub fn sync_handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// Records that a sync through another handle covered everything written.
    pub fn mark_synced_through(&mut self, offset: u64) {
        if offset >= self.offset {
            self.dirty = false;
        }
    }

    pub fn sync(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.dirty) {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// Cuts the unused zeros off: a finished journal is plain JSON lines.
    fn drop(&mut self) {
        if self.file.set_len(self.offset).is_ok() {
            let _ = self.file.sync_all();
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads a journal; lines that do not parse (a torn write, preallocated zeros) are skipped.
pub fn read(state: &Path, run_id: &str) -> std::io::Result<Vec<Event>> {
    let bytes = std::fs::read(runs_dir(state).join(run_id).join("journal.jsonl"))?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(bytes[..end].split(|&b| b == b'\n').filter_map(|l| serde_json::from_slice(l).ok()).collect())
}

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

/// The per-plan lock: an OS file lock, so a crashed holder never blocks the next run.
pub struct Lock {
    _lock: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("plan `{plan}` is already running in this state dir (run {holder})")]
    Held { plan: String, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl Lock {
    pub fn acquire(state: &Path, plan: &str, run_id: &str) -> Result<Lock, LockError> {
        let dir = state.join("locks");
        let path = dir.join(format!("{plan}.lock"));
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                let mut f: &File = &lock;
                let _ = f.set_len(0);
                let _ = f.write_all(format!("{run_id} pid {}\n", std::process::id()).as_bytes());
                Ok(Lock { _lock: lock })
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_owned();
                Err(LockError::Held {
                    plan: plan.to_owned(),
                    holder: if holder.is_empty() { "unknown".into() } else { holder },
                })
            }
            Err((_, e)) => Err(io(std::io::Error::from(e))),
        }
    }
}

/// SHA-256 in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}
