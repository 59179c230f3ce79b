//! The pipeline every executing command shares, in the order data flows:
//! resolve the PLAN argument and its release plans, check the whole family
//! (what lint checks), bind the base plan's inputs, select the release
//! window, compile the base with the selected release plans once, bind the
//! rest, and render every step that needs no capture. Whatever fails here
//! fails before anything runs.

use crate::code::Code;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::bind::{BindError, Inputs, Selection, Values, bind, select_releases};
use crate::compile::{Compiled, Invalid, Scope, check_family, compile, declarations};
use crate::diagnostic::{Diagnostic, render_human};
use crate::load::LoadedPlan;
use crate::render::{Action, RenderError, RenderedStep, mask, render_step};
use crate::resolve::{Catalog, ResolveError, resolve_arg};
use crate::template::{self, Renderer};

/// A base plan and every release plan that extends it, checked as lint checks them.
pub struct Family {
    pub base: LoadedPlan,
    pub releases: Vec<LoadedPlan>,
    pub warnings: Vec<Diagnostic>,
}

/// A step as far as it can be rendered before the run.
#[derive(Debug, Clone)]
pub enum Rendered {
    /// Exactly what runs.
    Exact(RenderedStep),
    /// It reads captures: rendered with `<stdout of STEP>` in their place, for the eye only.
    Placeholders(RenderedStep),
    /// It reads captures and does not render without them.
    AtRunTime,
}

pub struct Prepared {
    pub compiled: Compiled,
    pub values: Values,
    pub selections: Vec<Selection>,
    pub warnings: Vec<Diagnostic>,
    /// Each step rendered with the bound values, by step index.
    pub rendered: Vec<Rendered>,
    /// The steps that read a secret (directly or through a capture made from
    /// one), by step index: what they capture is secret too.
    pub tainted: Vec<bool>,
    /// Warnings for the operator's terminal (secrets too short to mask).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(
        "`{name}` is a release plan of `{base}`; run `{base}`, which includes it when its release is in the window"
    )]
    ReleasePlan { name: String, base: String },
    /// A template that does not render with the values given (secrets already masked).
    #[error("{file}:{line}:{column}: error[{code}]: step `{step}`, {message}")]
    Render { file: String, line: u32, column: u32, code: Code, step: String, message: String },
}

impl Failure {
    /// The whole message for the terminal: diagnostics, or the error and what to do.
    pub fn render(&self) -> String {
        match self {
            Failure::Invalid(i) => format!("{}error: {self}\n", render_human(&i.diagnostics, &i.sources)),
            Failure::Resolve(ResolveError::Invalid(src, d)) => {
                format!(
                    "{}error: plan is invalid; nothing was run\n",
                    render_human(std::slice::from_ref(d), std::slice::from_ref(src))
                )
            }
            Failure::Resolve(ResolveError::NotFound { help, .. }) => {
                let help = help.clone().unwrap_or_else(|| {
                    "`plan list` shows the plans on the plan path; pass a file path or add --plans-dir".into()
                });
                format!("error: {self}\n  help: {help}\n")
            }
            Failure::Bind(b) => match b.help() {
                Some(h) => format!("error: {self}\n  help: {h}\n"),
                None => format!("error: {self}\n"),
            },
            Failure::ReleasePlan { .. } => format!("error: {self}\n"),
            Failure::Render { code, .. } => {
                let help = if *code == Code::NotBoolean {
                    "`when` and `assert` must render exactly `true` or `false`; check the template and the values given"
                } else {
                    "every template must render before anything runs; check the values given"
                };
                format!("{self}\n  help: {help}\nerror: nothing was run\n")
            }
        }
    }
}

/// Loads PLAN and all release plans that extend it, and checks them all.
pub fn load(arg: &str, plans_dirs: &[PathBuf]) -> Result<Family, Failure> {
    let catalog = Catalog::discover(plans_dirs);
    let base = resolve_arg(arg, &catalog)?;
    if let Some(b) = &base.plan.extends {
        return Err(Failure::ReleasePlan { name: base.plan.name.value.clone(), base: b.value.clone() });
    }
    let mut releases = catalog.release_plans(&base.plan.name.value);
    releases.retain(|r| r.source.name != base.source.name);
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) =
        check_family(&base, &releases).into_iter().partition(Diagnostic::is_error);
    if !errors.is_empty() {
        let mut sources = vec![base.source.clone()];
        sources.extend(releases.iter().map(|r| r.source.clone()));
        return Err(Invalid { diagnostics: errors, sources }.into());
    }
    Ok(Family { base, releases, warnings })
}

impl Family {
    /// The whole family in one graph (every release plan included), as `plan graph` draws it.
    pub fn compile_all(&self) -> Result<Compiled, Invalid> {
        compile(&self.base, &self.releases, &[])
    }
}

pub fn prepare(arg: &str, plans_dirs: &[PathBuf], inputs: &Inputs, renderer: &Renderer) -> Result<Prepared, Failure> {
    prepare_family(load(arg, plans_dirs)?, inputs, renderer)
}

