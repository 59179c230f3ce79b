//! Loading tutor's configuration twice (as installed, then with the target
//! wheel first on `sys.path`) through a [`Runner`], so a run and a dry run
//! start the same commands in their own ways.

use std::future::Future;
use std::path::{Path, PathBuf};

use super::compare::{Drift, Snapshot, compare, secret_name};

/// A rendered `review_defaults:` action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Spec {
    pub tutor: String,
    pub root: String,
    pub plugin: String,
    pub target: String,
    pub keep: Vec<String>,
    /// `(KEY, VALUE)` that another step of the plan sets.
    pub pin: Vec<(String, String)>,
    pub expected: Vec<String>,
    /// The var `keep` is rendered from, to say how to keep a value.
    pub keep_var: Option<String>,
}

impl Spec {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "compare tutor's configuration (root {}) with the installed {} and with {}=={} (downloaded, not installed); ask before any default that changes what runs",
            self.root, self.plugin, self.plugin, self.target
        );
        if !self.keep.is_empty() {
            s.push_str(&format!("; keep at the installed value: {}", self.keep.join(", ")));
        }
        if !self.pin.is_empty() {
            let pins: Vec<String> = self.pin.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("; set by the plan: {}", pins.join(" ")));
        }
        s
    }

    pub fn keep_hint(&self) -> String {
        match &self.keep_var {
            Some(v) => format!("to keep a current value, re-run with --var {v}=KEY,KEY"),
            None => "to keep a current value, list its key in this step's `keep`".to_owned(),
        }
    }
}

/// Starts a command of the review and waits for it.
pub trait Runner {
    /// `Ok(stdout)` when it exits 0 (stdout only when `capture`: it then
    /// holds secrets and is never shown or logged), `Err(why)` otherwise.
    fn run(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        capture: bool,
    ) -> impl Future<Output = Result<String, String>>;
}

