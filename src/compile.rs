//! Compiling: a base plan and its release plans become one checked step list,
//! one set of variables and facts, and one graph. Every rule that lint
//! reports, apart from YAML and the plan path, lives here or in `graph.rs`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, SourceFile, did_you_mean};
use crate::graph::{self, Graph, Node};
use crate::load::LoadedPlan;
use crate::model::{FactDecl, Name, PlanFile, Pos, RunAction, Sp, StepDecl, VarDecl};
use crate::template::{self, Escape};

pub const API_VERSION: &str = "plan/v1";
/// Names every template can see besides vars, facts and captures.
pub const BUILTIN_NAMES: &[&str] = &["env", "plan", "run"];

#[derive(Debug, Clone)]
pub struct CStep {
    pub file: usize,
    pub decl: Arc<StepDecl>,
}

#[derive(Debug, Clone)]
pub struct CVar {
    pub file: usize,
    pub name: Name,
    pub decl: VarDecl,
}

#[derive(Debug, Clone)]
pub struct CFact {
    pub file: usize,
    pub name: Name,
    pub decl: FactDecl,
}

/// A merged, checked plan.
#[derive(Debug)]
pub struct Compiled {
    /// File 0 is the base plan, then the included release plans in release order.
    pub files: Vec<LoadedPlan>,
    pub steps: Vec<CStep>,
    pub vars: IndexMap<String, CVar>,
    pub facts: IndexMap<String, CFact>,
    pub graph: Graph,
    pub diagnostics: Vec<Diagnostic>,
}

impl Compiled {
    pub fn base(&self) -> &PlanFile {
        &self.files[0].plan
    }
    pub fn source(&self, file: usize) -> &SourceFile {
        &self.files[file].source
    }
    pub fn sources(&self) -> Vec<Arc<SourceFile>> {
        self.files.iter().map(|f| f.source.clone()).collect()
    }
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// A template in a plan, where it is, and how it is rendered.
pub struct TemplateRef<'a> {
    pub text: Cow<'a, str>,
    pub pos: Pos,
    /// How many `{{` precede this text inside the same YAML scalar (for split `run` lines).
    pub mustache_base: usize,
    pub escape: Escape,
}

/// A `run:` line that cannot be split into words, or has none.
pub struct SplitError(pub String);

/// Every template of a step, in a fixed order, and whether its `run:` line
/// splits into words (checked here, so each line is split once).
pub fn step_templates(decl: &StepDecl) -> (Vec<TemplateRef<'_>>, Option<SplitError>) {
    let mut out = Vec::new();
    let mut split_error = None;
    if let Some(run) = &decl.run {
        match &run.value {
            RunAction::Line(line) => {
                // Each word is its own template; count the `{{` before it in the line.
                let mut base = 0;
                let words = match template::split_words(line) {
                    Ok(w) if w.is_empty() => {
                        split_error = Some(SplitError("`run` is empty".into()));
                        Vec::new()
                    }
                    Ok(w) => w,
                    Err(e) => {
                        split_error = Some(SplitError(format!("cannot split `run` into words: {e}")));
                        Vec::new()
                    }
                };
                {
                    for w in words {
                        let n = template::mustache_offsets(&w).len();
                        if n > 0 {
                            out.push(TemplateRef {
                                text: Cow::Owned(w),
                                pos: run.pos,
                                mustache_base: base,
                                escape: Escape::None,
                            });
                        }
                        base += n;
                    }
                }
            }
            RunAction::Argv(words) => out.extend(words.iter().map(|w| t(w, Escape::None))),
        }
    }
    if let Some(s) = &decl.shell {
        out.push(t(s, Escape::Shell));
    }
    for s in [&decl.assert, &decl.message, &decl.confirm, &decl.when, &decl.cwd].into_iter().flatten() {
        out.push(t(s, Escape::None));
    }
    if let Some(r) = &decl.remove {
        out.push(TemplateRef {
            text: Cow::Borrowed(&r.value.path),
            pos: r.pos,
            mustache_base: 0,
            escape: Escape::None,
        });
        if let Some(w) = &r.value.within {
            let base = template::mustache_offsets(&r.value.path).len();
            out.push(TemplateRef { text: Cow::Borrowed(w), pos: r.pos, mustache_base: base, escape: Escape::None });
        }
    }
    out.extend(decl.env.values().map(|v| t(v, Escape::None)));
    (out, split_error)
}