/// [`prepare`] for a family already loaded and checked.
pub fn prepare_family(family: Family, inputs: &Inputs, renderer: &Renderer) -> Result<Prepared, Failure> {
    let everything =
        declarations(&std::iter::once(family.base.clone()).chain(family.releases.iter().cloned()).collect::<Vec<_>>());
    let declared = |n: &str| everything.vars.contains_key(n) || everything.facts.contains_key(n);
    // The window is rendered from the base plan's own values; release plans'
    // vars are bound (and required) only once they are included.
    let base_files = [family.base.clone()];
    let base_decls = declarations(&base_files);
    let base_scope = Scope { files: &base_files, vars: &base_decls.vars, facts: &base_decls.facts };
    let base_values = bind(base_scope, inputs, renderer, None, &declared)?;
    let selections = select_releases(&family.base, &family.releases, &base_values, renderer)?;
    let (included, excluded): (Vec<&Selection>, Vec<&Selection>) = selections.iter().partition(|s| s.included);
    let included: Vec<LoadedPlan> = included.into_iter().map(|s| s.plan.clone()).collect();
    let excluded: Vec<LoadedPlan> = excluded.into_iter().map(|s| s.plan.clone()).collect();
    let compiled = compile(&family.base, &included, &excluded)?;
    let values = bind(compiled.scope(), inputs, renderer, Some(&base_values), &declared)?;
    let reads = names_read(&compiled);
    let rendered = render_all(&compiled, &reads, &values, renderer)?;
    let tainted = tainted_steps(&compiled, &reads, values.secret_names());
    let notes = values.short_secrets();
    Ok(Prepared { compiled, values, selections, warnings: family.warnings, rendered, tainted, notes })
}

/// The names steps capture, by step index.
fn captures(c: &Compiled) -> HashMap<&str, usize> {
    c.steps.iter().enumerate().filter_map(|(i, s)| s.decl.capture.as_ref().map(|cap| (cap.value.as_str(), i))).collect()
}

/// The names each step's templates read, by step index.
fn names_read(c: &Compiled) -> Vec<HashSet<String>> {
    c.steps
        .iter()
        .map(|s| {
            let (templates, _) = crate::compile::step_templates(&s.decl);
            templates.iter().filter_map(|t| template::analyze(&t.text).ok()).flatten().map(|u| u.name).collect()
        })
        .collect()
}

/// The steps that read a secret, directly or through the capture of a step
/// that does (captures are read by descendants only, so one pass in run
/// order sees every capture before its readers).
fn tainted_steps(c: &Compiled, reads: &[HashSet<String>], mut secret: HashSet<String>) -> Vec<bool> {
    let mut tainted = vec![false; c.steps.len()];
    for &i in &c.graph.order {
        if reads[i].iter().any(|n| secret.contains(n)) {
            tainted[i] = true;
            if let Some(cap) = &c.steps[i].decl.capture {
                secret.insert(cap.value.clone());
            }
        }
    }
    tainted
}

/// Renders every step; the first that reads no capture and does not render stops everything.
fn render_all(
    c: &Compiled,
    reads: &[HashSet<String>],
    values: &Values,
    renderer: &Renderer,
) -> Result<Vec<Rendered>, Failure> {
    let base = c.base();
    let release = base.release.as_ref().map(|r| r.value.as_str());
    let ctx = values.context(&base.name.value, release, "<run id>", &HashMap::new());
    let captured = captures(c);
    let placeholders: HashMap<String, String> = captured
        .iter()
        .map(|(&name, &i)| (name.to_owned(), format!("<stdout of {}>", c.steps[i].decl.id.value)))
        .collect();
    let placeholder_ctx = values.context(&base.name.value, release, "<run id>", &placeholders);
    let captured: HashSet<&str> = captured.into_keys().collect();
    let secrets = values.secrets();
    let mut out = vec![Rendered::AtRunTime; c.steps.len()];
    for &i in &c.graph.order {
        if reads[i].iter().any(|n| captured.contains(n.as_str())) {
            if let Ok(r) = render_step(&c.steps[i], &placeholder_ctx, renderer) {
                out[i] = Rendered::Placeholders(r);
            }
            continue;
        }
        match render_step(&c.steps[i], &ctx, renderer) {
            Ok(r) => out[i] = Rendered::Exact(r),
            Err(RenderError { field, pos, code, message }) => {
                let src = c.source(c.steps[i].file);
                return Err(Failure::Render {
                    file: src.name.clone(),
                    line: pos.line,
                    column: pos.column,
                    code,
                    step: c.steps[i].decl.id.value.clone(),
                    message: mask(&format!("`{field}` {message}"), &secrets),
                });
            }
        }
    }
    Ok(out)
}

/// The first step, in run order, whose `assert` would stop the run: its index and message.
pub fn would_stop(p: &Prepared, runs: impl Fn(usize) -> bool) -> Option<(usize, String)> {
    p.compiled.graph.order.iter().copied().filter(|&i| runs(i)).find_map(|i| match &p.rendered[i] {
        Rendered::Exact(RenderedStep {
            action: Action::Assert { condition: false, message },
            continue_on_error: false,
            ..
        }) => Some((i, message.clone())),
        _ => None,
    })
}
