//! `plan export --format argo`: the checked plan, compiled once with the
//! values given (the same window, the same rendering as `plan run`), as an
//! Argo `Workflow` whose entrypoint is one `dag`.
//!
//! What is decided at export time stays decided: a step whose `when` is
//! false is left out (its dependents wait for its own needs instead), an
//! `assert` is a task that passes or fails with its message, and the vars
//! are parameters locked to the exported value. What only the run can know
//! travels at run time: a capture is its step's `outputs.result`, passed to
//! the steps that read it as an input and read from the environment; a
//! secret comes from a Kubernetes Secret into the environment. Commands
//! never hold a secret's value, and a value never becomes shell code.
//! A step that cannot be expressed this way is refused, by name.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::model::StepDecl;
use crate::prepare::Prepared;
use crate::render::{Action, RenderedStep, render_step};
use crate::template::Renderer;

/// What to export besides the plan and its values.
pub struct ArgoOptions {
    /// The container image every step runs in (with tutor and the plugins installed).
    pub image: String,
    /// The Kubernetes Secret whose keys hold the secret values (by var or fact name).
    pub secret: String,
    /// `--jobs`: Argo's `parallelism`.
    pub jobs: Option<usize>,
    /// `--keep-going`: the dag's `failFast: false`.
    pub keep_going: bool,
    /// `--skip`: left out, as a skipped step.
    pub skip: Vec<String>,
    /// `--pvc CLAIM:PATH`: PersistentVolumeClaims mounted in every step (the tutor root).
    pub volumes: Vec<(String, String)>,
}

/// Why a plan cannot be exported faithfully.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A value that exists only when the workflow runs, and how a step reads it.
#[derive(Clone)]
enum Runtime {
    /// A secret var or fact: the environment variable `PLAN_SECRET_<NAME>`.
    Secret(String),
    /// A capture: the environment variable `PLAN_CAPTURE_<NAME>`, from an input parameter.
    Capture(String),
    /// `run.id`: the workflow's name.
    RunId,
}

const RUN_ID: &str = "PLANxRUNxIDx";

fn env_name(r: &Runtime) -> String {
    match r {
        Runtime::Secret(n) => format!("PLAN_SECRET_{}", n.to_ascii_uppercase()),
        Runtime::Capture(n) => format!("PLAN_CAPTURE_{}", n.to_ascii_uppercase()),
        Runtime::RunId => "PLAN_RUN_ID".to_owned(),
    }
}

/// Stand-ins rendered in place of run-time values: letters only, so no
/// quoting changes them, and unlike any text a plan would hold.
struct Sentinels {
    by_token: Vec<(String, Runtime)>,
}

impl Sentinels {
    fn new(secrets: &[String], captures: &[String]) -> Sentinels {
        let mut by_token = vec![(RUN_ID.to_owned(), Runtime::RunId)];
        for (i, s) in secrets.iter().enumerate() {
            by_token.push((format!("PLANxSECRETx{}x", letters(i)), Runtime::Secret(s.clone())));
        }
        for (i, c) in captures.iter().enumerate() {
            by_token.push((format!("PLANxCAPTUREx{}x", letters(i)), Runtime::Capture(c.clone())));
        }
        Sentinels { by_token }
    }

    fn found(&self, text: &str) -> Vec<Runtime> {
        self.by_token.iter().filter(|(t, _)| text.contains(t.as_str())).map(|(_, r)| r.clone()).collect()
    }

    /// The pieces of a text: literal runs and the run-time values between them.
    fn split<'a>(&'a self, text: &'a str) -> Vec<Result<&'a str, &'a Runtime>> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = self
                .by_token
                .iter()
                .filter_map(|(t, r)| rest.find(t.as_str()).map(|at| (at, t, r)))
                .min_by_key(|x| x.0);
            match next {
                Some((at, token, r)) => {
                    if at > 0 {
                        out.push(Ok(&rest[..at]));
                    }
                    out.push(Err(r));
                    rest = &rest[at + token.len()..];
                }
                None => {
                    out.push(Ok(rest));
                    break;
                }
            }
        }
        out
    }
}

