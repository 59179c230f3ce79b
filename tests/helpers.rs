//! Helpers that answer yes or no return booleans, so `{{#if}}` and
//! `{{#unless}}` take the right branch (a string "false" would be truthy),
//! and they still render as `true`/`false` in text.

mod common;
use common::*;

/// (expression, its answer)
const CASES: &[(&str, bool)] = &[
    ("semver_satisfies v \">=2\"", false),
    ("semver_satisfies v \">=1\"", true),
    ("and (eq v \"1.0.0\") (semver_satisfies v \">=2\")", false),
    ("and (eq v \"1.0.0\") (semver_satisfies v \"~=1.0\")", true),
    ("or (eq v \"2.0.0\") (semver_satisfies v \">=2\")", false),
    ("or (eq v \"2.0.0\") (semver_satisfies v \"<2\")", true),
    ("not (semver_satisfies v \">=1\")", false),
    ("not (semver_satisfies v \">=2\")", true),
    ("eq v \"2.0.0\"", false),
    ("eq v \"1.0.0\"", true),
    ("ne v \"1.0.0\"", false),
    ("ne v \"2.0.0\"", true),
    ("lt (semver_major v) 1", false),
    ("lt (semver_major v) 2", true),
    ("gt (semver_major v) 1", false),
    ("gt (semver_major v) 0", true),
    ("gte (semver_major v) 2", false),
    ("gte (semver_major v) 1", true),
    ("lte (semver_major v) 0", false),
    ("lte (semver_major v) 1", true),
];

#[test]
fn every_yes_no_helper_takes_the_right_branch_and_renders_as_text() {
    let d = Dir::new();
    let mut plan = String::from("apiVersion: plan/v1\nname: helpers\nvars:\n  v: {default: \"1.0.0\"}\nsteps:\n");
    for (n, (expr, _)) in CASES.iter().enumerate() {
        let yaml_expr = expr.replace('"', "\\\"");
        plan.push_str(&format!(
            "  - id: h{n}\n    run: \"echo {{{{#if ({yaml_expr})}}}}Y{{{{else}}}}N{{{{/if}}}} {{{{#unless ({yaml_expr})}}}}U{{{{/unless}}}} {{{{{yaml_expr}}}}}\"\n"
        ));
    }
    d.file("helpers.yaml", &plan);
    let r = d.plan(&["show", "./helpers.yaml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for (n, (expr, answer)) in CASES.iter().enumerate() {
        let want = if *answer { "echo Y '' true" } else { "echo N U false" };
        assert!(
            r.stdout.contains(&format!("{:>3}. h{n} [run]\n       run: {want}\n", n + 1)),
            "`{expr}` should be {answer}:\n{}",
            r.stdout
        );
    }
}

/// Versions are compared as pip compares them (PEP 440): a release
/// candidate comes before its release, a post-release after it, `<3`
/// excludes 3's pre-releases and `>2.5.0` 2.5.0's post-releases; what is not
/// a version is refused with a message naming it, before anything runs.
#[test]
fn versions_compare_as_pip_compares_them() {
    let d = Dir::new();
    let plan = |version: &str, req: &str| {
        d.file(
            "v.yaml",
            &format!("apiVersion: plan/v1\nname: v\nvars:\n  v: {{default: \"{version}\"}}\nsteps:\n  - id: a\n    run: \"echo {{{{semver_satisfies v '{req}'}}}} {{{{semver_major v}}}}\"\n"),
        );
        d.plan(&["show", "./v.yaml"])
    };
    for (version, req, want) in [
        // A release candidate comes before its release, and, as in pip, `<3` excludes 3's own pre-releases.
        ("3.0.0rc1", ">=3.0.0rc1, <=3.0.0rc1", "true 3"),
        ("3.0.0rc1", ">2.9", "true 3"),
        ("3.0.0rc1", ">=3", "false 3"),
        ("3.0.0rc1", "<3", "false 3"),
        // A post-release is 2.5.0 fixed: in `>=2.5.0`, not `==2.5.0`, and (as in pip) not in `>2.5.0`.
        ("2.5.0.post1", ">=2.5.0, <2.6", "true 2"),
        ("2.5.0.post1", ">2.5.0", "false 2"),
        ("2.5.0.post1", "==2.5.0", "false 2"),
        ("22.0.3", ">=22, <23", "true 22"),
        ("21.0.9", "~=21.0", "true 21"),
    ] {
        let r = plan(version, req);
        assert_eq!(r.code, 0, "{version} {req}: {}", r.stderr);
        assert!(r.stdout.contains(&format!("run: echo {want}\n")), "{version} {req}: {}", r.stdout);
    }
    let r = plan("banana", ">=1");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("`banana` is not a version as pip reads versions (e.g. 3.0.3, 3.0.0rc1, 2.5.0.post1)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was run"), "{}", r.stderr);
    let r = plan("1.0.0", "^1");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid requirement `^1`"), "{}", r.stderr);
}
