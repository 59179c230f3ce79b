//! Binding: every variable gets its value (default < --vars-file <
//! PLAN_VAR_<name> < --var), is checked against `required`, `choices` and
//! `pattern`, and every fact is either overridden or probed.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::compile::{Scope, full_match, parse_duration};
use crate::diagnostic::did_you_mean;
use crate::load::LoadedPlan;
use crate::model::{FactDecl, RunAction};
use crate::template::{Escape, Renderer, SplitError, TemplateError, parse_version, split_words};

pub const FACT_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest secret that is masked: masking `true`, `8` or `admin` would
/// garble every log line that happens to contain it.
pub const MIN_SECRET_CHARS: usize = 6;

/// Where a value came from, for messages and `plan show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    Unset,
    VarsFile(PathBuf),
    Env(String),
    Cli,
    Probe,
    /// Asked on the terminal (a secret).
    Prompt,
    FactDefault,
    Journal(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Unset => f.write_str("unset"),
            Origin::VarsFile(p) => write!(f, "--vars-file {}", p.display()),
            Origin::Env(n) => write!(f, "environment {n}"),
            Origin::Cli => f.write_str("--var"),
            Origin::Probe => f.write_str("probed"),
            Origin::Prompt => f.write_str("asked on the terminal"),
            Origin::FactDefault => f.write_str("fact default (probe failed)"),
            Origin::Journal(run) => write!(f, "journal of run {run}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bound {
    pub value: String,
    pub origin: Origin,
    pub secret: bool,
}

/// What the operator gave on the command line.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub vars: Vec<String>,
    pub vars_files: Vec<PathBuf>,
    /// Values recorded by the run being resumed (lowest precedence of what is given).
    pub journal: Vec<(String, String)>,
    /// The run being resumed, if any.
    pub resuming: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("invalid --var `{0}`: expected NAME=VALUE")]
    BadVarArg(String),
    #[error("unknown variable `{name}` given by {origin}")]
    Unknown { name: String, origin: Origin, help: String },
    #[error("cannot read vars file {path}: {message}")]
    VarsFile { path: PathBuf, message: String },
    #[error("variable `{name}` is required ({declared})")]
    Required { name: String, declared: String, help: String },
    #[error("variable `{name}` = `{value}` (from {origin}) is not one of its choices: {choices}")]
    NotAChoice { name: String, value: String, origin: Origin, choices: String, help: String },
    #[error("variable `{name}` = `{value}` (from {origin}) does not match its pattern `{pattern}`")]
    Pattern { name: String, value: String, origin: Origin, pattern: String, help: String },
    #[error("fact `{name}` could not be probed: {message}")]
    Fact { name: String, message: String, help: String },
    #[error("cannot select release plans: {message}")]
    Releases { message: String, help: String },
}

impl BindError {
    pub fn help(&self) -> Option<&str> {
        match self {
            BindError::BadVarArg(_) => Some("write --var name=value"),
            BindError::VarsFile { .. } => Some("a vars file is a YAML map of names to values"),
            BindError::Unknown { help, .. }
            | BindError::Required { help, .. }
            | BindError::NotAChoice { help, .. }
            | BindError::Pattern { help, .. }
            | BindError::Fact { help, .. }
            | BindError::Releases { help, .. } => Some(help),
        }
    }
}

/// All bound values, vars then facts, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub values: IndexMap<String, Bound>,
    /// The `data:` tables of the files bound, as templates read them (`data.NAME`).
    pub data: serde_json::Map<String, Value>,
}

