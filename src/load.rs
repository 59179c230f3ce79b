//! Loading: a plan file's bytes to a typed [`PlanFile`] with source positions.
//!
//! serde-saphyr parses with budgets (aliases, depth, nodes, events), so an
//! alias bomb or a 20,000-deep nesting ends in an error, not a hang or a stack
//! overflow. Files over [`MAX_PLAN_BYTES`] are refused before parsing.

use crate::code::Code;
use std::path::Path;
use std::sync::Arc;

use serde_saphyr::{Error as YamlError, Options};

use crate::diagnostic::{Diagnostic, Severity, SourceFile, did_you_mean};
use crate::model::{PlanFile, Pos, StepDecl};

/// Large enough for a 20,000-step generated plan, small enough to refuse junk at once.
pub const MAX_PLAN_BYTES: usize = 4 * 1024 * 1024;

/// A parsed plan file together with its source.
#[derive(Debug, Clone)]
pub struct LoadedPlan {
    pub source: Arc<SourceFile>,
    pub plan: Arc<PlanFile>,
    /// Where the file came from: a path, or `embedded:<path>` for shipped plans.
    pub origin: String,
}

/// The outcome of loading one file: the plan if it parsed, and its source for rendering.
pub struct Loaded {
    pub source: Arc<SourceFile>,
    pub result: Result<LoadedPlan, Diagnostic>,
    /// Errors found after the first, in other steps (lint shows them all).
    pub more: Vec<Diagnostic>,
}

pub fn load_path(path: &Path) -> Loaded {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path);
    if let Ok(m) = &meta
        && m.len() as usize > MAX_PLAN_BYTES
    {
        return too_large(name, m.len() as usize);
    }
    match std::fs::read(path) {
        Ok(bytes) => load_bytes(name.clone(), name, &bytes),
        Err(e) => {
            let source = Arc::new(SourceFile::new(name.clone(), ""));
            let d =
                Diagnostic::file_level(Severity::Error, Code::YamlSyntax, &name, format!("cannot read plan file: {e}"))
                    .with_help("check the path and its permissions");
            Loaded { source, result: Err(d), more: Vec::new() }
        }
    }
}

fn too_large(name: String, len: usize) -> Loaded {
    let source = Arc::new(SourceFile::new(name.clone(), ""));
    let d = Diagnostic::file_level(
        Severity::Error,
        Code::InvalidValue,
        &name,
        format!("plan file is {len} bytes; plans are limited to {MAX_PLAN_BYTES} bytes"),
    )
    .with_help("split the plan, or check that this is the file you meant");
    Loaded { source, result: Err(d), more: Vec::new() }
}

pub fn load_bytes(name: String, origin: String, bytes: &[u8]) -> Loaded {
    if bytes.len() > MAX_PLAN_BYTES {
        return too_large(name, bytes.len());
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let source = Arc::new(SourceFile::new(name.clone(), String::from_utf8_lossy(bytes).into_owned()));
            let at = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).len();
            let d = Diagnostic::error(Code::YamlSyntax, &source, source.pos(at, 1), "plan file is not UTF-8")
                .with_help("save the file as UTF-8");
            return Loaded { source, result: Err(d), more: Vec::new() };
        }
    };
    let source = Arc::new(SourceFile::new(name, text));
    match parse(&source) {
        Ok(plan) => Loaded {
            result: Ok(LoadedPlan { source: source.clone(), plan: Arc::new(plan), origin }),
            source,
            more: Vec::new(),
        },
        Err((first, more)) => Loaded { source, result: Err(first), more },
    }
}

fn options() -> Options {
    let mut options = Options::default();
    options.with_snippet = false;
    // YAML 1.2 core types only: `yes`/`no` are strings, and a number or a
    // boolean never silently becomes a string (what lint accepts, the JSON
    // Schema accepts).
    options.strict_booleans = true;
    options.no_schema = true;
    if let Some(b) = options.budget.as_mut() {
        b.max_depth = 64;
        b.max_aliases = 1_000;
        b.max_anchors = 1_000;
        // A node takes at least two bytes of a file of at most MAX_PLAN_BYTES:
        // a 100,000-step plan fits, and nothing can grow past the file's size.
        b.max_nodes = MAX_PLAN_BYTES / 2;
        b.max_events = MAX_PLAN_BYTES;
    }
    options.alias_limits.max_total_replayed_events = 100_000;
    options
}

/// Parses a plan file, with the loader's budgets.
pub fn parse_whole(text: &str) -> Result<PlanFile, YamlError> {
    serde_saphyr::from_str_with_options::<PlanFile>(text, options())
}

