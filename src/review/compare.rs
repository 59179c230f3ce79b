//! The diff of two loads of tutor's configuration, grouped and masked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// One load of tutor's configuration, as `dump.py` prints it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Snapshot {
    /// The plugin distribution's version that loaded; `None`: not installed.
    pub version: Option<String>,
    /// Whether the project enables a tutor plugin of that distribution.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Keys the site sets itself (config.yml, `TUTOR_*` overrides).
    #[serde(default)]
    pub user: BTreeSet<String>,
    /// Keys tutor generates once (passwords, ids): random on every load until saved.
    #[serde(default)]
    pub unique: BTreeSet<String>,
    /// Defaults as declared, before rendering (`{{ OTHER_KEY }}` left in).
    #[serde(default)]
    pub raw: BTreeMap<String, Value>,
    /// The effective configuration, rendered.
    #[serde(default)]
    pub full: BTreeMap<String, Value>,
}

fn yes() -> bool {
    true
}

/// A value as the review may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Value(String),
    /// The key holds a password, secret, token or key.
    Secret,
    /// The value contains the value of these secret keys.
    Embeds(Vec<String>),
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Value(v) => f.write_str(v),
            Shown::Secret => f.write_str("(a secret, not shown)"),
            Shown::Embeds(keys) => write!(f, "(not shown: contains the secret {})", keys.join(", ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub old: Shown,
    pub new: Shown,
    /// For a follow-on value: the changed keys whose values it embeds.
    pub follows: Vec<String>,
}

/// What a target version changes in the effective configuration, keys the
/// site sets itself left out.
#[derive(Debug, Clone, Default)]
pub struct Drift {
    pub plugin: String,
    pub installed: Option<String>,
    /// Installed, but this tutor project does not enable it: nothing of it loads.
    pub disabled: bool,
    pub target: String,
    /// Defaults that change what runs or where data goes: everything changed
    /// that is not a version, an image, an expected key or a follow-on.
    pub behaviour: Vec<Change>,
    /// Changed only because they embed another changed value.
    pub follow_on: Vec<Change>,
    /// Versions, images and the keys the plan expects to change with a release.
    pub versions: Vec<Change>,
    pub new: Vec<(String, Shown)>,
    pub removed: Vec<(String, Shown)>,
    /// Removed from the defaults, but config.yml still sets them: the target no longer reads them.
    pub removed_site: Vec<String>,
    /// Kept at the installed value (the step's `keep`), with that value.
    pub kept: Vec<(String, Shown)>,
    /// Set by another step of the plan (the step's `pin`), with that value.
    pub pinned: Vec<(String, Shown)>,
    /// How many keys both loads have; how many of those the site sets itself.
    pub compared: usize,
    pub site_set: usize,
    /// The values of secret keys: masked wherever the review's text goes.
    pub secrets: Vec<String>,
}

/// Whether a key's name says it holds a password, secret, token or key.
pub fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "PRIVATE", "CREDENTIAL"].iter().any(|w| k.contains(w))
        || k == "KEY"
        || k.ends_with("_KEY")
        || k.contains("_KEY_")
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// A release number, such as `8.1.0` or `v8.1.0-rc1`: a pinned component
/// (a dbt project's branch, a library) moves with the release.
fn version_like(v: &Value) -> bool {
    let Value::String(s) = v else { return false };
    let s = s.strip_prefix('v').unwrap_or(s);
    let (core, _) = s.split_once(['-', '+']).unwrap_or((s, ""));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Keys whose change comes with any new release.
pub const VERSION_KEYS: [&str; 3] = ["*_VERSION", "DOCKER_IMAGE_*", "*_DOCKER_IMAGE"];

fn leaves<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
        Value::Object(m) => m.values().for_each(|x| leaves(x, out)),
        _ => {}
    }
}

