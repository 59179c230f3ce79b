//! `plan lint`: one fixture per code, asserting code, severity, line and column.

mod common;
use common::*;

fn lint_json(path: &str) -> (i32, serde_json::Value) {
    let r = plan(&["lint", "--format", "json", path]);
    (r.code, json(&r.stdout))
}

/// (fixture, code, severity, line, column, help)
type Case = (&'static str, &'static str, &'static str, u64, u64, Option<&'static str>);

const CASES: &[Case] = &[
    ("yaml-syntax.yaml", "yaml-syntax", "error", 2, 7, None),
    ("unknown-field.yaml", "unknown-field", "error", 6, 5, Some("did you mean `needs`?")),
    ("missing-field.yaml", "missing-field", "error", 4, 5, Some("add `id:` here")),
    ("invalid-value.yaml", "invalid-value", "error", 6, 14, None),
    ("unsupported-api-version.yaml", "unsupported-api-version", "error", 1, 13, None),
    ("duplicate-step.yaml", "duplicate-step", "error", 6, 9, None),
    ("unknown-dependency.yaml", "unknown-dependency", "error", 7, 13, Some("did you mean `build`?")),
    ("dependency-cycle.yaml", "dependency-cycle", "error", 5, 13, None),
    ("no-action.yaml", "no-action", "error", 4, 9, None),
    ("multiple-actions.yaml", "multiple-actions", "error", 6, 12, None),
    ("template-syntax.yaml", "template-syntax", "error", 8, 34, None),
    ("undefined-variable.yaml", "undefined-variable", "error", 8, 23, Some("did you mean `target`?")),
    ("capture-not-ancestor.yaml", "capture-not-ancestor", "error", 8, 23, Some("add `version` to this step's `needs`")),
    ("invalid-choice.yaml", "invalid-choice", "error", 5, 14, Some("did you mean `local`?")),
    ("duplicate-plan", "duplicate-plan", "error", 2, 7, None),
    ("unknown-plan", "unknown-plan", "error", 4, 10, None),
    ("unused-variable.yaml", "unused-variable", "warning", 4, 3, None),
    ("quoted-template.yaml", "quoted-template", "warning", 8, 26, None),
    ("unknown-helper.yaml", "unknown-helper", "error", 8, 12, Some("did you mean `eq`?")),
    ("not-boolean.yaml", "not-boolean", "error", 5, 11, None),
    ("raw-template-in-shell.yaml", "raw-template-in-shell", "error", 8, 23, None),
    ("release-scope", "release-scope", "error", 7, 13, None),
    ("redundant-dependency.yaml", "redundant-dependency", "warning", 10, 19, None),
];

#[test]
fn every_code_has_a_fixture_with_its_exact_position() {
    for (fixture, code, severity, line, column, help) in CASES {
        let path = format!("tests/fixtures/lint/{fixture}");
        let (exit, report) = lint_json(&path);
        let diags = report["diagnostics"].as_array().expect("diagnostics");
        let d =
            diags.iter().find(|d| d["code"] == *code).unwrap_or_else(|| panic!("{fixture}: no `{code}` in {report}"));
        assert_eq!(d["severity"], *severity, "{fixture}");
        assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(*line), Some(*column)), "{fixture}: {d}");
        assert!(d["file"].as_str().expect("file").starts_with(&path), "{fixture}: {d}");
        let end = (d["end_line"].as_u64().expect("end_line"), d["end_column"].as_u64().expect("end_column"));
        assert!(end >= (*line, *column), "{fixture}: the end {end:?} is before the start: {d}");
        if let Some(h) = help {
            assert_eq!(d["help"], *h, "{fixture}");
        }
        let expected_exit = if *severity == "error" { 1 } else { 0 };
        assert_eq!(exit, expected_exit, "{fixture}");
        assert_eq!(report["errors"].as_u64(), Some(diags.iter().filter(|d| d["severity"] == "error").count() as u64));
        assert_eq!(
            report["warnings"].as_u64(),
            Some(diags.iter().filter(|d| d["severity"] == "warning").count() as u64)
        );
    }
}

#[test]
fn cycle_message_lists_the_whole_circle() {
    let (_, report) = lint_json("tests/fixtures/lint/dependency-cycle.yaml");
    assert_eq!(report["diagnostics"][0]["message"], "dependency cycle: a -> c -> b -> a");
}

