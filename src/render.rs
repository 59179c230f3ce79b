//! Rendering a compiled step with bound values: the exact argv, script,
//! paths and environment that will run. `show` and `run` both use this, so
//! what `show` prints is what runs.

use crate::code::Code;
use std::time::Duration;

use serde_json::Value;

use crate::compile::{CStep, parse_duration};
use crate::model::{Pos, RunAction, Sp};
use crate::template::{Escape, Renderer, split_words};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Run(Vec<String>),
    Shell(String),
    Assert {
        condition: bool,
        message: String,
    },
    Confirm(String),
    Remove {
        path: String,
        within: Option<String>,
    },
    /// `review_defaults`: compare, show, ask, keep.
    Review(Box<crate::review::Spec>),
    /// `when` rendered false: nothing else of the step is rendered or run.
    Skipped,
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Run(_) => "run",
            Action::Shell(_) => "shell",
            Action::Assert { .. } => "assert",
            Action::Confirm(_) => "confirm",
            Action::Remove { .. } => "remove",
            Action::Review(_) => "review_defaults",
            Action::Skipped => "skipped",
        }
    }

    /// One line (or script) describing exactly what runs, secrets masked.
    /// Words are masked before they are quoted, so a secret inside a longer
    /// word is masked too.
    pub fn describe(&self, secrets: &[String]) -> String {
        mask(&self.describe_raw(secrets), secrets)
    }

    fn describe_raw(&self, secrets: &[String]) -> String {
        match self {
            Action::Run(argv) => argv
                .iter()
                .map(|w| {
                    let quoted = mask(&crate::template::shell_quote(w), secrets);
                    if secrets.iter().any(|s| w.contains(s.as_str())) && !quoted.contains("***") {
                        // The secret is part of a longer word, whose quoting hides it from the mask.
                        crate::template::shell_quote(&mask(w, secrets))
                    } else {
                        quoted
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            Action::Shell(s) => s.trim_end().to_owned(),
            Action::Assert { condition, message } => {
                if *condition {
                    "true".to_owned()
                } else {
                    format!("false: {message}")
                }
            }
            Action::Confirm(m) => m.clone(),
            Action::Remove { path, within } => match within {
                Some(w) => format!("{path} (within {w})"),
                None => path.clone(),
            },
            Action::Review(spec) => spec.describe(),
            Action::Skipped => "when is false".to_owned(),
        }
    }
}

/// A step as it runs. Its JSON form (fields in this order) is what
/// `--resume` hashes to tell whether a step still means the same.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RenderedStep {
    pub id: String,
    /// `Some(false)`: skipped.
    pub when: Option<bool>,
    pub action: Action,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub continue_on_error: bool,
    pub capture: Option<String>,
}

/// A template of a step that did not render: which field, where, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct RenderError {
    pub field: &'static str,
    pub pos: Pos,
    /// `not-boolean` for a `when`/`assert` that rendered neither `true` nor `false`.
    pub code: Code,
    pub message: String,
}

// Lint proved the template's syntax; what fails now is a value (a helper's
// argument, a key not in a table, an `env.X` not set).
fn at<T, E: std::fmt::Display>(field: &'static str, pos: Pos, r: Result<T, E>) -> Result<T, RenderError> {
    r.map_err(|e| RenderError { field, pos, code: Code::InvalidValue, message: e.to_string() })
}

fn boolean(field: &'static str, t: &Sp<String>, ctx: &Value, r: &Renderer) -> Result<bool, RenderError> {
    let s = at(field, t.pos, r.render(&t.value, ctx, Escape::None))?;
    match s.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(RenderError {
            field,
            pos: t.pos,
            code: Code::NotBoolean,
            message: format!("rendered `{other}`, expected exactly `true` or `false`"),
        }),
    }
}

fn text(field: &'static str, t: &Sp<String>, ctx: &Value, r: &Renderer, e: Escape) -> Result<String, RenderError> {
    at(field, t.pos, r.render(&t.value, ctx, e))
}