/// The plan, or its first error and the errors of other steps found after it.
fn parse(source: &SourceFile) -> Result<PlanFile, (Diagnostic, Vec<Diagnostic>)> {
    if source.text.trim().is_empty() {
        return Err((
            Diagnostic::file_level(Severity::Error, Code::MissingField, &source.name, "plan file is empty")
                .with_help("a plan needs at least `apiVersion: plan/v1` and `name:`"),
            Vec::new(),
        ));
    }
    // catch_unwind: a loader bug must surface as a diagnostic, never abort a lint of many files.
    let parsed = std::panic::catch_unwind(|| parse_whole(&source.text));
    match parsed {
        Ok(Ok(plan)) => Ok(plan),
        Ok(Err(e)) => {
            let first = yaml_error(source, &e);
            let more = if first.code == Code::YamlSyntax { Vec::new() } else { other_step_errors(source, &first) };
            Err((first, more))
        }
        Err(_) => Err((
            Diagnostic::file_level(
                Severity::Error,
                Code::YamlSyntax,
                &source.name,
                "the YAML parser failed on this file",
            ),
            Vec::new(),
        )),
    }
}

/// After a typed error (a wrong field or value, not broken YAML), the
/// errors of the other steps too, so one lint pass shows them all: each
/// item of `steps:` is parsed alone, after blanks that keep its positions.
/// Only typed errors count: an item cut wrongly (a `- ` line inside a block
/// scalar, say) fails as YAML, and that is not reported.
fn other_step_errors(source: &SourceFile, first: &Diagnostic) -> Vec<Diagnostic> {
    let text = &source.text;
    let mut starts = Vec::new();
    let mut offset = 0;
    let mut indent = None;
    let mut in_steps = false;
    let mut end = text.len();
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let spaces = body.len() - body.trim_start_matches(' ').len();
        let blank = body.trim().is_empty() || body.trim_start().starts_with('#');
        if !in_steps {
            in_steps = body.strip_prefix("steps:").is_some_and(|r| r.trim().is_empty());
        } else if !blank {
            let ind = *indent.get_or_insert(spaces);
            let item = spaces == ind && (body[ind..].starts_with("- ") || &body[ind..] == "-");
            if item {
                starts.push(offset);
            } else if spaces < ind || (spaces == ind && !item) {
                end = offset;
                break;
            }
        }
        offset += line.len();
    }
    let mut out = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let stop = starts.get(k + 1).copied().unwrap_or(end);
        let mut item: String = text[..start].bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
        item.push_str(&text[start..stop]);
        if let Err(e) = serde_saphyr::from_str_with_options::<Vec<StepDecl>>(&item, options()) {
            let d = yaml_error(source, &e);
            if d.code != Code::YamlSyntax && (d.line, d.column) != (first.line, first.column) {
                out.push(d);
            }
        }
    }
    out
}

