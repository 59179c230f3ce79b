//! Output of `plan show`, `plan graph` and `plan list`.

use std::fmt::Write as _;

use crate::bind::Origin;
use crate::compile::Compiled;
use crate::prepare::{Prepared, Rendered};
use crate::render::mask;
use crate::resolve::Catalog;

pub fn show(p: &Prepared) -> String {
    let c = &p.compiled;
    let base = c.base();
    let secrets = p.values.secrets();
    let mut out = String::new();
    let _ = writeln!(out, "plan {} ({})", base.name.value, c.files[0].origin);
    if let Some(d) = &base.description {
        let _ = writeln!(out, "  {}", d.value.trim());
    }
    if !p.selections.is_empty() {
        let _ = writeln!(out, "\nrelease plans:");
        for s in &p.selections {
            let rel = s.plan.plan.release.as_ref().map_or("", |r| r.value.as_str());
            let mark = if s.included { "included" } else { "skipped " };
            let _ = writeln!(out, "  {mark} {} {rel}: {}", s.plan.plan.name.value, s.reason);
        }
    }
    let (vars, facts): (Vec<_>, Vec<_>) = p.values.values.iter().partition(|(k, _)| c.vars.contains_key(*k));
    for (title, list) in [("variables", vars), ("facts", facts)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}:");
        for (k, b) in list {
            let v = if b.secret {
                "***".to_owned()
            } else if b.value.is_empty() {
                "\"\"".to_owned()
            } else {
                b.value.clone()
            };
            let origin = match &b.origin {
                Origin::Probe => {
                    let f = &c.facts[k.as_str()].decl;
                    let cmd = match (&f.run, &f.shell) {
                        (Some(r), _) => match &r.value {
                            crate::model::RunAction::Line(l) => l.clone(),
                            crate::model::RunAction::Argv(a) => {
                                a.iter().map(|w| w.value.clone()).collect::<Vec<_>>().join(" ")
                            }
                        },
                        (None, Some(s)) => {
                            let mut lines = s.value.trim().lines();
                            let first = lines.next().unwrap_or("").to_owned();
                            if lines.next().is_some() { format!("{first} ...") } else { first }
                        }
                        _ => String::new(),
                    };
                    format!("probed: {cmd}")
                }
                Origin::FactDefault => b.origin.to_string(),
                Origin::Cli | Origin::Env(_) | Origin::VarsFile(_) | Origin::Journal(_)
                    if c.facts.contains_key(k.as_str()) =>
                {
                    format!("overridden by {}, not probed", b.origin)
                }
                o => o.to_string(),
            };
            let _ = writeln!(out, "{}", mask(&format!("  {k} = {v} ({origin})"), &secrets));
        }
    }
    let _ = writeln!(out, "\nsteps, in order:");
    for (n, &i) in c.graph.order.iter().enumerate() {
        let s = &c.steps[i];
        let r = match &p.rendered[i] {
            Rendered::Exact(r) | Rendered::Placeholders(r) => r,
            Rendered::AtRunTime => {
                let _ = writeln!(out, "{:>3}. {} [rendered at run time: it reads a capture]", n + 1, s.decl.id.value);
                continue;
            }
        };
        let from = if s.file == 0 { String::new() } else { format!(" (from {})", c.files[s.file].plan.name.value) };
        let _ = writeln!(out, "{:>3}. {} [{}]{from}", n + 1, r.id, r.action.kind());
        if let Some(d) = &s.decl.description {
            let _ = writeln!(out, "       {}", d.value.trim());
        }
        // From the graph: `before:` entries of other steps count too.
        let needs = need_ids(c, i);
        if !needs.is_empty() {
            let _ = writeln!(out, "       needs: {}", needs.join(", "));
        }
        if r.when == Some(false) {
            let _ = writeln!(out, "       when: false, skipped");
            continue;
        }
        let desc = r.action.describe(&secrets);
        let mut lines = desc.lines();
        let _ = writeln!(out, "       {}: {}", r.action.kind(), lines.next().unwrap_or(""));
        for l in lines {
            let _ = writeln!(out, "         {l}");
        }
        for (k, v) in &r.env {
            let _ = writeln!(out, "       env {k}={}", mask(v, &secrets));
        }
        if let Some(cwd) = &r.cwd {
            let _ = writeln!(out, "       cwd: {}", mask(cwd, &secrets));
        }
        let mut extra = Vec::new();
        if let Some(t) = r.timeout {
            extra.push(format!("timeout {}s", t.as_secs_f64()));
        }
        if r.retries > 0 {
            extra.push(format!("retries {} (delay {}s)", r.retries, r.retry_delay.as_secs_f64()));
        }
        if r.continue_on_error {
            extra.push("continue on error".into());
        }
        if let Some(cap) = &r.capture {
            extra.push(format!("captures `{cap}`"));
        }
        if !extra.is_empty() {
            let _ = writeln!(out, "       {}", extra.join(", "));
        }
    }
    out
}