/// Renders a step. A template error is returned, never a half-rendered command.
/// `when` is evaluated first: a skipped step's action is not rendered.
pub fn render_step(step: &CStep, ctx: &Value, r: &Renderer) -> Result<RenderedStep, RenderError> {
    let d = &step.decl;
    let when = d.when.as_ref().map(|w| boolean("when", w, ctx, r)).transpose()?;
    let action = if when == Some(false) {
        Action::Skipped
    } else if let Some(run) = &d.run {
        let words = match &run.value {
            RunAction::Line(l) => at("run", run.pos, split_words(l))?,
            RunAction::Argv(ws) => ws.iter().map(|w| w.value.clone()).collect(),
        };
        let words = words.iter().map(|w| r.render(w, ctx, Escape::None)).collect::<Result<_, _>>();
        Action::Run(at("run", run.pos, words)?)
    } else if let Some(s) = &d.shell {
        Action::Shell(text("shell", s, ctx, r, Escape::Shell)?)
    } else if let Some(a) = &d.assert {
        let condition = boolean("assert", a, ctx, r)?;
        let message = match &d.message {
            Some(m) => text("message", m, ctx, r, Escape::None)?,
            None => format!("assertion failed: {}", a.value),
        };
        Action::Assert { condition, message }
    } else if let Some(c) = &d.confirm {
        Action::Confirm(text("confirm", c, ctx, r, Escape::None)?)
    } else if let Some(rm) = &d.remove {
        let path = at("remove", rm.pos, r.render(&rm.value.path, ctx, Escape::None))?;
        let within = rm.value.within.as_ref().map(|w| r.render(w, ctx, Escape::None)).transpose();
        Action::Remove { path, within: at("remove", rm.pos, within)? }
    } else if let Some(rv) = &d.review_defaults {
        let v = &rv.value;
        let keep = v.keep.as_ref().map(|k| text("keep", k, ctx, r, Escape::None)).transpose()?.unwrap_or_default();
        let keep_var = v.keep.as_ref().and_then(|k| {
            let names: std::collections::BTreeSet<String> =
                crate::template::analyze(&k.value).ok()?.into_iter().map(|u| u.name).collect();
            (names.len() == 1).then(|| names.into_iter().next()).flatten()
        });
        Action::Review(Box::new(crate::review::Spec {
            tutor: text("tutor", &v.tutor, ctx, r, Escape::None)?,
            root: text("root", &v.root, ctx, r, Escape::None)?,
            plugin: text("plugin", &v.plugin, ctx, r, Escape::None)?,
            target: text("target", &v.target, ctx, r, Escape::None)?,
            keep: keep.split([',', ' ', '\n', '\t']).filter(|k| !k.is_empty()).map(str::to_owned).collect(),
            pin: match &v.pin {
                Some(p) => {
                    let text = text("pin", p, ctx, r, Escape::None)?;
                    let mut pins = Vec::new();
                    for w in text.split_whitespace() {
                        match w.split_once('=') {
                            Some((k, v)) if !k.is_empty() => pins.push((k.to_owned(), v.to_owned())),
                            _ => {
                                return Err(RenderError {
                                    field: "pin",
                                    pos: p.pos,
                                    code: Code::InvalidValue,
                                    message: format!("`{w}` is not KEY=VALUE"),
                                });
                            }
                        }
                    }
                    pins
                }
                None => Vec::new(),
            },
            expected: v.expected.iter().map(|e| e.value.clone()).collect(),
            keep_var,
        }))
    } else {
        // compile refuses a step without an action; this is never reached from a compiled plan.
        return Err(RenderError {
            field: "id",
            pos: d.id.pos,
            code: Code::NoAction,
            message: "step has no action".into(),
        });
    };
    let env = d
        .env
        .iter()
        .map(|(k, v)| Ok((k.value.clone(), text("env", v, ctx, r, Escape::None)?)))
        .collect::<Result<Vec<_>, RenderError>>()?;
    Ok(RenderedStep {
        id: d.id.value.clone(),
        when,
        action,
        env,
        cwd: d.cwd.as_ref().map(|c| text("cwd", c, ctx, r, Escape::None)).transpose()?,
        timeout: d.timeout.as_ref().and_then(|t| parse_duration(&t.value).ok()),
        retries: d.retries.as_ref().map_or(0, |r| *r.value),
        retry_delay: d.retry_delay.as_ref().and_then(|t| parse_duration(&t.value).ok()).unwrap_or(Duration::ZERO),
        continue_on_error: d.continue_on_error.as_ref().is_some_and(|c| *c.value),
        capture: d.capture.as_ref().map(|c| c.value.clone()),
    })
}

/// Replaces every secret value in a text by `***`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}
