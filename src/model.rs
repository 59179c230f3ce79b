//! The plan file format, v1, as plain serde types.
//!
//! Every value a diagnostic may point at is wrapped in [`Sp`], which keeps the
//! source location serde-saphyr reports. There is no `flatten` and no
//! `untagged` here: both make serde buffer values and lose their spans.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A position in a plan file: 1-based line and column, and the byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    /// Byte offset and length; u32 is plenty for a plan (at most 4 MiB) and
    /// keeps the many spanned fields of a step small.
    pub offset: u32,
    pub len: u32,
}

impl From<serde_saphyr::Location> for Pos {
    fn from(loc: serde_saphyr::Location) -> Self {
        let span = loc.span();
        Pos {
            line: loc.line() as u32,
            column: loc.column() as u32,
            offset: span.byte_offset().unwrap_or(0) as u32,
            len: span.byte_len().unwrap_or(0) as u32,
        }
    }
}

/// A value with the position of the YAML node it came from.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T: PartialEq> PartialEq for Sp<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Sp<T> {}
impl<T: std::hash::Hash> std::hash::Hash for Sp<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl<T> std::ops::Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Sp { value: s.value, pos: s.referenced.into() })
    }
}

impl<T: Serialize> Serialize for Sp<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

pub type Name = Sp<String>;

/// An optional field that, when written, has a value: `timeout:` or
/// `description: null` is an error (what the JSON Schema says too), never a
/// silent "not given".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A YAML boolean or whole number, never a quoted string: `retries: "3"` or
/// `continue_on_error: "true"` is an error, as the JSON Schema says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strict<T>(pub T);

impl<T> std::ops::Deref for Strict<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Strict<bool> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true` or `false`, unquoted")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
                Ok(v)
            }
        }
        d.deserialize_any(V).map(Strict)
    }
}

impl<'de> Deserialize<'de> for Strict<u32> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u32;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number from 0 to 4294967295, unquoted")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
                u32::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
                u32::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_any(V).map(Strict)
    }
}

impl<T: JsonSchema> JsonSchema for Strict<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One plan file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "plan/v1", description = "A plan file for the `plan` tool.")]
pub struct PlanFile {
    /// Must be `plan/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: Sp<String>,
    /// The plan's name: `[a-z0-9][a-z0-9-]*`, unique across the plan path.
    pub name: Name,
    /// What the plan does, for `plan list` and `plan show`.
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Sp<String>>,
    /// The product release this file belongs to (semver).
    #[serde(default, deserialize_with = "present")]
    pub release: Option<Sp<String>>,
    /// Merge this file's steps into the named plan's graph.
    #[serde(default, deserialize_with = "present")]
    pub extends: Option<Name>,
    /// On a base plan: which extending release plans apply.
    #[serde(default, deserialize_with = "present")]
    pub releases: Option<Releases>,
    /// Operator variables.
    #[serde(default)]
    pub vars: IndexMap<Name, VarDecl>,
    /// Read-only probes, run before the graph is built.
    #[serde(default)]
    pub facts: IndexMap<Name, FactDecl>,
    /// Named tables (text, lists and maps) that templates read as `data.NAME`,
    /// with `lookup` and `version_lookup`: a compatibility matrix, release names.
    #[serde(default)]
    pub data: IndexMap<Name, Sp<DataValue>>,
    // Shared, so merging plans and compiling twice copies no step.
    /// The steps: each has an `id` and exactly one action (`run`, `shell`, `assert`, `confirm`, `remove`, `review_defaults`).
    #[serde(default)]
    pub steps: Vec<std::sync::Arc<StepDecl>>,
}

/// A release plan applies when `from < release <= to` (semver), both rendered.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Releases {
    /// Rendered: the installed release (empty = nothing installed, no lower bound). A release plan applies when from < release.
    pub from: Sp<String>,
    /// Rendered: the target release. A release plan applies when release <= to.
    pub to: Sp<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VarDecl {
    /// What the value is; shown when it is missing or wrong.
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Sp<String>>,
    /// The command stops before any step when no value is given.
    #[serde(default, deserialize_with = "present")]
    pub required: Option<Sp<Strict<bool>>>,
    /// The value when none is given (an optional var without one is the empty text).
    #[serde(default, deserialize_with = "present")]
    pub default: Option<Sp<String>>,
    /// The only values allowed.
    #[serde(default, deserialize_with = "present")]
    pub choices: Option<Sp<Vec<Sp<String>>>>,
    /// A regular expression the whole value must match.
    #[serde(default, deserialize_with = "present")]
    pub pattern: Option<Sp<String>>,
    /// Never printed, logged or written to the journal.
    #[serde(default, deserialize_with = "present")]
    pub secret: Option<Sp<Strict<bool>>>,
}

