//! Templates: handlebars in strict mode, the word splitter for `run:` lines,
//! shell quoting for `shell:` scripts, and static analysis of the names a
//! template uses (so lint needs no values).

use std::collections::BTreeSet;

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{Handlebars, JsonRender, RenderError, RenderErrorReason, handlebars_helper};
use serde_json::Value;

/// Helpers every template may call: handlebars' built-ins plus ours.
pub const HELPERS: &[&str] = &[
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "raw",
    "log",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
    "len",
    "semver_satisfies",
    "semver_major",
    "version_lookup",
    "default",
    "trim",
];

/// Parses a version as pip reads versions (PEP 440): `3.0.3`, `22`,
/// `3.0.0rc1` (before 3.0.0), `2.5.0.post1` (after 2.5.0), `v22.0`.
pub fn parse_version(v: &str) -> Option<pep440_rs::Version> {
    v.trim().parse().ok()
}

fn not_a_version(helper: &str, v: &str) -> RenderError {
    RenderErrorReason::Other(format!(
        "{helper}: `{v}` is not a version as pip reads versions (e.g. 3.0.3, 3.0.0rc1, 2.5.0.post1)"
    ))
    .into()
}

// A JSON boolean, so `{{#if (semver_satisfies v ">=2")}}` takes the right
// branch (a string "false" is truthy in handlebars); as text it is `true`/`false`.
// Versions and requirements are pip's (PEP 440): `>=21, <22`, `~=2.5`, `==3.*`.
handlebars_helper!(semver_satisfies: |version: Json, req: str| {
    let spec: pep440_rs::VersionSpecifiers = req.parse().map_err(|e| {
        RenderErrorReason::Other(format!("semver_satisfies: invalid requirement `{req}` ({e}); write it as pip does, e.g. `>=2, <3`"))
    })?;
    let text = version.render();
    // An empty version (nothing installed) satisfies nothing.
    if text.trim().is_empty() {
        false
    } else {
        let v = parse_version(&text).ok_or_else(|| not_a_version("semver_satisfies", &text))?;
        spec.contains(&v)
    }
});

handlebars_helper!(semver_major: |version: str| {
    // A number, so `gt`/`lt`/`eq` compare majors numerically.
    match parse_version(version) {
        Some(v) => Value::from(v.release().first().copied().unwrap_or(0)),
        None => return Err(not_a_version("semver_major", version)),
    }
});

handlebars_helper!(default_helper: |v: Value, fallback: Value| {
    let empty = match &v { Value::Null => true, Value::String(s) => s.is_empty(), _ => false };
    if empty { fallback } else { v }
});
handlebars_helper!(trim_helper: |v: str| v.trim().to_owned());

/// What a `lookup`/`version_lookup` argument is called in an error: its path
/// in the template (`data.openedx`), or its value.
fn named(p: &handlebars::PathAndJson) -> String {
    match (p.relative_path(), p.value()) {
        (Some(path), _) => format!("`{path}`"),
        (None, Value::Object(_) | Value::Array(_)) => "the table".to_owned(),
        (None, v) => format!("`{}`", v.render()),
    }
}

fn helper_error(message: String) -> RenderError {
    RenderErrorReason::Other(message).into()
}

/// `lookup TABLE KEY [default=VALUE]`: the value under KEY in a map (a
/// number key is read as text: `(lookup data.openedx (semver_major v))`) or
/// at index KEY of a list. A key that is not there is an error naming the
/// keys there are, unless `default=` is given.
struct Lookup;

