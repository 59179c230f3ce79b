//! Processes: every step runs in its own process group with stdin from
//! /dev/null; stdout and stderr (one pipe for both, unless the reporter
//! tells them apart or stdout is captured) are drained concurrently, masked,
//! into the step's log and to the reporter. A timeout or a cancellation sends SIGTERM
//! to the whole group, then SIGKILL after a grace period. When the step's
//! main process exits, whatever it left in its group is killed: no orphans.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::secrets::Secrets;
use crate::spawn::{Child, Exit};

/// How far a cancellation has gone: none, stop gracefully, kill now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cancel {
    None,
    Graceful,
    Kill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where step output goes besides the log (the terminal, JSON events).
pub trait OutputSink: Send + Sync {
    fn line(&self, step: &str, stream: Stream, line: &str);
    /// Whether it tells stdout from stderr. When it does not (and nothing is
    /// captured), a step's two streams share one pipe: its lines arrive in
    /// the order they were written, and each step costs one pipe less.
    fn separates_streams(&self) -> bool {
        true
    }
}

pub struct ProcSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub capture: bool,
    /// Stdout is a secret (the step reads one and captures its output):
    /// captured, never shown or logged.
    pub secret_stdout: bool,
    /// With `secret_stdout`: kept exactly as printed, not masked (a default
    /// review reads tutor's configuration from it, passwords and all; it never
    /// leaves `plan`).
    pub raw_stdout: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcEnd {
    Exited(i32),
    Signaled(String),
    TimedOut(Duration),
    Interrupted,
    SpawnFailed(String),
}

pub struct ProcResult {
    pub end: ProcEnd,
    pub stdout: Option<String>,
}

/// A step's log, created on its first line: a silent step leaves no file.
pub struct LogFile {
    path: std::path::PathBuf,
    file: std::sync::Mutex<Option<std::fs::File>>,
}

impl LogFile {
    pub fn new(path: &Path) -> LogFile {
        LogFile { path: path.to_path_buf(), file: std::sync::Mutex::new(None) }
    }

    pub fn write_line(&self, line: &str) {
        use std::io::Write;
        let Ok(mut guard) = self.file.lock() else { return };
        if guard.is_none() {
            *guard = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).ok();
        }
        if let Some(f) = guard.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// What tells a process from a later one that got the same pid: its pidfs
/// inode where the kernel has pidfs (Linux 6.9 and later: a number never
/// given to another process until the machine restarts; three system calls,
/// about 2 µs), else its start time from `/proc/PID/stat` (about 11 µs: the
/// kernel formats the whole line). Read once per step, right after it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Birth {
    pub start_time: Option<u64>,
    pub pidfs: Option<u64>,
}

impl Birth {
    /// The process at `pid` now.
    pub fn of(pid: i32) -> Birth {
        if pidfs_available() {
            Birth { start_time: None, pidfs: pidfs_inode(pid) }
        } else {
            Birth { start_time: start_time(pid), pidfs: None }
        }
    }

    /// The process at `pid`, through a pidfd `plan` holds on it.
    pub fn of_pidfd(pid: i32, pidfd: &std::os::fd::OwnedFd) -> Birth {
        if pidfs_available() {
            Birth { start_time: None, pidfs: rustix::fs::fstat(pidfd).ok().map(|st| st.st_ino) }
        } else {
            Birth { start_time: start_time(pid), pidfs: None }
        }
    }

    /// Whether the process at `pid` now is known to be another process than
    /// the one recorded. A process that is gone is not another one (its group
    /// may still run); one recorded by its pidfs inode on a machine that no
    /// longer has pidfs (it restarted into an older kernel) is another one.
    pub fn is_other_than(&self, pid: i32) -> bool {
        match (self.pidfs, self.start_time) {
            (Some(then), _) if pidfs_available() => pidfs_inode(pid).is_some_and(|now| now != then),
            (Some(_), _) => start_time(pid).is_some(),
            (None, Some(then)) => start_time(pid).is_some_and(|now| now != then),
            (None, None) => false,
        }
    }
}

/// The pidfs inode of a live (or not yet reaped) process.
fn pidfs_inode(pid: i32) -> Option<u64> {
    use rustix::process::{Pid as RPid, PidfdFlags, pidfd_open};
    let fd = pidfd_open(RPid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
    rustix::fs::fstat(&fd).ok().map(|st| st.st_ino)
}

/// What this machine's kernel gives: no pidfds (before Linux 5.3), pidfds,
/// or pidfds on pidfs (Linux 6.9 and later: their inode numbers name processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pidfds {
    None,
    Plain,
    OnPidfs,
}