impl VarDecl {
    pub fn is_required(&self) -> bool {
        self.required.as_ref().is_some_and(|r| *r.value)
    }
    pub fn is_secret(&self) -> bool {
        self.secret.as_ref().is_some_and(|r| *r.value)
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactDecl {
    /// What the fact is, for `plan show`.
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Sp<String>>,
    /// A program and its arguments, split by POSIX rules (no shell).
    #[serde(default, deserialize_with = "present")]
    pub run: Option<Sp<RunAction>>,
    /// A script run by `sh -eu -c`.
    #[serde(default, deserialize_with = "present")]
    pub shell: Option<Sp<String>>,
    /// Group 1 of this regex (or the whole trimmed stdout) is the value.
    #[serde(default, deserialize_with = "present")]
    pub pattern: Option<Sp<String>>,
    /// Used when the probe fails or the pattern does not match; without it
    /// such a fact stops the run.
    #[serde(default, deserialize_with = "present")]
    pub default: Option<Sp<String>>,
    /// How long the probe may take (default 30s).
    #[serde(default, deserialize_with = "present")]
    pub timeout: Option<Sp<String>>,
    /// Allows `{{{x}}}` (raw, unquoted) in `shell:`, which lint refuses otherwise.
    #[serde(default, deserialize_with = "present")]
    pub allow_raw: Option<Sp<Strict<bool>>>,
    /// Each line of the value is a secret: masked in every output, never journaled.
    #[serde(default, deserialize_with = "present")]
    pub secret: Option<Sp<Strict<bool>>>,
}

impl FactDecl {
    pub fn is_secret(&self) -> bool {
        self.secret.as_ref().is_some_and(|s| *s.value)
    }
}

// Fields most steps leave out are boxed: a step is 10,000 times
// in a large plan, and a `None` box costs 8 bytes where a `Sp<String>`
// costs 40 (the struct went from 744 to 336 bytes, a seventh less time
// to lint 10,000 steps, mostly page faults saved).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDecl {
    /// `[a-z0-9][a-z0-9-]*`, unique in the merged graph.
    pub id: Name,
    /// What the step does, for `plan show`.
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Box<Sp<String>>>,
    /// Steps that must succeed (or be skipped) first.
    #[serde(default)]
    pub needs: Vec<Name>,
    /// Steps that must wait for this one: the reverse of `needs`, so a
    /// release plan can put a check in front of a base plan's step.
    #[serde(default)]
    pub before: Vec<Name>,
    #[serde(default, deserialize_with = "present")]
    pub run: Option<Sp<RunAction>>,
    /// A script run by `sh -eu -c`; `{{x}}` is shell-quoted for the place it stands in.
    #[serde(default, deserialize_with = "present")]
    pub shell: Option<Box<Sp<String>>>,
    /// Renders exactly `true` or `false`; `false` fails the step with `message`.
    #[serde(default, deserialize_with = "present")]
    pub assert: Option<Box<Sp<String>>>,
    /// Shown when an `assert` is false.
    #[serde(default, deserialize_with = "present")]
    pub message: Option<Box<Sp<String>>>,
    /// A yes/no question on the terminal; without a terminal the step fails unless the run has `--yes`.
    #[serde(default, deserialize_with = "present")]
    pub confirm: Option<Box<Sp<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub remove: Option<Box<Sp<RemoveAction>>>,
    /// Reviews the configuration defaults a Tutor plugin's target version
    /// changes, before any change, and asks before those that change what runs.
    #[serde(default, deserialize_with = "present")]
    pub review_defaults: Option<Box<Sp<ReviewAction>>>,
    /// Renders `true` or `false`; `false` skips the step.
    #[serde(default, deserialize_with = "present")]
    pub when: Option<Box<Sp<String>>>,
    /// Environment variables for the step (values rendered).
    #[serde(default)]
    pub env: IndexMap<Name, Sp<String>>,
    /// The working directory (rendered).
    #[serde(default, deserialize_with = "present")]
    pub cwd: Option<Box<Sp<String>>>,
    /// How long the step may run (`90s`, `30m`, `1h30m`); then its whole process group is killed.
    #[serde(default, deserialize_with = "present")]
    pub timeout: Option<Box<Sp<String>>>,
    /// How many times a failed step runs again (default 0).
    #[serde(default, deserialize_with = "present")]
    pub retries: Option<Box<Sp<Strict<u32>>>>,
    /// How long to wait between attempts, e.g. `10s` (default 0s).
    #[serde(default, deserialize_with = "present")]
    pub retry_delay: Option<Box<Sp<String>>>,
    /// A failure counts as success for the dependents (recorded as `failed-ignored`).
    #[serde(default, deserialize_with = "present")]
    pub continue_on_error: Option<Box<Sp<Strict<bool>>>>,
    /// A variable name: the step's trimmed stdout, visible to its descendants.
    #[serde(default, deserialize_with = "present")]
    pub capture: Option<Box<Name>>,
    /// Labels, for people and tools.
    #[serde(default)]
    pub tags: Vec<Sp<String>>,
    /// Allows `{{{x}}}` (raw, unquoted) in `shell:`, which lint refuses otherwise.
    #[serde(default, deserialize_with = "present")]
    pub allow_raw: Option<Box<Sp<Strict<bool>>>>,
}

/// `run: STRING` or `run: [ARGV...]`.
#[derive(Debug, Clone)]
pub enum RunAction {
    Line(String),
    Argv(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for RunAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RunAction;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command line string or a list of argv words")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RunAction, E> {
                Ok(RunAction::Line(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RunAction, A::Error> {
                let mut words = Vec::new();
                while let Some(w) = seq.next_element::<Sp<String>>()? {
                    words.push(w);
                }
                if words.is_empty() {
                    return Err(de::Error::invalid_length(0, &"at least one argv word"));
                }
                Ok(RunAction::Argv(words))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RunAction {
    fn schema_name() -> Cow<'static, str> {
        "RunAction".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A program, no shell: a string split into words by POSIX rules, or a list of argv words.",
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1}
            ]
        })
    }
}

/// `review_defaults:` — the Tutor plugin whose target version is compared
/// with the installed one, in tutor's effective configuration.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewAction {
    /// The tutor executable, installed with pip (rendered): its Python loads the configuration.
    pub tutor: Sp<String>,
    /// Tutor's project root (rendered), e.g. `{{tutor_root}}` from `tutor config printroot`.
    pub root: Sp<String>,
    /// The plugin's pip distribution, e.g. `tutor-contrib-aspects`.
    pub plugin: Sp<String>,
    /// The version to compare with (rendered): downloaded with pip, not installed.
    pub target: Sp<String>,
    /// Keys to keep at their installed value (rendered; separated by commas or spaces):
    /// written with `tutor config save --set` once the review is accepted.
    #[serde(default, deserialize_with = "present")]
    pub keep: Option<Sp<String>>,
    /// `KEY=VALUE` entries (separated by spaces or new lines) that another
    /// step of the plan sets itself: compared with these values, listed apart.
    #[serde(default, deserialize_with = "present")]
    pub pin: Option<Sp<String>>,
    /// Key patterns (`*` matches anything) expected to change with a release,
    /// shown with the versions and images (`*_VERSION`, `DOCKER_IMAGE_*` always are).
    #[serde(default)]
    pub expected: Vec<Sp<String>>,
}

