//! Hostile inputs: every file of `tests/hostile/` (its first line says the
//! expected verdict, `# expect: valid` or `# expect: CODE`) and the large
//! cases generated here get their verdict at once: no panic, no abort, no
//! hang. Times are printed (`--nocapture`); the guard is against a hang, not
//! a speed target (that is bench/'s job).

mod common;
use common::*;

use std::path::Path;
use std::time::{Duration, Instant};

/// `plan lint --format json FILE`, killed if it has not answered within `limit`.
fn lint(dir: &Path, file: &str) -> (Run, Duration) {
    let start = Instant::now();
    let r = plan_in(dir, &["lint", "--format", "json", file]);
    (r, start.elapsed())
}

fn check(dir: &Path, file: &str, expect: &str) {
    let (r, took) = lint(dir, file);
    eprintln!("{file}: {expect} in {took:?}");
    assert!(took < Duration::from_secs(20), "{file}: no answer after {took:?}");
    assert!(!r.stderr.contains("panicked"), "{file}: {}", r.stderr);
    let report = json(&r.stdout);
    if expect == "valid" {
        assert_eq!(r.code, 0, "{file}: {report}");
    } else {
        assert_eq!(r.code, 1, "{file}: {}{}", r.stdout, r.stderr);
        let codes: Vec<&str> =
            report["diagnostics"].as_array().expect("diagnostics").iter().filter_map(|d| d["code"].as_str()).collect();
        assert!(codes.contains(&expect), "{file}: expected {expect}, got {report}");
    }
}

#[test]
fn every_file_of_the_hostile_corpus_gets_its_marked_verdict() {
    let dir = root().join("tests/hostile");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/hostile") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        let first = text.trim_start_matches('\u{feff}').lines().next().unwrap_or_default();
        let expect =
            first.strip_prefix("# expect: ").unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()));
        check(&dir, path.file_name().and_then(|f| f.to_str()).expect("name"), expect.trim());
        n += 1;
    }
    assert!(n >= 8, "the corpus has {n} files");
    // Positions: a tab is reported on its own line, an unclosed `{{` at its line and column.
    for (file, line, column) in [("tab-indent.yaml", 6, 1), ("unclosed-mustache.yaml", 6, 15)] {
        let (r, _) = lint(&dir, file);
        let d = &json(&r.stdout)["diagnostics"][0];
        assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(line), Some(column)), "{file}: {d}");
    }
}

fn plan_text(name: &str, body: &str) -> String {
    format!("apiVersion: plan/v1\nname: {name}\n{body}")
}