impl Values {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|b| b.value.as_str())
    }

    /// The texts to mask ([`crate::secrets::masks_of`] every line of every secret value).
    pub fn secrets(&self) -> Vec<String> {
        crate::secrets::masks_of(self.secret_lines())
    }

    /// The names of the secret values (vars and facts).
    pub fn secret_names(&self) -> std::collections::HashSet<String> {
        self.values.iter().filter(|(_, b)| b.secret).map(|(k, _)| k.clone()).collect()
    }

    fn secret_lines(&self) -> impl Iterator<Item = &str> {
        self.values.values().filter(|b| b.secret).flat_map(|b| b.value.lines()).map(str::trim).filter(|l| !l.is_empty())
    }

    /// Warnings for secrets too short to mask (their names and how many lines, never the values).
    pub fn short_secrets(&self) -> Vec<String> {
        self.values
            .iter()
            .filter(|(_, b)| b.secret)
            .filter_map(|(name, b)| {
                let short = b.value.lines().map(str::trim).filter(|l| !l.is_empty() && l.chars().count() < MIN_SECRET_CHARS).count();
                (short > 0).then(|| {
                    format!(
                        "warning: secret `{name}` has {short} value(s) shorter than {MIN_SECRET_CHARS} characters, which are not masked (masking so short a text would garble every log)"
                    )
                })
            })
            .collect()
    }

    /// The template context: values, `env.*`, `plan.*`, `run.*`, and captures.
    pub fn context(
        &self,
        plan_name: &str,
        release: Option<&str>,
        run_id: &str,
        captures: &HashMap<String, String>,
    ) -> Value {
        let mut m = serde_json::Map::new();
        for (k, b) in &self.values {
            m.insert(k.clone(), Value::String(b.value.clone()));
        }
        for (k, v) in captures {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        let env: serde_json::Map<String, Value> = std::env::vars().map(|(k, v)| (k, Value::String(v))).collect();
        m.insert("env".into(), Value::Object(env));
        m.insert("plan".into(), json!({"name": plan_name, "release": release.unwrap_or("")}));
        m.insert("run".into(), json!({"id": run_id}));
        m.insert("data".into(), Value::Object(self.data.clone()));
        Value::Object(m)
    }
}

/// Collects operator-given values by name with their origin, lowest precedence first.
fn given(inputs: &Inputs) -> Result<HashMap<String, (String, Origin)>, BindError> {
    let mut out = HashMap::new();
    for (k, v) in &inputs.journal {
        out.insert(k.clone(), (v.clone(), Origin::Journal(inputs.resuming.clone().unwrap_or_default())));
    }
    for path in &inputs.vars_files {
        for (k, v) in read_vars_file(path)? {
            out.insert(k, (v, Origin::VarsFile(path.clone())));
        }
    }
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("PLAN_VAR_")
            && !name.is_empty()
        {
            out.insert(name.to_owned(), (v, Origin::Env(k.clone())));
        }
    }
    for arg in &inputs.vars {
        let (k, v) = arg.split_once('=').ok_or_else(|| BindError::BadVarArg(arg.clone()))?;
        if k.is_empty() {
            return Err(BindError::BadVarArg(arg.clone()));
        }
        out.insert(k.to_owned(), (v.to_owned(), Origin::Cli));
    }
    Ok(out)
}

fn read_vars_file(path: &Path) -> Result<Vec<(String, String)>, BindError> {
    let err = |message: String| BindError::VarsFile { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    if text.len() > crate::load::MAX_PLAN_BYTES {
        return Err(err("file too large".into()));
    }
    let map: IndexMap<String, Value> =
        serde_saphyr::from_str(&text).map_err(|e| err(e.without_snippet().to_string()))?;
    map.into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(err(format!("`{k}` must be a scalar"))),
            };
            Ok((k, s))
        })
        .collect()
}

