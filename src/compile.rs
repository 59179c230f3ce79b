//! Compiling: a base plan and its release plans become one checked step list,
//! one set of variables and facts, and one graph. Every rule that lint
//! reports, apart from YAML and the plan path, lives here or in `graph.rs`.

use crate::code::Code;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, SourceFile, did_you_mean};
use crate::graph::{self, Graph, Node};
use crate::load::LoadedPlan;
use crate::model::{DataValue, FactDecl, Name, PlanFile, Pos, RunAction, Sp, StepDecl, VarDecl};
use crate::template;

pub const API_VERSION: &str = "plan/v1";
/// Names every template can see besides vars, facts and captures.
pub const BUILTIN_NAMES: &[&str] = &["env", "plan", "run", "data"];

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
pub struct CData {
    pub file: usize,
    pub name: Name,
    pub value: Sp<DataValue>,
}

#[derive(Debug, Clone)]
pub struct CFact {
    pub file: usize,
    pub name: Name,
    pub decl: FactDecl,
}

/// A merged, checked plan: only [`compile`] makes one, and only when the
/// plan has no error, so a compiled plan that carries errors cannot exist.
#[derive(Debug)]
pub struct Compiled {
    /// File 0 is the base plan, then the included release plans in release order.
    pub files: Vec<LoadedPlan>,
    pub steps: Vec<CStep>,
    pub vars: IndexMap<String, CVar>,
    pub facts: IndexMap<String, CFact>,
    /// The `data:` tables of every file, by name.
    pub data: IndexMap<String, CData>,
    pub graph: Graph,
    pub warnings: Vec<Diagnostic>,
}

/// A plan that did not compile: its diagnostics (errors and warnings) and the
/// sources to show them against.
#[derive(Debug, thiserror::Error)]
#[error("plan is invalid: {} error(s); nothing was run", .diagnostics.iter().filter(|d| d.is_error()).count())]
pub struct Invalid {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<Arc<SourceFile>>,
}

/// The vars and facts a set of files declares, first declaration first.
#[derive(Debug, Default)]
pub struct Decls {
    pub vars: IndexMap<String, CVar>,
    pub facts: IndexMap<String, CFact>,
}

/// What values are bound against: the files (file 0 the base) and what they declare.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub files: &'a [LoadedPlan],
    pub vars: &'a IndexMap<String, CVar>,
    pub facts: &'a IndexMap<String, CFact>,
}

impl Scope<'_> {
    pub fn base(&self) -> &PlanFile {
        &self.files[0].plan
    }
    pub fn source(&self, file: usize) -> &SourceFile {
        &self.files[file].source
    }
}

/// The vars and facts a list of files declares (no checks: [`check_family`] made them).
pub fn declarations(files: &[LoadedPlan]) -> Decls {
    let mut d = Decls::default();
    for (fi, f) in files.iter().enumerate() {
        for (name, v) in &f.plan.vars {
            d.vars.entry(name.value.clone()).or_insert_with(|| CVar { file: fi, name: name.clone(), decl: v.clone() });
        }
        for (name, fa) in &f.plan.facts {
            d.facts.entry(name.value.clone()).or_insert_with(|| CFact {
                file: fi,
                name: name.clone(),
                decl: fa.clone(),
            });
        }
    }
    d
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
    pub fn scope(&self) -> Scope<'_> {
        Scope { files: &self.files, vars: &self.vars, facts: &self.facts }
    }
}

/// A template in a plan, where it is, and how it is rendered.
pub struct TemplateRef<'a> {
    pub text: Cow<'a, str>,
    pub pos: Pos,
    /// How many `{{` precede this text inside the same YAML scalar (for split `run` lines).
    pub mustache_base: usize,
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
                            out.push(TemplateRef { text: Cow::Owned(w), pos: run.pos, mustache_base: base });
                        }
                        base += n;
                    }
                }
            }
            RunAction::Argv(words) => out.extend(words.iter().map(|w| t(w))),
        }
    }
    if let Some(s) = &decl.shell {
        out.push(t(s));
    }
    for s in [&decl.assert, &decl.message, &decl.confirm, &decl.when, &decl.cwd].into_iter().flatten() {
        out.push(t(s));
    }
    if let Some(r) = &decl.remove {
        out.push(TemplateRef { text: Cow::Borrowed(&r.value.path), pos: r.pos, mustache_base: 0 });
        if let Some(w) = &r.value.within {
            let base = template::mustache_offsets(&r.value.path).len();
            out.push(TemplateRef { text: Cow::Borrowed(w), pos: r.pos, mustache_base: base });
        }
    }
    if let Some(r) = &decl.review_defaults {
        let r = &r.value;
        out.extend([&r.tutor, &r.root, &r.plugin, &r.target].into_iter().chain(&r.keep).chain(&r.pin).map(|v| t(v)));
    }
    out.extend(decl.env.values().map(|v| t(v)));
    (out, split_error)
}