/// Where the n-th `{{` of a scalar starting at `pos` is, in its file.
pub fn mustache_pos(source: &SourceFile, pos: Pos, n: usize) -> Pos {
    if pos.line == 0 {
        return pos;
    }
    let rest = source.text.get(pos.offset as usize..).unwrap_or("");
    match template::mustache_offsets(rest).get(n) {
        Some(&o) => source.pos(pos.offset as usize + o, 2),
        None => pos,
    }
}

fn t(s: &Sp<String>, escape: Escape) -> TemplateRef<'_> {
    TemplateRef { text: Cow::Borrowed(&s.value), pos: s.pos, mustache_base: 0, escape }
}

fn valid_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn valid_var_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// A duration such as `500ms`, `90s`, `30m` or `1h30m` (humantime's syntax,
/// checked arithmetic). A bare number is refused: `90` could be seconds or minutes.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` has no unit; write `{s}s` for seconds"));
    }
    let too_long =
        || format!("`{s}` is longer than the longest duration plan takes ({} days)", MAX_DURATION.as_secs() / 86_400);
    match humantime::parse_duration(s) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        Ok(_) | Err(humantime::DurationError::NumberOverflow) => Err(too_long()),
        Err(e) => Err(format!("`{s}` is not a duration ({e})")),
    }
}

/// No step, probe or grace period waits longer: every deadline computed from
/// a duration stays far inside what a clock can represent.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// Merges a base plan and release plans and runs every check.
pub fn compile(base: &LoadedPlan, releases: &[LoadedPlan]) -> Compiled {
    let mut files = vec![base.clone()];
    files.extend(releases.iter().cloned());
    let mut c = Compiled {
        files,
        steps: Vec::new(),
        vars: IndexMap::new(),
        facts: IndexMap::new(),
        graph: Graph::default(),
        diagnostics: Vec::new(),
    };
    let mut diags = Vec::new();
    for (fi, f) in c.files.iter().enumerate() {
        check_file(f, fi == 0, &mut diags);
    }
    merge(&mut c, &mut diags);
    let nodes: Vec<Node> = c.steps.iter().map(|s| Node { decl: &s.decl, file: &c.files[s.file].source }).collect();
    let g = graph::build(&nodes, &mut diags);
    drop(nodes);
    c.graph = g;
    check_templates(&c, &mut diags);
    check_redundant_needs(&c, &mut diags);
    c.diagnostics = diags;
    c
}