/// Binds vars, then facts. Nothing runs if a var is missing or invalid.
/// `known` holds facts already probed (they are not probed again); `declared`
/// says whether a name exists anywhere in the plan and its release plans.
pub fn bind(
    c: Scope<'_>,
    inputs: &Inputs,
    renderer: &Renderer,
    known: Option<&Values>,
    declared: &dyn Fn(&str) -> bool,
) -> Result<Values, BindError> {
    let mut given = given(inputs)?;
    // An operator's typo must not silently fall back to a default.
    for (name, (_, origin)) in &given {
        if matches!(origin, Origin::Env(_) | Origin::Journal(_)) || declared(name) {
            continue;
        }
        let help = did_you_mean(name, c.vars.keys().chain(c.facts.keys()).map(String::as_str)).unwrap_or_else(|| {
            format!("this plan's variables: {}", c.vars.keys().cloned().collect::<Vec<_>>().join(", "))
        });
        return Err(BindError::Unknown { name: name.clone(), origin: origin.clone(), help });
    }
    let mut values = Values::default();
    for f in c.files {
        for (name, table) in &f.plan.data {
            values.data.entry(name.value.clone()).or_insert_with(|| table.value.to_json());
        }
    }
    for (name, v) in c.vars {
        let d = &v.decl;
        // Bound already (the base's vars, bound before the window): the same value, never asked twice.
        if let Some(b) = known.and_then(|k| k.values.get(name)) {
            given.remove(name);
            values.values.insert(name.clone(), b.clone());
            continue;
        }
        let (value, origin) = match given.remove(name) {
            // Unset in the run being resumed (optional, no default): still unset.
            Some((v, Origin::Journal(_))) if v.is_empty() && d.default.is_none() && !d.is_required() => {
                (v, Origin::Unset)
            }
            Some(g) => g,
            None => match &d.default {
                Some(def) => (def.value.clone(), Origin::Default),
                // A secret given on the command line is visible to every user in `ps`:
                // on a terminal, plan asks for it instead, without echo.
                None if d.is_required()
                    && d.is_secret()
                    && let Some(v) = ask_secret(name) =>
                {
                    (v, Origin::Prompt)
                }
                None if d.is_required() => {
                    let src = c.source(v.file);
                    return Err(BindError::Required {
                        name: name.clone(),
                        declared: format!("declared at {}:{}:{}", src.name, v.name.pos.line, v.name.pos.column),
                        help: format!(
                            "pass --var {name}=VALUE (or set PLAN_VAR_{name}){}{}",
                            d.description.as_ref().map(|s| format!(": {}", s.value)).unwrap_or_default(),
                            if d.is_secret() && inputs.resuming.is_some() {
                                "; secrets are never written to the journal, so a resumed run needs them again"
                            } else {
                                ""
                            }
                        ),
                    });
                }
                None => (String::new(), Origin::Unset),
            },
        };
        let shown = |v: &str| {
            if d.is_secret() { "***".to_owned() } else { v.to_owned() }
        };
        if let Some(choices) = &d.choices
            && origin != Origin::Unset
            && !choices.value.iter().any(|c| c.value == value)
        {
            let list: Vec<&str> = choices.value.iter().map(|c| c.value.as_str()).collect();
            return Err(BindError::NotAChoice {
                name: name.clone(),
                value: shown(&value),
                origin,
                choices: list.join(", "),
                help: did_you_mean(&value, list.iter().copied())
                    .unwrap_or_else(|| format!("pass one of: {}", list.join(", "))),
            });
        }
        if let Some(p) = &d.pattern
            && origin != Origin::Unset
            && let Ok(re) = regex::Regex::new(&p.value)
            && !full_match(&re, &value)
        {
            return Err(BindError::Pattern {
                name: name.clone(),
                value: shown(&value),
                origin,
                pattern: p.value.clone(),
                help: d.description.as_ref().map(|s| s.value.clone()).unwrap_or_else(|| "fix the value".to_owned()),
            });
        }
        values.values.insert(name.clone(), Bound { value, origin, secret: d.is_secret() });
    }
    // Fact templates see the vars (lint refuses a fact that reads a fact): one context serves every probe.
    let plan = &c.base().name.value;
    let ctx = values.context(plan, c.base().release.as_ref().map(|r| r.value.as_str()), "", &HashMap::new());
    for (name, f) in c.facts {
        // Tainted: a fact probed with a secret in its command is secret too.
        let secret = f.decl.is_secret() || reads_secret(&f.decl, &values);
        if let Some((value, origin)) = given.remove(name) {
            values.values.insert(name.clone(), Bound { value, origin, secret });
            continue;
        }
        if let Some(b) = known.and_then(|k| k.values.get(name)) {
            values.values.insert(name.clone(), b.clone());
            continue;
        }
        let probed = probe(&f.decl, &ctx, renderer);
        match &probed {
            // A secret fact's value never reaches a log, not even at -vvv.
            Ok(_) if secret => tracing::info!(fact = %name, "probed (secret)"),
            Ok(v) => tracing::info!(fact = %name, value = %v, "probed"),
            Err(e) => tracing::info!(fact = %name, error = %e, "probe failed"),
        }
        let (value, origin) = match probed {
            Ok(v) => (v, Origin::Probe),
            Err(message) => match &f.decl.default {
                Some(d) => (d.value.clone(), Origin::FactDefault),
                None => {
                    return Err(BindError::Fact {
                        name: name.clone(),
                        message: message.to_string(),
                        help: format!("give the value instead: --var {name}=VALUE"),
                    });
                }
            },
        };
        values.values.insert(name.clone(), Bound { value, origin, secret });
    }
    Ok(values)
}

