//! `plan logs [RUN] [STEP] [--follow]`: a run's step output, finished or
//! live. The logs were masked when written, so they hold no secret.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::journal::{self, RunSummary};

/// What to show: which run (default the newest), which step (default all).
pub struct Request<'a> {
    pub state_dir: Option<&'a Path>,
    pub run_id: Option<&'a str>,
    pub step: Option<&'a str>,
    pub follow: bool,
}

pub fn logs(req: Request) -> Result<u8, Error> {
    let state = journal::state_dir(req.state_dir);
    let runs = journal::list_runs(&state);
    // One argument may be a run id or, for the newest run, a step id.
    let (run, step) = match (req.run_id, req.step) {
        (Some(id), step) if runs.iter().any(|r| r.run_id == id) => (runs.iter().find(|r| r.run_id == id), step),
        (Some(id), None) if runs.last().is_some_and(|r| r.steps.iter().any(|s| s.id == id)) => (runs.last(), Some(id)),
        (Some(id), _) => {
            return Err(Error::usage(
                format!("no run `{id}` in {}", state.display()),
                Some("`plan runs` lists the runs; --state-dir chooses the folder"),
            ));
        }
        (None, step) => (runs.last(), step),
    };
    let Some(run) = run else {
        return Err(Error::usage(format!("no runs in {}", state.display()), Some("--state-dir chooses the folder")));
    };
    if let Some(s) = step
        && !run.steps.iter().any(|x| x.id == s)
    {
        let help = crate::diagnostic::did_you_mean(s, run.steps.iter().map(|x| x.id.as_str()));
        return Err(Error::usage(format!("run {} has no step `{s}`", run.run_id), help.as_deref()));
    }
    let dir = journal::runs_dir(&state).join(&run.run_id).join("logs");
    let steps: Vec<&str> = run.steps.iter().map(|s| s.id.as_str()).filter(|id| step.is_none_or(|s| s == *id)).collect();
    let log_of = |id: &str| dir.join(format!("{id}.log"));
    if !req.follow {
        for id in &steps {
            let Ok(text) = std::fs::read_to_string(log_of(id)) else { continue };
            if step.is_some() {
                crate::outp!("{text}");
            } else {
                crate::outp!("{}", prefixed(id, &text));
            }
        }
        return Ok(0);
    }
    follow(&state, &run.run_id, &steps, step.is_some(), &log_of)
}

fn prefixed(step: &str, text: &str) -> String {
    text.lines().map(|l| format!("[{step}] {l}\n")).collect()
}

/// Prints each log as it grows, until the run is over and nothing more comes.
fn follow(
    state: &Path,
    run_id: &str,
    steps: &[&str],
    one: bool,
    log_of: &dyn Fn(&str) -> PathBuf,
) -> Result<u8, Error> {
    let mut read_so_far: HashMap<&str, u64> = HashMap::new();
    let mut partial: HashMap<&str, String> = HashMap::new();
    loop {
        // Read the state before the logs: output written before the run ended is then never missed.
        let over = journal::list_runs(state)
            .into_iter()
            .find(|r| r.run_id == run_id)
            .is_none_or(|r: RunSummary| r.state() != "running");
        for &id in steps {
            let Ok(mut f) = std::fs::File::open(log_of(id)) else { continue };
            let at = read_so_far.entry(id).or_default();
            if f.seek(SeekFrom::Start(*at)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_err() {
                continue;
            }
            *at += buf.len() as u64;
            let text = partial.remove(id).unwrap_or_default() + &String::from_utf8_lossy(&buf);
            // Whole lines only; the rest waits for its end.
            let (done, rest) = match text.rfind('\n') {
                Some(i) => text.split_at(i + 1),
                None => ("", text.as_str()),
            };
            if !done.is_empty() {
                if one {
                    crate::outp!("{done}");
                } else {
                    crate::outp!("{}", prefixed(id, done));
                }
            }
            if !rest.is_empty() {
                partial.insert(id, rest.to_owned());
            }
        }
        if over {
            for (id, rest) in partial {
                if one { crate::outln!("{rest}") } else { crate::outp!("{}", prefixed(id, &rest)) }
            }
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
