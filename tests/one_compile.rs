//! What `plan lint` passes is exactly what runs: one compile of the window,
//! release plans kept in scope, `when`/`assert` that are booleans, a dry run
//! that tells the truth, and lint paths that lint what they name.

mod common;
use common::*;

const BASE: &str = "apiVersion: plan/v1
name: svc-upgrade
releases:
  from: \"{{installed}}\"
  to: \"{{target}}\"
vars:
  installed: {default: \"\"}
  target: {required: true}
steps:
  - id: init
    run: echo init
";

const R2: &str = "apiVersion: plan/v1
name: svc-2-0-0
extends: svc-upgrade
release: 2.0.0
vars:
  mode: {default: fast}
steps:
  - id: migrate-2
    needs: [init]
    run: echo migrate {{mode}}
";

fn family(r3: &str) -> Dir {
    let d = Dir::new();
    d.file("plans/base.yaml", BASE);
    d.file("plans/r2.yaml", R2);
    d.file("plans/r3.yaml", r3);
    d
}

#[test]
fn a_release_plan_that_reaches_into_another_is_a_release_scope_error_everywhere() {
    let d = family(
        "apiVersion: plan/v1
name: svc-3-0-0
extends: svc-upgrade
release: 3.0.0
steps:
  - id: migrate-3
    needs: [migrate-2]
    run: echo migrate {{mode}}
",
    );
    let r = d.plan(&["lint", "--format", "json", "plans"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let report = json(&r.stdout);
    let found = diagnostic_rows(&report, "file");
    assert_eq!(
        found,
        [
            ("release-scope".to_owned(), 7, 13, "plans/r3.yaml".to_owned()),
            ("release-scope".to_owned(), 8, 23, "plans/r3.yaml".to_owned())
        ]
    );
    assert_eq!(
        report["diagnostics"][0]["message"],
        "release plan `svc-3-0-0` refers to step `migrate-2` of release plan `svc-2-0-0`, which a window may leave out"
    );
    // With 2.0.0 installed only 3.0.0 is in the window: the edge must not silently vanish, nor may init run.
    let window = ["--plans-dir", "plans", "--var", "installed=2.0.0", "--var", "target=3.0.0"];
    for cmd in [&["show", "svc-upgrade"][..], &["run", "svc-upgrade", "--state-dir", "state"][..]] {
        let r = d.plan(&[cmd, &window[..]].concat());
        assert_eq!(r.code, 2, "{cmd:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("release-scope"), "{}", r.stderr);
        assert!(r.stderr.contains("nothing was run"), "{}", r.stderr);
        assert!(!r.stdout.contains("init"), "{}", r.stdout);
    }
    assert!(!d.path().join("state").exists(), "no run may start from an invalid plan");
}

#[test]
fn a_release_plan_using_its_own_and_the_base_names_runs_in_every_window() {
    let d = family(
        "apiVersion: plan/v1
name: svc-3-0-0
extends: svc-upgrade
release: 3.0.0
vars:
  level: {default: \"3\"}
steps:
  - id: migrate-3
    needs: [init]
    run: echo migrate {{level}} to {{target}}
",
    );
    let r = d.plan(&["lint", "--plans-dir", "plans"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.ends_with("3 files checked: 0 error(s), 0 warning(s)\n"), "{}", r.stdout);
    let r = d.plan(&[
        "run",
        "svc-upgrade",
        "--plans-dir",
        "plans",
        "--state-dir",
        "state",
        "--var",
        "installed=2.0.0",
        "--var",
        "target=3.0.0",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = d.plan(&["status", "--state-dir", "state"]);
    assert!(r.stdout.contains("init ") && r.stdout.contains("migrate-3 "), "{}", r.stdout);
    assert!(!r.stdout.contains("migrate-2"), "{}", r.stdout);
}

fn one_step(extra: &str) -> Dir {
    let d = Dir::new();
    d.file(
        "p.yaml",
        &format!(
            "apiVersion: plan/v1
name: p
vars:
  answer: {{default: \"yes\"}}
steps:
  - id: first
    run: echo first
  - id: second
    needs: [first]
{extra}"
        ),
    );
    d
}

#[test]
fn a_literal_when_that_is_not_a_boolean_is_a_lint_error() {
    let d = one_step("    when: \"yes\"\n    run: echo second\n    shell: x\n");
    let d2 = one_step("    when: \"yes\"\n    run: echo second {{answer}}\n");
    let r = d2.plan(&["lint", "--format", "json", "p.yaml"]);
    assert_eq!(r.code, 1);
    let diag = &json(&r.stdout)["diagnostics"][0];
    assert_eq!(
        (diag["code"].as_str(), diag["line"].as_u64(), diag["column"].as_u64()),
        (Some("not-boolean"), Some(10), Some(11))
    );
    assert_eq!(diag["message"], "`when: yes` can never be `true` or `false`");
    drop(d);
}

#[test]
fn a_when_that_renders_neither_true_nor_false_stops_show_dry_run_and_run_before_anything_runs() {
    let d = one_step("    when: \"{{answer}}\"\n    run: echo second\n");
    assert_eq!(d.plan(&["lint", "p.yaml"]).code, 0);
    for args in [
        &["show", "./p.yaml"][..],
        &["run", "./p.yaml", "--dry-run", "--state-dir", "state"][..],
        &["run", "./p.yaml", "--state-dir", "state"][..],
    ] {
        let r = d.plan(args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert_eq!(
            r.stderr,
            "./p.yaml:10:11: error[not-boolean]: step `second`, `when` rendered `yes`, expected exactly `true` or `false`\n  \
             help: `when` and `assert` must render exactly `true` or `false`; check the template and the values given\n\
             error: nothing was run\n",
            "{args:?}"
        );
    }
    assert!(!d.path().join("state").exists(), "no run was journaled");
}

#[test]
fn a_dry_run_and_show_say_where_an_assert_would_stop_and_exit_1() {
    let d = one_step("    assert: \"{{eq answer 'no'}}\"\n    message: \"answer is {{answer}}, not no\"\n");
    let r = d.plan(&["run", "./p.yaml", "--dry-run", "--state-dir", "state"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.ends_with(
            "\nwould stop at second: answer is yes, not no\ndry run: nothing was run; the run would fail there\n"
        ),
        "{}",
        r.stdout
    );
    let r = d.plan(&["show", "./p.yaml"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.ends_with("\nwould stop at second: answer is yes, not no\n"), "{}", r.stdout);
    // --skip takes the assert out of the run, so the dry run passes.
    let r = d.plan(&["run", "./p.yaml", "--dry-run", "--state-dir", "state", "--skip", "second"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.ends_with("\ndry run: nothing was run\n"), "{}", r.stdout);
    // And the real run does stop there.
    let r = d.plan(&["run", "./p.yaml", "--state-dir", "state"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[second] failed in 0.0s: answer is yes, not no"), "{}", r.stdout);
}

#[test]
fn lint_lints_what_it_is_given() {
    let d = Dir::new();
    d.file("mine/bad.yaml", "apiVersion: plan/v1\nname: bad\nsteps:\n  - id: a\n    needs: [nope]\n    run: echo\n");
    // --plans-dir without paths lints that folder, not the shipped plans.
    let r = d.plan(&["lint", "--plans-dir", "mine"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.ends_with("1 file checked: 1 error(s), 0 warning(s)\n"), "{}", r.stdout);
    // `-` reads standard input.
    let r = plan_stdin(
        d.path(),
        &["lint", "--format", "json", "-"],
        "apiVersion: plan/v1\nname: x\nsteps:\n  - id: a\n    when: \"on\"\n    run: echo\n",
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let diag = &json(&r.stdout)["diagnostics"][0];
    assert_eq!(
        (diag["file"].as_str(), diag["code"].as_str(), diag["line"].as_u64()),
        (Some("<stdin>"), Some("not-boolean"), Some(5))
    );
    // A folder without plan files proves nothing: exit 2.
    std::fs::create_dir_all(d.path().join("empty")).expect("mkdir");
    let r = d.plan(&["lint", "empty"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: no plan files (*.yaml, *.yml) in empty\n  help: check the folder: a lint of no plan proves nothing\n"
    );
}
