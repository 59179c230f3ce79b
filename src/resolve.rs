//! Resolving: the plan path (`--plans-dir`, `PLAN_PATH`, the shipped plans),
//! plan names to files, and a base plan to the release plans that extend it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::load::{Loaded, LoadedPlan, load_bytes, load_path};
use crate::template::parse_version;

include!(concat!(env!("OUT_DIR"), "/embedded_plans.rs"));

/// Every plan on the plan path, in lookup order (first match wins).
pub struct Catalog {
    pub plans: Vec<LoadedPlan>,
    /// Files on the path that did not load; reported when they matter.
    pub broken: Vec<(Arc<SourceFile>, Diagnostic)>,
}

/// `*.yaml` and `*.yml` under a folder, sorted, without recursion on the call stack.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The folders searched for plan names: `--plans-dir` first, then `PLAN_PATH`.
pub fn search_dirs(plans_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = plans_dirs.to_vec();
    if let Some(p) = std::env::var_os("PLAN_PATH") {
        dirs.extend(std::env::split_paths(&p).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

pub fn embedded() -> Vec<Loaded> {
    EMBEDDED_PLANS
        .iter()
        .map(|(path, text)| load_bytes(format!("embedded:{path}"), format!("embedded:{path}"), text.as_bytes()))
        .collect()
}

impl Catalog {
    pub fn discover(plans_dirs: &[PathBuf]) -> Catalog {
        let mut loaded = Vec::new();
        for dir in search_dirs(plans_dirs) {
            loaded.extend(yaml_files(&dir).iter().map(|p| load_path(p)));
        }
        loaded.extend(embedded());
        let mut plans = Vec::new();
        let mut broken = Vec::new();
        for l in loaded {
            match l.result {
                Ok(p) => plans.push(p),
                Err(d) => broken.push((l.source, d)),
            }
        }
        Catalog { plans, broken }
    }

    /// The first plan with this name on the path.
    pub fn find(&self, name: &str) -> Option<&LoadedPlan> {
        self.plans.iter().find(|p| p.plan.name.value == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plans.iter().map(|p| p.plan.name.value.as_str())
    }

    /// The release plans extending `base`, first match per name, sorted by release.
    pub fn release_plans(&self, base: &str) -> Vec<LoadedPlan> {
        let mut seen = HashSet::new();
        let mut out: Vec<LoadedPlan> = self
            .plans
            .iter()
            .filter(|p| p.plan.extends.as_ref().is_some_and(|e| e.value == base))
            .filter(|p| seen.insert(p.plan.name.value.clone()))
            .cloned()
            .collect();
        sort_by_release(&mut out);
        out
    }
}

pub fn sort_by_release(plans: &mut [LoadedPlan]) {
    plans.sort_by(|a, b| {
        let va = a.plan.release.as_ref().and_then(|r| parse_version(r));
        let vb = b.plan.release.as_ref().and_then(|r| parse_version(r));
        va.cmp(&vb).then_with(|| a.plan.name.value.cmp(&b.plan.name.value))
    });
}

/// A PLAN argument: a file when it names one (or looks like a path), else a name on the plan path.
pub fn resolve_arg(arg: &str, catalog: &Catalog) -> Result<LoadedPlan, ResolveError> {
    let path = Path::new(arg);
    let looks_like_path = arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml");
    if path.is_file() || looks_like_path {
        let l = load_path(path);
        return l.result.map_err(|d| ResolveError::Invalid(l.source, Box::new(d)));
    }
    catalog.find(arg).cloned().ok_or_else(|| ResolveError::NotFound {
        name: arg.to_owned(),
        help: crate::diagnostic::did_you_mean(arg, catalog.names()),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no plan named `{name}` on the plan path")]
    NotFound { name: String, help: Option<String> },
    #[error("plan file does not load")]
    Invalid(Arc<SourceFile>, Box<Diagnostic>),
}
