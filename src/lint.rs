//! `plan lint`: checks files or folders, and the set they form (duplicate
//! names, `extends` targets, release plans against their base).

use crate::code::Code;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::compile::{check_family, check_orphan};
use crate::diagnostic::{Diagnostic, Severity, SourceFile, did_you_mean};
use crate::load::{Loaded, LoadedPlan, load_bytes, load_path};
use crate::resolve::{Catalog, embedded, sort_by_release, yaml_files};

pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<Arc<SourceFile>>,
    pub files: usize,
}

#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub diagnostics: &'a [Diagnostic],
    pub errors: usize,
    pub warnings: usize,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
    }
    /// GitHub Actions workflow commands, one per diagnostic.
    pub fn github(&self) -> String {
        // Workflow commands escape %, CR and LF in the message, and also : and , in properties.
        let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
        let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
        self.diagnostics
            .iter()
            .map(|d| {
                let level = if d.is_error() { "error" } else { "warning" };
                let message = match &d.help {
                    Some(h) => format!("{}\nhelp: {h}", d.message),
                    None => d.message.clone(),
                };
                format!(
                    "::{level} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
                    prop(&d.file),
                    d.line,
                    d.column,
                    d.end_line,
                    d.end_column,
                    prop(&format!("plan {}", d.code)),
                    data(&message)
                )
            })
            .collect()
    }

    /// SARIF 2.1.0: one run of `plan`, its rules (the codes), its results.
    pub fn sarif(&self) -> String {
        let rules: Vec<serde_json::Value> = crate::code::Code::ALL
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.as_str(),
                    "shortDescription": {"text": c.summary()},
                    "defaultConfiguration": {"level": if c.is_warning() { "warning" } else { "error" }},
                })
            })
            .collect();
        let results: Vec<serde_json::Value> = self
            .diagnostics
            .iter()
            .map(|d| {
                let text = match &d.help {
                    Some(h) => format!("{} (help: {h})", d.message),
                    None => d.message.clone(),
                };
                serde_json::json!({
                    "ruleId": d.code.as_str(),
                    "ruleIndex": crate::code::Code::ALL.iter().position(|c| *c == d.code),
                    "level": if d.is_error() { "error" } else { "warning" },
                    "message": {"text": text},
                    "locations": [{"physicalLocation": {
                        "artifactLocation": {"uri": d.file},
                        "region": {"startLine": d.line.max(1), "startColumn": d.column.max(1),
                                   "endLine": d.end_line.max(d.line).max(1), "endColumn": d.end_column.max(1)}
                    }}]
                })
            })
            .collect();
        let sarif = serde_json::json!({
            "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "plan",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules
                }},
                "results": results
            }]
        });
        serde_json::to_string_pretty(&sarif).unwrap_or_default() + "\n"
    }

    pub fn json(&self) -> String {
        serde_json::to_string(&JsonReport {
            diagnostics: &self.diagnostics,
            errors: self.errors(),
            warnings: self.warnings(),
        })
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("no such file or folder: {}", .0.display())]
    Missing(PathBuf),
    #[error("no plan files (*.yaml, *.yml) in {}", .0.display())]
    Empty(PathBuf),
    #[error("cannot read standard input: {0}")]
    Stdin(std::io::Error),
}

impl PathError {
    pub fn help(&self) -> &'static str {
        match self {
            PathError::Missing(_) => "pass plan files or folders that exist",
            PathError::Empty(_) => "check the folder: a lint of no plan proves nothing",
            PathError::Stdin(_) => "pipe a plan into `plan lint -`",
        }
    }
}