fn check_file(f: &LoadedPlan, is_base: bool, diags: &mut Vec<Diagnostic>) {
    let src = &f.source;
    let p = &f.plan;
    if p.api_version.value != API_VERSION {
        diags.push(
            Diagnostic::error(
                "unsupported-api-version",
                src,
                p.api_version.pos,
                format!("unsupported apiVersion `{}`", p.api_version.value),
            )
            .with_help(format!("this version of plan reads `apiVersion: {API_VERSION}`")),
        );
    }
    if !valid_id(&p.name.value) {
        diags.push(
            Diagnostic::error("invalid-value", src, p.name.pos, format!("invalid plan name `{}`", p.name.value))
                .with_help("plan names match [a-z0-9][a-z0-9-]*"),
        );
    }
    if let Some(r) = &p.release
        && semver::Version::parse(&r.value).is_err()
    {
        diags.push(
            Diagnostic::error("invalid-value", src, r.pos, format!("release `{}` is not a semantic version", r.value))
                .with_help("write it as MAJOR.MINOR.PATCH, e.g. `2.5.0`"),
        );
    }
    if p.extends.is_some() {
        if !is_base && p.release.is_none() {
            diags.push(
                Diagnostic::error("missing-field", src, p.name.pos, "a plan that `extends` another needs a `release`")
                    .with_help("add `release: X.Y.Z`: it decides when this plan applies"),
            );
        }
        if let Some(r) = &p.releases {
            diags.push(
                Diagnostic::error(
                    "invalid-value",
                    src,
                    r.from.pos,
                    "`releases` belongs on the base plan, not on a release plan",
                )
                .with_help("remove `releases:` from this file"),
            );
        }
    }
    for (name, v) in &p.vars {
        check_name(src, name, "variable", diags);
        check_var(src, name, v, diags);
    }
    for (name, fact) in &p.facts {
        check_name(src, name, "fact", diags);
        match (&fact.run, &fact.shell) {
            (None, None) => diags.push(
                Diagnostic::error("no-action", src, name.pos, format!("fact `{}` has no `run` or `shell`", name.value))
                    .with_help("add `run: COMMAND` that prints the value"),
            ),
            (Some(_), Some(s)) => diags.push(
                Diagnostic::error(
                    "multiple-actions",
                    src,
                    s.pos,
                    format!("fact `{}` has both `run` and `shell`", name.value),
                )
                .with_help("keep one of them"),
            ),
            _ => {}
        }
        if let Some(pat) = &fact.pattern {
            check_regex(src, pat, diags);
        }
        if let Some(t) = &fact.timeout {
            check_duration(src, t, diags);
        }
    }
    for s in &p.steps {
        check_step(src, s, diags);
    }
}

fn check_name(src: &SourceFile, name: &Name, what: &str, diags: &mut Vec<Diagnostic>) {
    if !valid_var_name(&name.value) {
        diags.push(
            Diagnostic::error("invalid-value", src, name.pos, format!("invalid {what} name `{}`", name.value))
                .with_help("names match [A-Za-z_][A-Za-z0-9_]*"),
        );
    } else if BUILTIN_NAMES.contains(&name.value.as_str()) {
        diags.push(
            Diagnostic::error(
                "invalid-value",
                src,
                name.pos,
                format!("`{}` is reserved for the built-in `{}.*` names", name.value, name.value),
            )
            .with_help("choose another name"),
        );
    }
}

fn check_regex(src: &SourceFile, pat: &Sp<String>, diags: &mut Vec<Diagnostic>) -> Option<regex::Regex> {
    match regex::Regex::new(&pat.value) {
        Ok(r) => Some(r),
        Err(e) => {
            let msg = e.to_string();
            let last = msg.lines().last().unwrap_or("invalid regex").trim().to_owned();
            diags.push(
                Diagnostic::error("invalid-value", src, pat.pos, format!("invalid pattern: {last}"))
                    .with_help("patterns are Rust regular expressions (the `regex` crate's syntax)"),
            );
            None
        }
    }
}

fn check_duration(src: &SourceFile, d: &Sp<String>, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = parse_duration(&d.value) {
        diags.push(
            Diagnostic::error("invalid-value", src, d.pos, format!("invalid duration: {e}"))
                .with_help("write a number with a unit: `500ms`, `90s`, `30m`, `1h30m`"),
        );
    }
}