/// What the review found, and what keeping the chosen keys writes.
pub struct Reviewed {
    pub drift: Drift,
    /// `KEY=VALUE` for `tutor config save --set`: the kept keys config.yml does not set yet.
    pub keep_sets: Vec<String>,
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The Python that runs `tutor`: the interpreter of its `#!` line.
pub fn python_of(tutor: &str) -> Result<String, String> {
    let path = which(tutor).ok_or_else(|| format!("`{tutor}` not found on PATH"))?;
    let head = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(first);
    let Some(interp) = line.strip_prefix("#!") else {
        return Err(format!(
            "{} is not a Python script (a binary build of tutor?): the review loads tutor's configuration with tutor's Python, so tutor must be installed with pip",
            path.display()
        ));
    };
    let mut words = interp.split_whitespace();
    match words.next() {
        Some(env) if env.ends_with("/env") => words.next().map(str::to_owned),
        Some(p) => Some(p.to_owned()),
        None => None,
    }
    .ok_or_else(|| format!("{}: its `#!` line names no interpreter", path.display()))
}

fn snapshot(json: &str, what: &str) -> Result<Snapshot, String> {
    serde_json::from_str(json.trim()).map_err(|e| format!("cannot read tutor's configuration {what}: {e}"))
}

/// Loads both configurations and compares them. Read-only: it downloads
/// the target wheel into a temporary folder and changes nothing else.
pub async fn gather<R: Runner>(runner: &R, spec: &Spec) -> Result<Reviewed, String> {
    let python = python_of(&spec.tutor)?;
    let dir = tempfile::Builder::new()
        .prefix("plan-review-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let dump = dir.path().join("dump.py");
    std::fs::write(&dump, super::DUMP_PY).map_err(|e| format!("cannot write {}: {e}", dump.display()))?;
    let load = |env: Vec<(String, String)>| {
        let argv = vec![python.clone(), dump.display().to_string(), spec.root.clone(), spec.plugin.clone()];
        runner.run(argv, env, true)
    };
    let before = snapshot(&load(Vec::new()).await?, "as installed")?;
    let same = |d: Drift| Reviewed { drift: d, keep_sets: Vec::new() };
    if before.version.is_none() || before.version.as_deref() == Some(spec.target.as_str()) || !before.enabled {
        return Ok(same(Drift {
            plugin: spec.plugin.clone(),
            installed: before.version.clone(),
            target: spec.target.clone(),
            disabled: !before.enabled,
            ..Drift::default()
        }));
    }
    let mut keep_sets = Vec::new();
    let mut overrides = Vec::new();
    for k in &spec.keep {
        let Some(v) = before.full.get(k) else {
            let help = crate::diagnostic::did_you_mean(k, before.full.keys().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(format!("`keep`: {k} is not a key of tutor's configuration{help}"));
        };
        if before.user.contains(k) {
            continue; // config.yml sets it: the site keeps it already
        }
        if secret_name(k) || before.unique.contains(k) {
            return Err(format!(
                "`keep`: {k} holds a secret, which plan does not write on a command line; set it yourself with `tutor config save --set`"
            ));
        }
        let json = v.to_string();
        overrides.push((format!("TUTOR_{k}"), json.clone()));
        keep_sets.push(format!("{k}={json}"));
    }
    let wheels = dir.path().join("wheel");
    let want = format!("{}=={}", spec.plugin, spec.target);
    runner
        .run(
            [&python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"]
                .into_iter()
                .map(str::to_owned)
                .chain(["--quiet".into(), "--dest".into(), wheels.display().to_string(), want.clone()])
                .collect(),
            Vec::new(),
            false,
        )
        .await
        .map_err(|e| format!("cannot download {want}: {e}"))?;
    let wheel = only_wheel(&wheels)?;
    let site = dir.path().join("site");
    runner
        .run(
            vec![
                python.clone(),
                "-m".into(),
                "zipfile".into(),
                "-e".into(),
                wheel.display().to_string(),
                site.display().to_string(),
            ],
            Vec::new(),
            false,
        )
        .await
        .map_err(|e| format!("cannot unpack {}: {e}", wheel.display()))?;
    let path = match std::env::var("PYTHONPATH") {
        Ok(p) if !p.is_empty() => format!("{}:{p}", site.display()),
        _ => site.display().to_string(),
    };
    let mut env = vec![("PYTHONPATH".to_owned(), path)];
    env.extend(overrides);
    env.extend(spec.pin.iter().map(|(k, v)| (format!("TUTOR_{k}"), v.clone())));
    let after = snapshot(&load(env).await?, &format!("with {want}"))?;
    if after.version.as_deref() != Some(spec.target.as_str()) {
        return Err(format!(
            "{want} did not load ahead of the installed {} (it loaded {}): cannot compare",
            before.version.as_deref().unwrap_or("?"),
            after.version.as_deref().unwrap_or("nothing")
        ));
    }
    let pinned: Vec<String> = spec.pin.iter().map(|(k, _)| k.clone()).collect();
    let drift = compare(&before, &after, &spec.plugin, &spec.target, &spec.keep, &pinned, &spec.expected);
    // A value that contains a secret is not written on a command line either.
    let written = |k: &str| keep_sets.iter().any(|s| s.starts_with(&format!("{k}=")));
    if let Some(k) = spec
        .keep
        .iter()
        .find(|k| written(k) && drift.kept.iter().any(|(x, v)| x == *k && !matches!(v, super::Shown::Value(_))))
    {
        return Err(format!(
            "`keep`: {k} contains a secret, which plan does not write on a command line; keep the key it follows instead"
        ));
    }
    Ok(Reviewed { drift, keep_sets })
}

fn only_wheel(dir: &Path) -> Result<PathBuf, String> {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("expected one wheel in {}, found {}", dir.display(), found.len())),
    }
}

/// `tutor config save --set K=V ...`: the argv that keeps the chosen values.
pub fn keep_args(spec: &Spec, sets: &[String]) -> Vec<String> {
    let mut argv = vec![spec.tutor.clone(), "--root".into(), spec.root.clone(), "config".into(), "save".into()];
    for s in sets {
        argv.push("--set".into());
        argv.push(s.clone());
    }
    argv
}

/// Runs the review's commands plainly, one after another (`--dry-run`):
/// stderr is kept for the error when a command fails.
pub struct Plain {
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
}

impl Runner for Plain {
    async fn run(&self, argv: Vec<String>, env: Vec<(String, String)>, capture: bool) -> Result<String, String> {
        use std::process::{Command, Stdio};
        let Some((program, args)) = argv.split_first() else { return Err("empty command".into()) };
        let mut cmd = Command::new(program);
        cmd.args(args).envs(self.env.iter().cloned().chain(env)).stdin(Stdio::null());
        cmd.stdout(if capture { Stdio::piped() } else { Stdio::null() });
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        let out = cmd.output().map_err(|e| format!("cannot start `{program}`: {e}"))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(5)..].join("\n");
        Err(format!(
            "`{}` failed ({}){}",
            argv.join(" "),
            out.status,
            if tail.is_empty() { String::new() } else { format!(":\n{tail}") }
        ))
    }
}
