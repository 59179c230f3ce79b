//! Runs the built `plan` binary the way a user does, and reads its output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_plan")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `plan ARGS` in `dir`, with no plan path or plan variables inherited from the caller.
pub fn plan_in(dir: &Path, args: &[&str]) -> Run {
    plan_env(dir, args, &[])
}

pub fn plan_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k == "PLAN_PATH"
            || k.starts_with("PLAN_VAR_")
            || k == "RUST_LOG"
            || k.starts_with("LC_")
            || k == "NO_COLOR"
            || k == "CLICOLOR_FORCE"
        {
            cmd.env_remove(k);
        }
    }
    // Output is the same on every machine: a UTF-8 locale unless a test says otherwise.
    cmd.env("LANG", "C.UTF-8").env("TERM", "xterm");
    for (k, v) in env {
        cmd.env(k, v);
    }
    out(cmd.output().expect("run plan"))
}

pub fn plan(args: &[&str]) -> Run {
    plan_in(&root(), args)
}

fn out(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A temporary folder with plan files in it.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir { dir: tempfile::tempdir().expect("tempdir") }
    }
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn plan(&self, args: &[&str]) -> Run {
        plan_in(self.path(), args)
    }
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The diagnostics of a `plan lint --format json` report as (code, line,
/// column, and one more text field, e.g. "file" or "message").
pub fn diagnostic_rows(report: &serde_json::Value, field: &str) -> Vec<(String, u64, u64, String)> {
    report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_owned(),
                d["line"].as_u64().unwrap_or_default(),
                d["column"].as_u64().unwrap_or_default(),
                d[field].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Starts `plan ARGS` in `dir` without waiting, in its own process group
/// (as a terminal would), stdout and stderr to files in `dir`.
pub fn spawn_plan(dir: &Path, args: &[&str]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("spawned.out")).expect("out file"))
        .stderr(std::fs::File::create(dir.join("spawned.err")).expect("err file"))
        .process_group(0);
    for (k, _) in std::env::vars() {
        if k == "PLAN_PATH" || k.starts_with("PLAN_VAR_") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().expect("spawn plan")
}

/// Waits until `path` exists (a step reached a point), or panics after `secs`.
pub fn wait_for_file(path: &Path, secs: u64) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(start.elapsed().as_secs() < secs, "timed out waiting for {}", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie still answers kill(0); read its state to tell.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// The journal's events for the only run in `state`.
pub fn journal_events(state: &Path) -> Vec<serde_json::Value> {
    let runs = state.join("runs");
    let mut ids: Vec<_> = std::fs::read_dir(&runs).expect("runs dir").flatten().map(|e| e.path()).collect();
    ids.sort();
    let text = std::fs::read_to_string(ids.last().expect("a run").join("journal.jsonl")).expect("journal");
    text.lines().map(json).collect()
}

/// The release plans `plan show` says it included, in order.
pub fn included_plans(show_output: &str) -> Vec<String> {
    show_output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("included "))
        .map(|l| l.split(' ').next().unwrap_or("").to_owned())
        .collect()
}

/// `plan ARGS` in `dir` with `input` on standard input.
pub fn plan_stdin(dir: &Path, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove("PLAN_PATH");
    let mut child = cmd.spawn().expect("run plan");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    out(child.wait_with_output().expect("wait plan"))
}

/// The cargo target dir (`CARGO_TARGET_DIR` if set, else `target/`): where
/// tests keep venvs and other generated things, never in tracked files.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// A Python venv `target_dir()/py/NAME` with `packages` installed from PyPI
/// (created on first use; pip skips what is already there).
pub fn python_venv(name: &str, packages: &[&str]) -> PathBuf {
    // Tests of one binary run as threads: two creating one venv at once see
    // each other's half-made `bin/pip` (this failed on a fresh clone).
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = target_dir().join("py").join(name);
    if !dir.join("bin/pip").exists() {
        std::fs::create_dir_all(dir.parent().expect("parent")).expect("mkdir");
        let out = Command::new("python3").args(["-m", "venv"]).arg(&dir).output().expect("python3 -m venv");
        assert!(out.status.success(), "python3 -m venv failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(dir.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages)
        .output()
        .expect("pip");
    assert!(out.status.success(), "pip install {packages:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// Starts `plan ARGS` in `dir`, waits until each of `files` exists there
/// (the steps are running), and SIGKILLs `plan`, as a crash or the OOM killer would.
pub fn crash_plan_when(dir: &Path, args: &[&str], files: &[&str]) {
    let mut child = spawn_plan(dir, args);
    for f in files {
        wait_for_file(&dir.join(f), 20);
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().expect("SIGKILL plan");
    child.wait().expect("wait");
}

/// Runs a command that must succeed; its stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