impl handlebars::HelperDef for Lookup {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &handlebars::Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc handlebars::Context,
        _: &mut handlebars::RenderContext<'reg, 'rc>,
    ) -> Result<handlebars::ScopedJson<'rc>, RenderError> {
        let (Some(table), Some(key)) = (h.param(0), h.param(1)) else {
            return Err(helper_error("lookup needs a table and a key: `(lookup data.NAME key)`".into()));
        };
        let key_text = key.value().render();
        let found = match table.value() {
            Value::Object(m) => m.get(&key_text),
            Value::Array(v) => key_text.parse::<usize>().ok().and_then(|i| v.get(i)),
            _ => return Err(helper_error(format!("lookup: {} is not a table (a map or a list)", named(table)))),
        };
        match (found, h.hash_get("default")) {
            (Some(v), _) => Ok(handlebars::ScopedJson::Derived(v.clone())),
            (None, Some(d)) => Ok(handlebars::ScopedJson::Derived(d.value().clone())),
            (None, None) => {
                let keys = match table.value() {
                    Value::Object(m) => m.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
                    Value::Array(v) => format!("indexes 0 to {}", v.len().saturating_sub(1)),
                    _ => String::new(),
                };
                Err(helper_error(format!(
                    "lookup: {} has no `{key_text}` (it has {keys}); add it, or give `default=`",
                    named(table)
                )))
            }
        }
    }
}

/// `version_lookup TABLE VERSION [default=VALUE]`: the value of the one key
/// of TABLE (a map whose keys are requirements as pip reads them, `>=2.0,
/// <3`) that VERSION satisfies. No key, or more than one, is an error
/// naming them (overlapping rows are a mistake in the table), unless
/// `default=` is given for the first case.
struct VersionLookup;

impl handlebars::HelperDef for VersionLookup {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &handlebars::Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc handlebars::Context,
        _: &mut handlebars::RenderContext<'reg, 'rc>,
    ) -> Result<handlebars::ScopedJson<'rc>, RenderError> {
        let (Some(table), Some(version)) = (h.param(0), h.param(1)) else {
            return Err(helper_error(
                "version_lookup needs a table and a version: `(version_lookup data.NAME version)`".into(),
            ));
        };
        let Value::Object(rows) = table.value() else {
            return Err(helper_error(format!("version_lookup: {} is not a map", named(table))));
        };
        let text = version.value().render();
        let v = parse_version(&text).ok_or_else(|| not_a_version("version_lookup", &text))?;
        let mut matches = Vec::new();
        for (key, value) in rows {
            let spec: pep440_rs::VersionSpecifiers = key.parse().map_err(|e| {
                helper_error(format!("version_lookup: key `{key}` of {} is not a requirement ({e})", named(table)))
            })?;
            if spec.contains(&v) {
                matches.push((key, value));
            }
        }
        match (matches.as_slice(), h.hash_get("default")) {
            ([(_, value)], _) => Ok(handlebars::ScopedJson::Derived((*value).clone())),
            ([], Some(d)) => Ok(handlebars::ScopedJson::Derived(d.value().clone())),
            ([], None) => Err(helper_error(format!(
                "version_lookup: `{text}` matches no key of {} ({}); add a row, or give `default=`",
                named(table),
                rows.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ))),
            (several, _) => Err(helper_error(format!(
                "version_lookup: `{text}` matches several keys of {} ({}); make the rows not overlap",
                named(table),
                several.iter().map(|(k, _)| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// How rendered values are inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// As is: for argv words, `when`, `assert`, paths, env values.
    None,
    /// `{{x}}` single-quoted for `sh`; `{{{x}}}` raw.
    Shell,
}

pub struct Renderer {
    plain: Handlebars<'static>,
    shell: Handlebars<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mk = |escape: fn(&str) -> String| {
            let mut h = Handlebars::new();
            h.set_strict_mode(true);
            h.register_escape_fn(escape);
            h.register_helper("semver_satisfies", Box::new(semver_satisfies));
            h.register_helper("semver_major", Box::new(semver_major));
            h.register_helper("default", Box::new(default_helper));
            h.register_helper("trim", Box::new(trim_helper));
            h.register_helper("lookup", Box::new(Lookup));
            h.register_helper("version_lookup", Box::new(VersionLookup));
            h
        };
        Renderer { plain: mk(handlebars::no_escape), shell: mk(shell_quote) }
    }

    pub fn render(&self, template: &str, ctx: &Value, escape: Escape) -> Result<String, TemplateError> {
        if !template.contains("{{") {
            return Ok(template.to_owned());
        }
        // Lint refused these already; a template from elsewhere (a fact's default) is held to the same.
        check_limits(template).map_err(|e| TemplateError(e.message))?;
        let rendered = match escape {
            Escape::None => self.plain.render_template(template, ctx),
            Escape::Shell => self.shell.render_template(&requote_shell(template), ctx),
        };
        rendered.map_err(|e| TemplateError(render_error_message(&e)))
    }
}

fn render_error_message(e: &RenderError) -> String {
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(name)) => format!("undefined variable `{name}`"),
        RenderErrorReason::MissingVariable(None) => "undefined variable".to_owned(),
        other => other.to_string(),
    }
}

/// A template that did not render: undefined names, helper errors.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// A `run:` line that does not split into words.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SplitError {
    #[error("unclosed `{{{{`")]
    UnclosedMustache,
    #[error("unclosed single quote")]
    UnclosedSingle,
    #[error("unclosed double quote")]
    UnclosedDouble,
    #[error("trailing backslash")]
    TrailingBackslash,
}