/// `remove: PATH` or `remove: {path: PATH, within: DIR}`.
#[derive(Debug, Clone)]
pub struct RemoveAction {
    pub path: String,
    pub within: Option<String>,
}

impl<'de> Deserialize<'de> for RemoveAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RemoveAction;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path, or a map with `path` and `within`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RemoveAction, E> {
                Ok(RemoveAction { path: v.to_owned(), within: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RemoveAction, A::Error> {
                let mut path = None;
                let mut within = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "path" => path = Some(map.next_value::<String>()?),
                        "within" => within = Some(map.next_value::<String>()?),
                        other => return Err(de::Error::unknown_field(other, &["path", "within"])),
                    }
                }
                let path = path.ok_or_else(|| de::Error::missing_field("path"))?;
                Ok(RemoveAction { path, within })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RemoveAction {
    fn schema_name() -> Cow<'static, str> {
        "RemoveAction".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Recursive delete of an absolute path, optionally confined within a directory.",
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"path": {"type": "string"}, "within": {"type": "string"}},
                    "required": ["path"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A value of a plan's `data:` section: text, a list, or a map of text keys,
/// nested as deep as the YAML budget allows. Never a number, boolean or null:
/// a table is read by templates, where `14` and `"14"` must not differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataValue {
    Text(String),
    List(Vec<DataValue>),
    /// Keys keep their place in the file, for diagnostics.
    Map(IndexMap<Name, DataValue>),
}

impl DataValue {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            DataValue::Text(s) => serde_json::Value::String(s.clone()),
            DataValue::List(l) => serde_json::Value::Array(l.iter().map(DataValue::to_json).collect()),
            DataValue::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.value.clone(), v.to_json())).collect())
            }
        }
    }
}

impl<'de> Deserialize<'de> for DataValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DataValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("text, a list or a map (a number or `true` is written quoted: \"14\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DataValue, E> {
                Ok(DataValue::Text(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DataValue, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<DataValue>()? {
                    items.push(v);
                }
                Ok(DataValue::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataValue, A::Error> {
                let mut m = IndexMap::new();
                while let Some(k) = map.next_key::<Name>()? {
                    let v = map.next_value::<DataValue>()?;
                    let text = k.value.clone();
                    if m.insert(k, v).is_some() {
                        return Err(de::Error::custom(format!("duplicate key `{text}`")));
                    }
                }
                Ok(DataValue::Map(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for DataValue {
    fn schema_name() -> Cow<'static, str> {
        "DataValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Text, a list, or a map with text keys; numbers, booleans and null are written quoted.",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": "#/$defs/DataValue"}},
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/DataValue"}}
            ]
        })
    }
}
