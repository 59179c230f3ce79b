//! The pipeline every executing command shares: resolve the PLAN argument,
//! compile it with all its release plans (refusing an invalid plan), bind
//! variables and facts, pick the release plans in the window, compile again.

use std::path::PathBuf;
use std::sync::Arc;

use crate::bind::{BindError, Inputs, Selection, Values, bind, select_releases};
use crate::compile::{Compiled, compile};
use crate::diagnostic::{Diagnostic, SourceFile, render_human};
use crate::load::LoadedPlan;
use crate::resolve::{Catalog, ResolveError, resolve_arg};
use crate::template::Renderer;

pub struct Prepared {
    pub compiled: Compiled,
    pub values: Values,
    pub selections: Vec<Selection>,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("plan is invalid: {} error(s); nothing was run", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>, Vec<Arc<SourceFile>>),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(
        "`{name}` is a release plan of `{base}`; run `{base}`, which includes it when its release is in the window"
    )]
    ReleasePlan { name: String, base: String },
}

impl Failure {
    /// The whole message for the terminal: diagnostics, or the error and what to do.
    pub fn render(&self) -> String {
        match self {
            Failure::Invalid(d, s) => format!("{}error: {self}\n", render_human(d, s)),
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
        }
    }
}

/// Loads PLAN and all release plans that extend it; compiles and checks them.
pub fn load(arg: &str, plans_dirs: &[PathBuf]) -> Result<(LoadedPlan, Vec<LoadedPlan>, Compiled), Failure> {
    let catalog = Catalog::discover(plans_dirs);
    let base = resolve_arg(arg, &catalog)?;
    if let Some(b) = &base.plan.extends {
        return Err(Failure::ReleasePlan { name: base.plan.name.value.clone(), base: b.value.clone() });
    }
    let mut releases = catalog.release_plans(&base.plan.name.value);
    releases.retain(|r| r.source.name != base.source.name);
    let all = compile(&base, &releases);
    if all.has_errors() {
        let sources = all.sources();
        let errors: Vec<Diagnostic> = all.diagnostics.into_iter().filter(Diagnostic::is_error).collect();
        return Err(Failure::Invalid(errors, sources));
    }
    Ok((base, releases, all))
}

pub fn prepare(arg: &str, plans_dirs: &[PathBuf], inputs: &Inputs, renderer: &Renderer) -> Result<Prepared, Failure> {
    let (base, _, all) = load(arg, plans_dirs)?;
    let declared = |n: &str| all.vars.contains_key(n) || all.facts.contains_key(n);
    // The window is rendered from the base plan's own values; release plans'
    // vars are bound (and required) only once they are included.
    let base_values = bind(&compile(&base, &[]), inputs, renderer, None, &declared)?;
    let selections = select_releases(&all, &base_values, renderer)?;
    let included: Vec<LoadedPlan> = selections.iter().filter(|s| s.included).map(|s| s.plan.clone()).collect();
    let compiled = compile(&base, &included);
    let values = bind(&compiled, inputs, renderer, Some(&base_values), &declared)?;
    let warnings = all.diagnostics.into_iter().filter(|d| !d.is_error()).collect();
    Ok(Prepared { compiled, values, selections, warnings })
}