#[test]
fn deny_warnings_fails_on_a_warning() {
    assert_eq!(plan(&["lint", "tests/fixtures/lint/unused-variable.yaml"]).code, 0);
    assert_eq!(plan(&["lint", "--deny-warnings", "tests/fixtures/lint/unused-variable.yaml"]).code, 1);
}

#[test]
fn human_output_is_rustc_like() {
    let r = plan(&["lint", "tests/fixtures/lint/unknown-dependency.yaml"]);
    assert_eq!(r.code, 1);
    let expected = "\
tests/fixtures/lint/unknown-dependency.yaml:7:13: error[unknown-dependency]: step `test` needs `biuld`, which is not a step of this plan
  ╭─[tests/fixtures/lint/unknown-dependency.yaml:7:13]
6 │   - id: test
7 │     needs: [biuld]
  ·             ─────
8 │     run: make test
  ╰────
  help: did you mean `build`?
1 file checked: 1 error(s), 0 warning(s)
";
    assert_eq!(r.stdout, expected);
    let j = json(&plan(&["lint", "--format", "json", "tests/fixtures/lint/unknown-dependency.yaml"]).stdout);
    let d = &j["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64(), d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(7), Some(13), Some(7), Some(18))
    );
    // Where the locale or the terminal cannot show box drawing: ASCII.
    for env in [[("LANG", "C"), ("TERM", "xterm")], [("LANG", "C.UTF-8"), ("TERM", "dumb")]] {
        let r = plan_env(&root(), &["lint", "tests/fixtures/lint/unknown-dependency.yaml"], &env);
        let ascii = expected
            .replace("╭─", ",-")
            .replace('│', "|")
            .replace("·             ─────", ":             ^^^^^")
            .replace("╰────", "`----");
        assert_eq!(r.stdout, ascii, "{env:?}");
    }
}

