//! `data:` tables read with `lookup` and `version_lookup`: a compatibility
//! matrix that reads as data, checked by lint, scoped like every other name.

mod common;
use common::*;

const BASE: &str = r#"apiVersion: plan/v1
name: svc-upgrade
releases:
  from: "{{installed}}"
  to: "{{target}}"
vars:
  installed: {default: ""}
  target: {required: true}
  platform: {default: "21.0.9"}
data:
  compat:
    ">=1.0.0, <2.0.0": {platform: ">=15, <19", names: Olive to Redwood}
    ">=2.0.0, <3.0.0": {platform: ">=18, <21", names: Redwood to Teak}
    ">=3.0.0, <4.0.0": {platform: ">=21, <22", names: Ulmo}
  release_names:
    "18": Redwood
    "21": Ulmo
steps:
  - id: check
    assert: '{{semver_satisfies platform (lookup (version_lookup data.compat target) "platform")}}'
    message: >-
      {{target}} needs {{lookup (version_lookup data.compat target) "names"}};
      this machine runs {{lookup data.release_names (semver_major platform) default="a release this plan does not know"}}
  - id: install
    needs: [check]
    run: echo install {{target}}
"#;

fn family(release: &str) -> Dir {
    let d = Dir::new();
    d.file("plans/base.yaml", BASE);
    d.file("plans/r2.yaml", release);
    d
}

const R2: &str = r#"apiVersion: plan/v1
name: svc-2-0-0
extends: svc-upgrade
release: 2.0.0
data:
  modes: {fast: "--fast"}
steps:
  - id: migrate
    needs: [install]
    run: echo migrate {{lookup data.modes "fast"}} {{lookup data.release_names "18"}}
"#;

#[test]
fn the_matrix_row_of_the_target_decides_and_its_words_explain() {
    let d = family(R2);
    assert_eq!(d.plan(&["lint", "plans"]).code, 0);
    let run = |vars: &[&str]| {
        let mut args = vec!["show", "svc-upgrade", "--plans-dir", "plans"];
        for v in vars {
            args.extend(["--var", v]);
        }
        d.plan(&args)
    };
    let r = run(&["target=3.0.1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("assert: true"), "{}", r.stdout);
    // The 2.0.0 release plan's own table and the base's: both read.
    assert!(r.stdout.contains("echo migrate --fast Redwood"), "{}", r.stdout);

    let r = run(&["target=2.5.3"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("would stop at check: 2.5.3 needs Redwood to Teak; this machine runs Ulmo"),
        "{}",
        r.stdout
    );
    // A number key (a major) reads a text key; a missing one takes `default=`.
    let r = run(&["target=3.0.0", "platform=23.0.0"]);
    assert!(r.stdout.contains("this machine runs a release this plan does not know"), "{}", r.stdout);
}

#[test]
fn a_version_no_row_or_two_rows_match_stops_before_anything_runs() {
    let d = family(R2);
    let r = d.plan(&["run", "svc-upgrade", "--plans-dir", "plans", "--var", "target=7.0.0", "--state-dir", "state"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(
            "version_lookup: `7.0.0` matches no key of `data.compat` (`>=1.0.0, <2.0.0`, `>=2.0.0, <3.0.0`, `>=3.0.0, <4.0.0`); add a row, or give `default=`"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("plans/base.yaml:20:13: error[invalid-value]"), "{}", r.stderr);
    assert!(!d.path().join("state").exists(), "a run started");

    let overlapping = BASE.replace(r#"">=3.0.0, <4.0.0""#, r#"">=2.5.0, <4.0.0""#);
    d.file("plans/base.yaml", &overlapping);
    let r = d.plan(&["show", "svc-upgrade", "--plans-dir", "plans", "--var", "target=2.5.3"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("`2.5.3` matches several keys of `data.compat` (`>=2.0.0, <3.0.0`, `>=2.5.0, <4.0.0`)"),
        "{}",
        r.stderr
    );

    let missing = BASE.replace(r#"target) "names""#, r#"target) "name""#);
    d.file("plans/base.yaml", &missing);
    let r = d.plan(&["show", "svc-upgrade", "--plans-dir", "plans", "--var", "target=3.0.0"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("lookup: the table has no `name` (it has `names`, `platform`)"), "{}", r.stderr);
}

#[test]
fn a_table_of_another_release_plan_is_out_of_scope() {
    let d = family(R2);
    d.file(
        "plans/r3.yaml",
        r#"apiVersion: plan/v1
name: svc-3-0-0
extends: svc-upgrade
release: 3.0.0
steps:
  - id: migrate-3
    needs: [install]
    run: echo {{lookup data.modes "fast"}}
"#,
    );
    let r = d.plan(&["lint", "--format", "json", "plans"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let report = json(&r.stdout);
    let d0 = &report["diagnostics"][0];
    assert_eq!(d0["code"], "release-scope", "{report}");
    assert_eq!(
        d0["message"],
        "release plan `svc-3-0-0` refers to data table `modes` of release plan `svc-2-0-0`, which a window may leave out"
    );
    assert_eq!(
        (d0["file"].as_str(), d0["line"].as_u64(), d0["column"].as_u64()),
        (Some("plans/r3.yaml"), Some(8), Some(15))
    );
}

#[test]
fn tables_are_checked_like_the_rest_of_the_plan() {
    let d = Dir::new();
    d.file(
        "p.yaml",
        r#"apiVersion: plan/v1
name: p
data:
  compat:
    ">=1.0.0": a
    "one or later": b
  names: {a: b}
  spare: x
steps:
  - id: a
    run: echo {{version_lookup data.compat "1.0.0"}} {{data.nmes.a}} {{data}}
"#,
    );
    let r = d.plan(&["lint", "--format", "json", "p.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let report = json(&r.stdout);
    let found = diagnostic_rows(&report, "message");
    let codes: Vec<(&str, u64, u64)> = found.iter().map(|(c, l, col, _)| (c.as_str(), *l, *col)).collect();
    assert_eq!(
        codes,
        [
            ("invalid-value", 6, 5),
            ("unused-variable", 7, 3),
            ("unused-variable", 8, 3),
            ("undefined-variable", 11, 54),
            ("undefined-variable", 11, 70),
        ],
        "{found:#?}"
    );
    assert!(found[0].3.contains("key `one or later` is not a version requirement"), "{found:#?}");
    assert_eq!(report["diagnostics"][3]["help"], "did you mean `names`?");
}
