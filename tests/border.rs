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
    "version requirement keys",
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

/// yaml-language-server (npm) under the cargo target dir, installed on first use.
fn yaml_language_server() -> PathBuf {
    let dir = target_dir().join("node/yls");
    let server = dir.join("node_modules/.bin/yaml-language-server");
    if !server.exists() {
        std::fs::create_dir_all(&dir).expect("mkdir");
        let out = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("yaml-language-server@1")
            .output()
            .expect("npm");
        assert!(out.status.success(), "npm install failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    server
}

/// What the server says about a file: completion at (line, col), hover at (line, col), diagnostics.
fn ask_the_editor(
    server: &std::path::Path,
    file: &std::path::Path,
    completion: (u32, u32),
    hover: (u32, u32),
) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(root().join("tests/support/lsp_check.py"))
        .arg(server)
        .arg(file)
        .args([completion.0, completion.1, hover.0, hover.1].map(|n| n.to_string()))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json(&String::from_utf8_lossy(&out.stdout))
}

/// The schema as editor help, driven through yaml-language-server over
/// stdio as an editor would: completion inside a step of the shipped plan
/// offers `timeout` with its description, hover on `run` says what it is,
/// and on the border corpus's type errors the editor flags exactly the
/// files lint refuses.
#[test]
#[ignore = "installs yaml-language-server from npm; CI runs it with --include-ignored"]
fn the_schema_helps_in_an_editor() {
    let server = yaml_language_server();
    let schema = root().join("schemas/plan-v1.schema.json");
    let modeline = format!("# yaml-language-server: $schema={}\n", schema.display());
    let d = Dir::new();
    let shipped = std::fs::read_to_string(root().join("plans/aspects/upgrade.yaml")).expect("shipped plan");
    let body: String = shipped.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let text = format!("{modeline}{body}    \n");
    let file = d.file("upgrade.yaml", &text);
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len() as u32 - 1;
    let run_line = lines.iter().position(|l| l.trim_start().starts_with("run: ")).expect("a run step") as u32;
    let answer = ask_the_editor(&server, &file, (last, 4), (run_line, 5));
    let timeout = answer["completion"]
        .as_array()
        .expect("completion items")
        .iter()
        .find(|i| i["label"] == "timeout")
        .unwrap_or_else(|| panic!("no `timeout` in completion: {answer}"));
    assert!(timeout["documentation"].to_string().contains("process group is killed"), "{timeout}");
    let hover = answer["hover"]["contents"]["value"].as_str().unwrap_or_default();
    assert!(hover.contains("split by POSIX rules"), "hover on `run`: {answer}");
    assert_eq!(answer["diagnostics"], serde_json::json!([]), "the shipped plan is clean in the editor too");

    let typed: Vec<&str> = vec![
        "valid-every-step-field",
        "valid-fractional-duration",
        "invalid-continue-on-error-yes",
        "invalid-retries-quoted",
        "invalid-retries-negative",
        "invalid-timeout-number",
        "invalid-timeout-no-unit",
        "invalid-env-number",
        "invalid-id-number",
        "invalid-when-unquoted-false",
        "invalid-required-yes",
        "invalid-secret-quoted",
        "invalid-timeout-null",
    ];
    for name in typed {
        let text = std::fs::read_to_string(root().join(format!("tests/border/{name}.yaml"))).expect("border file");
        let file = d.file(&format!("{name}.yaml"), &format!("{modeline}{text}"));
        let answer = ask_the_editor(&server, &file, (0, 0), (0, 0));
        let flagged = !answer["diagnostics"].as_array().expect("diagnostics").is_empty();
        let lint_refuses = plan(&["lint", file.to_str().expect("utf-8")]).code != 0;
        assert_eq!(flagged, lint_refuses, "{name}: editor says {}", answer["diagnostics"]);
        assert_eq!(flagged, name.starts_with("invalid-"), "{name}");
    }
}