/// Where the n-th `{{...}}` of a scalar starting at `pos` is, in its file:
/// the whole expression, through its closing braces.
pub fn mustache_pos(source: &SourceFile, pos: Pos, n: usize) -> Pos {
    if pos.line == 0 {
        return pos;
    }
    let rest = source.text.get(pos.offset as usize..).unwrap_or("");
    match template::mustache_offsets(rest).get(n) {
        Some(&o) => {
            let expr = &rest[o..];
            let len = match expr.find("}}") {
                // Not past the end of the line: an unclosed `{{` is marked alone.
                Some(end) if !expr[..end].contains('\n') => {
                    end + 2 + expr[end + 2..].bytes().take_while(|&b| b == b'}').count().min(1)
                }
                _ => 2,
            };
            source.pos(pos.offset as usize + o, len)
        }
        None => pos,
    }
}

fn t(s: &Sp<String>) -> TemplateRef<'_> {
    TemplateRef { text: Cow::Borrowed(&s.value), pos: s.pos, mustache_base: 0 }
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

/// A duration such as `500ms`, `90s`, `30m` or `1h30m` ([`DURATION_PATTERN`],
/// read by humantime with checked arithmetic). A bare number is refused: `90`
/// could be seconds or minutes.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::NoUnit(s.to_owned()));
    }
    static GRAMMAR: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(DURATION_PATTERN).expect("a valid regex"));
    if !GRAMMAR.is_match(s) {
        return Err(DurationError::NotADuration { text: s.to_owned(), why: None });
    }
    match humantime::parse_duration(s) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        Ok(_) | Err(humantime::DurationError::NumberOverflow) => Err(DurationError::TooLong(s.to_owned())),
        Err(e) => Err(DurationError::NotADuration { text: s.to_owned(), why: Some(e.to_string()) }),
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` has no unit; write `{0}s` for seconds")]
    NoUnit(String),
    #[error("`{text}` is not a duration{}", why.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotADuration { text: String, why: Option<String> },
    #[error("`{0}` is longer than the longest duration plan takes ({MAX_DAYS} days)")]
    TooLong(String),
}

/// What a duration looks like (the JSON Schema says the same): numbers with
/// units, no spaces: `500ms`, `90s`, `1h30m`, `1.5s`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h|d))+$";

/// No step, probe or grace period waits longer: every deadline computed from
/// a duration stays far inside what a clock can represent.
pub const MAX_DURATION: Duration = Duration::from_secs(MAX_DAYS * 86_400);
const MAX_DAYS: u64 = 366;

/// Compiles exactly what runs: a base plan and the release plans of the
/// window, merged into one checked graph. `excluded` are the base's other
/// release plans: a reference to one of their names is `release-scope`.
pub fn compile(base: &LoadedPlan, included: &[LoadedPlan], excluded: &[LoadedPlan]) -> Result<Compiled, Invalid> {
    let mut files = vec![base.clone()];
    files.extend(included.iter().cloned());
    let mut diags = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        check_file(f, fi == 0, &mut diags);
    }
    let c = link(files, &Foreign::of(excluded), &mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(Invalid { diagnostics: diags, sources: c.sources() });
    }
    Ok(Compiled { warnings: diags, ..c })
}

/// Every diagnostic of a base plan and all its release plans, proving every
/// window sound without values. Each file is checked once; each release plan
/// is linked with the base alone (the window where it is the only one), with
/// the names of the other release plans out of scope; the base alone and all
/// of them together find what two release plans could clash on.
pub fn check_family(base: &LoadedPlan, releases: &[LoadedPlan]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    check_file(base, true, &mut diags);
    for r in releases {
        check_file(r, false, &mut diags);
    }
    // Window-dependent rules come from each window; `unused-variable` from the whole family.
    let per_window = |d: &Diagnostic| d.code != Code::UnusedVariable;
    let mut base_alone = Vec::new();
    link(vec![base.clone()], &Foreign::of(releases), &mut base_alone);
    if releases.is_empty() {
        diags.extend(base_alone);
        return diags;
    }
    diags.extend(base_alone.into_iter().filter(per_window));
    for (i, r) in releases.iter().enumerate() {
        let others: Vec<LoadedPlan> =
            releases.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p.clone()).collect();
        let mut window = Vec::new();
        link(vec![base.clone(), r.clone()], &Foreign::of(&others), &mut window);
        diags.extend(window.into_iter().filter(|d| per_window(d) && d.file == r.source.name));
    }
    let mut all = vec![base.clone()];
    all.extend(releases.iter().cloned());
    let mut union = Vec::new();
    link(all, &Foreign::default(), &mut union);
    let window_rules =
        [Code::UnknownDependency, Code::UndefinedVariable, Code::CaptureNotAncestor, Code::RedundantDependency];
    diags.extend(union.into_iter().filter(|d| !window_rules.contains(&d.code)));
    let mut seen = HashSet::new();
    diags.retain(|d| seen.insert((d.file.clone(), d.line, d.column, d.code, d.message.clone())));
    diags
}

/// How many unknown names get a "did you mean" (each costs a pass over every name).
const SUGGESTIONS: usize = 32;

/// A release plan whose base is not on the plan path: every rule that needs
/// no base (names it refers to may be the base's).
pub fn check_orphan(p: &LoadedPlan) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    check_file(p, false, &mut diags);
    let mut linked = Vec::new();
    link(vec![p.clone()], &Foreign::default(), &mut linked);
    let needs_base = [Code::UnknownDependency, Code::UndefinedVariable, Code::CaptureNotAncestor, Code::UnusedVariable];
    diags.extend(linked.into_iter().filter(|d| !needs_base.contains(&d.code)));
    diags
}

/// Names declared by release plans outside a window, and which plan declares each.
#[derive(Default)]
struct Foreign {
    steps: HashMap<String, String>,
    names: HashMap<String, String>,
    data: HashMap<String, String>,
}

impl Foreign {
    fn of(plans: &[LoadedPlan]) -> Foreign {
        let mut f = Foreign::default();
        for p in plans {
            let plan = p.plan.name.value.clone();
            for s in &p.plan.steps {
                f.steps.entry(s.id.value.clone()).or_insert_with(|| plan.clone());
                if let Some(cap) = &s.capture {
                    f.names.entry(cap.value.clone()).or_insert_with(|| plan.clone());
                }
            }
            for n in p.plan.vars.keys().chain(p.plan.facts.keys()) {
                f.names.entry(n.value.clone()).or_insert_with(|| plan.clone());
            }
            for n in p.plan.data.keys() {
                f.data.entry(n.value.clone()).or_insert_with(|| plan.clone());
            }
        }
        f
    }
}

/// The `release-scope` error for a name that only another release plan declares.
fn out_of_scope(c: &Compiled, file: usize, pos: Pos, what: &str, name: &str, owner: &str) -> Diagnostic {
    let here = if file == 0 {
        "the base plan".to_owned()
    } else {
        format!("release plan `{}`", c.files[file].plan.name.value)
    };
    Diagnostic::error(
        Code::ReleaseScope,
        c.source(file),
        pos,
        format!("{here} refers to {what} `{name}` of release plan `{owner}`, which a window may leave out"),
    )
    .with_help(if file == 0 {
        format!("the base plan may only use its own names; move `{name}` into the base plan")
    } else {
        format!("a release plan may use the base plan's names and its own; move `{name}` into the base plan or into this file")
    })
}

/// Merges files, builds the graph and checks every rule that depends on
/// which files are together.
fn link(files: Vec<LoadedPlan>, foreign: &Foreign, diags: &mut Vec<Diagnostic>) -> Compiled {
    let mut c = Compiled {
        files,
        steps: Vec::new(),
        vars: IndexMap::new(),
        facts: IndexMap::new(),
        data: IndexMap::new(),
        graph: Graph::default(),
        warnings: Vec::new(),
    };
    merge(&mut c, diags);
    let nodes: Vec<Node> = c.steps.iter().map(|s| Node { decl: &s.decl, file: &c.files[s.file].source }).collect();
    let (g, unresolved) = graph::build(&nodes, diags);
    let unknown: Vec<(usize, Name, bool)> =
        unresolved.into_iter().map(|u| (u.step, u.entry.clone(), u.is_need)).collect();
    drop(nodes);
    c.graph = g;
    for (n, (step, entry, is_need)) in unknown.into_iter().enumerate() {
        let file = c.steps[step].file;
        if let Some(owner) = foreign.steps.get(&entry.value) {
            diags.push(out_of_scope(&c, file, entry.pos, "step", &entry.value, owner));
            continue;
        }
        let relation = if is_need { "needs" } else { "runs before" };
        let mut d = Diagnostic::error(
            Code::UnknownDependency,
            c.source(file),
            entry.pos,
            format!(
                "step `{}` {relation} `{}`, which is not a step of this plan",
                c.steps[step].decl.id.value, entry.value
            ),
        );
        // Suggestions cost a comparison with every id: a file of thousands of
        // unknown ids gets them for the first few only, so lint stays linear.
        if n < SUGGESTIONS
            && let Some(h) = did_you_mean(&entry.value, c.graph.index.keys().map(String::as_str))
        {
            d = d.with_help(h);
        }
        diags.push(d);
    }
    check_templates(&c, foreign, diags);
    check_redundant_needs(&c, diags);
    c
}

fn check_file(f: &LoadedPlan, is_base: bool, diags: &mut Vec<Diagnostic>) {
    let src = &f.source;
    let p = &f.plan;
    if p.api_version.value != API_VERSION {
        diags.push(
            Diagnostic::error(
                Code::UnsupportedApiVersion,
                src,
                p.api_version.pos,
                format!("unsupported apiVersion `{}`", p.api_version.value),
            )
            .with_help(format!("this version of plan reads `apiVersion: {API_VERSION}`")),
        );
    }
    if !valid_id(&p.name.value) {
        diags.push(
            Diagnostic::error(Code::InvalidValue, src, p.name.pos, format!("invalid plan name `{}`", p.name.value))
                .with_help("plan names match [a-z0-9][a-z0-9-]*"),
        );
    }
    if let Some(r) = &p.release
        && semver::Version::parse(&r.value).is_err()
    {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                src,
                r.pos,
                format!("release `{}` is not a semantic version", r.value),
            )
            .with_help("write it as MAJOR.MINOR.PATCH, e.g. `2.5.0`"),
        );
    }
    if p.extends.is_some() {
        if !is_base && p.release.is_none() {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    src,
                    p.name.pos,
                    "a plan that `extends` another needs a `release`",
                )
                .with_help("add `release: X.Y.Z`: it decides when this plan applies"),
            );
        }
        if let Some(r) = &p.releases {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
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
    for name in p.data.keys() {
        check_name(src, name, "data table", diags);
    }
    for (name, fact) in &p.facts {
        check_name(src, name, "fact", diags);
        match (&fact.run, &fact.shell) {
            (None, None) => diags.push(
                Diagnostic::error(
                    Code::NoAction,
                    src,
                    name.pos,
                    format!("fact `{}` has no `run` or `shell`", name.value),
                )
                .with_help("add `run: COMMAND` that prints the value"),
            ),
            (Some(_), Some(s)) => diags.push(
                Diagnostic::error(
                    Code::MultipleActions,
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
            Diagnostic::error(Code::InvalidValue, src, name.pos, format!("invalid {what} name `{}`", name.value))
                .with_help("names match [A-Za-z_][A-Za-z0-9_]*"),
        );
    } else if BUILTIN_NAMES.contains(&name.value.as_str()) {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
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
                Diagnostic::error(Code::InvalidValue, src, pat.pos, format!("invalid pattern: {last}"))
                    .with_help("patterns are Rust regular expressions (the `regex` crate's syntax)"),
            );
            None
        }
    }
}

fn check_duration(src: &SourceFile, d: &Sp<String>, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = parse_duration(&d.value) {
        diags.push(
            Diagnostic::error(Code::InvalidValue, src, d.pos, format!("invalid duration: {e}"))
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
            Code::InvalidChoice,
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
                Code::InvalidValue,
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
            Diagnostic::error(Code::InvalidValue, src, s.id.pos, format!("invalid step id `{}`", s.id.value))
                .with_help("step ids match [a-z0-9][a-z0-9-]*"),
        );
    }
    let actions: Vec<(&str, Pos)> = [
        ("run", s.run.as_ref().map(|r| r.pos)),
        ("shell", s.shell.as_ref().map(|r| r.pos)),
        ("assert", s.assert.as_ref().map(|r| r.pos)),
        ("confirm", s.confirm.as_ref().map(|r| r.pos)),
        ("remove", s.remove.as_ref().map(|r| r.pos)),
        ("review_defaults", s.review_defaults.as_ref().map(|r| r.pos)),
    ]
    .into_iter()
    .filter_map(|(n, p)| p.map(|p| (n, p)))
    .collect();
    match actions.len() {
        0 => diags.push(
            Diagnostic::error(Code::NoAction, src, s.id.pos, format!("step `{}` has no action", s.id.value))
                .with_help("give it exactly one of `run`, `shell`, `assert`, `confirm`, `remove`, `review_defaults`"),
        ),
        1 => {}
        _ => diags.push(
            Diagnostic::error(
                Code::MultipleActions,
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
    for (field, t) in [("when", &s.when), ("assert", &s.assert)] {
        if let Some(t) = t
            && !t.value.contains("{{")
            && !matches!(t.value.trim(), "true" | "false")
        {
            diags.push(
                Diagnostic::error(Code::NotBoolean, src, t.pos, format!("`{field}: {}` can never be `true` or `false`", t.value.trim()))
                    .with_help(format!("`{field}` must render exactly `true` or `false`: write \"true\", \"false\" or a template such as \"{{{{eq deploy 'k8s'}}}}\"")),
            );
        }
    }
    if let (Some(m), None) = (&s.message, &s.assert) {
        diags.push(
            Diagnostic::error(Code::InvalidValue, src, m.pos, "`message` is only used by an `assert` step")
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
            Diagnostic::error(Code::InvalidValue, src, c.pos, format!("invalid capture name `{}`", c.value))
                .with_help("names match [A-Za-z_][A-Za-z0-9_]*"),
        );
    }
    for k in s.env.keys() {
        if !valid_var_name(&k.value) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
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
                    Code::InvalidValue,
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
        for (name, value) in &plan.data {
            if let Some(first) = c.data.get(&name.value) {
                let other = c.source(first.file);
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        c.source(fi),
                        name.pos,
                        format!("data table `{}` is already declared", name.value),
                    )
                    .with_help(format!(
                        "first declared at {}:{}:{}; give this table another name",
                        other.name, first.name.pos.line, first.name.pos.column
                    )),
                );
            } else {
                c.data.insert(name.value.clone(), CData { file: fi, name: name.clone(), value: value.clone() });
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

fn check_templates(c: &Compiled, foreign: &Foreign, diags: &mut Vec<Diagnostic>) {
    let mut used: HashSet<String> = HashSet::new();
    let mut version_tables: HashSet<String> = HashSet::new();
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
                    Code::TemplateSyntax,
                    src,
                    mustache_pos(src, t.pos, t.mustache_base + e.mustache),
                    format!("template syntax: {}", e.message),
                )
                .with_help("templates are handlebars: `{{name}}`, `{{#if x}}...{{/if}}`, `{{eq a b}}`"),
            ),
            Ok(names) => {
                version_tables.extend(template::version_tables(&t.text));
                for u in names {
                    if u.name == "data" || u.name.starts_with("data.") {
                        let pos = mustache_pos(src, t.pos, t.mustache_base + u.mustache);
                        if let Some(d) = check_data_use(c, foreign, src, pos, &u.name) {
                            diags.push(d);
                        }
                        used.insert(u.name.clone());
                        continue;
                    }
                    if u.helper {
                        let pos = mustache_pos(src, t.pos, t.mustache_base + u.mustache);
                        let help = did_you_mean(&u.name, template::HELPERS.iter().copied())
                            .unwrap_or_else(|| format!("the helpers are: {}", template::HELPERS.join(", ")));
                        diags.push(
                            Diagnostic::error(Code::UnknownHelper, src, pos, format!("unknown helper `{}`", u.name))
                                .with_help(help),
                        );
                        continue;
                    }
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
                                        Code::CaptureNotAncestor,
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
                    if let Some(owner) = foreign.names.get(&u.name) {
                        let fi = c.files.iter().position(|f| f.source.name == src.name).unwrap_or(0);
                        diags.push(out_of_scope(c, fi, pos, "the name", &u.name, owner));
                        continue;
                    }
                    let mut d = Diagnostic::error(
                        Code::UndefinedVariable,
                        src,
                        pos,
                        format!("undefined variable `{}`", u.name),
                    );
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
            let unclosed = match &run.value {
                RunAction::Line(l) => template::unclosed_mustache(l),
                RunAction::Argv(_) => None,
            };
            diags.push(match unclosed {
                Some(n) => Diagnostic::error(Code::TemplateSyntax, src, mustache_pos(src, run.pos, n), "unclosed `{{`")
                    .with_help("close it with `}}`: templates are `{{name}}`"),
                None => Diagnostic::error(Code::InvalidValue, src, run.pos, msg)
                    .with_help("give the program to run; close any quote, or use `run: [argv, words]`"),
            });
        }
        for t in templates {
            check(src, &t, Some(i), true, diags);
        }
        if let Some(sh) = &s.decl.shell {
            check_shell(src, sh, s.decl.allow_raw.as_ref().is_some_and(|a| *a.value), diags);
        }
    }
    for f in c.facts.values() {
        if let Some(sh) = &f.decl.shell {
            check_shell(c.source(f.file), sh, f.decl.allow_raw.as_ref().is_some_and(|a| *a.value), diags);
        }
    }
    let base_src = c.source(0);
    if let Some(r) = &c.base().releases {
        for s in [&r.from, &r.to] {
            check(
                base_src,
                &TemplateRef { text: Cow::Borrowed(&s.value), pos: s.pos, mustache_base: 0 },
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
                &TemplateRef { text: Cow::Borrowed(&sh.value), pos: sh.pos, mustache_base: 0 },
                None,
                false,
                diags,
            );
        }
        if let Some(run) = &f.decl.run {
            match &run.value {
                RunAction::Line(l) => check(
                    src,
                    &TemplateRef { text: Cow::Borrowed(l), pos: run.pos, mustache_base: 0 },
                    None,
                    false,
                    diags,
                ),
                RunAction::Argv(ws) => {
                    for w in ws {
                        check(
                            src,
                            &TemplateRef { text: Cow::Borrowed(&w.value), pos: w.pos, mustache_base: 0 },
                            None,
                            false,
                            diags,
                        );
                    }
                }
            }
        }
    }
    for d in c.data.values() {
        if version_tables.contains(&d.name.value) {
            check_version_table(c.source(d.file), d, diags);
        }
        if !used.contains(&format!("data.{}", d.name.value)) {
            diags.push(
                Diagnostic::warning(
                    Code::UnusedVariable,
                    c.source(d.file),
                    d.name.pos,
                    format!("data table `{}` is never used", d.name.value),
                )
                .with_help(format!("read it as `data.{}` in a template, or remove it", d.name.value)),
            );
        }
    }
    for v in c.vars.values() {
        if !used.contains(&v.name.value) {
            diags.push(
                Diagnostic::warning(
                    Code::UnusedVariable,
                    c.source(v.file),
                    v.name.pos,
                    format!("variable `{}` is never used", v.name.value),
                )
                .with_help("use it in a template, or remove it"),
            );
        }
    }
}