/// Quotes a value for `sh` so it is always exactly one word, whatever it holds.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b)) {
        return s.to_owned();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        if c == '\'' {
            q.push_str("'\\''");
        } else {
            q.push(c);
        }
    }
    q.push('\'');
    q
}

/// Splits a `run:` line into words by POSIX shell rules (quotes, backslashes),
/// before any rendering, so a value can never add or remove a word.
/// `{{ ... }}` is kept whole, so a helper call with spaces stays in its word.
pub fn split_words(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '{' if line[i..].starts_with("{{") => {
                let end = line[i..].find("}}").ok_or(SplitError::UnclosedMustache)?;
                let mut end = i + end + 2;
                while line[end..].starts_with('}') {
                    end += 1;
                }
                cur.push_str(&line[i..end]);
                in_word = true;
                while chars.peek().is_some_and(|(j, _)| *j < end) {
                    chars.next();
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => cur.push(c),
                        None => return Err(SplitError::UnclosedSingle),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('$' | '`' | '"' | '\\'))) => cur.push(c),
                            Some((_, '\n')) => {}
                            Some((_, c)) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(SplitError::UnclosedDouble),
                        },
                        Some((_, c)) => cur.push(c),
                        None => return Err(SplitError::UnclosedDouble),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some((_, '\n')) => {}
                    Some((_, c)) => cur.push(c),
                    None => return Err(SplitError::TrailingBackslash),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// A name a template reads, and which `{{` (0-based, in order) it sits in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameUse {
    pub name: String,
    pub mustache: usize,
    /// Called with arguments (`{{eqq a b}}`, `(eqq a b)`, `{{#iff x}}`): a
    /// helper, which is not one of [`HELPERS`].
    pub helper: bool,
}

/// A syntax error in a template, and which `{{` it is nearest.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub message: String,
    pub mustache: usize,
}

/// Which `{{` of a text (0-based) has no `}}` after it, if one has none.
pub fn unclosed_mustache(text: &str) -> Option<usize> {
    let offsets = mustache_offsets(text);
    offsets.iter().position(|&o| !text[o..].contains("}}"))
}

