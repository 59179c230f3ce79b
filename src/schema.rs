//! The JSON Schema of the plan format: generated from the model types, then
//! tightened to say what lint says (the const apiVersion, the patterns of
//! names, ids, durations and versions, exactly one action per step and
//! fact, no null where a value belongs). What no schema can express is
//! listed in `docs/reference.md` and in `tests/border.rs`.

use serde_json::{Map, Value, json};

use crate::compile::{API_VERSION, BUILTIN_NAMES, DURATION_PATTERN};
use crate::model::PlanFile;

/// Plan names and step ids.
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9-]*$";
/// Variable, fact, capture and environment names.
pub const NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// A semantic version, as semver.org gives it.
pub const VERSION_PATTERN: &str = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$";
/// A `when` or `assert`: a template, or literally `true`/`false`.
pub const BOOLEAN_TEMPLATE_PATTERN: &str = r"\{\{|^\s*(true|false)\s*$";
/// The step actions: exactly one per step.
pub const STEP_ACTIONS: &[&str] = &["run", "shell", "assert", "confirm", "remove", "review_defaults"];

/// The schema as pretty JSON, as checked in at `schemas/plan-v1.schema.json`.
pub fn schema_json() -> String {
    let mut schema = serde_json::to_value(schemars::schema_for!(PlanFile)).unwrap_or_default();
    tighten(&mut schema);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

fn tighten(schema: &mut Value) {
    drop_nulls(schema);
    add_markdown(schema);
    let Some(root) = schema.as_object_mut() else { return };
    // A name, not an address: the schema ships in `schemas/` and from `plan schema`.
    root.insert("$id".into(), "urn:plan:schema:plan-v1".into());
    let names = json!({"pattern": NAME_PATTERN, "not": {"enum": BUILTIN_NAMES}});
    if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
        set(props, "apiVersion", json!({"const": API_VERSION}));
        set(props, "name", json!({"pattern": ID_PATTERN}));
        set(props, "extends", json!({"pattern": ID_PATTERN}));
        set(props, "release", json!({"pattern": VERSION_PATTERN}));
        set(props, "vars", json!({"propertyNames": names}));
        set(props, "facts", json!({"propertyNames": names}));
        set(props, "data", json!({"propertyNames": names}));
    }
    // A release plan (`extends`) needs `release` and has no `releases` window.
    root.insert("dependentRequired".into(), json!({"extends": ["release"]}));
    root.insert("dependentSchemas".into(), json!({"extends": {"not": {"required": ["releases"]}}}));
    let Some(defs) = root.get_mut("$defs").and_then(Value::as_object_mut) else { return };
    if let Some(step) = defs.get_mut("StepDecl").and_then(Value::as_object_mut) {
        let one_of: Vec<Value> = STEP_ACTIONS.iter().map(|a| json!({"required": [a]})).collect();
        step.insert("oneOf".into(), Value::Array(one_of));
        step.insert("dependentRequired".into(), json!({"message": ["assert"]}));
        if let Some(props) = step.get_mut("properties").and_then(Value::as_object_mut) {
            set(props, "id", json!({"pattern": ID_PATTERN}));
            for list in ["needs", "before"] {
                set(props, list, json!({"items": {"pattern": ID_PATTERN}}));
            }
            for field in ["timeout", "retry_delay"] {
                set(props, field, json!({"pattern": DURATION_PATTERN}));
            }
            for field in ["when", "assert"] {
                set(props, field, json!({"pattern": BOOLEAN_TEMPLATE_PATTERN}));
            }
            set(props, "capture", json!({"pattern": NAME_PATTERN}));
            set(props, "env", json!({"propertyNames": {"pattern": NAME_PATTERN}}));
            set(props, "retries", json!({"minimum": 0, "maximum": u32::MAX}));
        }
    }
    if let Some(fact) = defs.get_mut("FactDecl").and_then(Value::as_object_mut) {
        fact.insert("oneOf".into(), json!([{"required": ["run"]}, {"required": ["shell"]}]));
        if let Some(props) = fact.get_mut("properties").and_then(Value::as_object_mut) {
            set(props, "timeout", json!({"pattern": DURATION_PATTERN}));
        }
    }
    if let Some(run) = defs.get_mut("RunAction") {
        // At least one word: a line with something other than blanks.
        *run = json!({
            "description": run.get("description").cloned().unwrap_or(Value::Null),
            "oneOf": [
                {"type": "string", "pattern": r"\S"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1}
            ]
        });
    }
}

/// Adds `extra`'s keywords to a property's schema (objects merged, deeply).
fn set(props: &mut Map<String, Value>, name: &str, extra: Value) {
    if let Some(p) = props.get_mut(name) {
        merge(p, extra);
    }
}

fn merge(into: &mut Value, extra: Value) {
    match (into, extra) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (into, extra) => *into = extra,
    }
}

/// Editors (the YAML language server) show `markdownDescription` on hover:
/// every description is given as one too.
fn add_markdown(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(d)) = m.get("description") {
                let d = d.clone();
                m.insert("markdownDescription".into(), Value::String(d));
            }
            m.values_mut().for_each(add_markdown);
        }
        Value::Array(a) => a.iter_mut().for_each(add_markdown),
        _ => {}
    }
}

/// Lint refuses null for every field (`timeout:` with no value is an
/// error), so the schema does too: `["string", "null"]` becomes `"string"`,
/// `anyOf: [X, {type: null}]` becomes X, and `default: null` goes.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("default") == Some(&Value::Null) {
                m.remove("default");
            }
            if let Some(Value::Array(types)) = m.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    m.insert("type".into(), t);
                }
            }
            if let Some(Value::Array(any)) = m.get("anyOf") {
                let rest: Vec<Value> = any.iter().filter(|s| s.get("type") != Some(&json!("null"))).cloned().collect();
                if rest.len() == 1
                    && let Some(Value::Object(only)) = rest.into_iter().next()
                {
                    m.remove("anyOf");
                    m.extend(only);
                }
            }
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
