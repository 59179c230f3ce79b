//! Loading: a plan file's bytes to a typed [`PlanFile`] with source positions.
//!
//! serde-saphyr parses with budgets (aliases, depth, nodes, events), so an
//! alias bomb or a 20,000-deep nesting ends in an error, not a hang or a stack
//! overflow. Files over [`MAX_PLAN_BYTES`] are refused before parsing.

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
                Diagnostic::file_level(Severity::Error, "yaml-syntax", &name, format!("cannot read plan file: {e}"))
                    .with_help("check the path and its permissions");
            Loaded { source, result: Err(d) }
        }
    }
}

fn too_large(name: String, len: usize) -> Loaded {
    let source = Arc::new(SourceFile::new(name.clone(), ""));
    let d = Diagnostic::file_level(
        Severity::Error,
        "invalid-value",
        &name,
        format!("plan file is {len} bytes; plans are limited to {MAX_PLAN_BYTES} bytes"),
    )
    .with_help("split the plan, or check that this is the file you meant");
    Loaded { source, result: Err(d) }
}

pub fn load_bytes(name: String, origin: String, bytes: &[u8]) -> Loaded {
    if bytes.len() > MAX_PLAN_BYTES {
        return too_large(name, bytes.len());
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let source = Arc::new(SourceFile::new(name.clone(), ""));
            let d = Diagnostic::file_level(
                Severity::Error,
                "yaml-syntax",
                &name,
                format!("plan file is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
            )
            .with_help("save the file as UTF-8");
            return Loaded { source, result: Err(d) };
        }
    };
    let source = Arc::new(SourceFile::new(name, text));
    let result = parse(&source).map(|plan| LoadedPlan { source: source.clone(), plan: Arc::new(plan), origin });
    Loaded { source, result }
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

/// The loader's options for one half of a split file: every limit that adds
/// up over a file is halved, so two halves that pass mean a whole that passes.
/// The alias/anchor ratio is checked from the first alias, so two halves
/// within the ratio mean a whole within it.
fn half_options() -> Options {
    let mut options = options();
    if let Some(b) = options.budget.as_mut() {
        for limit in [
            &mut b.max_events,
            &mut b.max_aliases,
            &mut b.max_anchors,
            &mut b.max_recorded_anchor_events,
            &mut b.max_recorded_anchor_bytes,
            &mut b.max_total_property_interpolation_work,
            &mut b.max_nodes,
            &mut b.max_total_scalar_bytes,
            &mut b.max_merge_keys,
        ] {
            *limit /= 2;
        }
        b.max_reader_input_bytes = b.max_reader_input_bytes.map(|m| m / 2);
        b.alias_anchor_min_aliases = 1;
    }
    options.alias_limits.max_total_replayed_events /= 2;
    options
}

/// Parses the whole file on this thread, with the loader's budgets.
pub fn parse_whole(text: &str) -> Result<PlanFile, YamlError> {
    serde_saphyr::from_str_with_options::<PlanFile>(text, options())
}

fn parse(source: &SourceFile) -> Result<PlanFile, Diagnostic> {
    if source.text.trim().is_empty() {
        return Err(Diagnostic::file_level(Severity::Error, "missing-field", &source.name, "plan file is empty")
            .with_help("a plan needs at least `apiVersion: plan/v1` and `name:`"));
    }
    // catch_unwind: a loader bug must surface as a diagnostic, never abort a lint of many files.
    let parsed = std::panic::catch_unwind(|| {
        split_parse(&source.text, SPLIT_MIN_BYTES).map(Ok).unwrap_or_else(|| parse_whole(&source.text))
    });
    match parsed {
        Ok(Ok(plan)) => Ok(plan),
        Ok(Err(e)) => Err(yaml_error(source, &e)),
        Err(_) => Err(Diagnostic::file_level(
            Severity::Error,
            "yaml-syntax",
            &source.name,
            "the YAML parser failed on this file",
        )),
    }
}

/// Files smaller than this are parsed on one thread: below it a thread costs
/// more than it saves.
const SPLIT_MIN_BYTES: usize = 128 * 1024;

/// Parses a large plan on two threads: the text up to a step item near the
/// middle, and the rest of the `steps:` sequence. `None` when the file has no
/// safe split point or either half does not parse; the caller then parses the
/// whole file, so every error, and every file the split cannot prove safe, goes
/// through the one ordinary parse.
///
/// Why the halves together mean what the whole means: the split is at a line
/// that starts with exactly the indentation of the `steps:` items and `- `.
/// In a valid file such a line starts a new item unless it lies inside a
/// quoted scalar or a flow collection (block scalars and plain scalars in an
/// item are indented deeper, so they end before it). Inside one, the first
/// half ends unterminated and fails to parse. An alias in the second half to
/// an anchor in the first fails to parse too. The second half is parsed after
/// blanks standing in for the first, byte for byte, so its lines, columns and
/// offsets are those of the file. The first half keeps the split line's
/// indentation, because the whole parse counts it into the span of a block
/// scalar that ends there.
pub fn split_parse(text: &str, min_bytes: usize) -> Option<PlanFile> {
    if text.len() < min_bytes {
        return None;
    }
    // Line breaks other than \n and \r\n would hide lines from split_point.
    if text.contains(['\u{85}', '\u{2028}', '\u{2029}'])
        || text.match_indices('\r').any(|(i, _)| text.as_bytes().get(i + 1) != Some(&b'\n'))
    {
        return None;
    }
    let (at, indent) = split_point(text)?;
    let mut tail = String::with_capacity(text.len());
    tail.extend(text.as_bytes()[..at].iter().map(|&b| if b == b'\n' { '\n' } else { ' ' }));
    tail.push_str(&text[at..]);
    let (head, rest) = std::thread::scope(|s| {
        // No thread to be had (limits): the caller parses the whole file.
        let rest = std::thread::Builder::new()
            .spawn_scoped(s, || serde_saphyr::from_str_with_options::<Vec<Arc<StepDecl>>>(&tail, half_options()))
            .ok()?;
        let head = serde_saphyr::from_str_with_options::<PlanFile>(&text[..at + indent], half_options());
        Some((head, rest.join()))
    })?;
    let (mut plan, rest) = (head.ok()?, rest.ok()?.ok()?);
    plan.steps.extend(rest);
    Some(plan)
}

/// The start and indentation of the `- ` line nearest the middle of the file that has the
/// indentation of the first item under a top-level `steps:` line, looking only
/// at lines before anything less indented ends the sequence.
fn split_point(text: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').map(|l| {
        let start = offset;
        offset += l.len();
        (start, l.trim_end_matches(['\n', '\r']))
    });
    lines.find(|(_, l)| {
        l.strip_prefix("steps:").is_some_and(|r| r.trim().is_empty() || r.trim_start().starts_with('#'))
    })?;
    let is_blank = |l: &str| l.trim_start_matches(' ').is_empty() || l.trim_start_matches(' ').starts_with('#');
    let (_, first) = lines.by_ref().find(|(_, l)| !is_blank(l))?;
    let indent = first.len() - first.trim_start_matches(' ').len();
    let is_item = |l: &str| {
        l.len() > indent && l.as_bytes()[..indent].iter().all(|&b| b == b' ') && {
            let r = &l[indent..];
            r == "-" || r.starts_with("- ")
        }
    };
    if !is_item(first) {
        return None;
    }
    let middle = text.len() / 2;
    let mut best: Option<usize> = None;
    for (start, l) in lines {
        if is_item(l) {
            if best.is_none_or(|b| start.abs_diff(middle) < b.abs_diff(middle)) {
                best = Some(start);
            }
            if start > middle {
                break;
            }
        } else if !is_blank(l) && (l.len() - l.trim_start_matches(' ').len()) <= indent {
            break;
        }
    }
    best.map(|b| (b, indent))
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
            "unknown-field",
            format!("unknown field `{field}`"),
            Some(
                did_you_mean(field, expected.iter().copied())
                    .unwrap_or_else(|| format!("expected one of: {}", expected.join(", "))),
            ),
        ),
        YamlError::SerdeMissingField { field, .. } => {
            let field = if *field == "api_version" { "apiVersion" } else { field };
            ("missing-field", format!("missing field `{field}`"), Some(format!("add `{field}:` here")))
        }
        YamlError::DuplicateMappingKey { key, .. } => (
            "yaml-syntax",
            format!("duplicate key `{}`", key.as_deref().unwrap_or("?")),
            Some("a key may appear once in a mapping; remove or merge the other one".to_owned()),
        ),
        YamlError::QuotingRequired { value, .. } => (
            "invalid-value",
            format!("expected a string, found `{value}`"),
            Some(format!("YAML reads an unquoted `{value}` as a {}; quote it: \"{value}\"", scalar_kind(value))),
        ),
        YamlError::InvalidBooleanStrict { .. } => (
            "invalid-value",
            "expected `true` or `false`".to_owned(),
            Some("YAML 1.2 booleans are `true` and `false`; `yes`, `no`, `on` and `off` are strings".to_owned()),
        ),
        YamlError::InvalidScalar { ty, .. } => (
            "invalid-value",
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
                "invalid-value",
                strip_location(&inner.to_string()),
                Some(format!("YAML reads an unquoted `{value}` as a {}; quote it: \"{value}\"", kind(unexpected))),
            )
        }
        YamlError::SerdeInvalidType { unexpected, expected, .. } if expected.ends_with("unquoted") => {
            // `retries: "3"`: a quoted string where a number or boolean belongs.
            let bare = unexpected.split('"').nth(1).unwrap_or("the value").to_owned();
            if let Some((_, at)) = token_after_key(source, pos) {
                pos = at;
            }
            (
                "invalid-value",
                format!("expected {expected}, found the string \"{bare}\""),
                Some(format!("write it without quotes: {bare}")),
            )
        }
        YamlError::SerdeInvalidValue { expected, .. } if expected.ends_with("unquoted") => {
            if let Some((_, at)) = token_after_key(source, pos) {
                pos = at;
            }
            ("invalid-value", strip_location(&inner.to_string()), None)
        }
        YamlError::SerdeInvalidType { .. }
        | YamlError::SerdeInvalidValue { .. }
        | YamlError::SerdeInvalidLength { .. }
        | YamlError::SerdeUnknownVariant { .. }
        | YamlError::NullIntoString { .. }
        | YamlError::Budget { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => {
            ("invalid-value", strip_location(&inner.to_string()), None)
        }
        _ => {
            let message = strip_location(&inner.to_string());
            // The scanner reports a tab at the token before it; point at the tab itself.
            if message.contains("found a tab")
                && let Some(tab) = source.text.get(pos.offset as usize..).and_then(|t| t.find('\t'))
            {
                pos = source.pos(pos.offset as usize + tab, 1);
                (
                    "yaml-syntax",
                    "a tab where YAML expects indentation or a value".to_owned(),
                    Some("YAML indents with spaces: replace the tab with spaces".to_owned()),
                )
            } else {
                ("yaml-syntax", message, None)
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