/// A template's `data` or `data.TABLE`: the table must be declared in scope.
fn check_data_use(c: &Compiled, foreign: &Foreign, src: &SourceFile, pos: Pos, name: &str) -> Option<Diagnostic> {
    let Some(table) = name.strip_prefix("data.") else {
        return Some(
            Diagnostic::error(Code::UndefinedVariable, src, pos, "`data` alone is not a value")
                .with_help("read one table of `data:` as `data.NAME`, e.g. `(lookup data.NAME key)`"),
        );
    };
    if c.data.contains_key(table) {
        return None;
    }
    if let Some(owner) = foreign.data.get(table) {
        let fi = c.files.iter().position(|f| f.source.name == src.name).unwrap_or(0);
        return Some(out_of_scope(c, fi, pos, "data table", table, owner));
    }
    let help = did_you_mean(table, c.data.keys().map(String::as_str))
        .unwrap_or_else(|| format!("declare it under `data:` as `{table}:`"));
    Some(
        Diagnostic::error(Code::UndefinedVariable, src, pos, format!("undefined data table `{table}`")).with_help(help),
    )
}

/// A table read with `version_lookup`: a map whose keys are version
/// requirements pip reads (`>=2.0.0, <3.0.0`).
fn check_version_table(src: &SourceFile, d: &CData, diags: &mut Vec<Diagnostic>) {
    let DataValue::Map(rows) = &d.value.value else {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                src,
                d.value.pos,
                format!("data table `{}` is read with `version_lookup` but is not a map", d.name.value),
            )
            .with_help("write it as a map from version requirements to values: `\">=2.0.0, <3.0.0\": ...`"),
        );
        return;
    };
    for key in rows.keys() {
        if let Err(e) = key.value.parse::<pep440_rs::VersionSpecifiers>() {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    src,
                    key.pos,
                    format!(
                        "data table `{}`: key `{}` is not a version requirement ({})",
                        d.name.value,
                        key.value,
                        e.to_string().lines().next().unwrap_or("")
                    ),
                )
                .with_help("`version_lookup` reads keys as pip reads requirements, e.g. `>=2.0.0, <3.0.0`"),
            );
        }
    }
}