/// Asked once, of `plan`'s own process.
pub(crate) fn pidfds() -> Pidfds {
    static KIND: std::sync::OnceLock<Pidfds> = std::sync::OnceLock::new();
    *KIND.get_or_init(|| {
        const PIDFS_MAGIC: u64 = 0x5049_4446;
        match rustix::process::pidfd_open(rustix::process::getpid(), rustix::process::PidfdFlags::empty()) {
            Err(_) => Pidfds::None,
            Ok(fd) if rustix::fs::fstatfs(&fd).is_ok_and(|st| st.f_type as u64 == PIDFS_MAGIC) => Pidfds::OnPidfs,
            Ok(_) => Pidfds::Plain,
        }
    })
}

fn pidfs_available() -> bool {
    pidfds() == Pidfds::OnPidfs
}

/// When a process started, in clock ticks since boot (`/proc/PID/stat` field 22):
/// with the pid, it names one process even after the pid is reused.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last `)`.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Whether a process group has a process that is still running. A zombie
/// (exited, not yet reaped: common in containers whose PID 1 does not reap)
/// still answers `kill(pid, 0)` but runs nothing, so it does not count.
/// Without `/proc`, any answer to `kill` counts.
fn group_alive(pgid: i32) -> bool {
    if killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else { return true };
    procs.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { return false };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
        // After the command name (which may hold spaces): state, ppid, pgrp, ...
        let mut fields = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}

/// The environment variable every step's processes carry: `RUN_ID/STEP`.
pub const STEP_MARKER: &str = "PLAN_STEP";

/// The live processes (not zombies) whose environment carries a marker of
/// this run, as (step, process group); never `plan`'s own group.
pub fn marked(run_id: &str) -> Vec<(String, i32)> {
    let prefix = format!("{STEP_MARKER}={run_id}/");
    let own = nix::unistd::getpgrp().as_raw();
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let Some(step) = env
            .split(|&b| b == 0)
            .find_map(|var| var.strip_prefix(prefix.as_bytes()))
            .map(|s| String::from_utf8_lossy(s).into_owned())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let mut fields = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let Some(pgid) = fields.nth(1).and_then(|g| g.parse::<i32>().ok()) else { continue };
        if state != "Z" && pgid != own && !out.iter().any(|(_, g)| *g == pgid) {
            out.push((step, pgid));
        }
    }
    out
}

/// Stops what is left of the process groups a crashed run started, all at
/// once: SIGTERM to each, then one grace for all, then SIGKILL to what is
/// left. Returns the groups that were there. A group is only touched if its
/// leader is gone or is the same process as recorded ([`Birth`]), so a
/// reused pid is never signalled.
pub fn stop_leftover_groups(groups: &[(i32, Birth)], grace: Duration) -> Vec<i32> {
    let ours: Vec<i32> = groups
        .iter()
        .filter(|&&(pgid, recorded)| pgid > 1 && group_alive(pgid) && !recorded.is_other_than(pgid))
        .map(|&(pgid, _)| pgid)
        .collect();
    for &pgid in &ours {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now().checked_add(grace).unwrap_or_else(std::time::Instant::now);
    while ours.iter().any(|&g| group_alive(g)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pgid in ours.iter().filter(|&&g| group_alive(g)) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    ours
}

/// How a step's process is started: right away (its start record is
/// written already; the syncer makes it durable beside the step), with a
/// callback that records its process group.
pub struct Launch {
    /// Called with the process group id and what names its leader as soon
    /// as the process exists: the shorter the gap, the smaller the window in
    /// which a killed `plan` leaves a process unrecorded (the step marker
    /// covers that window).
    pub spawned: Arc<dyn Fn(i32, Birth) + Send + Sync>,
}

/// Stdin for a step: /dev/null, opened once per `plan` and duplicated for
/// each step (opening it again for every process was 4% of the scheduler's
/// time on 1,000 steps of `true`, measured with perf record).
fn dev_null() -> std::io::Result<std::os::fd::OwnedFd> {
    static NULL: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    match NULL.get_or_init(|| std::fs::File::open("/dev/null").ok()) {
        Some(f) => Ok(f.try_clone()?.into()),
        None => Ok(std::fs::File::open("/dev/null")?.into()),
    }
}

/// A step's stdio: stdin, stdout's and stderr's write ends (one pipe for
/// both when `merged`), and the read ends `plan` drains.
struct StepIo {
    stdin: std::os::fd::OwnedFd,
    stdout: std::os::fd::OwnedFd,
    stderr: std::os::fd::OwnedFd,
    out_reader: std::os::fd::OwnedFd,
    err_reader: Option<std::os::fd::OwnedFd>,
}

fn step_io(merged: bool) -> std::io::Result<StepIo> {
    let stdin = dev_null()?;
    let (out_reader, stdout) = std::io::pipe()?;
    let (stderr, err_reader) = if merged {
        (stdout.try_clone()?.into(), None)
    } else {
        let (r, w) = std::io::pipe()?;
        (w.into(), Some(r.into()))
    };
    Ok(StepIo { stdin, stdout: stdout.into(), stderr, out_reader: out_reader.into(), err_reader })
}

/// A pipe's read end for tokio (non-blocking; the step's end stays blocking).
fn async_reader(fd: std::os::fd::OwnedFd) -> std::io::Result<tokio::net::unix::pipe::Receiver> {
    rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::NONBLOCK)?;
    tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(fd)
}

fn signal_group(pgid: i32, sig: Signal) {
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}

/// Where a stream's lines go.
#[derive(Clone, Copy)]
enum Dest {
    /// The log and the terminal.
    Show,
    /// The log and the terminal, and kept as the step's capture.
    ShowAndCapture,
    /// Only kept as the capture: the step's stdout is a secret.
    CaptureOnly,
    /// Only kept, and not masked: read by `plan` itself, never shown.
    Raw,
}

async fn drain<R: AsyncRead + Unpin>(
    r: R,
    step: Arc<str>,
    stream: Stream,
    log: Arc<LogFile>,
    sink: Arc<dyn OutputSink>,
    secrets: Arc<Secrets>,
    to: Dest,
) -> Option<String> {
    let (keep, show) = match to {
        Dest::Show => (false, true),
        Dest::ShowAndCapture => (true, true),
        Dest::CaptureOnly | Dest::Raw => (true, false),
    };
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    let mut kept = keep.then(String::new);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']);
                let line = if matches!(to, Dest::Raw) { text.to_owned() } else { secrets.mask(text) };
                if show {
                    log.write_line(&line);
                    sink.line(&step, stream, &line);
                }
                if let Some(k) = kept.as_mut() {
                    k.push_str(&line);
                    k.push('\n');
                }
            }
        }
    }
    kept
}