/// The line that says where an `assert` would stop the run, if one would.
pub fn would_stop(p: &Prepared, runs: impl Fn(usize) -> bool) -> Option<String> {
    crate::prepare::would_stop(p, runs).map(|(i, message)| {
        format!("would stop at {}: {}\n", p.compiled.steps[i].decl.id.value, mask(&message, &p.values.secrets()))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    /// `{"plan", "steps": [{"id", "kind", "from", "skipped", "needs"}]}`.
    Json,
}

/// The steps a step waits for (its `needs` and other steps' `before`), in declaration order.
fn needs_of(c: &Compiled, i: usize) -> Vec<usize> {
    let mut needs: Vec<usize> = c.graph.needs(i).collect();
    needs.sort();
    needs
}

/// [`needs_of`], by id.
fn need_ids(c: &Compiled, i: usize) -> Vec<&str> {
    needs_of(c, i).into_iter().map(|n| c.steps[n].decl.id.value.as_str()).collect()
}

/// How a step is drawn: its kind, and whether the window skips it.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Runs,
    Assert,
    Confirm,
    Remove,
    Skipped,
}

fn shape_of(c: &Compiled, i: usize, rendered: Option<&[Rendered]>) -> Shape {
    if let Some(Rendered::Exact(r)) = rendered.and_then(|r| r.get(i))
        && r.when == Some(false)
    {
        return Shape::Skipped;
    }
    let d = &c.steps[i].decl;
    if d.assert.is_some() {
        Shape::Assert
    } else if d.confirm.is_some() {
        Shape::Confirm
    } else if d.remove.is_some() {
        Shape::Remove
    } else {
        Shape::Runs
    }
}

/// The graph of a compiled plan. Edges go from a need to the step that
/// needs it. Asserts, confirms and removes are drawn in shapes of their
/// own; with `rendered` (the window that would run, values given), a step
/// whose `when` is false is drawn dashed.
pub fn graph(c: &Compiled, rendered: Option<&[Rendered]>, format: GraphFormat) -> String {
    let mut out = String::new();
    let label = |i: usize| {
        let s = &c.steps[i];
        if s.file == 0 {
            s.decl.id.value.clone()
        } else {
            format!("{} ({})", s.decl.id.value, c.files[s.file].plan.release.as_ref().map_or("", |r| r.value.as_str()))
        }
    };
    let edges = |i: usize| needs_of(c, i);
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(out, "digraph {:?} {{\n  rankdir=LR;", c.base().name.value);
            for &i in &c.graph.order {
                let attrs = match shape_of(c, i, rendered) {
                    Shape::Runs => "shape=box",
                    Shape::Assert => "shape=diamond",
                    Shape::Confirm => "shape=parallelogram",
                    Shape::Remove => "shape=box, style=bold",
                    Shape::Skipped => "shape=box, style=dashed, color=gray, fontcolor=gray",
                };
                let _ = writeln!(out, "  {:?} [label={:?}, {attrs}];", c.steps[i].decl.id.value, label(i));
            }
            for &i in &c.graph.order {
                for n in edges(i) {
                    let _ = writeln!(out, "  {:?} -> {:?};", c.steps[n].decl.id.value, c.steps[i].decl.id.value);
                }
            }
            out.push_str("}\n");
        }
        GraphFormat::Json => {
            let steps: Vec<serde_json::Value> = c
                .graph
                .order
                .iter()
                .map(|&i| {
                    let s = &c.steps[i];
                    let kind = match shape_of(c, i, rendered) {
                        Shape::Runs if s.decl.shell.is_some() => "shell",
                        Shape::Runs => "run",
                        Shape::Assert => "assert",
                        Shape::Confirm => "confirm",
                        Shape::Remove => "remove",
                        Shape::Skipped => "skipped",
                    };
                    let needs = need_ids(c, i);
                    let from = (s.file != 0).then(|| c.files[s.file].plan.name.value.clone());
                    serde_json::json!({"id": s.decl.id.value, "kind": kind, "from": from, "needs": needs})
                })
                .collect();
            let _ = writeln!(out, "{}", serde_json::json!({"plan": c.base().name.value, "steps": steps}));
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart TD\n");
            let mut skipped = Vec::new();
            for &i in &c.graph.order {
                let text = label(i).replace('"', "#quot;");
                let node = match shape_of(c, i, rendered) {
                    Shape::Runs => format!("[\"{text}\"]"),
                    Shape::Assert => format!("{{\"{text}\"}}"),
                    Shape::Confirm => format!("[/\"{text}\"/]"),
                    Shape::Remove => format!("[[\"{text}\"]]"),
                    Shape::Skipped => {
                        skipped.push(format!("s{i}"));
                        format!("[\"{text}\"]")
                    }
                };
                let _ = writeln!(out, "  s{i}{node}");
            }
            for &i in &c.graph.order {
                for n in edges(i) {
                    let _ = writeln!(out, "  s{n} --> s{i}");
                }
            }
            if !skipped.is_empty() {
                out.push_str("  classDef skipped stroke-dasharray: 5 5, color: gray\n");
                let _ = writeln!(out, "  class {} skipped", skipped.join(","));
            }
        }
    }
    out
}