/// Shell safety: a value may never change a script's command. `{{x}}` is
/// quoted for the context it stands in; where no quoting is safe (raw
/// `{{{x}}}`, backticks, here-documents) the template is an error.
fn check_shell(src: &SourceFile, sh: &Sp<String>, allow_raw: bool, diags: &mut Vec<Diagnostic>) {
    let offsets = template::mustache_offsets(&sh.value);
    for t in template::shell_templates(&sh.value) {
        if !t.expression {
            continue;
        }
        let n = offsets.iter().position(|&m| m == t.start).unwrap_or(0);
        let pos = mustache_pos(src, sh.pos, n);
        let error = |message: &str, help: &str| {
            Diagnostic::error(Code::RawTemplateInShell, src, pos, message.to_owned()).with_help(help.to_owned())
        };
        let d = match t.context {
            _ if t.raw && allow_raw => continue,
            _ if t.raw => error(
                "`{{{...}}}` puts the value into the script unquoted: a value could change the command",
                "write `{{x}}`: it is already shell-quoted, inside quotes or out; if this step really needs raw text, set `allow_raw: true` on it",
            ),
            template::ShellContext::Backtick => error(
                "inside backticks a value cannot be quoted safely",
                "use `$( ... )` instead of backticks: `{{x}}` is quoted safely inside it",
            ),
            template::ShellContext::HereDoc => error(
                "inside a here-document a value cannot be quoted safely (a line of it could end the document)",
                "pass the value through `env:` and write \"$NAME\" in the document, or print it with printf '%s\\n' {{x}}",
            ),
            template::ShellContext::Comment => error(
                "a template in a shell comment: a newline in the value would end the comment and run the rest",
                "take the template out of the comment",
            ),
            template::ShellContext::Single | template::ShellContext::Double => {
                Diagnostic::warning(Code::QuotedTemplate, src, pos, "quoted `{{...}}` in a shell script").with_help(
                    "`{{x}}` is already shell-quoted and stays one literal piece inside quotes too; the quotes around it are not needed",
                )
            }
            template::ShellContext::Plain => continue,
        };
        diags.push(d);
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
        // Each need once: `needs: [a, a, ...]` must not make this quadratic.
        let mut once = HashSet::new();
        let direct: Vec<(usize, &Name)> = s
            .decl
            .needs
            .iter()
            .filter_map(|n| c.graph.index.get(&n.value).map(|&j| (j, n)))
            .filter(|(j, _)| once.insert(*j))
            .collect();
        for &(j, need) in &direct {
            if let Some(&(via, _)) = direct.iter().find(|&&(k, _)| k != j && c.graph.depends_on(k, j)) {
                diags.push(
                    Diagnostic::warning(
                        Code::RedundantDependency,
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