/// Starts a step's process: by `plan` itself when only the step marker is
/// added to the environment and no working directory is set, else through
/// tokio's `Command` (which then owns the environment and the directory).
fn start(spec: &ProcSpec, io: &StepIo) -> std::io::Result<Child> {
    if spec.cwd.is_none() && spec.env.iter().all(|(k, _)| k == STEP_MARKER) {
        let stdio = crate::spawn::Stdio { stdin: &io.stdin, stdout: &io.stdout, stderr: &io.stderr };
        if let Some(started) = crate::spawn::spawn(&spec.program, &spec.args, &spec.env, &stdio) {
            return started;
        }
    }
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args).process_group(0).kill_on_drop(false);
    cmd.stdin(io.stdin.try_clone()?).stdout(io.stdout.try_clone()?).stderr(io.stderr.try_clone()?);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    Ok(Child::Tokio(cmd.spawn()?))
}

/// Runs one process to its end. Never panics on what the step does.
pub async fn run(
    spec: ProcSpec,
    step: &str,
    log_path: &Path,
    sink: Arc<dyn OutputSink>,
    secrets: Arc<Secrets>,
    mut cancel: watch::Receiver<Cancel>,
    launch: Launch,
) -> ProcResult {
    let fail = |m: String| ProcResult { end: ProcEnd::SpawnFailed(m), stdout: None };
    let log = Arc::new(LogFile::new(log_path));
    // Stdout and stderr into one pipe when nobody tells them apart.
    let io = match step_io(!spec.capture && !sink.separates_streams()) {
        Ok(io) => io,
        Err(e) => return fail(format!("cannot start `{}`: {e}", spec.program)),
    };
    let started = start(&spec, &io);
    // The step's ends of the pipes close here: the drains see EOF when the step's processes are gone.
    let StepIo { stdin, stdout, stderr, out_reader, err_reader } = io;
    drop((stdin, stdout, stderr));
    let mut child = match started {
        Ok(c) => {
            (launch.spawned)(c.pgid(), c.birth());
            c
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = match &spec.cwd {
                Some(cwd) if !Path::new(cwd).is_dir() => format!("working directory `{cwd}` does not exist"),
                _ => format!("program `{}` not found", spec.program),
            };
            return fail(format!("cannot start: {what}"));
        }
        Err(e) => return fail(format!("cannot start `{}`: {e}", spec.program)),
    };
    let pgid = child.pgid();
    let step: Arc<str> = Arc::from(step);
    let out = async_reader(out_reader).ok().map(|o| {
        let to = match (spec.capture, spec.secret_stdout) {
            (_, true) if spec.raw_stdout => Dest::Raw,
            (_, true) => Dest::CaptureOnly,
            (true, false) => Dest::ShowAndCapture,
            (false, false) => Dest::Show,
        };
        tokio::spawn(drain(o, step.clone(), Stream::Stdout, log.clone(), sink.clone(), secrets.clone(), to))
    });
    let err = err_reader.and_then(|e| async_reader(e).ok()).map(|e| {
        tokio::spawn(drain(e, step.clone(), Stream::Stderr, log.clone(), sink.clone(), secrets.clone(), Dest::Show))
    });

    let timeout = async {
        match spec.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    let mut stopped: Option<ProcEnd> = None;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st,
            _ = &mut timeout, if stopped.is_none() => {
                stopped = Some(ProcEnd::TimedOut(spec.timeout.unwrap_or_default()));
                signal_group(pgid, Signal::SIGTERM);
                break stop_within(&mut child, pgid, spec.grace, &mut cancel).await;
            }
            changed = cancel.changed() => {
                let level = if changed.is_ok() { *cancel.borrow() } else { Cancel::None };
                if level == Cancel::None { continue; }
                stopped = Some(ProcEnd::Interrupted);
                if level == Cancel::Kill {
                    signal_group(pgid, Signal::SIGKILL);
                    break child.wait().await;
                }
                signal_group(pgid, Signal::SIGTERM);
                break stop_within(&mut child, pgid, spec.grace, &mut cancel).await;
            }
        }
    };
    // The leader is gone; nothing it started may outlive the step.
    signal_group(pgid, Signal::SIGKILL);
    let collect = async {
        let stdout = match out {
            Some(h) => h.await.ok().flatten(),
            None => None,
        };
        if let Some(h) = err {
            let _ = h.await;
        }
        stdout
    };
    // A process that left the group (setsid) may still hold the pipes: do not wait on it forever.
    let stdout = tokio::time::timeout(Duration::from_secs(5), collect).await.ok().flatten();
    let end = match (stopped, status) {
        (Some(s), _) => s,
        (None, Ok(Exit::Code(c))) => ProcEnd::Exited(c),
        (None, Ok(Exit::Signal(sig))) => {
            ProcEnd::Signaled(Signal::try_from(sig).map_or(sig.to_string(), |s| s.as_str().to_owned()))
        }
        (None, Err(e)) => ProcEnd::SpawnFailed(format!("cannot wait for the process: {e}")),
    };
    ProcResult { end, stdout }
}