#[test]
fn human_output_for_an_unknown_field() {
    let r = plan(&["lint", "tests/fixtures/lint/unknown-field.yaml"]);
    assert!(
        r.stdout
            .starts_with("tests/fixtures/lint/unknown-field.yaml:6:5: error[unknown-field]: unknown field `nedds`\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("help: did you mean `needs`?"), "{}", r.stdout);
}

#[test]
fn shipped_plans_lint_clean_with_deny_warnings() {
    let r = plan(&["lint", "--deny-warnings"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("0 error(s), 0 warning(s)"), "{}", r.stdout);
    let r = plan(&["lint", "--deny-warnings", "plans"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn a_missing_path_is_a_usage_error() {
    let r = plan(&["lint", "no/such/file.yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no such file or folder: no/such/file.yaml"), "{}", r.stderr);
}

#[test]
fn a_release_plan_is_checked_against_its_base() {
    let d = Dir::new();
    d.file(
        "base.yaml",
        "apiVersion: plan/v1\nname: app\nreleases:\n  from: \"{{installed}}\"\n  to: \"{{target}}\"\nvars:\n  installed: {}\n  target: {required: true}\nsteps:\n  - id: init\n    run: app init {{target}}\n",
    );
    d.file(
        "rel.yaml",
        "apiVersion: plan/v1\nname: app-2-0-0\nrelease: 2.0.0\nextends: app\nsteps:\n  - id: migrate\n    needs: [inti]\n    run: app migrate {{target}} {{nope}}\n  - id: init\n    run: x\n",
    );
    let r = d.plan(&["lint", "--format", "json", "."]);
    let report = json(&r.stdout);
    let codes: Vec<(String, u64, u64)> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or("").to_owned(),
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("unknown-dependency".to_owned(), 7, 13),
            ("undefined-variable".to_owned(), 8, 33),
            ("duplicate-step".to_owned(), 9, 9),
        ],
        "{report}"
    );
    // Linting the release plan alone finds its base through --plans-dir.
    let sub = Dir::new();
    std::fs::copy(d.path().join("rel.yaml"), sub.path().join("rel.yaml")).expect("copy");
    let r = sub.plan(&["lint", "--format", "json", "--plans-dir", d.path().to_str().expect("utf-8"), "rel.yaml"]);
    assert_eq!(json(&r.stdout)["errors"], 3, "{}", r.stdout);
}

#[test]
fn before_entries_are_edges_too() {
    let d = Dir::new();
    d.file(
        "before.yaml",
        "apiVersion: plan/v1\nname: before\nsteps:\n  - id: check\n    before: [instal]\n    run: \"true\"\n  - id: install\n    run: \"true\"\n",
    );
    d.file(
        "circle.yaml",
        "apiVersion: plan/v1\nname: circle\nsteps:\n  - id: check\n    before: [install]\n    run: \"true\"\n  - id: install\n    before: [check]\n    run: \"true\"\n",
    );
    let report = json(&d.plan(&["lint", "--format", "json", "before.yaml"]).stdout);
    let diag = &report["diagnostics"][0];
    assert_eq!(diag["code"], "unknown-dependency");
    assert_eq!(diag["message"], "step `check` runs before `instal`, which is not a step of this plan");
    assert_eq!((diag["line"].as_u64(), diag["column"].as_u64()), (Some(5), Some(14)));
    assert_eq!(diag["help"], "did you mean `install`?");
    let report = json(&d.plan(&["lint", "--format", "json", "circle.yaml"]).stdout);
    assert_eq!(report["diagnostics"][0]["message"], "dependency cycle: check -> install -> check");
}

/// A large plan reports positions near its end exactly as a small one does:
/// a lint error and a YAML error after 9,000 lines.
#[test]
fn large_plans_report_exact_positions() {
    let d = Dir::new();
    let chain = |n: usize, tail: &str| {
        let mut s = "apiVersion: plan/v1\nname: big\nsteps:\n  - id: s0\n    run: \"true\"\n".to_owned();
        for i in 1..n {
            s += &format!("  - id: s{i}\n    needs: [s{}]\n    run: echo step {i}\n", i - 1);
        }
        s + tail
    };
    let n = 3000; // about 130 KiB
    let lines = 5 + 3 * (n - 1);
    d.file("dep.yaml", &chain(n, "  - id: last\n    needs: [s29999]\n    run: \"true\"\n"));
    d.file("field.yaml", &chain(n, "  - id: last\n    neds: [s1]\n    run: \"true\"\n"));
    assert!(std::fs::metadata(d.path().join("dep.yaml")).expect("written").len() > 128 * 1024);
    let report = json(&d.plan(&["lint", "--format", "json", "dep.yaml"]).stdout);
    let diag = &report["diagnostics"][0];
    assert_eq!(diag["code"], "unknown-dependency");
    assert_eq!((diag["line"].as_u64(), diag["column"].as_u64()), (Some(lines as u64 + 2), Some(13)));
    let report = json(&d.plan(&["lint", "--format", "json", "field.yaml"]).stdout);
    let diag = &report["diagnostics"][0];
    assert_eq!(diag["code"], "unknown-field");
    assert_eq!((diag["line"].as_u64(), diag["column"].as_u64()), (Some(lines as u64 + 2), Some(5)));
    assert_eq!(diag["help"], "did you mean `needs`?");
}

/// `run: true` is a boolean to YAML: the error points at the value and says to quote it.
#[test]
fn an_unquoted_boolean_or_number_command_gets_a_quoting_hint() {
    let d = Dir::new();
    d.file("t.yaml", "apiVersion: plan/v1\nname: t\nsteps:\n  - id: a\n    run: true\n  - id: b\n    run: 3.5\n");
    let report = json(&d.plan(&["lint", "--format", "json", "t.yaml"]).stdout);
    let diag = &report["diagnostics"][0];
    assert_eq!(diag["code"], "invalid-value");
    assert_eq!((diag["line"].as_u64(), diag["column"].as_u64()), (Some(5), Some(10)));
    assert_eq!(diag["help"], "YAML reads an unquoted `true` as a boolean; quote it: \"true\"");
    // The help quotes the text as written, not as YAML read it (1.5).
    d.file("n.yaml", "apiVersion: plan/v1\nname: n\nsteps:\n  - id: b\n    run:  1.50 # note\n");
    let report = json(&d.plan(&["lint", "--format", "json", "n.yaml"]).stdout);
    let diag = &report["diagnostics"][0];
    assert_eq!((diag["line"].as_u64(), diag["column"].as_u64()), (Some(5), Some(11)));
    assert_eq!(diag["help"], "YAML reads an unquoted `1.50` as a number; quote it: \"1.50\"");
}

#[test]
fn one_pass_reports_the_typed_errors_of_every_step() {
    let d = Dir::new();
    d.file(
        "multi.yaml",
        "apiVersion: plan/v1\nname: multi\nsteps:\n  - id: a\n    run: echo a\n    neds: [x]\n  - id: b\n    run: echo b\n    retries: \"3\"\n  - id: c\n    shell: |\n      - id: fake\n        nope: 1\n  - id: d\n    run: echo d\n    timeout: 90\n",
    );
    let r = d.plan(&["lint", "--format", "json", "multi.yaml"]);
    assert_eq!(r.code, 1);
    let found: Vec<(String, u64, u64)> = json(&r.stdout)["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_owned(),
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        found,
        [("unknown-field".to_owned(), 6, 5), ("invalid-value".to_owned(), 9, 14), ("invalid-value".to_owned(), 16, 14)]
    );
}

#[test]
fn github_format_annotates_each_diagnostic() {
    let r = plan(&[
        "lint",
        "--format",
        "github",
        "tests/fixtures/lint/unknown-dependency.yaml",
        "tests/fixtures/lint/quoted-template.yaml",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "::warning file=tests/fixtures/lint/quoted-template.yaml,line=8,col=26,endLine=8,endColumn=36,title=plan quoted-template::quoted `{{...}}` in a shell script%0Ahelp: `{{x}}` is already shell-quoted and stays one literal piece inside quotes too; the quotes around it are not needed\n\
         ::error file=tests/fixtures/lint/unknown-dependency.yaml,line=7,col=13,endLine=7,endColumn=18,title=plan unknown-dependency::step `test` needs `biuld`, which is not a step of this plan%0Ahelp: did you mean `build`?\n"
    );
}

#[test]
fn sarif_format_has_a_rule_per_code_and_a_result_per_diagnostic() {
    let r = plan(&["lint", "--format", "sarif", "tests/fixtures/lint/unknown-dependency.yaml"]);
    assert_eq!(r.code, 1);
    let s = json(&r.stdout);
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "plan");
    assert_eq!(run["tool"]["driver"]["rules"].as_array().expect("rules").len(), 23);
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "unknown-dependency");
    assert_eq!(
        run["tool"]["driver"]["rules"][result["ruleIndex"].as_u64().expect("index") as usize]["id"],
        "unknown-dependency"
    );
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64(), region["endColumn"].as_u64()),
        (Some(7), Some(13), Some(18))
    );
}

/// The pre-commit hook, run by the real `pre-commit` (PyPI) in a fresh git
/// repository: it passes on a good plan and fails, with the diagnostic, on a bad one.
#[test]
#[ignore = "installs pre-commit from PyPI; CI runs it with --include-ignored"]
fn the_pre_commit_hook_lints_plans() {
    let venv = python_venv("pre-commit", &["pre-commit==4.7.0"]);
    let d = Dir::new();
    // The hook repository: this checkout's hooks file, committed in a repo of its own.
    let hooks = d.path().join("hooks");
    std::fs::create_dir_all(&hooks).expect("mkdir");
    std::fs::copy(root().join(".pre-commit-hooks.yaml"), hooks.join(".pre-commit-hooks.yaml")).expect("copy");
    let in_hooks = |args: &[&str]| {
        let o = std::process::Command::new("git").args(args).current_dir(&hooks).output().expect("git");
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    in_hooks(&["init", "-q"]);
    in_hooks(&["add", "."]);
    in_hooks(&["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "hooks"]);
    let work = d.path().join("work");
    std::fs::create_dir_all(work.join("plans")).expect("mkdir");
    std::fs::write(
        work.join(".pre-commit-config.yaml"),
        format!("repos:\n  - repo: {}\n    rev: HEAD\n    hooks:\n      - id: plan-lint-system\n", hooks.display()),
    )
    .expect("config");
    std::fs::write(
        work.join("plans/good.yaml"),
        "apiVersion: plan/v1\nname: good\nsteps:\n  - id: a\n    run: \"true\"\n",
    )
    .expect("plan");
    let run = |work: &std::path::Path| {
        for args in [&["init", "-q"][..], &["add", "."][..]] {
            std::process::Command::new("git").args(args).current_dir(work).output().expect("git");
        }
        let path = format!(
            "{}:{}",
            std::path::Path::new(bin()).parent().expect("bin dir").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new(venv.join("bin/pre-commit"))
            .args(["run", "--all-files"])
            .current_dir(work)
            .env("PATH", path)
            .env("PRE_COMMIT_HOME", d.path().join("cache"))
            .output()
            .expect("pre-commit")
    };
    let ok = run(&work);
    assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
    std::fs::write(
        work.join("plans/bad.yaml"),
        "apiVersion: plan/v1\nname: bad\nsteps:\n  - id: a\n    needs: [nope]\n    run: \"true\"\n",
    )
    .expect("plan");
    let bad = run(&work);
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{out}");
    assert!(out.contains("plans/bad.yaml:5:13: error[unknown-dependency]"), "{out}");
}