fn check_var(src: &SourceFile, name: &Name, v: &VarDecl, diags: &mut Vec<Diagnostic>) {
    let re = v.pattern.as_ref().and_then(|p| check_regex(src, p, diags));
    let Some(default) = &v.default else { return };
    if let Some(choices) = &v.choices
        && !choices.value.iter().any(|c| c.value == default.value)
    {
        let mut d = Diagnostic::error(
            "invalid-choice",
            src,
            default.pos,
            format!("default `{}` of `{}` is not one of its choices", default.value, name.value),
        );
        d = d.with_help(did_you_mean(&default.value, choices.value.iter().map(|c| c.value.as_str())).unwrap_or_else(
            || format!("choices: {}", choices.value.iter().map(|c| c.value.as_str()).collect::<Vec<_>>().join(", ")),
        ));
        diags.push(d);
    }
    if let Some(re) = re
        && !full_match(&re, &default.value)
    {
        diags.push(
            Diagnostic::error(
                "invalid-value",
                src,
                default.pos,
                format!("default `{}` of `{}` does not match its pattern", default.value, name.value),
            )
            .with_help(format!("pattern: {}", re.as_str())),
        );
    }
}

/// A var's pattern must match the whole value (anchors are implied).
pub fn full_match(re: &regex::Regex, value: &str) -> bool {
    re.find(value).is_some_and(|m| m.start() == 0 && m.end() == value.len())
        || regex::Regex::new(&format!("^(?:{})$", re.as_str())).is_ok_and(|r| r.is_match(value))
}

fn check_step(src: &SourceFile, s: &StepDecl, diags: &mut Vec<Diagnostic>) {
    if !valid_id(&s.id.value) {
        diags.push(
            Diagnostic::error("invalid-value", src, s.id.pos, format!("invalid step id `{}`", s.id.value))
                .with_help("step ids match [a-z0-9][a-z0-9-]*"),
        );
    }
    let actions: Vec<(&str, Pos)> = [
        ("run", s.run.as_ref().map(|r| r.pos)),
        ("shell", s.shell.as_ref().map(|r| r.pos)),
        ("assert", s.assert.as_ref().map(|r| r.pos)),
        ("confirm", s.confirm.as_ref().map(|r| r.pos)),
        ("remove", s.remove.as_ref().map(|r| r.pos)),
    ]
    .into_iter()
    .filter_map(|(n, p)| p.map(|p| (n, p)))
    .collect();
    match actions.len() {
        0 => diags.push(
            Diagnostic::error("no-action", src, s.id.pos, format!("step `{}` has no action", s.id.value))
                .with_help("give it exactly one of `run`, `shell`, `assert`, `confirm`, `remove`"),
        ),
        1 => {}
        _ => diags.push(
            Diagnostic::error(
                "multiple-actions",
                src,
                actions[1].1,
                format!(
                    "step `{}` has {} actions: {}",
                    s.id.value,
                    actions.len(),
                    actions.iter().map(|a| format!("`{}`", a.0)).collect::<Vec<_>>().join(", ")
                ),
            )
            .with_help("a step does one thing: split it into steps joined by `needs`"),
        ),
    }
    if let (Some(m), None) = (&s.message, &s.assert) {
        diags.push(
            Diagnostic::error("invalid-value", src, m.pos, "`message` is only used by an `assert` step")
                .with_help("remove `message`, or make this an `assert` step"),
        );
    }
    for d in [&s.timeout, &s.retry_delay].into_iter().flatten() {
        check_duration(src, d, diags);
    }
    if let Some(c) = &s.capture
        && !valid_var_name(&c.value)
    {
        diags.push(
            Diagnostic::error("invalid-value", src, c.pos, format!("invalid capture name `{}`", c.value))
                .with_help("names match [A-Za-z_][A-Za-z0-9_]*"),
        );
    }
    for k in s.env.keys() {
        if !valid_var_name(&k.value) {
            diags.push(
                Diagnostic::error(
                    "invalid-value",
                    src,
                    k.pos,
                    format!("invalid environment variable name `{}`", k.value),
                )
                .with_help("names match [A-Za-z_][A-Za-z0-9_]*"),
            );
        }
    }
}