/// A value as one line of text: strings bare, the rest as compact JSON; a
/// long one cut, a long list or map said with its size first.
fn text(v: &Value) -> String {
    let t = match v {
        Value::String(s) if !s.is_empty() && !s.contains('\n') && s.trim() == s => s.clone(),
        other => other.to_string(),
    };
    if t.chars().count() <= 120 {
        return t;
    }
    let cut: String = t.chars().take(80).collect();
    match v {
        Value::Array(a) => format!("a list of {}: {cut}…", a.len()),
        Value::Object(m) => format!("a map of {}: {cut}…", m.len()),
        _ => format!("{cut}…"),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Masker {
    /// Secret value → the keys holding it.
    values: BTreeMap<String, BTreeSet<String>>,
}

impl Masker {
    fn new(before: &Snapshot, after: &Snapshot) -> Masker {
        let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in [before, after] {
            for (k, v) in &s.full {
                if secret_name(k) {
                    let mut ls = Vec::new();
                    leaves(v, &mut ls);
                    // Over-hiding a short value costs a line of text; under-hiding leaks.
                    for l in ls.into_iter().filter(|l| l.trim().chars().count() >= 3) {
                        values.entry(l.to_owned()).or_default().insert(k.clone());
                    }
                }
            }
        }
        Masker { values }
    }

    fn show(&self, key: &str, v: &Value) -> Shown {
        if secret_name(key) {
            return Shown::Secret;
        }
        let mut ls = Vec::new();
        leaves(v, &mut ls);
        let embeds: BTreeSet<String> = self
            .values
            .iter()
            .filter(|(secret, _)| ls.iter().any(|l| l.contains(secret.as_str())))
            .flat_map(|(_, keys)| keys.iter().cloned())
            .collect();
        if embeds.is_empty() { Shown::Value(text(v)) } else { Shown::Embeds(embeds.into_iter().collect()) }
    }
}

/// The drift from `before` (as installed) to `after` (with the target).
/// `kept` keys were given their installed value in `after` already; they
/// are listed apart. `expected`: key patterns grouped with the versions.
pub fn compare(
    before: &Snapshot,
    after: &Snapshot,
    plugin: &str,
    target: &str,
    kept: &[String],
    pinned: &[String],
    expected: &[String],
) -> Drift {
    let masker = Masker::new(before, after);
    let mut d = Drift {
        plugin: plugin.to_owned(),
        installed: before.version.clone(),
        target: target.to_owned(),
        secrets: masker.values.keys().cloned().collect(),
        ..Drift::default()
    };
    let is_kept = |k: &str| kept.iter().any(|x| x == k);
    let is_version =
        |k: &str| VERSION_KEYS.iter().copied().chain(expected.iter().map(String::as_str)).any(|p| glob(p, k));
    let mut changed: Vec<&str> = Vec::new();
    for (k, old) in &before.full {
        let Some(new) = after.full.get(k) else { continue };
        if !before.raw.contains_key(k) && !after.raw.contains_key(k) {
            continue; // only the site's own key
        }
        d.compared += 1;
        if is_kept(k) {
            d.kept.push((k.clone(), masker.show(k, old)));
            continue;
        }
        if before.user.contains(k) || after.user.contains(k) {
            d.site_set += 1;
            continue;
        }
        if pinned.iter().any(|p| p == k) {
            d.pinned.push((k.clone(), masker.show(k, new)));
            continue;
        }
        // Generated on every load until saved: a difference means nothing.
        if before.unique.contains(k) || after.unique.contains(k) {
            continue;
        }
        if old != new {
            changed.push(k);
        }
    }
    for &k in &changed {
        let (old, new) = (&before.full[k], &after.full[k]);
        let mut c =
            Change { key: k.to_owned(), old: masker.show(k, old), new: masker.show(k, new), follows: Vec::new() };
        if is_version(k) || (version_like(old) && version_like(new)) {
            d.versions.push(c);
            continue;
        }
        let (old_t, new_t) = (as_text(old), as_text(new));
        if before.raw.get(k) == after.raw.get(k) {
            c.follows = changed
                .iter()
                .filter(|&&j| j != k)
                .filter(|&&j| match (&before.full[j], &after.full[j]) {
                    (Value::String(a), Value::String(b)) => {
                        a.chars().count() >= 3
                            && b.chars().count() >= 3
                            && old_t.contains(a.as_str())
                            && new_t.contains(b.as_str())
                    }
                    _ => false,
                })
                .map(|j| j.to_string())
                .collect();
        }
        if c.follows.is_empty() { d.behaviour.push(c) } else { d.follow_on.push(c) }
    }
    // Name what a follow-on follows at its source, not through another follow-on.
    let follow: BTreeSet<String> = d.follow_on.iter().map(|c| c.key.clone()).collect();
    for c in &mut d.follow_on {
        if c.follows.iter().any(|j| !follow.contains(j)) {
            c.follows.retain(|j| !follow.contains(j));
        }
    }
    for (k, v) in &after.raw {
        if !before.raw.contains_key(k) && !before.user.contains(k) && !after.user.contains(k) {
            d.new.push((k.clone(), masker.show(k, after.full.get(k).unwrap_or(v))));
        }
    }
    for (k, v) in &before.raw {
        if !after.raw.contains_key(k) {
            if before.user.contains(k) {
                d.removed_site.push(k.clone());
            } else {
                d.removed.push((k.clone(), masker.show(k, before.full.get(k).unwrap_or(v))));
            }
        }
    }
    d
}

impl Drift {
    /// Nothing to compare: the target is what is installed, or the plugin is not installed.
    pub fn same(&self) -> bool {
        self.installed.as_deref() == Some(self.target.as_str()) || self.installed.is_none() || self.disabled
    }

    pub fn is_empty(&self) -> bool {
        self.behaviour.is_empty()
            && self.follow_on.is_empty()
            && self.versions.is_empty()
            && self.new.is_empty()
            && self.removed.is_empty()
            && self.removed_site.is_empty()
    }

    /// The report, a line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.installed {
            None => {
                out.push(format!("{} is not installed: no defaults to compare", self.plugin));
                return out;
            }
            Some(i) if i == &self.target => {
                out.push(format!("{} {i} is installed already: no defaults to compare", self.plugin));
                return out;
            }
            Some(i) if self.disabled => {
                out.push(format!(
                    "{} {i} is installed but this tutor project does not enable it (`tutor plugins list`): none of its configuration loads, no defaults to compare",
                    self.plugin
                ));
                return out;
            }
            Some(i) => out.push(format!(
                "Configuration defaults {} {} changes (installed: {i}; {} keys compared, of which {} the site sets itself and are left out):",
                self.plugin, self.target, self.compared, self.site_set
            )),
        }
        if self.is_empty() {
            out.push("  none".to_owned());
        }
        let change = |c: &Change| {
            let follows =
                if c.follows.is_empty() { String::new() } else { format!(" (follows {})", c.follows.join(", ")) };
            format!("    {}: {} -> {}{follows}", c.key, c.old, c.new)
        };
        let groups: [(&str, &Vec<Change>); 3] = [
            ("behaviour: defaults that change what runs or where data goes", &self.behaviour),
            ("follow-on: changed only because they contain another changed value", &self.follow_on),
            ("versions and images", &self.versions),
        ];
        for (title, list) in groups {
            if !list.is_empty() {
                out.push(format!("  {title} ({}):", list.len()));
                out.extend(list.iter().map(change));
            }
        }
        let keyed: [(&str, &Vec<(String, Shown)>); 4] = [
            ("new keys", &self.new),
            ("removed keys", &self.removed),
            ("kept at the installed value (`keep`)", &self.kept),
            ("set by this plan (`pin`)", &self.pinned),
        ];
        for (title, list) in keyed {
            if !list.is_empty() {
                out.push(format!("  {title} ({}):", list.len()));
                out.extend(list.iter().map(|(k, v)| format!("    {k}: {v}")));
            }
        }
        if !self.removed_site.is_empty() {
            out.push(format!(
                "  removed keys config.yml still sets; {} {} no longer reads them ({}):",
                self.plugin,
                self.target,
                self.removed_site.len()
            ));
            out.extend(self.removed_site.iter().map(|k| format!("    {k}")));
        }
        out
    }

    /// The confirmation asked before the run goes on: only when a
    /// behaviour default changes. `keep_hint` says how to keep a value.
    pub fn question(&self, keep_hint: &str) -> Option<String> {
        if self.behaviour.is_empty() {
            return None;
        }
        let mut q = format!(
            "{} {} changes {} default{} that change what runs or where data goes on this site:\n",
            self.plugin,
            self.target,
            self.behaviour.len(),
            if self.behaviour.len() == 1 { "" } else { "s" }
        );
        for c in &self.behaviour {
            q.push_str(&format!("  {}: {} -> {}\n", c.key, c.old, c.new));
        }
        q.push_str(&format!("Go on with the new defaults? (No stops here, before any change; {keep_hint})"));
        Some(q)
    }

    /// Identifies the drift as shown (secrets masked): `--resume` does not ask again while it is the same.
    pub fn digest(&self) -> String {
        crate::journal::sha256_hex(self.lines().join("\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(version: &str, raw: Value, full: Value, user: &[&str], unique: &[&str]) -> Snapshot {
        Snapshot {
            version: Some(version.to_owned()),
            enabled: true,
            user: user.iter().map(|s| s.to_string()).collect(),
            unique: unique.iter().map(|s| s.to_string()).collect(),
            raw: serde_json::from_value(raw).unwrap(),
            full: serde_json::from_value(full).unwrap(),
        }
    }

    #[test]
    fn each_change_lands_in_its_group_and_no_secret_is_shown() {
        let before = snap(
            "1.0.0",
            json!({"SOURCE": "ralph", "DB": "{% if SOURCE == 'vector' %}openedx{% else %}xapi{% endif %}",
                   "URL": "u:{{ DB_PASSWORD }}@h/{{ DB }}", "DB_PASSWORD": "{{ 24|random_string }}", "P_VERSION": "1.0.0",
                   "DOCKER_IMAGE_P": "p:{{ P_VERSION }}", "GONE": "x", "OLD_SET": "y", "MINE": "a", "DASHBOARDS": ["a"]}),
            json!({"SOURCE": "ralph", "DB": "xapi", "URL": "u:hunter2secret@h/xapi", "DB_PASSWORD": "hunter2secret",
                   "P_VERSION": "1.0.0", "DOCKER_IMAGE_P": "p:1.0.0", "GONE": "x", "OLD_SET": "mine", "MINE": "mine",
                   "DASHBOARDS": ["a"]}),
            &["DB_PASSWORD", "OLD_SET", "MINE"],
            &["DB_PASSWORD"],
        );
        let after = snap(
            "2.0.0",
            json!({"SOURCE": "vector", "DB": "{% if SOURCE == 'vector' %}openedx{% else %}xapi{% endif %}",
                   "URL": "u:{{ DB_PASSWORD }}@h/{{ DB }}", "DB_PASSWORD": "{{ 24|random_string }}", "P_VERSION": "2.0.0",
                   "DOCKER_IMAGE_P": "p:{{ P_VERSION }}", "NEW_PORT": "6000", "NEW_TOKEN": "{{ 8|random_string }}",
                   "MINE": "b", "DASHBOARDS": ["a", "b"]}),
            json!({"SOURCE": "vector", "DB": "openedx", "URL": "u:hunter2secret@h/openedx", "DB_PASSWORD": "hunter2secret",
                   "P_VERSION": "2.0.0", "DOCKER_IMAGE_P": "p:2.0.0", "NEW_PORT": "6000", "NEW_TOKEN": "zzzzzzzz",
                   "OLD_SET": "mine", "MINE": "mine", "DASHBOARDS": ["a", "b"]}),
            &["DB_PASSWORD", "OLD_SET", "MINE"],
            &["DB_PASSWORD", "NEW_TOKEN"],
        );
        let d = compare(&before, &after, "tutor-p", "2.0.0", &[], &[], &["DASHBOARDS".to_owned()]);
        let keys = |l: &Vec<Change>| l.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&d.behaviour), ["DB", "SOURCE"]);
        assert_eq!(keys(&d.follow_on), ["URL"]);
        assert_eq!(d.follow_on[0].follows, ["DB"]);
        assert_eq!(d.follow_on[0].old, Shown::Embeds(vec!["DB_PASSWORD".into()]));
        assert_eq!(keys(&d.versions), ["DASHBOARDS", "DOCKER_IMAGE_P", "P_VERSION"]);
        assert_eq!(d.new, [("NEW_PORT".into(), Shown::Value("6000".into())), ("NEW_TOKEN".into(), Shown::Secret)]);
        assert_eq!(d.removed, [("GONE".into(), Shown::Value("x".into()))]);
        assert_eq!(d.removed_site, ["OLD_SET"]);
        assert_eq!(d.site_set, 3, "DB_PASSWORD, OLD_SET and MINE are the site's own");
        let report = d.lines().join("\n");
        assert!(!report.contains("hunter2secret") && !report.contains("zzzzzzzz"), "{report}");
        assert!(report.contains("SOURCE: ralph -> vector"), "{report}");
        let q = d.question("keep one with --var keep=KEY").unwrap();
        assert!(q.contains("2 defaults") && q.contains("DB: xapi -> openedx") && !q.contains("URL"), "{q}");
    }

    #[test]
    fn kept_keys_are_left_out_of_the_question_and_an_unchanged_drift_keeps_its_digest() {
        let raw = json!({"A": "1", "B": "x"});
        let before = snap("1", raw.clone(), json!({"A": "1", "B": "x"}), &[], &[]);
        let after = snap("2", raw, json!({"A": "2", "B": "y"}), &[], &[]);
        let all = compare(&before, &after, "p", "2", &[], &[], &[]);
        assert_eq!(all.behaviour.len(), 2);
        let kept = compare(&before, &after, "p", "2", &["A".to_owned()], &[], &[]);
        assert_eq!(kept.behaviour.len(), 1);
        assert_eq!(kept.kept, [("A".into(), Shown::Value("1".into()))]);
        assert_ne!(all.digest(), kept.digest());
        assert_eq!(all.digest(), compare(&before, &after, "p", "2", &[], &[], &[]).digest());
        let none = compare(&before, &before, "p", "1", &[], &[], &[]);
        assert!(none.same() && none.question("").is_none());
    }

    #[test]
    fn globs_and_secret_names() {
        assert!(glob("*_VERSION", "ASPECTS_VERSION") && glob("DOCKER_IMAGE_*", "DOCKER_IMAGE_X"));
        assert!(glob("A*B*C", "AxxBxxC") && !glob("A*B", "AxxC") && glob("*", ""));
        assert!(secret_name("CLICKHOUSE_ADMIN_PASSWORD") && secret_name("OPENEDX_SECRET_KEY"));
        assert!(secret_name("ASPECTS_XAPI_S3_ACCESS_KEY") && !secret_name("ASPECTS_XAPI_SOURCE"));
        assert!(!secret_name("KEYCLOAK_URL") && secret_name("JWT_RSA_PRIVATE_KEY"));
        let v = |s: &str| version_like(&Value::String(s.into()));
        assert!(v("v8.1.0") && v("8.1") && v("1.2.3-rc1") && !v("ralph") && !v("8") && !v("v8.x") && !v("1..2"));
    }
}