fn yaml_error(source: &SourceFile, e: &YamlError) -> Diagnostic {
    let inner = e.without_snippet();
    let mut pos = inner
        .location()
        .map(Pos::from)
        .filter(|p| p.line > 0)
        .map(|p| {
            if p.offset == 0 && p.line > 1 {
                source.pos(offset_of(source, p.line, p.column), p.len as usize)
            } else {
                p
            }
        })
        .unwrap_or(Pos { line: 1, column: 1, offset: 0, len: 0 });
    let (code, message, help) = match inner {
        YamlError::SerdeUnknownField { field, expected, .. } => (
            Code::UnknownField,
            format!("unknown field `{field}`"),
            Some(
                did_you_mean(field, expected.iter().copied())
                    .unwrap_or_else(|| format!("expected one of: {}", expected.join(", "))),
            ),
        ),
        YamlError::SerdeMissingField { field, .. } => {
            let field = if *field == "api_version" { "apiVersion" } else { field };
            (Code::MissingField, format!("missing field `{field}`"), Some(format!("add `{field}:` here")))
        }
        YamlError::DuplicateMappingKey { key, .. } => (
            Code::YamlSyntax,
            format!("duplicate key `{}`", key.as_deref().unwrap_or("?")),
            Some("a key may appear once in a mapping; remove or merge the other one".to_owned()),
        ),
        YamlError::QuotingRequired { value, .. } => (
            Code::InvalidValue,
            format!("expected a string, found `{value}`"),
            Some(format!("YAML reads an unquoted `{value}` as a {}; quote it: \"{value}\"", scalar_kind(value))),
        ),
        YamlError::InvalidBooleanStrict { .. } => (
            Code::InvalidValue,
            "expected `true` or `false`".to_owned(),
            Some("YAML 1.2 booleans are `true` and `false`; `yes`, `no`, `on` and `off` are strings".to_owned()),
        ),
        YamlError::InvalidScalar { ty, .. } => (
            Code::InvalidValue,
            match *ty {
                "u32" | "u64" | "usize" => "expected a whole number (0 or more)".to_owned(),
                "bool" => "expected `true` or `false`".to_owned(),
                t => format!("expected a value of type {t}"),
            },
            None,
        ),
        YamlError::SerdeInvalidType { unexpected, expected, .. }
            if expected.contains("string")
                && ["boolean", "integer", "floating point"].iter().any(|k| unexpected.starts_with(k)) =>
        {
            // `run: true`: YAML reads an unquoted true, 42 or 1.5 as a bool or a number.
            let (value, at) = match value_after_key(source, pos) {
                Some((token, at)) => (token, at),
                None => (unexpected.split('`').nth(1).unwrap_or("this value"), pos),
            };
            pos = at;
            (
                Code::InvalidValue,
                strip_location(&inner.to_string()),
                Some(format!("YAML reads an unquoted `{value}` as a {}; quote it: \"{value}\"", kind(unexpected))),
            )
        }
        YamlError::NullIntoString { .. } => empty_value(),
        YamlError::SerdeInvalidType { unexpected, .. } if unexpected.starts_with("unit") => empty_value(),
        YamlError::SerdeInvalidType { unexpected, expected, .. } if expected.ends_with("unquoted") => {
            // `retries: "3"`: a quoted string where a number or boolean belongs.
            let bare = unexpected.split('"').nth(1).unwrap_or("the value").to_owned();
            if let Some((_, at)) = token_after_key(source, pos) {
                pos = at;
            }
            (
                Code::InvalidValue,
                format!("expected {expected}, found the string \"{bare}\""),
                Some(format!("write it without quotes: {bare}")),
            )
        }
        YamlError::SerdeInvalidValue { expected, .. } if expected.ends_with("unquoted") => {
            if let Some((_, at)) = token_after_key(source, pos) {
                pos = at;
            }
            (Code::InvalidValue, strip_location(&inner.to_string()), None)
        }
        YamlError::SerdeInvalidType { .. }
        | YamlError::SerdeInvalidValue { .. }
        | YamlError::SerdeInvalidLength { .. }
        | YamlError::SerdeUnknownVariant { .. }
        | YamlError::Budget { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => {
            (Code::InvalidValue, strip_location(&inner.to_string()), None)
        }
        _ => {
            let message = strip_location(&inner.to_string());
            // The scanner reports a tab at the token before it; point at the tab itself.
            if message.contains("found a tab")
                && let Some(tab) = source.text.get(pos.offset as usize..).and_then(|t| t.find('\t'))
            {
                pos = source.pos(pos.offset as usize + tab, 1);
                (
                    Code::YamlSyntax,
                    "a tab where YAML expects indentation or a value".to_owned(),
                    Some("YAML indents with spaces: replace the tab with spaces".to_owned()),
                )
            } else {
                (Code::YamlSyntax, message, None)
            }
        }
    };
    let (message, help) = if message.contains("budget breached") || message.contains("recursion limit") {
        (
            format!("YAML goes beyond the loader's limits: {message}"),
            Some("plans need no deep nesting and few aliases; flatten the file or remove the aliases".to_owned()),
        )
    } else {
        (message, help)
    };
    let mut d = Diagnostic::error(code, source, pos, message);
    if let Some(h) = help {
        d = d.with_help(h);
    }
    d
}

/// serde-saphyr places a wrong-typed value at its key; when the value is a
/// plain scalar on the key's own line (`run: true`), its text and position.
fn value_after_key(source: &SourceFile, key: Pos) -> Option<(&str, Pos)> {
    let (token, at) = token_after_key(source, key)?;
    let plain = token.chars().next().is_some_and(|c| !"'\"[{|>&*!#%@`".contains(c));
    plain.then_some((token, at))
}

/// The scalar on a key's own line (`retries: "3"`), quoted or not, and its position.
fn token_after_key(source: &SourceFile, key: Pos) -> Option<(&str, Pos)> {
    let line = source.text.get(key.offset as usize..)?.split('\n').next()?;
    let (key_text, after) = line.split_once(": ")?;
    if key_text.is_empty() || !key_text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return None;
    }
    let token = after.trim_start();
    let token = token.split(" #").next()?.trim_end();
    let start = key.offset as usize + line.len() - after.trim_start().len();
    (!token.is_empty()).then(|| (token, source.pos(start, token.len())))
}

/// `timeout:` with nothing after it, or `~`/`null`.
fn empty_value() -> (Code, String, Option<String>) {
    (
        Code::InvalidValue,
        "this field has no value (YAML reads it as null)".to_owned(),
        Some("give it a value, or remove the line".to_owned()),
    )
}

fn scalar_kind(value: &str) -> &'static str {
    if matches!(value, "true" | "false" | "True" | "False" | "TRUE" | "FALSE") { "boolean" } else { "number" }
}

fn kind(unexpected: &str) -> &'static str {
    if unexpected.starts_with("boolean") { "boolean" } else { "number" }
}

fn offset_of(source: &SourceFile, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for (i, l) in source.text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            return offset + l.chars().take(column.saturating_sub(1) as usize).map(char::len_utf8).sum::<usize>();
        }
        offset += l.len();
    }
    offset
}

/// serde-saphyr puts "line N column M: " before or " at line N, column M" after
/// its messages; we print the position ourselves.
fn strip_location(msg: &str) -> String {
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    let re = regex::Regex::new(r"\s*\(?(?:defined |used )?at line \d+, column \d+\)?").expect("a valid regex");
    let stripped = re.replace_all(msg, "");
    let msg = stripped.trim_end_matches(" (used").trim();
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some(i) = rest.find(": ")
        && rest[..i].contains("column")
    {
        return rest[i + 2..].to_owned();
    }
    msg.to_owned()
}