/// Merges vars, facts and steps of all files; reports names declared twice.
fn merge(c: &mut Compiled, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<String, (usize, Pos)> = HashMap::new();
    let mut clash = |c: &Compiled, fi: usize, name: &Name, diags: &mut Vec<Diagnostic>| -> bool {
        if let Some((ofi, opos)) = seen.get(&name.value) {
            let other = c.source(*ofi);
            diags.push(
                Diagnostic::error(
                    "invalid-value",
                    c.source(fi),
                    name.pos,
                    format!("`{}` is already declared", name.value),
                )
                .with_help(format!(
                    "first declared at {}:{}:{}; a var, fact and capture share one namespace",
                    other.name, opos.line, opos.column
                )),
            );
            true
        } else {
            seen.insert(name.value.clone(), (fi, name.pos));
            false
        }
    };
    for fi in 0..c.files.len() {
        let plan = c.files[fi].plan.clone();
        for (name, v) in &plan.vars {
            if !clash(c, fi, name, diags) {
                c.vars.insert(name.value.clone(), CVar { file: fi, name: name.clone(), decl: v.clone() });
            }
        }
        for (name, f) in &plan.facts {
            if !clash(c, fi, name, diags) {
                c.facts.insert(name.value.clone(), CFact { file: fi, name: name.clone(), decl: f.clone() });
            }
        }
        for s in &plan.steps {
            if let Some(cap) = &s.capture {
                clash(c, fi, cap, diags);
            }
            c.steps.push(CStep { file: fi, decl: s.clone() });
        }
    }
}