pub fn list(catalog: &Catalog) -> String {
    let mut rows = vec![["NAME".to_owned(), "RELEASE".into(), "EXTENDS".into(), "SOURCE".into(), "DESCRIPTION".into()]];
    let mut seen = std::collections::HashSet::new();
    for p in &catalog.plans {
        if !seen.insert(p.plan.name.value.clone()) {
            continue;
        }
        let opt = |o: &Option<crate::model::Sp<String>>| o.as_ref().map_or("-".to_owned(), |v| v.value.clone());
        rows.push([
            p.plan.name.value.clone(),
            opt(&p.plan.release),
            opt(&p.plan.extends),
            p.origin.clone(),
            p.plan
                .description
                .as_ref()
                .map_or(String::new(), |d| d.value.lines().next().unwrap_or("").trim().to_owned()),
        ]);
    }
    let widths: Vec<usize> = (0..4).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for c in 0..4 {
            let _ = write!(line, "{:<w$}  ", r[c], w = widths[c]);
        }
        line.push_str(&r[4]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for (src, d) in &catalog.broken {
        let _ = writeln!(out, "warning: {} does not load: {} (line {})", src.name, d.message, d.line);
    }
    out
}

/// `plan show --format json`: what `show` prints, as one object (secrets masked).
pub fn show_json(p: &Prepared) -> serde_json::Value {
    use serde_json::json;
    let c = &p.compiled;
    let secrets = p.values.secrets();
    let value = |name: &str, b: &crate::bind::Bound| json!({"name": name, "value": if b.secret { "***".to_owned() } else { mask(&b.value, &secrets) }, "origin": mask(&b.origin.to_string(), &secrets), "secret": b.secret});
    let (vars, facts): (Vec<_>, Vec<_>) = p.values.values.iter().partition(|(k, _)| c.vars.contains_key(*k));
    let steps: Vec<serde_json::Value> = c
        .graph
        .order
        .iter()
        .map(|&i| {
            let s = &c.steps[i];
            let needs = need_ids(c, i);
            let from = (s.file != 0).then(|| c.files[s.file].plan.name.value.clone());
            let mut step = json!({"id": s.decl.id.value, "from": from, "needs": needs,
                "description": s.decl.description.as_ref().map(|d| d.value.trim().to_owned())});
            let rendered = match &p.rendered[i] {
                Rendered::Exact(r) => Some((r, false)),
                Rendered::Placeholders(r) => Some((r, true)),
                Rendered::AtRunTime => None,
            };
            match rendered {
                Some((r, placeholders)) => {
                    step["kind"] = json!(r.action.kind());
                    step["action"] = json!(r.action.describe(&secrets));
                    step["skipped"] = json!(r.when == Some(false));
                    step["env"] = r.env.iter().map(|(k, v)| (k.clone(), json!(mask(v, &secrets)))).collect();
                    step["cwd"] = json!(r.cwd.as_deref().map(|c| mask(c, &secrets)));
                    step["timeout_ms"] = json!(r.timeout.map(|t| t.as_millis() as u64));
                    step["retries"] = json!(r.retries);
                    step["continue_on_error"] = json!(r.continue_on_error);
                    step["capture"] = json!(r.capture);
                    step["rendered_with_placeholders"] = json!(placeholders);
                }
                None => step["rendered_at_run_time"] = json!(true),
            }
            step
        })
        .collect();
    let stop = crate::prepare::would_stop(p, |_| true)
        .map(|(i, m)| json!({"step": c.steps[i].decl.id.value, "message": mask(&m, &secrets)}));
    json!({
        "plan": c.base().name.value,
        "source": c.files[0].origin,
        "release_plans": p.selections.iter().map(|s| json!({
            "name": s.plan.plan.name.value,
            "release": s.plan.plan.release.as_ref().map(|r| r.value.clone()),
            "included": s.included,
            "reason": s.reason,
        })).collect::<Vec<_>>(),
        "variables": vars.into_iter().map(|(k, b)| value(k, b)).collect::<Vec<_>>(),
        "facts": facts.into_iter().map(|(k, b)| value(k, b)).collect::<Vec<_>>(),
        "steps": steps,
        "would_stop": stop,
    })
}

/// `plan list --format json`.
pub fn list_json(catalog: &Catalog) -> serde_json::Value {
    let mut seen = std::collections::HashSet::new();
    catalog
        .plans
        .iter()
        .filter(|p| seen.insert(p.plan.name.value.clone()))
        .map(|p| {
            serde_json::json!({
                "name": p.plan.name.value,
                "release": p.plan.release.as_ref().map(|r| r.value.clone()),
                "extends": p.plan.extends.as_ref().map(|r| r.value.clone()),
                "source": p.origin,
                "description": p.plan.description.as_ref().map(|d| d.value.trim().to_owned()),
            })
        })
        .collect()
}