#[test]
fn large_and_deep_inputs_are_answered_at_once() {
    let d = Dir::new();
    let step = |extra: &str| format!("steps:\n  - id: a\n    run: \"true\"\n{extra}");
    let unknown: Vec<String> = (0..10_000).map(|i| format!("nope{i}")).collect();
    let mut laughs = vec!["steps:".to_owned()];
    laughs.push("  - id: a0\n    run: \"true\"\n    tags: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]".into());
    for i in 1..10 {
        laughs.push(format!(
            "  - id: a{i}\n    run: \"true\"\n    tags: &a{i} [{}]",
            vec![format!("*a{}", i - 1); 10].join(",")
        ));
    }
    let many: String = (0..100_000).map(|i| format!("  - {{id: s{i}, run: x}}\n")).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        // A NUL byte (generated: a file holding one counts as binary in git).
        ("nul-byte.yaml", plan_text("nul", "description: \"a\u{0}b\"\nsteps: []\n"), "yaml-syntax"),
        (
            "ten-mb.yaml",
            plan_text("big", &format!("description: \"{}\"\n", "x".repeat(10 * 1024 * 1024))),
            "invalid-value",
        ),
        (
            "alias-bomb.yaml",
            plan_text(
                "bomb",
                &step(&format!(
                    "    description: &big \"{}\"\n    tags: [{}]\n",
                    "x".repeat(100_000),
                    vec!["*big"; 30_000].join(", ")
                )),
            ),
            "yaml-syntax",
        ),
        ("laughs.yaml", plan_text("laughs", &laughs.join("\n")), "yaml-syntax"),
        (
            "nested-yaml.yaml",
            plan_text("nested", &step(&format!("    tags: {}{}\n", "[".repeat(20_000), "]".repeat(20_000)))),
            "yaml-syntax",
        ),
        ("steps-100k.yaml", plan_text("many", &format!("steps:\n{many}")), "valid"),
        (
            "not-4200-deep.yaml",
            plan_text(
                "deep",
                &format!(
                    "vars:\n  x: {{default: a}}\nsteps:\n  - id: a\n    run: echo \"{{{{{}x{}}}}}\"\n",
                    "not (".repeat(4_200),
                    ")".repeat(4_200)
                ),
            ),
            "template-syntax",
        ),
        (
            "if-10000-deep.yaml",
            plan_text(
                "ifs",
                &format!(
                    "vars:\n  x: {{default: a}}\nsteps:\n  - id: a\n    run: echo \"{}y{}\"\n",
                    "{{#if x}}".repeat(10_000),
                    "{{/if}}".repeat(10_000)
                ),
            ),
            "template-syntax",
        ),
        (
            "unknown-needs.yaml",
            plan_text("unknown", &format!("steps:\n  - id: a\n    run: x\n    needs: [{}]\n", unknown.join(", "))),
            "unknown-dependency",
        ),
        (
            "duplicate-needs.yaml",
            plan_text(
                "dups",
                &format!(
                    "steps:\n  - id: a\n    run: x\n  - id: b\n    run: x\n    needs: [{}]\n",
                    vec!["a"; 50_000].join(", ")
                ),
            ),
            "valid",
        ),
    ];
    for (name, text, expect) in &cases {
        d.file(name, text);
        check(d.path(), name, expect);
    }
    // Human output of 10,000 errors shows the first ones and says how many more.
    let r = d.plan(&["lint", "unknown-needs.yaml"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("unknown-needs.yaml: 9950 more diagnostics not shown (--format json lists them all)"),
        "{}",
        &r.stdout[r.stdout.len().saturating_sub(300)..]
    );
    // A plan whose templates lint refuses never reaches the renderer.
    let r = d.plan(&["show", "./not-4200-deep.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("`(...)` nests deeper than 32 levels"), "{}", r.stderr);
}

#[test]
fn a_duration_too_long_for_grace_is_refused() {
    let d = Dir::new();
    d.file("p.yaml", &plan_text("p", "steps:\n  - id: a\n    run: \"true\"\n"));
    let r = d.plan(&["run", "./p.yaml", "--grace", "99999999999999999999s", "--state-dir", "s"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`99999999999999999999s` is longer than the longest duration plan takes (366 days)"),
        "{}",
        r.stderr
    );
    let r = d.plan(&["run", "./p.yaml", "--grace", "1h30m", "--state-dir", "s"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `plan ARGS | head -0`: stdout is a pipe whose reader is gone.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> std::process::Output {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    std::process::Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("PLAN_PATH")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run plan")
}

#[test]
fn a_reader_that_goes_away_ends_the_output_not_the_program() {
    let d = Dir::new();
    d.file("p.yaml", &plan_text("p", "steps:\n  - id: a\n    run: \"true\"\n"));
    assert_eq!(d.plan(&["run", "./p.yaml", "--state-dir", "s"]).code, 0);
    for args in [
        &["runs", "--state-dir", "s"][..],
        &["status", "--state-dir", "s"][..],
        &["run", "./p.yaml", "--dry-run", "--state-dir", "s"][..],
        &["show", "./p.yaml"][..],
        &["lint", "p.yaml"][..],
        &["schema"][..],
    ] {
        let o = with_closed_stdout(d.path(), args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