/// After SIGTERM: wait for the grace period (or a second Ctrl-C), then SIGKILL.
async fn stop_within(
    child: &mut Child,
    pgid: i32,
    grace: Duration,
    cancel: &mut watch::Receiver<Cancel>,
) -> std::io::Result<Exit> {
    let kill_now = async {
        loop {
            if *cancel.borrow() == Cancel::Kill {
                return;
            }
            if cancel.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        st = child.wait() => return st,
        _ = tokio::time::sleep(grace) => {}
        _ = kill_now => {}
    }
    signal_group(pgid, Signal::SIGKILL);
    child.wait().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep").arg("30").process_group(0).spawn().expect("sleep")
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
    }

    /// What names a process tells it from another one with its pid, and a
    /// resume stops a recorded group only when its leader is the one recorded.
    #[test]
    fn a_group_is_stopped_only_when_its_leader_is_the_recorded_one() {
        let (mut ours, mut stranger) = (sleeper(), sleeper());
        let (p, q) = (ours.id() as i32, stranger.id() as i32);
        let birth = Birth::of(p);
        assert!(birth.pidfs.is_some() || birth.start_time.is_some(), "{birth:?}");
        assert!(!birth.is_other_than(p));
        // The stranger's pid recorded with our leader's birth: a reused pid.
        assert!(birth.is_other_than(q), "{birth:?} names {q} too");
        // Where the kernel has no pidfs, the start time (clock ticks since
        // boot) tells them apart, unless both started in the same tick.
        let by_time = Birth { start_time: start_time(p), pidfs: None };
        assert!(!by_time.is_other_than(p));
        assert_eq!(by_time.is_other_than(q), start_time(q) != by_time.start_time);
        let stopped = stop_leftover_groups(&[(p, birth), (q, birth)], Duration::from_secs(2));
        assert_eq!(stopped, vec![p]);
        let _ = ours.wait();
        assert!(alive(q), "the stranger's group was signalled");
        // A leader that is gone is not another process: its group may still run.
        assert!(!birth.is_other_than(p) || alive(p), "{birth:?}");
        let _ = stranger.kill();
        let _ = stranger.wait();
    }
}
