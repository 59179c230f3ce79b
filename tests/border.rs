//! Lint and the JSON Schema agree: every file of `tests/border/` says its
//! verdict on its first line (`# verdict: valid` or `# verdict: invalid`),
//! and `plan lint` gives it. A second line `# schema: valid (RULE)` marks a
//! file that breaks one of the rules no JSON Schema can express; every other
//! file gets the same verdict from a real validator (check-jsonschema from
//! PyPI) against `schemas/plan-v1.schema.json`.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The rules a JSON Schema cannot express (they span steps, files or
/// values, or need a parser the schema does not have).
const LINT_ONLY_RULES: &[&str] = &[
    "cycle",
    "unknown id",
    "duplicate id",
    "undefined name",
    "regex validity",
    "default against choices",
    "duration ceiling",
    "run line splitting",
    "shell quoting",
    "template syntax",
];

struct Case {
    path: PathBuf,
    valid: bool,
    /// The rule the schema cannot check, for files only lint refuses.
    lint_only: Option<String>,
}

fn corpus() -> Vec<Case> {
    let dir = root().join("tests/border");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .expect("tests/border")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read");
            let mut lines = text.lines();
            let verdict = lines.next().and_then(|l| l.strip_prefix("# verdict: "));
            let valid = match verdict {
                Some("valid") => true,
                Some("invalid") => false,
                other => panic!("{}: first line must be `# verdict: valid|invalid`, not {other:?}", path.display()),
            };
            let lint_only = lines
                .next()
                .and_then(|l| l.strip_prefix("# schema: valid ("))
                .and_then(|l| l.strip_suffix(')'))
                .map(str::to_owned);
            if let Some(rule) = &lint_only {
                assert!(LINT_ONLY_RULES.contains(&rule.as_str()), "{}: `{rule}` is not a listed rule", path.display());
                assert!(!valid, "{}: a lint-only rule marks an invalid file", path.display());
            }
            Case { path, valid, lint_only }
        })
        .collect();
    cases.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(cases.len() >= 40, "the corpus has {} files", cases.len());
    assert!(cases.iter().filter(|c| c.valid).count() >= 10);
    cases
}

#[test]
fn lint_gives_every_border_case_its_marked_verdict() {
    for c in corpus() {
        let file = c.path.to_str().expect("utf-8");
        let r = plan(&["lint", "--format", "json", "--plans-dir", "tests/border/base", file]);
        let want = if c.valid { 0 } else { 1 };
        assert_eq!(r.code, want, "{file}: {}{}", r.stdout, r.stderr);
    }
}

#[test]
#[ignore = "installs check-jsonschema from PyPI; CI runs it with --include-ignored"]
fn the_json_schema_gives_every_border_case_the_same_verdict() {
    let venv = python_venv("check-jsonschema", &["check-jsonschema==0.39.0"]);
    let cases = corpus();
    let out = Command::new(venv.join("bin/check-jsonschema"))
        .args(["--output-format", "json", "--schemafile"])
        .arg(root().join("schemas/plan-v1.schema.json"))
        .args(cases.iter().map(|c| &c.path))
        .output()
        .expect("check-jsonschema");
    let report = json(&String::from_utf8_lossy(&out.stdout));
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    for e in
        report["errors"].as_array().into_iter().flatten().chain(report["parse_errors"].as_array().into_iter().flatten())
    {
        let file = e["filename"].as_str().expect("filename").to_owned();
        refused.entry(file).or_insert_with(|| e["message"].to_string());
    }
    for c in &cases {
        let file = c.path.to_str().expect("utf-8");
        let schema_valid = !refused.contains_key(file);
        let want = c.valid || c.lint_only.is_some();
        assert_eq!(schema_valid, want, "{file}: schema says {:?}", refused.get(file));
    }
    // Each rule the schema cannot express has a case showing it.
    for rule in LINT_ONLY_RULES {
        assert!(cases.iter().any(|c| c.lint_only.as_deref() == Some(*rule)), "no case for `{rule}`");
    }
}

/// `plan lint --format sarif` is valid SARIF 2.1.0: checked with the same
/// validator against the OASIS schema (tests/schemas/sarif-schema-2.1.0.json,
/// from oasis-tcs/sarif-spec).
#[test]
#[ignore = "installs check-jsonschema from PyPI; CI runs it with --include-ignored"]
fn lint_sarif_output_is_valid_sarif_2_1_0() {
    let venv = python_venv("check-jsonschema", &["check-jsonschema==0.39.0"]);
    let d = Dir::new();
    let r = plan(&["lint", "--format", "sarif", "tests/fixtures/lint", "tests/border/lint-only-cycle.yaml"]);
    assert_eq!(r.code, 1);
    assert!(json(&r.stdout)["runs"][0]["results"].as_array().expect("results").len() > 10);
    let out = d.file("lint.sarif.json", &r.stdout);
    let check = Command::new(venv.join("bin/check-jsonschema"))
        .arg("--schemafile")
        .arg(root().join("tests/schemas/sarif-schema-2.1.0.json"))
        .arg(&out)
        .output()
        .expect("check-jsonschema");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
