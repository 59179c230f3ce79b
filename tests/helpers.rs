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
    ("and (eq v \"1.0.0\") (semver_satisfies v \"^1\")", true),
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