/// Byte offsets of each `{{` in a text (a run of braces counts once).
pub fn mustache_offsets(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'{' && b[i + 1] == b'{' && (i == 0 || b[i - 1] != b'\\') {
            out.push(i);
            while i < b.len() && b[i] == b'{' {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// How deep `(...)` may nest inside one `{{...}}`, and blocks inside blocks.
/// Plans need a handful; the limit keeps the (recursive) template parser and
/// renderer far from the end of the stack, and lint linear.
pub const MAX_NESTING: usize = 32;

/// What a template may not contain, checked before the template parser sees
/// it: partials and decorators (`{{> p}}`, `{{#*inline}}`: a partial that
/// includes itself never ends) and nesting deeper than [`MAX_NESTING`].
pub fn check_limits(text: &str) -> Result<(), SyntaxError> {
    let b = text.as_bytes();
    let mut blocks = 0usize;
    for (n, &o) in mustache_offsets(text).iter().enumerate() {
        let err = |message: String| SyntaxError { message, mustache: n };
        let mut i = o;
        while i < b.len() && (b[i] == b'{' || b[i] == b'~') {
            i += 1;
        }
        let tag = &text[i..];
        if tag.starts_with(['>', '*']) || tag.starts_with("#>") || tag.starts_with("#*") {
            return Err(
                err("partials and decorators (`{{> name}}`, `{{#*inline}}`) are not supported in plans".into()),
            );
        }
        if tag.starts_with('#') {
            blocks += 1;
            if blocks > MAX_NESTING {
                return Err(err(format!("blocks nest deeper than {MAX_NESTING} levels")));
            }
        } else if tag.starts_with('/') {
            blocks = blocks.saturating_sub(1);
        }
        let end = text[i..].find("}}").map_or(text.len(), |e| i + e);
        let mut depth = 0usize;
        for &c in &b[i..end] {
            match c {
                b'(' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(err(format!("`(...)` nests deeper than {MAX_NESTING} levels")));
                    }
                }
                b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Parses a template and lists the top-level names it reads (not helpers,
/// not names inside `each`/`with`, whose context is not the root).
pub fn analyze(text: &str) -> Result<Vec<NameUse>, SyntaxError> {
    if !text.contains("{{") {
        return Ok(Vec::new());
    }
    if let Some(names) = simple_names(text) {
        return Ok(names);
    }
    check_limits(text)?;
    let tpl = Template::compile(text).map_err(|e| {
        let offsets = mustache_offsets(text);
        let at = e.pos().map(|(l, c)| byte_of(text, l, c)).unwrap_or(0);
        let mustache = offsets.iter().rposition(|&o| o <= at).unwrap_or(0);
        SyntaxError { message: e.reason().to_string(), mustache }
    })?;
    let mut names = BTreeSet::new();
    let mut helpers = BTreeSet::new();
    // An explicit stack: templates nest, and nothing here may recurse on user input.
    let mut stack: Vec<&Template> = vec![&tpl];
    let mut params: Vec<&Parameter> = Vec::new();
    while let Some(t) = stack.pop() {
        for el in &t.elements {
            match el {
                TemplateElement::Expression(h)
                | TemplateElement::HtmlExpression(h)
                | TemplateElement::HelperBlock(h) => {
                    let is_block = matches!(el, TemplateElement::HelperBlock(_));
                    let called = is_block || !h.params.is_empty() || !h.hash.is_empty();
                    match &h.name {
                        Parameter::Name(n) if !HELPERS.contains(&n.as_str()) => {
                            if called {
                                helpers.insert(n.clone())
                            } else {
                                names.insert(n.clone())
                            };
                        }
                        p @ Parameter::Path(_) if h.params.is_empty() && h.hash.is_empty() && !is_block => {
                            params.push(p)
                        }
                        Parameter::Subexpression(_) => params.push(&h.name),
                        _ => {}
                    }
                    params.extend(h.params.iter());
                    params.extend(h.hash.values());
                    let changes_context = matches!(&h.name, Parameter::Name(n) if n == "each" || n == "with");
                    if !changes_context {
                        stack.extend(h.template.iter());
                    }
                    stack.extend(h.inverse.iter());
                }
                TemplateElement::DecoratorExpression(_)
                | TemplateElement::DecoratorBlock(_)
                | TemplateElement::PartialExpression(_)
                | TemplateElement::PartialBlock(_) => {}
                _ => {}
            }
        }
        while let Some(p) = params.pop() {
            match p {
                Parameter::Path(path) => {
                    if let handlebars::Path::Relative((segs, _)) = path
                        && let Some(handlebars::PathSeg::Named(n)) = segs.first()
                    {
                        // `data.TABLE`: which table is read is checked too.
                        match segs.get(1) {
                            Some(handlebars::PathSeg::Named(t)) if n == "data" => names.insert(format!("data.{t}")),
                            _ => names.insert(n.clone()),
                        };
                    }
                }
                Parameter::Subexpression(sub) => match sub.element.as_ref() {
                    TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                        if let Parameter::Name(n) = &h.name
                            && !HELPERS.contains(&n.as_str())
                        {
                            if h.params.is_empty() && h.hash.is_empty() {
                                names.insert(n.clone());
                            } else {
                                helpers.insert(n.clone());
                            }
                        }
                        if let Parameter::Path(_) = &h.name
                            && h.params.is_empty()
                        {
                            params.push(&h.name);
                        }
                        params.extend(h.params.iter());
                        params.extend(h.hash.values());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let offsets = mustache_offsets(text);
    let uses = |set: BTreeSet<String>, helper: bool| -> Vec<NameUse> {
        set.into_iter()
            .filter(|n| n != "this")
            .map(|name| {
                let mustache = first_mustache_with(text, &offsets, &name);
                NameUse { name, mustache, helper }
            })
            .collect()
    };
    let mut out = uses(names, false);
    out.extend(uses(helpers, true));
    Ok(out)
}

/// The common case, `{{name}}`, `{{name.field}}` and `{{{name}}}` only, read
/// without the full handlebars parser (which costs most of lint's time on
/// large plans). Anything else returns `None` and takes the full path.
fn simple_names(text: &str) -> Option<Vec<NameUse>> {
    let mut names: Vec<NameUse> = Vec::new();
    let mut rest = text;
    let mut mustache = 0;
    while let Some(open) = rest.find('{') {
        if open > 0 && rest.as_bytes()[open - 1] == b'\\' {
            return None;
        }
        let after = &rest[open..];
        if !after.starts_with("{{") {
            rest = &after[1..];
            continue;
        }
        let triple = after.starts_with("{{{");
        let inner_start = if triple { 3 } else { 2 };
        let close = if triple { "}}}" } else { "}}" };
        let end = after.find(close)?;
        let inner = after[inner_start..end].trim();
        let ident = |s: &str| {
            let b = s.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_alphabetic() || b[0] == b'_')
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        };
        let mut parts = inner.split('.');
        let first = parts.next()?;
        if !ident(first)
            || !parts.all(ident)
            || crate::template::HELPERS.contains(&first)
            || first == "this"
            || first == "else"
            || first == "data"
        {
            return None;
        }
        let tail = &after[end + close.len()..];
        if tail.starts_with('}') {
            return None;
        }
        if !names.iter().any(|n| n.name == first) {
            names.push(NameUse { name: first.to_owned(), mustache, helper: false });
        }
        mustache += 1;
        rest = tail;
    }
    names.sort();
    Some(names)
}

/// The `data` tables a template reads with `version_lookup` (`version_lookup
/// data.NAME ...`), whose keys lint checks as version requirements.
pub fn version_tables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("version_lookup") {
        rest = &rest[i + "version_lookup".len()..];
        let args = rest.trim_start();
        if let Some(name) = args.strip_prefix("data.") {
            let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(name.len());
            out.push(name[..end].to_owned());
        }
    }
    out
}

fn first_mustache_with(text: &str, offsets: &[usize], name: &str) -> usize {
    for (i, &o) in offsets.iter().enumerate() {
        let end = text[o..].find("}}").map_or(text.len(), |e| o + e);
        let inner = &text[o..end];
        let mut from = 0;
        while let Some(k) = inner[from..].find(name) {
            let s = from + k;
            let e = s + name.len();
            let before = inner[..s].chars().last();
            let after = inner[e..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"' || c == '\'');
            if !ident(before) && before != Some('.') && !ident(after) {
                return i;
            }
            from = e;
        }
    }
    0
}

fn byte_of(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + l.chars().take(col.saturating_sub(1)).map(char::len_utf8).sum::<usize>();
        }
        offset += l.len();
    }
    text.len()
}

/// The quoting context a `{{...}}` of a `shell:` script stands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellContext {
    /// Outside quotes, or inside `$( )` (a new quoting context).
    Plain,
    /// Inside `'...'`.
    Single,
    /// Inside `"..."`.
    Double,
    /// Inside backticks: their backslash rules defeat quoting.
    Backtick,
    /// In the body of a here-document: no quoting can keep a value from ending it.
    HereDoc,
    /// In a `#` comment: a newline in the value would end the comment.
    Comment,
}

/// One `{{...}}` of a `shell:` script.
#[derive(Clone, Copy, Debug)]
pub struct ShellTemplate {
    /// Byte offset of the `{{` and of the end of its closing braces.
    pub start: usize,
    pub end: usize,
    pub context: ShellContext,
    /// `{{{x}}}`: inserted as is, unquoted.
    pub raw: bool,
    /// An expression that inserts a value (not a block tag, `else` or comment).
    pub expression: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Frame {
    /// Top level (`parens: None`) or `$( )`, with its open parentheses.
    Plain(Option<u32>),
    Single,
    Double,
    Backtick,
}

/// Every `{{...}}` of a `shell:` script with the quoting context it stands
/// in, by a scan of POSIX `sh` quoting: quotes, backslashes, comments, `$( )`
/// and backticks (each a new context), and here-documents.
pub fn shell_templates(script: &str) -> Vec<ShellTemplate> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    let mut stack = vec![Frame::Plain(None)];
    // Here-documents whose body starts at the next newline: (delimiter, strip tabs).
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let top = *stack.last().unwrap_or(&Frame::Plain(None));
        if script[i..].starts_with("{{") {
            let context = match top {
                Frame::Plain(_) => ShellContext::Plain,
                Frame::Single => ShellContext::Single,
                Frame::Double => ShellContext::Double,
                Frame::Backtick => ShellContext::Backtick,
            };
            let t = template_at(script, i, context);
            i = t.end;
            out.push(t);
            continue;
        }
        let c = b[i];
        if c == b'\n' && !pending.is_empty() && matches!(top, Frame::Plain(_)) {
            i = here_doc_bodies(script, i + 1, &mut pending, &mut out);
            continue;
        }
        match top {
            Frame::Single => {
                if c == b'\'' {
                    stack.pop();
                }
            }
            Frame::Double => match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'$' if b.get(i + 1) == Some(&b'(') => {
                    stack.push(Frame::Plain(Some(0)));
                    i += 1;
                }
                b'`' => stack.push(Frame::Backtick),
                _ => {}
            },
            Frame::Backtick | Frame::Plain(_) => match c {
                b'\\' => i += 1,
                b'\'' => stack.push(Frame::Single),
                b'"' => stack.push(Frame::Double),
                b'`' if top == Frame::Backtick => {
                    stack.pop();
                }
                b'`' => stack.push(Frame::Backtick),
                b'$' if b.get(i + 1) == Some(&b'(') => {
                    stack.push(Frame::Plain(Some(0)));
                    i += 1;
                }
                b'(' => {
                    if let Some(Frame::Plain(Some(n))) = stack.last_mut() {
                        *n += 1;
                    }
                }
                b')' => match stack.last_mut() {
                    Some(Frame::Plain(Some(0))) => {
                        stack.pop();
                    }
                    Some(Frame::Plain(Some(n))) => *n -= 1,
                    _ => {}
                },
                b'#' if i == 0 || b[i - 1].is_ascii_whitespace() || b[i - 1] == b';' => {
                    let line_end = script[i..].find('\n').map_or(b.len(), |e| i + e);
                    templates_in(script, i, line_end, ShellContext::Comment, &mut out);
                    i = line_end;
                    continue;
                }
                b'<' if script[i..].starts_with("<<") && !script[i..].starts_with("<<<") => {
                    let (delimiter, strip, next) = here_doc_delimiter(script, i + 2);
                    if !delimiter.is_empty() {
                        pending.push((delimiter, strip));
                    }
                    i = next;
                    continue;
                }
                _ => {}
            },
        }
        i += 1;
    }
    out
}

/// The delimiter word after `<<` (quotes removed), whether tabs are stripped
/// (`<<-`), and where the scan goes on.
fn here_doc_delimiter(script: &str, mut i: usize) -> (String, bool, usize) {
    let b = script.as_bytes();
    let strip = b.get(i) == Some(&b'-');
    if strip {
        i += 1;
    }
    while b.get(i).is_some_and(|c| *c == b' ' || *c == b'\t') {
        i += 1;
    }
    let mut word = String::new();
    while let Some(&c) = b.get(i) {
        match c {
            b'\'' | b'"' => {
                let close = script[i + 1..].find(c as char).map_or(b.len(), |e| i + 1 + e);
                word.push_str(&script[i + 1..close.min(b.len())]);
                i = close + 1;
            }
            b'\\' => {
                i += 1;
            }
            c if c.is_ascii_whitespace() || b";&|<>()".contains(&c) => break,
            _ => {
                let ch = script[i..].chars().next().unwrap_or(' ');
                word.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    (word, strip, i)
}

/// Skips the bodies of the pending here-documents, from `i` (after the
/// newline that starts them); their templates are recorded as `HereDoc`.
fn here_doc_bodies(
    script: &str,
    mut i: usize,
    pending: &mut Vec<(String, bool)>,
    out: &mut Vec<ShellTemplate>,
) -> usize {
    for (delimiter, strip) in pending.drain(..) {
        while i < script.len() {
            let line_end = script[i..].find('\n').map_or(script.len(), |e| i + e);
            let line = &script[i..line_end];
            let line = if strip { line.trim_start_matches('\t') } else { line };
            if line == delimiter {
                i = (line_end + 1).min(script.len());
                break;
            }
            templates_in(script, i, line_end, ShellContext::HereDoc, out);
            i = (line_end + 1).min(script.len());
        }
    }
    i
}

/// Records the templates between `from` and `to`, all in one context.
fn templates_in(script: &str, from: usize, to: usize, context: ShellContext, out: &mut Vec<ShellTemplate>) {
    let mut j = from;
    while let Some(k) = script[j..to].find("{{") {
        let start = j + k;
        let t = template_at(script, start, context);
        j = t.end.min(to);
        out.push(t);
    }
}

/// The `{{...}}` that starts at `start`.
fn template_at(script: &str, start: usize, context: ShellContext) -> ShellTemplate {
    let raw = script[start..].starts_with("{{{");
    let close = script[start..].find("}}").map_or(script.len(), |c| start + c + 2);
    let end = close + usize::from(raw && script.as_bytes().get(close) == Some(&b'}'));
    let inner = script[start..].trim_start_matches('{').trim_start_matches('~');
    let expression = !inner.starts_with(['!', '#', '/', '>', '^', '*']) && !inner.trim_start().starts_with("else");
    ShellTemplate { start, end, context, raw, expression }
}

/// A `shell:` template with every `{{x}}` inside quotes closed around: a
/// quoted value inside `"..."` becomes `"'value'"`, inside `'...'` becomes
/// `''value''`, so `{{x}}` is one literal piece wherever it stands.
pub fn requote_shell(script: &str) -> std::borrow::Cow<'_, str> {
    let mut spots = shell_templates(script)
        .into_iter()
        .filter(|t| t.expression && !t.raw && matches!(t.context, ShellContext::Single | ShellContext::Double))
        .peekable();
    if spots.peek().is_none() {
        return std::borrow::Cow::Borrowed(script);
    }
    let mut out = String::with_capacity(script.len() + 8);
    let mut at = 0;
    for t in spots {
        let q = if t.context == ShellContext::Single { '\'' } else { '"' };
        out.push_str(&script[at..t.start]);
        out.push(q);
        out.push_str(&script[t.start..t.end]);
        out.push(q);
        at = t.end;
    }
    out.push_str(&script[at..]);
    std::borrow::Cow::Owned(out)
}