/// Lints the given files and folders (`-` is standard input); with none, the
/// `--plans-dir` folders; with neither, the shipped plans.
pub fn lint(paths: &[PathBuf], plans_dirs: &[PathBuf]) -> Result<Report, PathError> {
    let paths = if paths.is_empty() { plans_dirs } else { paths };
    let loaded: Vec<Loaded> = if paths.is_empty() {
        embedded()
    } else {
        let mut loaded = Vec::new();
        for p in paths {
            if p.as_os_str() == "-" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map_err(PathError::Stdin)?;
                loaded.push(load_bytes("<stdin>".into(), "<stdin>".into(), &bytes));
            } else if p.is_dir() {
                let files = yaml_files(p);
                if files.is_empty() {
                    return Err(PathError::Empty(p.clone()));
                }
                loaded.extend(files.iter().map(|f| load_path(f)));
            } else if p.is_file() {
                loaded.push(load_path(p));
            } else {
                return Err(PathError::Missing(p.clone()));
            }
        }
        loaded
    };
    let files = loaded.len();
    let mut diags = Vec::new();
    let mut sources = Vec::new();
    let mut plans: Vec<LoadedPlan> = Vec::new();
    for l in loaded {
        sources.push(l.source.clone());
        match l.result {
            Ok(p) => plans.push(p),
            Err(d) => {
                diags.push(d);
                diags.extend(l.more);
            }
        }
    }
    // Duplicate names within the linted set.
    let mut first: HashMap<&str, &LoadedPlan> = HashMap::new();
    for p in &plans {
        let name = p.plan.name.value.as_str();
        match first.get(name) {
            Some(f) => diags.push(
                Diagnostic::error(
                    Code::DuplicatePlan,
                    &p.source,
                    p.plan.name.pos,
                    format!("duplicate plan name `{name}`"),
                )
                .with_help(format!(
                    "`{name}` is also defined at {}:{}:{}",
                    f.source.name, f.plan.name.pos.line, f.plan.name.pos.column
                )),
            ),
            None => {
                first.insert(name, p);
            }
        }
    }
    let in_set: HashSet<&str> = first.keys().copied().collect();
    let catalog = Catalog::discover(plans_dirs);
    let lookup = |name: &str| -> Option<LoadedPlan> {
        first.get(name).map(|p| (*p).clone()).or_else(|| catalog.find(name).cloned())
    };
    let releases_of = |base: &str| -> Vec<LoadedPlan> {
        let mut seen = HashSet::new();
        let mut out: Vec<LoadedPlan> = plans
            .iter()
            .filter(|p| p.plan.extends.as_ref().is_some_and(|e| e.value == base))
            .cloned()
            .chain(catalog.release_plans(base))
            .filter(|p| seen.insert(p.plan.name.value.clone()))
            .collect();
        sort_by_release(&mut out);
        out
    };
    let linted: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let mut keep = |found: Vec<Diagnostic>, only: Option<&str>| {
        diags
            .extend(found.into_iter().filter(|d| linted.contains(d.file.as_str()) && only.is_none_or(|o| o == d.file)));
    };
    for p in &plans {
        match &p.plan.extends {
            None => {
                if first.get(p.plan.name.value.as_str()).is_some_and(|f| Arc::ptr_eq(&f.source, &p.source)) {
                    keep(check_family(p, &releases_of(&p.plan.name.value)), None);
                }
            }
            Some(base) => {
                if in_set.contains(base.value.as_str())
                    && first.get(base.value.as_str()).is_some_and(|b| b.plan.extends.is_none())
                {
                    continue; // checked with its base above
                }
                match lookup(&base.value) {
                    Some(b) if b.plan.extends.is_none() => {
                        let mut rels = releases_of(&base.value);
                        rels.retain(|r| r.plan.name.value != p.plan.name.value);
                        rels.push(p.clone());
                        sort_by_release(&mut rels);
                        keep(check_family(&b, &rels), Some(&p.source.name));
                    }
                    found => {
                        let mut d = Diagnostic::error(
                            Code::UnknownPlan,
                            &p.source,
                            base.pos,
                            match found {
                                Some(_) => format!(
                                    "`{}` is itself a release plan; `extends` must name a base plan",
                                    base.value
                                ),
                                None => format!("`extends` names `{}`, which is not on the plan path", base.value),
                            },
                        );
                        let names: Vec<&str> = in_set.iter().copied().chain(catalog.names()).collect();
                        d = d.with_help(did_you_mean(&base.value, names).unwrap_or_else(|| {
                            "lint it together with its base plan, or add the base's folder with --plans-dir".into()
                        }));
                        keep(vec![d], None);
                        keep(check_orphan(p), None);
                    }
                }
            }
        }
    }
    let mut seen = HashSet::new();
    diags.retain(|d| seen.insert((d.file.clone(), d.line, d.column, d.code, d.message.clone())));
    diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Ok(Report { diagnostics: diags, sources, files })
}
