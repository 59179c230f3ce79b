//! Output of `plan run`: plain prefixed lines when not on a terminal, a live
//! view (indicatif) on one, or JSON events for automation. Everything shown
//! here has already been masked.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::process::{OutputSink, Stream};
use crate::status::{RunStatus, Status};

pub trait Reporter: OutputSink {
    fn run_started(&self, run_id: &str, plan: &str, total: usize, resumed: bool);
    fn step_started(&self, step: &str, attempt: u32);
    fn step_finished(&self, step: &str, status: Status, duration: Duration, message: Option<&str>);
    fn note(&self, text: &str);
    fn run_finished(
        &self,
        run_id: &str,
        status: RunStatus,
        duration: Duration,
        rows: &[(String, Status, Option<Duration>)],
        journal: &str,
    );
    /// Asks the operator y/N on the terminal; anything but yes is no.
    fn confirm(&self, message: &str) -> bool;
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

pub fn summary_table(rows: &[(String, Status, Option<Duration>)]) -> String {
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let mut s = format!("{:<w$}  {:<14}  DURATION\n", "STEP", "STATUS");
    for (id, st, d) in rows {
        s.push_str(&format!("{id:<w$}  {:<14}  {}\n", st.as_str(), d.map_or("-".into(), secs)));
    }
    s
}

/// Plain lines, or a live view when `live` (stderr is a terminal).
pub struct Human {
    /// `-q`: only failures and the run's last line.
    quiet: bool,
    out: Mutex<std::io::Stdout>,
    bar: Option<ProgressBar>,
    running: Mutex<BTreeMap<String, Instant>>,
    done: Mutex<usize>,
}

impl Human {
    pub fn new(live: bool, quiet: bool) -> Human {
        let bar = (live && !quiet).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Human {
            quiet,
            out: Mutex::new(std::io::stdout()),
            bar,
            running: Mutex::new(BTreeMap::new()),
            done: Mutex::new(0),
        }
    }

    fn print(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => {
                if let Ok(mut o) = self.out.lock() {
                    let _ = writeln!(o, "{line}");
                }
            }
        }
    }

    fn refresh(&self) {
        let Some(b) = &self.bar else { return };
        let running = self
            .running
            .lock()
            .map(|r| r.iter().map(|(id, t)| format!("{id} {}s", t.elapsed().as_secs())).collect::<Vec<_>>().join(", "));
        b.set_message(format!("running: {}", running.unwrap_or_default()));
        if let Ok(d) = self.done.lock() {
            b.set_position(*d as u64);
        }
    }
}

impl OutputSink for Human {
    fn line(&self, step: &str, _stream: Stream, line: &str) {
        if !self.quiet {
            self.print(&format!("[{step}] {line}"));
        }
    }
    fn separates_streams(&self) -> bool {
        false
    }
}

impl Reporter for Human {
    fn run_started(&self, run_id: &str, plan: &str, total: usize, resumed: bool) {
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
        }
        let verb = if resumed { "resuming" } else { "starting" };
        if !self.quiet {
            self.print(&format!("{verb} run {run_id} of {plan} ({total} steps)"));
        }
    }
    fn step_started(&self, step: &str, attempt: u32) {
        if let Ok(mut r) = self.running.lock() {
            r.insert(step.to_owned(), Instant::now());
        }
        let again = if attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
        if !self.quiet {
            self.print(&format!("[{step}] started{again}"));
        }
        self.refresh();
    }
    fn step_finished(&self, step: &str, status: Status, duration: Duration, message: Option<&str>) {
        if let Ok(mut r) = self.running.lock() {
            r.remove(step);
        }
        if let Ok(mut d) = self.done.lock() {
            *d += 1;
        }
        let msg = message.map(|m| format!(": {m}")).unwrap_or_default();
        if !self.quiet || matches!(status, Status::Failed | Status::Interrupted) {
            let style = match status {
                Status::Succeeded => "32",
                Status::Failed | Status::Interrupted | Status::Blocked => "1;31",
                _ => "2",
            };
            let shown = crate::output::paint(status.as_str(), style);
            self.print(&format!("[{step}] {shown} in {}{msg}", secs(duration)));
        }
        self.refresh();
    }
    fn note(&self, text: &str) {
        self.print(text);
    }
    fn run_finished(
        &self,
        run_id: &str,
        status: RunStatus,
        duration: Duration,
        rows: &[(String, Status, Option<Duration>)],
        journal: &str,
    ) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if let Ok(mut o) = self.out.lock() {
            if !self.quiet {
                let _ = write!(o, "\n{}", summary_table(rows));
            }
            let _ = writeln!(o, "run {run_id} {} in {}; journal: {journal}", status.as_str(), secs(duration));
            let _ = o.flush();
        }
    }
    fn confirm(&self, message: &str) -> bool {
        match &self.bar {
            Some(b) => b.suspend(|| crate::builtin::ask(message)),
            None => crate::builtin::ask(message),
        }
    }
}

/// One JSON object per line on stdout.
pub struct Json {
    out: Mutex<std::io::Stdout>,
}

impl Json {
    pub fn new() -> Json {
        Json { out: Mutex::new(std::io::stdout()) }
    }
    fn emit(&self, v: serde_json::Value) {
        if let Ok(mut o) = self.out.lock() {
            let _ = writeln!(o, "{v}");
            let _ = o.flush();
        }
    }
}

impl Default for Json {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputSink for Json {
    fn line(&self, step: &str, stream: Stream, line: &str) {
        let stream = if stream == Stream::Stdout { "stdout" } else { "stderr" };
        self.emit(json!({"event": "step-output", "step": step, "stream": stream, "line": line}));
    }
}

impl Reporter for Json {
    fn run_started(&self, run_id: &str, plan: &str, total: usize, resumed: bool) {
        self.emit(json!({"event": "run-started", "run_id": run_id, "plan": plan, "steps": total, "resumed": resumed}));
    }
    fn step_started(&self, step: &str, attempt: u32) {
        self.emit(json!({"event": "step-started", "step": step, "attempt": attempt}));
    }
    fn step_finished(&self, step: &str, status: Status, duration: Duration, message: Option<&str>) {
        self.emit(json!({"event": "step-finished", "step": step, "status": status.as_str(), "duration_ms": duration.as_millis() as u64, "message": message}));
    }
    fn note(&self, text: &str) {
        self.emit(json!({"event": "note", "message": text}));
    }
    fn run_finished(
        &self,
        run_id: &str,
        status: RunStatus,
        duration: Duration,
        _rows: &[(String, Status, Option<Duration>)],
        journal: &str,
    ) {
        self.emit(json!({"event": "run-finished", "run_id": run_id, "status": status.as_str(), "duration_ms": duration.as_millis() as u64, "journal": journal}));
    }
    fn confirm(&self, message: &str) -> bool {
        crate::builtin::ask(message)
    }
}