/// Runs a fact's probe: no stdin, its own process group, killed at the timeout.
/// Asks for a secret on the controlling terminal with echo off; `None`
/// without a terminal (then the missing value is an error, as usual).
fn ask_secret(name: &str) -> Option<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return None;
    }
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
    let saved = tcgetattr(&tty).ok()?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&tty, SetArg::TCSANOW, &quiet).ok()?;
    let mut out = &tty;
    let _ = write!(out, "{name} (secret, not shown): ");
    let _ = out.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, SetArg::TCSANOW, &saved);
    let _ = writeln!(out);
    read.ok()?;
    let value = line.trim_end_matches(['\n', '\r']).to_owned();
    (!value.is_empty()).then_some(value)
}

/// Whether a fact's command reads a secret value.
fn reads_secret(f: &FactDecl, values: &Values) -> bool {
    let texts: Vec<&str> = match (&f.run, &f.shell) {
        (Some(run), _) => match &run.value {
            RunAction::Line(l) => vec![l.as_str()],
            RunAction::Argv(ws) => ws.iter().map(|w| w.value.as_str()).collect(),
        },
        (None, Some(sh)) => vec![sh.value.as_str()],
        (None, None) => Vec::new(),
    };
    texts
        .iter()
        .filter_map(|t| crate::template::analyze(t).ok())
        .flatten()
        .any(|u| values.values.get(&u.name).is_some_and(|b| b.secret))
}

/// Why a probe gave no value.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot split the command into words: {0}")]
    Split(#[from] SplitError),
    #[error("{0}")]
    Failed(String),
}