/// 0 → `a`, 25 → `z`, 26 → `ba`: a number in letters.
fn letters(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// A container argument: `$` doubled (Kubernetes reads `$(NAME)` in args),
/// run-time values as `$(ENV)`.
fn arg(s: &Sentinels, word: &str) -> String {
    s.split(word)
        .into_iter()
        .map(|p| match p {
            Ok(lit) => lit.replace('$', "$$"),
            Err(r) => format!("$({})", env_name(r)),
        })
        .collect()
}

/// A script: each run-time value read from the environment, quoted for the
/// place it stands in (inside double quotes, or bare).
fn script(s: &Sentinels, text: &str) -> String {
    let mut out = String::new();
    let (mut in_single, mut in_double) = (false, false);
    for p in s.split(text) {
        match p {
            Ok(lit) => {
                let mut chars = lit.chars().peekable();
                // Track the quoting the rendered text leaves open: the renderer
                // closes every quote it opens, so only the plan's own quotes count.
                while let Some(c) = chars.next() {
                    match c {
                        '\\' if !in_single => {
                            chars.next();
                        }
                        '\'' if !in_double => in_single = !in_single,
                        '"' if !in_single => in_double = !in_double,
                        _ => {}
                    }
                }
                out.push_str(lit);
            }
            // Inside single quotes nothing expands: close them around the reference.
            Err(r) if in_single => out.push_str(&format!("'\"${{{}}}\"'", env_name(r))),
            Err(r) if in_double => out.push_str(&format!("${{{}}}", env_name(r))),
            Err(r) => out.push_str(&format!("\"${{{}}}\"", env_name(r))),
        }
    }
    out
}

fn refuse(step: &str, why: &str) -> Refused {
    Refused(format!("step `{step}` cannot be exported to Argo faithfully: {why}"))
}

/// Argo reads `{{...}}` in a workflow as its own template tags.
fn no_tags(step: &str, text: &str) -> Result<(), Refused> {
    if text.contains("{{") {
        return Err(refuse(step, "what it runs contains `{{`, which Argo would read as its own template tag"));
    }
    Ok(())
}

fn task_name(id: &str) -> String {
    // A task name may not start with a digit in a dag that uses dependencies.
    if id.starts_with(|c: char| c.is_ascii_digit()) { format!("s-{id}") } else { id.to_owned() }
}

/// The script that does what the built-in `remove` does: refuses `/`,
/// empty and relative paths and anything whose real path is not inside `within`.
fn remove_script(path: &str, within: Option<&str>) -> String {
    let q = crate::template::shell_quote;
    let mut s = format!(
        "p={}\ncase \"$p\" in /*) ;; *) echo \"refusing to remove $p: not an absolute path\" >&2; exit 1;; esac\n\
         case \"/$p/\" in */../*) echo \"refusing to remove $p: it contains ..\" >&2; exit 1;; esac\n\
         if [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then echo \"$p does not exist; nothing to remove\"; exit 0; fi\n\
         real=$(realpath -- \"$p\")\n\
         [ \"$real\" != / ] || {{ echo \"refusing to remove $p: it is /\" >&2; exit 1; }}\n",
        q(path)
    );
    if let Some(w) = within {
        s.push_str(&format!(
            "w={}\ncase \"$w\" in /*) ;; *) echo \"refusing to remove $p: within must be an absolute path\" >&2; exit 1;; esac\n\
             wreal=$(realpath -- \"$w\")\n\
             case \"$real\" in \"$wreal\"/*) ;; *) echo \"refusing to remove $p: its real path $real is not inside $wreal\" >&2; exit 1;; esac\n",
            q(w)
        ));
    }
    s.push_str("rm -rf -- \"$real\"\necho \"removed $real\"\n");
    s
}

/// The Workflow, as a JSON value (printed as YAML).
pub fn argo(p: &Prepared, renderer: &Renderer, opts: &ArgoOptions) -> Result<(Value, Vec<String>), Refused> {
    let c = &p.compiled;
    let plan_name = c.base().name.value.clone();
    let release = c.base().release.as_ref().map(|r| r.value.as_str());
    let secret_names: Vec<String> = p.values.values.iter().filter(|(_, b)| b.secret).map(|(k, _)| k.clone()).collect();
    let capture_of: BTreeMap<String, usize> =
        c.steps.iter().enumerate().filter_map(|(i, s)| Some((s.decl.capture.as_ref()?.value.clone(), i))).collect();
    let captures: Vec<String> = capture_of.keys().cloned().collect();
    let sentinels = Sentinels::new(&secret_names, &captures);
    let mut sentinel_values: HashMap<String, String> = HashMap::new();
    for (token, r) in &sentinels.by_token {
        if let Runtime::Capture(n) = r {
            sentinel_values.insert(n.clone(), token.clone());
        }
    }
    let mut ctx = p.values.context(&plan_name, release, RUN_ID, &sentinel_values);
    for (token, r) in &sentinels.by_token {
        if let (Runtime::Secret(n), Some(m)) = (r, ctx.as_object_mut()) {
            m.insert(n.clone(), Value::String(token.clone()));
        }
    }
    let masks = p.values.secrets();
    let mut warnings = Vec::new();
    // Which steps are in the workflow, and what each waits for once the left-out are gone.
    let mut kept: Vec<Option<RenderedStep>> = vec![None; c.steps.len()];
    let mut whens: Vec<Option<String>> = vec![None; c.steps.len()];
    for &i in &c.graph.order {
        let d: &StepDecl = &c.steps[i].decl;
        let id = d.id.value.as_str();
        if opts.skip.iter().any(|s| s == id) {
            continue;
        }
        let reads = |t: &Option<Box<crate::model::Sp<String>>>| {
            t.as_ref().is_some_and(|t| {
                crate::template::analyze(&t.value)
                    .map(|u| u.iter().any(|n| capture_of.contains_key(&n.name)))
                    .unwrap_or(false)
            })
        };
        // A `when` on a capture is decided by Argo, from the task's result.
        let mut argo_when = None;
        let mut step = c.steps[i].clone();
        if reads(&d.when) {
            let text = d.when.as_ref().map(|w| w.value.as_str()).unwrap_or_default();
            let operand = |name: &str| -> Option<String> {
                if let Some(&from) = capture_of.get(name) {
                    let task = task_name(&c.steps[from].decl.id.value);
                    return Some(format!("trim(tasks['{task}'].outputs.result)"));
                }
                let b = p.values.values.get(name).filter(|b| !b.secret)?;
                expr_text(&b.value)
            };
            argo_when = Some(when_expr(text, operand).ok_or_else(|| {
                refuse(
                    id,
                    "its `when` reads a capture in a form Argo cannot decide the same way \
                     (exported: {{eq A B}}, {{ne A B}}, {{#if A}}true{{else}}false{{/if}})",
                )
            })?);
            let mut decl = (*step.decl).clone();
            decl.when = None;
            step.decl = std::sync::Arc::new(decl);
        }
        if reads(&d.assert) {
            return Err(refuse(id, "its `assert` reads a capture, which only the run knows"));
        }
        let r =
            render_step(&step, &ctx, renderer).map_err(|e| refuse(id, &crate::render::mask(&e.to_string(), &masks)))?;
        if r.when == Some(false) {
            continue;
        }
        if let Action::Review(_) = r.action {
            return Err(refuse(
                id,
                "a default review runs tutor's Python against this machine's tutor root and asks; \
                 run it with `plan run --only` where tutor runs, or leave it out with --skip",
            ));
        }
        if d.capture.is_some() && p.tainted[i] {
            return Err(refuse(id, "its capture is made from a secret, which Argo would show as the task's result"));
        }
        kept[i] = Some(r);
        whens[i] = argo_when;
    }
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); c.steps.len()];
    for &i in &c.graph.order {
        let mut d = BTreeSet::new();
        for n in c.graph.needs(i) {
            if kept[n].is_some() {
                d.insert(n);
            } else {
                d.extend(deps[n].iter().copied());
            }
        }
        deps[i] = d;
    }
    let mut templates = Vec::new();
    let mut tasks = Vec::new();
    let mut needed_secrets = BTreeSet::new();
    for &i in &c.graph.order {
        let Some(r) = &kept[i] else { continue };
        let id = r.id.as_str();
        let name = task_name(id);
        let mut template = serde_json::Map::new();
        template.insert("name".into(), json!(name));
        let mut uses: Vec<Runtime> = Vec::new();
        match &r.action {
            Action::Run(argv) => {
                for w in argv {
                    no_tags(id, w)?;
                    uses.extend(sentinels.found(w));
                }
                let (first, rest) = argv.split_first().ok_or_else(|| refuse(id, "empty command"))?;
                if !sentinels.found(first).is_empty() {
                    return Err(refuse(id, "its program itself is a secret or a capture"));
                }
                template.insert(
                    "container".into(),
                    json!({"image": opts.image, "command": [first.replace('$', "$$")], "args": rest.iter().map(|w| arg(&sentinels, w)).collect::<Vec<_>>()}),
                );
            }
            Action::Shell(text) => {
                no_tags(id, text)?;
                uses.extend(sentinels.found(text));
                template.insert(
                    "script".into(),
                    json!({"image": opts.image, "command": ["sh", "-eu"], "source": script(&sentinels, text)}),
                );
            }
            Action::Assert { condition, message } => {
                let message = crate::render::mask(message, &masks);
                let source = if *condition {
                    "echo 'checked when the workflow was exported: true'\n".to_owned()
                } else {
                    warnings.push(format!("the workflow stops at `{id}`: {message}"));
                    format!("printf '%s\\n' {} >&2\nexit 1\n", crate::template::shell_quote(&message))
                };
                no_tags(id, &source)?;
                template
                    .insert("script".into(), json!({"image": opts.image, "command": ["sh", "-eu"], "source": source}));
            }
            Action::Confirm(message) => {
                // The question is shown in Argo's UI: a value only the run knows
                // is named, not spliced in (read it in that step's output).
                let message: String = sentinels
                    .split(&crate::render::mask(message, &masks))
                    .into_iter()
                    .map(|p| match p {
                        Ok(lit) => lit.to_owned(),
                        Err(Runtime::Capture(n)) => format!("<output of {}>", c.steps[capture_of[n]].decl.id.value),
                        Err(Runtime::Secret(_)) => "***".to_owned(),
                        Err(Runtime::RunId) => "<this workflow>".to_owned(),
                    })
                    .collect();
                template.insert("suspend".into(), json!({}));
                template.insert("metadata".into(), json!({"annotations": {"plan.confirm": message}}));
            }
            Action::Remove { path, within } => {
                for t in std::iter::once(path).chain(within) {
                    if !sentinels.found(t).is_empty() {
                        return Err(refuse(id, "the path it removes reads a secret or a capture"));
                    }
                }
                let source = remove_script(path, within.as_deref());
                no_tags(id, &source)?;
                template
                    .insert("script".into(), json!({"image": opts.image, "command": ["sh", "-eu"], "source": source}));
            }
            Action::Review(_) | Action::Skipped => continue,
        }
        for v in r.env.iter().map(|(_, v)| v) {
            no_tags(id, v)?;
            uses.extend(sentinels.found(v));
        }
        if let Some(cwd) = &r.cwd {
            if !sentinels.found(cwd).is_empty() {
                return Err(refuse(id, "its `cwd` reads a secret or a capture"));
            }
            no_tags(id, cwd)?;
        }
        let mut task = json!({"name": name, "template": name});
        if !deps[i].is_empty() {
            task["dependencies"] =
                json!(deps[i].iter().map(|&n| task_name(&c.steps[n].decl.id.value)).collect::<Vec<_>>());
        }
        if let Some(w) = &whens[i] {
            task["when"] = json!(w);
        }
        let body = ["container", "script"].into_iter().find(|k| template.contains_key(*k));
        if let Some(body) = body {
            // The run-time values first: Kubernetes expands `$(NAME)` in an env
            // value from the variables defined before it (and `$$` to `$`).
            let mut env: Vec<Value> = Vec::new();
            let mut inputs = Vec::new();
            let mut arguments = Vec::new();
            let mut seen = BTreeSet::new();
            for u in &uses {
                let e = env_name(u);
                if !seen.insert(e.clone()) {
                    continue;
                }
                match u {
                    Runtime::Secret(n) => {
                        needed_secrets.insert(n.clone());
                        env.push(json!({"name": e, "valueFrom": {"secretKeyRef": {"name": opts.secret, "key": n}}}));
                    }
                    Runtime::Capture(n) => {
                        let from = task_name(&c.steps[capture_of[n]].decl.id.value);
                        inputs.push(json!({"name": n}));
                        arguments.push(json!({"name": n, "value": format!("{{{{tasks.{from}.outputs.result}}}}")}));
                        env.push(json!({"name": e, "value": format!("{{{{inputs.parameters.{n}}}}}")}));
                    }
                    Runtime::RunId => env.push(json!({"name": e, "value": "{{workflow.name}}"})),
                }
            }
            env.extend(r.env.iter().map(|(k, v)| json!({"name": k, "value": arg(&sentinels, v)})));
            if let Some(Value::Object(b)) = template.get_mut(body) {
                if !env.is_empty() {
                    b.insert("env".into(), Value::Array(env));
                }
                if let Some(cwd) = &r.cwd {
                    b.insert("workingDir".into(), json!(cwd));
                }
                if !opts.volumes.is_empty() {
                    let mounts: Vec<Value> = opts
                        .volumes
                        .iter()
                        .enumerate()
                        .map(|(n, (_, at))| json!({"name": format!("volume-{n}"), "mountPath": at}))
                        .collect();
                    b.insert("volumeMounts".into(), Value::Array(mounts));
                }
            }
            if !inputs.is_empty() {
                template.insert("inputs".into(), json!({"parameters": inputs}));
            }
            if r.retries > 0 {
                template.insert(
                    "retryStrategy".into(),
                    json!({"limit": r.retries, "backoff": {"duration": format!("{}s", r.retry_delay.as_secs())}}),
                );
            }
            if let Some(t) = r.timeout {
                template.insert("activeDeadlineSeconds".into(), json!(t.as_secs().max(1)));
            }
            if !arguments.is_empty() {
                task["arguments"] = json!({"parameters": arguments});
            }
            if r.continue_on_error {
                task["continueOn"] = json!({"failed": true});
            }
        }
        tasks.push(task);
        templates.push(Value::Object(template));
    }
    if tasks.is_empty() {
        return Err(Refused("nothing to export: every step is left out with these values".into()));
    }
    let ids: BTreeSet<String> = c.steps.iter().map(|s| task_name(&s.decl.id.value)).collect();
    let main = ["main", "plan-main", "plan-dag"].into_iter().find(|n| !ids.contains(*n)).unwrap_or("plan-main-dag");
    let mut dag = json!({"tasks": tasks});
    if opts.keep_going {
        dag["failFast"] = json!(false);
    }
    templates.insert(0, json!({"name": main, "dag": dag}));
    let parameters: Vec<Value> = p
        .values
        .values
        .iter()
        .filter(|(k, b)| c.vars.contains_key(k.as_str()) && !b.secret)
        .map(|(k, b)| {
            let decl = &c.vars[k.as_str()].decl;
            let mut d = String::from("compiled into the workflow with this value: export again to change it");
            if let Some(ch) = &decl.choices {
                d.push_str(&format!(
                    " (choices: {})",
                    ch.value.iter().map(|c| c.value.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            if let Some(desc) = &decl.description {
                d = format!("{}; {d}", desc.value);
            }
            json!({"name": k, "value": b.value, "enum": [b.value], "description": d})
        })
        .collect();
    let mut spec = json!({"entrypoint": main, "templates": templates});
    if !parameters.is_empty() {
        spec["arguments"] = json!({"parameters": parameters});
    }
    if let Some(j) = opts.jobs {
        spec["parallelism"] = json!(j);
    }
    if !opts.volumes.is_empty() {
        spec["volumes"] = opts
            .volumes
            .iter()
            .enumerate()
            .map(
                |(n, (claim, _))| json!({"name": format!("volume-{n}"), "persistentVolumeClaim": {"claimName": claim}}),
            )
            .collect();
    }
    let mut annotations = json!({"plan.name": plan_name});
    if !needed_secrets.is_empty() {
        annotations["plan.secret"] = json!(format!(
            "Secret `{}` with keys: {}",
            opts.secret,
            needed_secrets.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let wf = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": format!("{plan_name}-"), "annotations": annotations},
        "spec": spec,
    });
    Ok((wf, warnings))
}

/// A text as a literal of Argo's expression language (single-quoted);
/// `None` when it holds `}}`, which would end Argo's tag.
fn expr_text(v: &str) -> Option<String> {
    (!v.contains("}}")).then(|| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
}

/// `{{eq A B}}`, `{{ne A B}}` or `{{#if A}}true{{else}}false{{/if}}` as an
/// Argo expression tag: the task's result is a variable there, never
/// spliced into the expression's text. `None` for any other form.
fn when_expr(text: &str, operand: impl Fn(&str) -> Option<String>) -> Option<String> {
    let t = text.trim();
    let value = |w: &str| -> Option<String> {
        if let Some(q) = w.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
            return expr_text(q);
        }
        if let Some(q) = w.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
            return expr_text(q);
        }
        w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_').then(|| operand(w)).flatten()
    };
    if let Some(name) = t.strip_prefix("{{#if ").and_then(|t| t.strip_suffix("}}true{{else}}false{{/if}}")) {
        return Some(format!("{{{{= {} != '' }}}}", value(name.trim())?));
    }
    if let Some(inner) = t.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
        let words: Vec<&str> = inner.split_whitespace().collect();
        if let [op @ ("eq" | "ne"), a, b] = words.as_slice() {
            let sym = if *op == "eq" { "==" } else { "!=" };
            return Some(format!("{{{{= {} {sym} {} }}}}", value(a)?, value(b)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_time_values_are_read_from_the_environment_never_spliced_in() {
        let s = Sentinels::new(&["password".into()], &["tag".into()]);
        let pw = &s.by_token[1].0;
        let tag = &s.by_token[2].0;
        assert_eq!(arg(&s, &format!("--pw={pw}")), "--pw=$(PLAN_SECRET_PASSWORD)");
        assert_eq!(arg(&s, "cost: $5 $(x)"), "cost: $$5 $$(x)");
        assert_eq!(
            script(&s, &format!("echo {pw} \"v={tag}\"")),
            "echo \"${PLAN_SECRET_PASSWORD}\" \"v=${PLAN_CAPTURE_TAG}\""
        );
        assert_eq!(script(&s, &format!("echo 'it''s' {tag}")), "echo 'it''s' \"${PLAN_CAPTURE_TAG}\"");
        assert_eq!(script(&s, &format!("echo 'v={tag}.'")), "echo 'v='\"${PLAN_CAPTURE_TAG}\"'.'");
        assert_eq!(script(&s, &format!("echo \"a\\\"b\" {pw}")), "echo \"a\\\"b\" \"${PLAN_SECRET_PASSWORD}\"");
        assert_eq!(letters(0), "a");
        assert_eq!(letters(27), "bb");
    }

    #[test]
    fn a_when_on_a_capture_becomes_an_argo_expression_or_nothing() {
        let op = |n: &str| match n {
            "tag" => Some("trim(tasks['tag'].outputs.result)".to_owned()),
            "deploy" => expr_text("k8s"),
            _ => None,
        };
        assert_eq!(when_expr("{{eq tag \"v1\"}}", op).unwrap(), "{{= trim(tasks['tag'].outputs.result) == 'v1' }}");
        assert_eq!(when_expr("{{ne tag deploy}}", op).unwrap(), "{{= trim(tasks['tag'].outputs.result) != 'k8s' }}");
        assert_eq!(
            when_expr("{{#if tag}}true{{else}}false{{/if}}", op).unwrap(),
            "{{= trim(tasks['tag'].outputs.result) != '' }}"
        );
        assert_eq!(
            when_expr("{{eq tag \"it's\"}}", op).unwrap(),
            "{{= trim(tasks['tag'].outputs.result) == 'it\\'s' }}"
        );
        assert!(when_expr("{{eq tag \"}}\"}}", op).is_none());
        assert!(when_expr("{{eq (trim tag) \"x\"}}", op).is_none());
        assert!(when_expr("{{eq nope \"x\"}}", op).is_none());
    }
}