fn check_templates(c: &Compiled, diags: &mut Vec<Diagnostic>) {
    let mut used: HashSet<String> = HashSet::new();
    let global: Vec<&str> =
        c.vars.keys().chain(c.facts.keys()).map(String::as_str).chain(BUILTIN_NAMES.iter().copied()).collect();
    let captures: HashMap<&str, usize> = c
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.decl.capture.as_ref().map(|cap| (cap.value.as_str(), i)))
        .collect();
    let mut check = |src: &SourceFile,
                     t: &TemplateRef,
                     step: Option<usize>,
                     allow_facts: bool,
                     diags: &mut Vec<Diagnostic>| {
        match template::analyze(&t.text) {
            Err(e) => diags.push(
                Diagnostic::error(
                    "template-syntax",
                    src,
                    mustache_pos(src, t.pos, t.mustache_base + e.mustache),
                    format!("template syntax: {}", e.message),
                )
                .with_help("templates are handlebars: `{{name}}`, `{{#if x}}...{{/if}}`, `{{eq a b}}`"),
            ),
            Ok(names) => {
                for u in names {
                    used.insert(u.name.clone());
                    let known = c.vars.contains_key(&u.name)
                        || BUILTIN_NAMES.contains(&u.name.as_str())
                        || (allow_facts && c.facts.contains_key(&u.name));
                    if known {
                        continue;
                    }
                    let pos = mustache_pos(src, t.pos, t.mustache_base + u.mustache);
                    if let Some(&cs) = captures.get(u.name.as_str()) {
                        match step {
                            Some(s) if s != cs && c.graph.depends_on(s, cs) => continue,
                            Some(s) => {
                                let capturer = &c.steps[cs].decl.id.value;
                                diags.push(
                                    Diagnostic::error(
                                        "capture-not-ancestor",
                                        src,
                                        pos,
                                        format!(
                                            "`{}` is captured by step `{capturer}`, which step `{}` does not depend on",
                                            u.name, c.steps[s].decl.id.value
                                        ),
                                    )
                                    .with_help(format!("add `{capturer}` to this step's `needs`")),
                                );
                                continue;
                            }
                            None => {}
                        }
                    }
                    let mut d =
                        Diagnostic::error("undefined-variable", src, pos, format!("undefined variable `{}`", u.name));
                    let help = did_you_mean(&u.name, global.iter().copied().chain(captures.keys().copied()))
                        .unwrap_or_else(|| format!("declare it under `vars:`, or pass it with --var {}=VALUE", u.name));
                    d = d.with_help(help);
                    diags.push(d);
                }
            }
        }
    };
    for (i, s) in c.steps.iter().enumerate() {
        let src = c.source(s.file);
        let (templates, split_error) = step_templates(&s.decl);
        if let (Some(SplitError(msg)), Some(run)) = (split_error, &s.decl.run) {
            diags.push(
                Diagnostic::error("invalid-value", src, run.pos, msg)
                    .with_help("give the program to run; close any quote, or use `run: [argv, words]`"),
            );
        }
        for t in templates {
            check(src, &t, Some(i), true, diags);
        }
        if let Some(sh) = &s.decl.shell {
            for o in template::quoted_templates(&sh.value) {
                let n = template::mustache_offsets(&sh.value).iter().position(|&m| m == o).unwrap_or(0);
                diags.push(
                    Diagnostic::warning("quoted-template", src, mustache_pos(src, sh.pos, n), "quoted `{{...}}` in a shell script")
                        .with_help("`{{x}}` is already shell-quoted; drop the surrounding quotes, or use `{{{x}}}` for the raw value inside quotes"),
                );
            }
        }
    }
    let base_src = c.source(0);
    if let Some(r) = &c.base().releases {
        for s in [&r.from, &r.to] {
            check(
                base_src,
                &TemplateRef { text: Cow::Borrowed(&s.value), pos: s.pos, mustache_base: 0, escape: Escape::None },
                None,
                true,
                diags,
            );
        }
    }
    for f in c.facts.values() {
        let src = c.source(f.file);
        if let Some(sh) = &f.decl.shell {
            check(
                src,
                &TemplateRef { text: Cow::Borrowed(&sh.value), pos: sh.pos, mustache_base: 0, escape: Escape::Shell },
                None,
                false,
                diags,
            );
        }
        if let Some(run) = &f.decl.run {
            match &run.value {
                RunAction::Line(l) => check(
                    src,
                    &TemplateRef { text: Cow::Borrowed(l), pos: run.pos, mustache_base: 0, escape: Escape::None },
                    None,
                    false,
                    diags,
                ),
                RunAction::Argv(ws) => {
                    for w in ws {
                        check(
                            src,
                            &TemplateRef {
                                text: Cow::Borrowed(&w.value),
                                pos: w.pos,
                                mustache_base: 0,
                                escape: Escape::None,
                            },
                            None,
                            false,
                            diags,
                        );
                    }
                }
            }
        }
    }
    for v in c.vars.values() {
        if !used.contains(&v.name.value) {
            diags.push(
                Diagnostic::warning(
                    "unused-variable",
                    c.source(v.file),
                    v.name.pos,
                    format!("variable `{}` is never used", v.name.value),
                )
                .with_help("use it in a template, or remove it"),
            );
        }
    }
}

fn check_redundant_needs(c: &Compiled, diags: &mut Vec<Diagnostic>) {
    if c.graph.has_cycle {
        return;
    }
    for (i, s) in c.steps.iter().enumerate() {
        if s.decl.needs.len() < 2 || c.graph.index.get(&s.decl.id.value) != Some(&i) {
            continue;
        }
        let direct: Vec<(usize, &Name)> =
            s.decl.needs.iter().filter_map(|n| c.graph.index.get(&n.value).map(|&j| (j, n))).collect();
        for &(j, need) in &direct {
            if let Some(&(via, _)) = direct.iter().find(|&&(k, _)| k != j && c.graph.depends_on(k, j)) {
                diags.push(
                    Diagnostic::warning(
                        "redundant-dependency",
                        c.source(s.file),
                        need.pos,
                        format!("`{}` is already needed through `{}`", need.value, c.steps[via].decl.id.value),
                    )
                    .with_help(format!("remove `{}` from the needs of `{}`", need.value, s.decl.id.value)),
                );
            }
        }
    }
}