fn probe(f: &FactDecl, ctx: &Value, renderer: &Renderer) -> Result<String, ProbeError> {
    let (mut cmd, display) = match (&f.run, &f.shell) {
        (Some(run), _) => {
            let words: Vec<String> = match &run.value {
                RunAction::Line(l) => split_words(l)?,
                RunAction::Argv(ws) => ws.iter().map(|w| w.value.clone()).collect(),
            };
            let words = words.iter().map(|w| renderer.render(w, ctx, Escape::None)).collect::<Result<Vec<_>, _>>()?;
            let (prog, args) = words.split_first().ok_or_else(|| ProbeError::Failed("empty command".into()))?;
            let mut cmd = Command::new(prog);
            cmd.args(args);
            (cmd, format!("`{}`", words.join(" ")))
        }
        (None, Some(sh)) => {
            let script = renderer.render(&sh.value, ctx, Escape::Shell)?;
            let mut cmd = Command::new("sh");
            cmd.args(["-eu", "-c", &script]);
            (cmd, "its shell script".to_owned())
        }
        (None, None) => return Err(ProbeError::Failed("no command".into())),
    };
    let timeout = f.timeout.as_ref().and_then(|t| parse_duration(&t.value).ok()).unwrap_or(FACT_TIMEOUT);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| ProbeError::Failed(format!("cannot start {display}: {e}")))?;
    let mut out = child.stdout.take().ok_or_else(|| ProbeError::Failed("no stdout".into()))?;
    let mut err = child.stderr.take().ok_or_else(|| ProbeError::Failed("no stderr".into()))?;
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| ProbeError::Failed(e.to_string()))? {
            break st;
        }
        if start.elapsed() > timeout {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(ProbeError::Failed(format!("{display} timed out after {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&ereader.join().unwrap_or_default()).into_owned();
    if !status.success() {
        let last = stderr.lines().last().unwrap_or("").trim();
        return Err(ProbeError::Failed(format!(
            "{display} failed ({status}){}",
            if last.is_empty() { String::new() } else { format!(": {last}") }
        )));
    }
    match &f.pattern {
        Some(p) => {
            let re = regex::Regex::new(&p.value).map_err(|e| ProbeError::Failed(e.to_string()))?;
            let caps = re
                .captures(&stdout)
                .ok_or_else(|| ProbeError::Failed(format!("output of {display} does not match `{}`", p.value)))?;
            Ok(caps.get(1).or_else(|| caps.get(0)).map_or("", |m| m.as_str()).trim().to_owned())
        }
        None => Ok(stdout.trim().to_owned()),
    }
}

/// Why a release plan was or was not included.
#[derive(Debug, Clone)]
pub struct Selection {
    pub plan: LoadedPlan,
    pub included: bool,
    pub reason: String,
}

/// Picks the release plans whose `release` lies in `(from, to]` of the base plan's `releases`.
pub fn select_releases(
    base: &LoadedPlan,
    releases: &[LoadedPlan],
    values: &Values,
    renderer: &Renderer,
) -> Result<Vec<Selection>, BindError> {
    let Some(window) = &base.plan.releases else {
        return Ok(releases
            .iter()
            .map(|p| Selection {
                plan: p.clone(),
                included: true,
                reason: "the base plan has no `releases:` window".into(),
            })
            .collect());
    };
    let ctx = values.context(&base.plan.name.value, None, "", &HashMap::new());
    let render = |t: &str| renderer.render(t, &ctx, Escape::None).map(|s| s.trim().to_owned());
    let err = |message: TemplateError| BindError::Releases {
        message: message.to_string(),
        help: "check the values of the variables `releases:` uses".into(),
    };
    let not_version = |message: String| BindError::Releases {
        message,
        help: "check the values of the variables `releases:` uses".into(),
    };
    let from = render(&window.from.value).map_err(err)?;
    let to = render(&window.to.value).map_err(err)?;
    let from_v = if from.is_empty() {
        None
    } else {
        Some(parse_version(&from).ok_or_else(|| not_version(format!("`from` rendered `{from}`, not a version")))?)
    };
    let to_v = parse_version(&to).ok_or_else(|| not_version(format!("`to` rendered `{to}`, not a version")))?;
    let shown_from = if from.is_empty() { "nothing installed".to_owned() } else { from.clone() };
    Ok(releases
        .iter()
        .map(|p| {
            let rel = p.plan.release.as_ref().map(|r| r.value.clone()).unwrap_or_default();
            let v = parse_version(&rel);
            let included = v.as_ref().is_some_and(|v| from_v.as_ref().is_none_or(|f| v > f) && v <= &to_v);
            let reason = if included {
                format!("{rel} is in ({shown_from}, {to}]")
            } else {
                format!("{rel} is not in ({shown_from}, {to}]")
            };
            Selection { plan: p.clone(), included, reason }
        })
        .collect())
}
